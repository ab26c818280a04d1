//go:build cuda

// Command rfc-gpucheck runs the packages that rfc's CUDA target generates for ViT and TAEF2 on
// a GPU:
//
//   - at the sizes of the CPU tests, on the inputs of testdata/golden, it prints max|Δ|
//     against the PyTorch goldens the CPU tests use and fails above the project's tolerance
//     (1e-4·max(1, max|ref|); float16 weights get 5e-3);
//   - at the models' default sizes it times Forward (wall clock, with the copies) and the
//     kernels alone (CUDA events), and writes weights, inputs and outputs to -out, where
//     scripts/gpu/torch_reference.py compares them with PyTorch on the same GPU.
//
// Its packages are not committed: the go:generate lines below (which say why each exists)
// write them into the git-ignored folders beside this file when the program is built, with
// model.ptx compiled by nvcc. This folder starts with _ so that go build ./..., go vet and go
// mod tidy leave it out where they are missing. scripts/cuda-build-check.sh -o
// bin/rfc-gpucheck generates and builds it (Go, nvcc, cgo and the CUDA headers needed);
// scripts/gpu-check.sh runs it where the NVIDIA driver is, with the repository's testdata
// (-root). go test ./cmd/rfc (TestGPUCheckGenerates) runs the lines in memory with this tree's
// rfc and type-checks this file with their Go, so neither rots where nvcc is missing.
// Exit status 1 when an accuracy check fails.
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

	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/_cuda/taef2dec"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/_cuda/taef2dec64"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/_cuda/taef2enc"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/_cuda/taef2enc512"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/_cuda/vit"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/_cuda/vitbase"
	"github.com/rfc-project/rfc/cmd/rfc-gpucheck/_cuda/vitf16"
	"github.com/rfc-project/rfc/runtime"
)

// The packages, one folder each. Sizes are fixed when rfc compiles for CUDA (sizes chosen at
// run time are an open issue; with them each pair becomes one package), so the models come in
// pairs: one at the size of the CPU tests' PyTorch goldens (small, so that testdata stays
// small), whose output is checked against that golden with no PyTorch on the GPU machine, and
// one at the model's default size, the only one where timing means something, checked against
// PyTorch on the same GPU when scripts/gpu/torch_reference.py finds a CUDA-enabled torch.
//
// vit: the ViT of testdata/golden/vit_*.safetensors (scripts/golden/vit.py).
//go:generate go run ../../rfc compile ../../../models/vit.rfn --model ViT --set embedding_dim=64 --set patch_size=8 --set image_size=32 --set num_layers=2 --set num_heads=4 --set batch=2 --target cuda -o vit --pkg vit
//
// vitf16: the same ViT with its weights stored as float16 on the GPU, the one check of that
// code path (other kernels), at the tolerance of float16 weights.
//go:generate go run ../../rfc compile ../../../models/vit.rfn --model ViT --set embedding_dim=64 --set patch_size=8 --set image_size=32 --set num_layers=2 --set num_heads=4 --set batch=2 --target cuda --f16-weights -o vitf16 --pkg vitf16
//
// taef2enc, taef2dec: the TAEF2 encoder and decoder at the sizes of
// testdata/golden/taef2_*.safetensors (scripts/golden/taesd.py), with the real weights.
//go:generate go run ../../rfc compile ../../../models/taesd.rfn --model TAEF2Encoder --set height=64 --set width=64 --set batch=1 --target cuda -o taef2enc --pkg taef2enc
//go:generate go run ../../rfc compile ../../../models/taesd.rfn --model TAEF2Decoder --set height=8 --set width=8 --set batch=1 --target cuda -o taef2dec --pkg taef2dec
//
// vitbase: ViT at its default size (512 wide, 12 layers, 384×384 images), batch 1, with
// random weights (no published checkpoint at this size).
//go:generate go run ../../rfc compile ../../../models/vit.rfn --model ViT --set batch=1 --target cuda -o vitbase --pkg vitbase
//
// taef2enc512, taef2dec64: TAEF2 at its default size (512×512 images, 64×64 latents), batch 1.
//go:generate go run ../../rfc compile ../../../models/taesd.rfn --model TAEF2Encoder --set height=512 --set width=512 --set batch=1 --target cuda -o taef2enc512 --pkg taef2enc512
//go:generate go run ../../rfc compile ../../../models/taesd.rfn --model TAEF2Decoder --set height=64 --set width=64 --set batch=1 --target cuda -o taef2dec64 --pkg taef2dec64

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
	weights []string                // safetensors files, relative to -root
	shapes  func() map[string][]int // instead of weights: random ones of these shapes
	xShape  []int
	yShape  []int
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
		{name: "vit", load: loader(vit.Load), weights: []string{g + "vit_weights.safetensors"}, xShape: vit.XShape[:], yShape: vit.YShape[:], input: g + "vit_input.safetensors", want: g + "vit_output.safetensors", tol: 1e-4},
		{name: "vitf16", load: loader(vitf16.Load), weights: []string{g + "vit_weights.safetensors"}, xShape: vitf16.XShape[:], yShape: vitf16.YShape[:], input: g + "vit_input.safetensors", want: g + "vit_output.safetensors", tol: 5e-3},
		{name: "taef2enc", load: loader(taef2enc.Load), weights: []string{"testdata/taef2/encoder.safetensors"}, xShape: taef2enc.XShape[:], yShape: taef2enc.YShape[:], input: g + "taef2_encoder_input.safetensors", want: g + "taef2_encoder_output.safetensors", tol: 1e-4},
		{name: "taef2dec", load: loader(taef2dec.Load), weights: []string{"testdata/taef2/decoder.safetensors"}, xShape: taef2dec.XShape[:], yShape: taef2dec.YShape[:], input: g + "taef2_decoder_input.safetensors", want: g + "taef2_decoder_output.safetensors", tol: 1e-4},
		{name: "vitbase", load: loader(vitbase.Load), shapes: vitbase.WeightShapes, xShape: vitbase.XShape[:], yShape: vitbase.YShape[:], random: normal},
		{name: "taef2enc512", load: loader(taef2enc512.Load), weights: []string{"testdata/taef2/encoder.safetensors"}, xShape: taef2enc512.XShape[:], yShape: taef2enc512.YShape[:], random: uniform},
		{name: "taef2dec64", load: loader(taef2dec64.Load), weights: []string{"testdata/taef2/decoder.safetensors"}, xShape: taef2dec64.XShape[:], yShape: taef2dec64.YShape[:], random: normal},
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
		if err := runtime.WriteSafetensors(filepath.Join(out, c.name+"_output.safetensors"), map[string]*runtime.Tensor{"y": runtime.FromF32(y, c.yShape...)}, nil); err != nil {
			return err
		}
	}
	return nil
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
