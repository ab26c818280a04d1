package cuda

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

const goldenDir = "../../testdata/golden/"

// loadOpCases reads the op cases of the PyTorch goldens (scripts/golden/interp_ops.py).
func loadOpCases(t *testing.T) []*testutil.OpCase {
	return testutil.OpCases(t, goldenDir+"interp_ops.safetensors")
}

// TestOpsMatchPyTorch runs every op case of the PyTorch goldens through the generated
// kernels (emulated on the CPU): weights as float32 must meet the project's tolerance
// against PyTorch; weights as float16 must match the interpreter run on the same rounded
// weights.
func TestOpsMatchPyTorch(t *testing.T) {
	needGXX(t)
	var cases []*emuCase
	ops := loadOpCases(t)
	for _, f16 := range []bool{false, true} {
		for _, c := range ops {
			cases = append(cases, &emuCase{name: c.Name, m: c.Module, f16: f16, weights: c.Params, inputs: c.Inputs})
		}
	}
	runEmulated(t, cases)
	seen := map[string]bool{}
	for i, c := range cases {
		oc := ops[i%len(ops)]
		for _, v := range c.m.Body {
			seen[v.Op] = true
		}
		want := oc.Outputs
		what := "PyTorch"
		if c.f16 {
			what = "the interpreter with f16-rounded weights"
			var err error
			want, err = interp.Run(c.m, interpWeights(c), c.inputs)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		for j := range want {
			if err := testutil.WithinTolerance(c.outputs[j], want[j], 1e-4); err != nil {
				t.Errorf("%s (f16 weights %t): output %d vs %s: %v", c.name, c.f16, j, what, err)
			}
		}
	}
	for _, op := range ir.OpNames() {
		if !seen[op] {
			t.Errorf("op %s has no golden case: add one to scripts/golden/interp_ops.py", op)
		}
	}
}

// TestKernelVariants forces each variant the generator picks by problem size (GEMM
// tilings, attention head padding, reduction block sizes, group norms split in several
// chunks) onto the small golden cases, so that every variant is checked against PyTorch.
func TestKernelVariants(t *testing.T) {
	needGXX(t)
	ops := loadOpCases(t)
	var cases []*emuCase
	var want [][]*runtime.Tensor
	add := func(prefixes []string, tune tuned) {
		for _, c := range ops {
			for _, p := range prefixes {
				if strings.HasPrefix(c.Name, p) {
					cases = append(cases, &emuCase{name: fmt.Sprintf("%s %+v", c.Name, tune), m: c.Module, weights: c.Params, inputs: c.Inputs, tune: tune})
					want = append(want, c.Outputs)
					break
				}
			}
		}
	}
	gemms := []string{"linear", "matmul", "conv2d", "conv_transpose2d", "mlp_residual"}
	for _, tile := range []gemmTile{tile128x128, tile64x128, tile32x128, tile64x64} {
		add(gemms, tuned{tile: tile})
	}
	for _, d := range []int{64, 128} {
		add([]string{"sdpa"}, tuned{attnD: d})
	}
	norms := []string{"group_norm", "instance_norm2d", "layer_norm", "softmax"}
	add(norms, tuned{threads: 256, groupChunk: 7})
	add(norms, tuned{threads: 64, groupChunk: 13})
	runEmulated(t, cases)
	for i, c := range cases {
		for j := range want[i] {
			if err := testutil.WithinTolerance(c.outputs[j], want[i][j], 1e-4); err != nil {
				t.Errorf("%s: output %d vs PyTorch: %v", c.name, j, err)
			}
		}
	}
}

func loadModule(t *testing.T, file, model string, set map[string]string) *ir.Module {
	t.Helper()
	m := testutil.ElaborateFile(t, file, model, set)
	// As rfc compile does before generating code.
	if err := passes.Run(m, passes.Config{}); err != nil {
		t.Fatal(err)
	}
	return m
}

var vitSmall = map[string]string{"embedding_dim": "64", "patch_size": "8", "image_size": "32", "num_layers": "2", "num_heads": "4", "batch": "2"}

// TestModelsEmulated runs the small ViT against its PyTorch golden (scripts/golden/vit.py)
// and the TAEF2 encoder and decoder, with the real weights at small odd sizes, against the
// interpreter; each also with float16 weights, against the interpreter on rounded weights.
func TestModelsEmulated(t *testing.T) {
	needGXX(t)
	vit := loadModule(t, "../../models/vit.rfn", "ViT", vitSmall)
	vitW := testutil.Tensors(t, goldenDir+"vit_weights.safetensors")
	vitIn := testutil.Tensors(t, goldenDir+"vit_input.safetensors")
	vitOut := testutil.Tensors(t, goldenDir+"vit_output.safetensors")["y"]
	enc := loadModule(t, "../../models/taesd.rfn", "TAEF2Encoder", map[string]string{"height": "8", "width": "24", "batch": "2"})
	dec := loadModule(t, "../../models/taesd.rfn", "TAEF2Decoder", map[string]string{"height": "3", "width": "2", "batch": "2"})
	encW := testutil.Tensors(t, "../../testdata/taef2/encoder.safetensors")
	decW := testutil.Tensors(t, "../../testdata/taef2/decoder.safetensors")
	r := rand.New(rand.NewPCG(8, 9))
	random := func(m *ir.Module) map[string]*runtime.Tensor {
		in := map[string]*runtime.Tensor{}
		for _, v := range m.Inputs {
			data := make([]float32, numel(v))
			for i := range data {
				data[i] = float32(r.Float64()*2 - 1)
			}
			in[v.Name] = runtime.FromF32(data, ints(v.Type)...)
		}
		return in
	}
	var cases []*emuCase
	for _, f16 := range []bool{false, true} {
		cases = append(cases,
			&emuCase{name: "ViT", m: vit, f16: f16, weights: vitW, inputs: vitIn},
			&emuCase{name: "TAEF2Encoder", m: enc, f16: f16, weights: encW, inputs: random(enc)},
			&emuCase{name: "TAEF2Decoder", m: dec, f16: f16, weights: decW, inputs: random(dec)},
		)
	}
	runEmulated(t, cases)
	for _, c := range cases {
		want, err := interp.Run(c.m, interpWeights(c), c.inputs)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := testutil.WithinTolerance(c.outputs[0], want[0], 1e-4); err != nil {
			t.Errorf("%s (f16 weights %t) vs the interpreter: %v", c.name, c.f16, err)
		}
		t.Logf("%s (f16 weights %t): max|Δ| vs the interpreter %.3g", c.name, c.f16, maxDiff(c.outputs[0], want[0]))
		if c.name == "ViT" && c.f16 {
			t.Logf("ViT, f16 weights: max|Δ| vs PyTorch's f32 %.3g", maxDiff(c.outputs[0], vitOut))
		}
		if c.name == "ViT" && !c.f16 {
			if err := testutil.WithinTolerance(c.outputs[0], vitOut, 1e-4); err != nil {
				t.Errorf("ViT vs PyTorch: %v", err)
			}
			t.Logf("ViT: max|Δ| vs PyTorch %.3g", maxDiff(c.outputs[0], vitOut))
		}
	}
}
