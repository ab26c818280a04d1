package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/runtime"
)

const goldenDir = "../../testdata/golden/"

var vitSmall = []string{"--set", "embedding_dim=64", "--set", "patch_size=8", "--set", "image_size=32", "--set", "num_layers=2", "--set", "num_heads=4"}

// maxDiff compares two f32 tensors; the tolerance is relative to max(1, max|ref|).
func maxDiff(t *testing.T, got, want *runtime.Tensor) (diff, scale float64) {
	t.Helper()
	if got.ShapeString() != want.ShapeString() {
		t.Fatalf("shape %s, want %s", got.ShapeString(), want.ShapeString())
	}
	scale = 1
	for i, w := range want.F32 {
		diff = max(diff, math.Abs(float64(got.F32[i]-w)))
		scale = max(scale, math.Abs(float64(w)))
		if math.IsNaN(float64(got.F32[i])) {
			t.Fatalf("NaN at %d", i)
		}
	}
	return diff, scale
}

func readY(t *testing.T, path string) *runtime.Tensor {
	t.Helper()
	return testutil.Tensor(t, path, "y")
}

// runGolden runs `rfc run` and compares its y with the PyTorch golden.
func runGolden(t *testing.T, tol float64, file string, extra []string, weights []string, input, want string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "y.safetensors")
	args := append([]string{"run", file}, extra...)
	for _, w := range weights {
		args = append(args, "--weights", w)
	}
	args = append(args, "--input", input, "--output", out)
	_, stderr, status := rfc(t, args...)
	if status != 0 {
		t.Fatalf("rfc %s: status %d\n%s", strings.Join(args, " "), status, stderr)
	}
	d, s := maxDiff(t, readY(t, out), readY(t, want))
	t.Logf("max|Δ| = %.3g (max|ref| %.3g)", d, s)
	if d > tol*s {
		t.Errorf("max|Δ| = %g > %g × %g", d, tol, s)
	}
}

func TestRunViT(t *testing.T) {
	runGolden(t, 1e-4, "../../models/vit.rfn", vitSmall, []string{goldenDir + "vit_weights.safetensors"}, goldenDir+"vit_input.safetensors", goldenDir+"vit_output.safetensors")
}

func TestRunViTCross(t *testing.T) {
	extra := append([]string{"--model", "ViTCross", "--set", "context_dim=48", "--set", "context_len=5"}, vitSmall...)
	runGolden(t, 1e-4, "../../models/vit.rfn", extra, []string{goldenDir + "vitcross_weights.safetensors"}, goldenDir+"vitcross_input.safetensors", goldenDir+"vitcross_output.safetensors")
}

func TestRunTAEF2(t *testing.T) {
	for _, half := range []string{"encoder", "decoder"} {
		t.Run(half, func(t *testing.T) {
			model := "TAEF2Encoder"
			if half == "decoder" {
				model = "TAEF2Decoder"
			}
			runGolden(t, 1e-4, "../../models/taesd.rfn", []string{"--model", model}, []string{"../../testdata/taef2/" + half + ".safetensors"},
				goldenDir+"taef2_"+half+"_input.safetensors", goldenDir+"taef2_"+half+"_output.safetensors")
		})
	}
}

// Bad files give one clear line and status 1, and write nothing.
func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	weights, _ := os.ReadFile(goldenDir + "vit_weights.safetensors")
	truncated := filepath.Join(dir, "truncated.safetensors")
	os.WriteFile(truncated, weights[:len(weights)/2], 0o644)

	all := testutil.Tensors(t, goldenDir+"vit_weights.safetensors")
	w := all["Conv2d.weight"]
	ints := make([]int64, w.Len())
	all["Conv2d.weight"] = runtime.FromI64(ints, w.Shape...)
	wrongDtype := filepath.Join(dir, "ints.safetensors")
	if err := runtime.WriteSafetensors(wrongDtype, all, nil); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.safetensors")
	runtime.WriteSafetensors(empty, map[string]*runtime.Tensor{}, nil)

	cases := []struct {
		name, weights, input, want string
	}{
		{"truncated weights", truncated, goldenDir + "vit_input.safetensors", "truncated.safetensors"},
		{"wrong dtype", wrongDtype, goldenDir + "vit_input.safetensors", `"Conv2d.weight"`},
		{"missing input", goldenDir + "vit_weights.safetensors", empty, `missing input`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "out.safetensors")
			args := append([]string{"run", "../../models/vit.rfn"}, vitSmall...)
			_, stderr, status := rfc(t, append(args, "--weights", c.weights, "--input", c.input, "--output", out)...)
			if status != 1 {
				t.Errorf("status %d, want 1", status)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 || !strings.Contains(stderr, c.want) {
				t.Errorf("want one line naming %s, got:\n%s", c.want, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("output written despite the error")
			}
		})
	}
}
