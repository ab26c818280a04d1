//go:build cuda

package cuda

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"sync"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/rfc-project/rfc/runtime"
)

// DevicePtr is an address in device memory. Generated code adds planned byte offsets to the
// base of an allocation.
type DevicePtr = cu.DevicePtr

// Engine is the GPU side of one generated model: a (primary) context on one device, a
// stream, the model's kernels, and its activation and weight allocations. Its methods may
// be called from any goroutine, one at a time (the generated Model is not safe for
// concurrent use either).
type Engine struct {
	mu      sync.Mutex
	dev     cu.Device
	ctx     cu.CUContext
	stream  cu.Stream
	mod     cu.Module
	names   []string
	fns     []cu.Function
	arena   DevicePtr
	weights DevicePtr
	sizes   [2]int64 // bytes of arena and weights
	closed  bool
}

// DeviceOrdinal is the device a new Engine uses: $RFC_CUDA_DEVICE, or 0.
func DeviceOrdinal() (int, error) {
	s := os.Getenv("RFC_CUDA_DEVICE")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cuda: RFC_CUDA_DEVICE=%q is not a device ordinal", s)
	}
	return n, nil
}

// NewEngine opens the device, loads ptx (the driver compiles it for the GPU at hand) and
// looks up the kernels by name, then allocates arenaBytes of activations and weightBytes
// of weights. On error nothing stays allocated.
func NewEngine(ptx string, kernels []string, arenaBytes, weightBytes int64) (*Engine, error) {
	ordinal, err := DeviceOrdinal()
	if err != nil {
		return nil, err
	}
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: counting devices: %w", err)
	}
	if ordinal >= n {
		return nil, fmt.Errorf("cuda: device %d requested, but %d device(s) are present", ordinal, n)
	}
	e := &Engine{names: kernels, sizes: [2]int64{arenaBytes, weightBytes}}
	if e.dev, err = cu.GetDevice(ordinal); err != nil {
		return nil, fmt.Errorf("cuda: device %d: %w", ordinal, err)
	}
	if e.ctx, err = e.dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("cuda: device %d: creating the context: %w", ordinal, err)
	}
	err = e.do(func() error {
		var err error
		if e.stream, err = cu.MakeStream(cu.DefaultStream); err != nil {
			return fmt.Errorf("creating a stream: %w", err)
		}
		log := &cu.JITErrorLogBuffer{Buffer: make([]byte, 1<<14)}
		if e.mod, err = cu.LoadDataEx(ptx, log); err != nil {
			msg := string(bytes.TrimRight(log.Buffer, "\x00"))
			return fmt.Errorf("loading the model's PTX (JIT for this GPU): %w\n%s", err, msg)
		}
		for _, name := range kernels {
			fn, err := e.mod.Function(name)
			if err != nil {
				return fmt.Errorf("kernel %s: %w", name, err)
			}
			e.fns = append(e.fns, fn)
		}
		if e.arena, err = alloc(arenaBytes); err != nil {
			return fmt.Errorf("allocating %d bytes of activations: %w", arenaBytes, err)
		}
		if e.weights, err = alloc(weightBytes); err != nil {
			return fmt.Errorf("allocating %d bytes of weights: %w", weightBytes, err)
		}
		return nil
	})
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("cuda: device %d: %w", ordinal, err)
	}
	return e, nil
}

// alloc allocates device memory; 0 bytes gives a null pointer, which no kernel reads.
func alloc(n int64) (DevicePtr, error) {
	if n == 0 {
		return 0, nil
	}
	return cu.MemAlloc(n)
}

// do runs fn on a locked OS thread with the engine's context current: the driver keeps the
// current context per thread, and goroutines move between threads.
func (e *Engine) do(fn func() error) error {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := cu.SetCurrentContext(e.ctx); err != nil {
		return fmt.Errorf("making the context current: %w", err)
	}
	return fn()
}

// Arena is the base of the activation memory.
func (e *Engine) Arena() DevicePtr { return e.arena }

// Weights is the base of the weight memory.
func (e *Engine) Weights() DevicePtr { return e.weights }

// Run calls fn with a Stream on which to queue copies and launches, then waits for the
// stream and reports the first error of fn's calls or of the work itself.
func (e *Engine) Run(fn func(s *Stream)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("cuda: the model is closed")
	}
	return e.do(func() error {
		s := &Stream{e: e}
		fn(s)
		if s.err != nil {
			// Let queued work finish before the caller reuses the buffers.
			e.stream.Synchronize()
			return s.err
		}
		if err := e.stream.Synchronize(); err != nil {
			return fmt.Errorf("cuda: running the model: %w", err)
		}
		return nil
	})
}

// UploadWeights copies the weight slab (float32, laid out as the plan placed it) to the
// device, as float32 or, with half, converted to IEEE float16.
func (e *Engine) UploadWeights(slab []float32, half bool) error {
	return e.Run(func(s *Stream) {
		if half {
			h := make([]uint16, len(slab))
			runtime.F32ToF16Slice(h, slab)
			s.upload("uploading weights", e.weights, unsafe.Pointer(unsafe.SliceData(h)), int64(len(h))*2, e.sizes[1])
			return
		}
		s.UploadF32(e.weights, slab)
	})
}

// Close frees the device memory and the module and releases the context; using the model
// afterwards is an error. Calling it again does nothing.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	err := e.do(func() error {
		if e.weights != 0 {
			errs = append(errs, cu.MemFree(e.weights))
		}
		if e.arena != 0 {
			errs = append(errs, cu.MemFree(e.arena))
		}
		if len(e.fns) > 0 || e.mod != (cu.Module{}) {
			errs = append(errs, e.mod.Unload())
		}
		if e.stream != (cu.Stream{}) {
			errs = append(errs, e.stream.Destroy())
		}
		return nil
	})
	errs = append(errs, err, e.dev.ReleasePrimaryCtx())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cuda: closing the model: %w", err)
	}
	return nil
}

// Stream queues work for Engine.Run. Its methods record the first error and then do
// nothing, so that generated code needs no error check per call.
type Stream struct {
	e   *Engine
	err error
}

func (s *Stream) fail(what string, err error) {
	if s.err == nil && err != nil {
		s.err = fmt.Errorf("cuda: %s: %w", what, err)
	}
}

// Launch queues kernel k (its index in the names given to NewEngine) on a grid of
// gx·gy·gz blocks of block threads; every argument is a device pointer.
func (s *Stream) Launch(k, gx, gy, gz, block int, args ...DevicePtr) {
	if s.err != nil {
		return
	}
	params := make([]unsafe.Pointer, len(args))
	for i := range args {
		params[i] = unsafe.Pointer(&args[i])
	}
	// Launch copies the argument values into C memory before calling the driver.
	s.fail("launching "+s.e.names[k], s.e.fns[k].Launch(gx, gy, gz, block, 1, 1, 0, s.e.stream, params))
}

// upload copies n bytes from host memory to dst. The copy is synchronous with the host
// (cuMemcpyHtoD returns once src may be reused) and ordered before the stream's later work,
// since the stream synchronizes with the default stream.
func (s *Stream) upload(what string, dst DevicePtr, src unsafe.Pointer, n, limit int64) {
	if s.err != nil || n == 0 {
		return
	}
	if n > limit {
		s.fail(what, fmt.Errorf("%d bytes do not fit the %d planned", n, limit))
		return
	}
	s.fail(what, cu.MemcpyHtoD(dst, src, n))
}

// UploadF32 copies src to device memory at dst.
func (s *Stream) UploadF32(dst DevicePtr, src []float32) {
	s.upload("uploading an input", dst, unsafe.Pointer(unsafe.SliceData(src)), int64(len(src))*4, int64(len(src))*4)
}

// UploadI64 copies src to device memory at dst.
func (s *Stream) UploadI64(dst DevicePtr, src []int64) {
	s.upload("uploading an input", dst, unsafe.Pointer(unsafe.SliceData(src)), int64(len(src))*8, int64(len(src))*8)
}

// DownloadF32 copies len(dst) floats from device memory at src, after the work queued so far.
func (s *Stream) DownloadF32(dst []float32, src DevicePtr) {
	if s.err != nil || len(dst) == 0 {
		return
	}
	if err := s.e.stream.Synchronize(); err != nil {
		s.fail("running the model", err)
		return
	}
	s.fail("downloading an output", cu.MemcpyDtoH(unsafe.Pointer(unsafe.SliceData(dst)), src, int64(len(dst))*4))
}

// DownloadF16 copies len(dst) IEEE halves from device memory at src and widens them.
func (s *Stream) DownloadF16(dst []float32, src DevicePtr) {
	if s.err != nil || len(dst) == 0 {
		return
	}
	if err := s.e.stream.Synchronize(); err != nil {
		s.fail("running the model", err)
		return
	}
	h := make([]uint16, len(dst))
	s.fail("downloading an output", cu.MemcpyDtoH(unsafe.Pointer(unsafe.SliceData(h)), src, int64(len(h))*2))
	runtime.F16ToF32Slice(dst, h)
}

// Elapsed runs fn on the stream and returns the device time between its first and last
// queued operation, measured with CUDA events (for benchmarks: launch overhead on the host
// is excluded).
func (e *Engine) Elapsed(fn func(s *Stream)) (float64, error) {
	var ms float64
	err := e.Run(func(s *Stream) {
		start, err := cu.MakeEvent(cu.DefaultEvent)
		if err != nil {
			s.fail("creating an event", err)
			return
		}
		defer cu.DestroyEvent(&start)
		stop, err := cu.MakeEvent(cu.DefaultEvent)
		if err != nil {
			s.fail("creating an event", err)
			return
		}
		defer cu.DestroyEvent(&stop)
		s.fail("recording an event", start.Record(e.stream))
		fn(s)
		s.fail("recording an event", stop.Record(e.stream))
		if s.err == nil {
			s.fail("waiting for an event", stop.Synchronize())
		}
		if s.err == nil {
			ms, err = start.Elapsed(stop)
			s.fail("reading an event", err)
		}
	})
	return ms, err
}

// DeviceName names the GPU the engine runs on, with its compute capability.
func (e *Engine) DeviceName() string {
	name, err := e.dev.Name()
	if err != nil {
		name = "device " + strconv.Itoa(int(e.dev))
	}
	major, err1 := e.dev.Attribute(cu.ComputeCapabilityMajor)
	minor, err2 := e.dev.Attribute(cu.ComputeCapabilityMinor)
	if err1 == nil && err2 == nil {
		name += fmt.Sprintf(" (sm_%d%d)", major, minor)
	}
	return name
}
