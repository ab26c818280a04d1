//go:build cuda

// Command rfc-gpucheck runs the packages that rfc's CUDA target generated for ViT and TAEF2
// (./internal, see their generate.go) on a GPU:
//
//   - at the sizes of the CPU tests, on the inputs of testdata/golden, it prints max|Δ|
//     against the PyTorch goldens the CPU tests use and fails above the project's tolerance
//     (1e-4·max(1, max|ref|); float16 weights get 5e-3);
//   - at the models' default sizes it times Forward (wall clock, with the copies) and the
//     kernels alone (CUDA events), and writes weights, inputs and outputs to -out, where
//     scripts/gpu/torch_reference.py compares them with PyTorch on the same GPU.
//
// The packages come in pairs because sizes are fixed when rfc compiles (sizes chosen at run
// time are an open issue; with them each pair becomes one package):
//
//   - vit, taef2enc, taef2dec: the sizes of the CPU tests' PyTorch goldens (small, so that
//     testdata stays small); their outputs are checked against those goldens, which needs no
//     PyTorch on the GPU machine;
//   - vitbase, taef2enc512, taef2dec64: the models' default sizes (384² ViT, 512² images), the
//     only ones where timing means something; checked against PyTorch on the same GPU when
//     scripts/gpu/torch_reference.py finds a CUDA-enabled torch;
//   - vitf16: the golden ViT compiled with --f16-weights, the one check of that code path
//     (weights stored as float16 on the device, different kernels), at the tolerance of
//     float16 weights.
//
// They are generated (generate.go) and committed with their model.ptx, so that the binary
// builds where nvcc is missing; go test ./cmd/rfc checks that they are what this tree's rfc
// generates and that each model.ptx was compiled from its model.cu (ptx.sum), and
// scripts/gpucheck-generate.sh regenerates them all on a machine with nvcc.
//
// It needs the repository's testdata (-root) and an NVIDIA driver; it is built elsewhere
// with -tags cuda (scripts/cuda-build-check.sh -o bin/rfc-gpucheck) and run by
// scripts/gpu-check.sh. Exit status 1 when an accuracy check fails.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/internal/taef2dec"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/internal/taef2dec64"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/internal/taef2enc"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/internal/taef2enc512"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/internal/vit"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/internal/vitbase"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/internal/vitf16"
	"github.com/rfc-project/rfc/runtime"
)

// gpuModel is what every generated package's Model offers for one input and one output.
type gpuModel interface {
	Forward(x []float32) ([]float32, error)
	ReplayTime() (float64, error)
	DeviceName() string
	Close() error
}

// check is one model to run.
type check struct {
	name    string
	load    func(paths ...string) (gpuModel, error)
	weights []string // safetensors files, relative to -root; "" means random weights
	shapes  func() map[string][]int
	xShape  []int
	// Golden checks: the input and the expected output, relative to -root, and the tolerance.
	input, want string
	tol         float64
	// Timing checks: how to make the input.
	random func(r *rand.Rand) float32
}

func loader[M gpuModel](load func(...string) (M, error)) func(...string) (gpuModel, error) {
	return func(paths ...string) (gpuModel, error) {
		m, err := load(paths...)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}

func checks() []check {
	const g = "testdata/golden/"
	uniform := func(r *rand.Rand) float32 { return r.Float32() }
	normal := func(r *rand.Rand) float32 { return float32(r.NormFloat64()) }
	return []check{
		{name: "vit", load: loader(vit.Load), weights: []string{g + "vit_weights.safetensors"}, xShape: vit.XShape[:], input: g + "vit_input.safetensors", want: g + "vit_output.safetensors", tol: 1e-4},
		{name: "vitf16", load: loader(vitf16.Load), weights: []string{g + "vit_weights.safetensors"}, xShape: vitf16.XShape[:], input: g + "vit_input.safetensors", want: g + "vit_output.safetensors", tol: 5e-3},
		{name: "taef2enc", load: loader(taef2enc.Load), weights: []string{"testdata/taef2/encoder.safetensors"}, xShape: taef2enc.XShape[:], input: g + "taef2_encoder_input.safetensors", want: g + "taef2_encoder_output.safetensors", tol: 1e-4},
		{name: "taef2dec", load: loader(taef2dec.Load), weights: []string{"testdata/taef2/decoder.safetensors"}, xShape: taef2dec.XShape[:], input: g + "taef2_decoder_input.safetensors", want: g + "taef2_decoder_output.safetensors", tol: 1e-4},
		{name: "vitbase", load: loader(vitbase.Load), shapes: vitbase.WeightShapes, xShape: vitbase.XShape[:], random: normal},
		{name: "taef2enc512", load: loader(taef2enc512.Load), weights: []string{"testdata/taef2/encoder.safetensors"}, xShape: taef2enc512.XShape[:], random: uniform},
		{name: "taef2dec64", load: loader(taef2dec64.Load), weights: []string{"testdata/taef2/decoder.safetensors"}, xShape: taef2dec64.XShape[:], random: normal},
	}
}

func main() {
	root := flag.String("root", ".", "the rfc repository (for testdata)")
	out := flag.String("out", "", "directory for the default-size models' weights, inputs and outputs (for scripts/gpu/torch_reference.py); empty: not written")
	runs := flag.Int("runs", 20, "timed runs per model")
	only := flag.String("only", "", "run only this check")
	flag.Parse()
	failed := false
	for _, c := range checks() {
		if *only != "" && c.name != *only {
			continue
		}
		if err := run(c, *root, *out, *runs); err != nil {
			fmt.Printf("%-12s FAIL %v\n", c.name, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func run(c check, root, out string, runs int) error {
	r := rand.New(rand.NewPCG(1, uint64(len(c.name))))
	weights := make([]string, len(c.weights))
	for i, w := range c.weights {
		weights[i] = filepath.Join(root, w)
	}
	if c.shapes != nil {
		// Random weights (the models have no published checkpoint at this size), written so
		// that PyTorch can load the same ones.
		dir := out
		if dir == "" {
			tmp, err := os.MkdirTemp("", "rfc-gpucheck-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		path := filepath.Join(dir, c.name+"_weights.safetensors")
		tensors := map[string]*runtime.Tensor{}
		for key, shape := range c.shapes() {
			t := runtime.NewTensor(shape...)
			for i := range t.F32 {
				t.F32[i] = float32(r.NormFloat64() * 0.05)
			}
			tensors[key] = t
		}
		if err := runtime.WriteSafetensors(path, tensors, nil); err != nil {
			return err
		}
		weights = []string{path}
	}
	start := time.Now()
	m, err := c.load(weights...)
	if err != nil {
		return fmt.Errorf("loading: %w", err)
	}
	defer m.Close()
	loadTime := time.Since(start)

	var x, want *runtime.Tensor
	if c.input != "" {
		if x, err = readY(filepath.Join(root, c.input), "x"); err != nil {
			return err
		}
		if want, err = readY(filepath.Join(root, c.want), "y"); err != nil {
			return err
		}
	} else {
		x = runtime.NewTensor(c.xShape...)
		for i := range x.F32 {
			x.F32[i] = c.random(r)
		}
	}
	start = time.Now()
	y, err := m.Forward(x.F32)
	if err != nil {
		return err
	}
	first := time.Since(start)
	y = slices.Clone(y)
	var wall, gpu []float64
	for range runs {
		start := time.Now()
		if _, err := m.Forward(x.F32); err != nil {
			return err
		}
		wall = append(wall, float64(time.Since(start).Microseconds())/1000)
		ms, err := m.ReplayTime()
		if err != nil {
			return err
		}
		gpu = append(gpu, ms)
	}
	line := fmt.Sprintf("%-12s load %6.0f ms, first Forward %7.2f ms, Forward %7.3f ms, kernels %7.3f ms (medians of %d) on %s", c.name,
		float64(loadTime.Microseconds())/1000, float64(first.Microseconds())/1000, median(wall), median(gpu), runs, m.DeviceName())
	if want != nil {
		d, scale := 0.0, 1.0
		for i, w := range want.F32 {
			d = math.Max(d, math.Abs(float64(y[i])-float64(w)))
			if math.IsNaN(float64(y[i])) {
				d = math.Inf(1)
			}
			scale = math.Max(scale, math.Abs(float64(w)))
		}
		status := "ok"
		if !(d <= c.tol*scale) {
			status = "FAIL"
		}
		fmt.Printf("%s\n%-12s max|Δ| vs the CPU golden %.3g (tolerance %.3g): %s\n", line, "", d, c.tol*scale, status)
		if status != "ok" {
			return fmt.Errorf("max|Δ| %.3g above %.3g", d, c.tol*scale)
		}
		return nil
	}
	fmt.Println(line)
	if out != "" {
		if err := runtime.WriteSafetensors(filepath.Join(out, c.name+"_input.safetensors"), map[string]*runtime.Tensor{"x": x}, nil); err != nil {
			return err
		}
		if err := runtime.WriteSafetensors(filepath.Join(out, c.name+"_output.safetensors"), map[string]*runtime.Tensor{"y": runtime.FromF32(y, yShape(c, len(y))...)}, nil); err != nil {
			return err
		}
	}
	return nil
}

// yShape is the output's shape as the packages declare it.
func yShape(c check, n int) []int {
	switch c.name {
	case "vitbase":
		return vitbase.YShape[:]
	case "taef2enc512":
		return taef2enc512.YShape[:]
	case "taef2dec64":
		return taef2dec64.YShape[:]
	}
	return []int{n}
}

func readY(path, name string) (*runtime.Tensor, error) {
	f, err := runtime.OpenSafetensors(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Tensor(name)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
