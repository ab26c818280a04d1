// Package cuda is rfc's CUDA target. For a module with static shapes it writes a Go package
// that runs the model on an NVIDIA GPU:
//
//   - model.cu: CUDA C kernels, one per distinct op instance with every size a literal,
//     built on the templates of kernels.cuh (tiled shared-memory GEMM, implicit-GEMM
//     convolutions, a fused online-softmax attention, two-pass norms);
//   - model.ptx: model.cu compiled ahead of time with nvcc -ptx (when nvcc is on PATH; else
//     shapes.go carries the //go:generate line that makes it), embedded with //go:embed;
//   - model.go and weights.go, behind //go:build cuda: a Model that creates a context
//     through runtime/cuda (gorgonia.org/cu), loads the PTX, allocates its planned device
//     memory once, uploads the weights (f32, or f16 with Options.F16Weights), launches the
//     kernels on a stream with pointer arguments only, and returns host slices;
//   - shapes.go, without the tag: the package documentation, the shapes of the inputs and
//     outputs, and the //go:generate line, so the package exists in every build.
//
// The API is that of the Go target (package codegen): Load, LoadFiles, LoadReaderAt,
// Forward, the XLen/XShape constants; plus Close, and Replay/ReplayTime for timing.
//
// No CUDA library besides the driver is linked (no cuBLAS, no cuDNN): a binary runs wherever
// libcuda.so.1 is, whatever toolkit version the machine has, and the driver JIT-compiles
// the PTX for its GPU. The tests run the generated kernels on the CPU under a small CUDA
// emulator (testdata/emu.h) against the PyTorch goldens and the interpreter, so the kernels
// are checked on machines without a GPU; with nvcc on PATH they also compile model.cu.
package cuda

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/ir"
)

// Options configure Generate.
type Options struct {
	// Package is the Go package name; "" derives it from the model's name (vit for ViT).
	Package string
	// Source is the .rfn path to record in the documentation; "" records the module's own.
	Source string
	// Command is the command that regenerates the package, recorded when not empty.
	Command string
	// F16Weights stores the weights on the device as IEEE half floats: half the memory and
	// the bandwidth. Kernels widen them to float32 and accumulate in float32.
	F16Weights bool
	// NVCC is the nvcc that compiles model.cu to PTX: "" looks it up on PATH, "-" does not
	// compile (model.ptx is then left to the package's go:generate line).
	NVCC string
	// Arch is the virtual architecture of the PTX; "" means DefaultArch.
	Arch string
}

// DefaultArch is the PTX target: Ampere's virtual architecture, which CUDA 11.8 supports
// and which the driver JIT-compiles for newer GPUs (Hopper's H100 included).
const DefaultArch = "compute_80"

// nvccCommand is the command line that compiles src to PTX: warnings are errors.
func nvccCommand(nvcc, arch, src, dst string) []string {
	return []string{nvcc, "-ptx", "-arch=" + arch, "-std=c++14", "--Werror", "all-warnings", "-o", dst, src}
}

// NVCC returns the nvcc to use for opts ("" when none is found or compiling is off).
func NVCC(opts Options) string {
	switch opts.NVCC {
	case "-":
		return ""
	case "":
		p, err := exec.LookPath("nvcc")
		if err != nil {
			return ""
		}
		return p
	}
	return opts.NVCC
}

// Generate writes the package of m, whose shapes must all be static. The files are keyed
// by name: model.cu, shapes.go, model.go, weights.go, and model.ptx when nvcc compiled it.
// Errors name what is wrong: a symbolic dim, an op or a size the target does not handle,
// nvcc's own messages.
func Generate(m *ir.Module, opts Options) (map[string][]byte, error) {
	if m == nil {
		return nil, errors.New("cuda: nil module")
	}
	if err := ir.Verify(m); err != nil {
		return nil, fmt.Errorf("cuda: module %s does not verify:\n%w", m.Name, err)
	}
	if err := check(m); err != nil {
		return nil, err
	}
	if opts.Package == "" {
		opts.Package = codegen.PackageName(m.Name)
	}
	if !codegen.ValidPackageName(opts.Package) {
		return nil, fmt.Errorf("cuda: %q is not a valid Go package name", opts.Package)
	}
	if opts.Source == "" {
		opts.Source = m.Source
	}
	g, err := newGenerator(m, opts)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	if files["model.cu"], err = g.cuSource(); err != nil {
		return nil, err
	}
	if files["shapes.go"], err = g.shapesFile(); err != nil {
		return nil, err
	}
	if files["model.go"], err = g.modelFile(); err != nil {
		return nil, err
	}
	if files["weights.go"], err = g.weightsFile(); err != nil {
		return nil, err
	}
	if nvcc := NVCC(opts); nvcc != "" {
		ptx, err := CompilePTX(nvcc, g.arch, files["model.cu"])
		if err != nil {
			return nil, err
		}
		files["model.ptx"] = ptx
	}
	return files, nil
}

// CompilePTX compiles CUDA source to PTX with nvcc in a temporary directory; nvcc's
// messages (warnings are errors) come back in the error.
func CompilePTX(nvcc, arch string, src []byte) ([]byte, error) {
	if arch == "" {
		arch = DefaultArch
	}
	dir, err := os.MkdirTemp("", "rfc-cuda-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "model.cu"), src, 0o644); err != nil {
		return nil, err
	}
	args := nvccCommand(nvcc, arch, "model.cu", "model.ptx")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cuda: %s failed (%v):\n%s", strings.Join(args, " "), err, out)
	}
	return os.ReadFile(filepath.Join(dir, "model.ptx"))
}

// check refuses what the target cannot compile: symbolic dims, tensors too large for the
// kernels' int indices, integer data anywhere but inputs, reshapes and embedding indices.
func check(m *ir.Module) error {
	var problems []string
	var syms []string
	symbolicOps := 0
	note := func(what string, t ir.Type) {
		if !t.Shape.Static() {
			// Sizes spread from the inputs to most ops: name the inputs, count the rest.
			if symbolicOps++; symbolicOps <= len(m.Inputs)+1 {
				problems = append(problems, fmt.Sprintf("%s has the shape %s, with sizes chosen at run time", what, t))
			}
			for _, d := range t.Shape {
				for _, f := range d.Symbols() {
					if !slices.Contains(syms, f) {
						syms = append(syms, f)
					}
				}
			}
			return
		}
		if n := elements(t); n > math.MaxInt32 {
			problems = append(problems, fmt.Sprintf("%s has %d elements; the CUDA kernels index with 32-bit ints (at most %d)", what, n, math.MaxInt32))
		}
	}
	for _, v := range m.Inputs {
		note("input "+v.Ref(), v.Type)
	}
	for _, v := range m.Params {
		note(fmt.Sprintf("parameter %s (key %q)", v.Ref(), v.Key), v.Type)
	}
	for _, v := range m.Body {
		note(ir.FormatValue(v), v.Type)
		if _, ok := lowerings[v.Op]; !ok {
			problems = append(problems, fmt.Sprintf("%s: the CUDA target has no kernel for op %q", ir.FormatValue(v), v.Op))
		}
		for i, a := range v.Args {
			if a.Type.DType.IsFloat() || v.Op == "reshape" || (v.Op == "embedding" && i == 0) {
				continue
			}
			problems = append(problems, fmt.Sprintf("%s: operand %d is integer data (%s), which only reshape and embedding indices take", ir.FormatValue(v), i, a.Type))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if n := symbolicOps - (len(m.Inputs) + 1); n > 0 {
		problems = append(problems, fmt.Sprintf("(and %d more values of sizes chosen at run time)", n))
	}
	msg := fmt.Sprintf("cuda: module %s cannot be compiled:\n%s", m.Name, strings.Join(problems, "\n"))
	if len(syms) > 0 {
		sets := make([]string, len(syms))
		for i, s := range syms {
			sets[i] = "--set " + s + "=N"
		}
		msg += fmt.Sprintf("\n(the CUDA target writes every size into its kernels: fix %s with %s, e.g. --set %s=1)", strings.Join(syms, ", "), strings.Join(sets, " "), syms[0])
	}
	return errors.New(msg)
}
