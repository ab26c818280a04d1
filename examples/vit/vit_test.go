package vit

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/runtime"
)

const golden = "../../testdata/golden/"

func load(t testing.TB) *Model {
	t.Helper()
	m, err := Load(golden + "vit_weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMatchesPyTorch compares the compiled ViT with the output of scripts/golden/vit.py:
// max|Δ| ≤ 1e-4·max(1, max|ref|).
func TestMatchesPyTorch(t *testing.T) {
	m := load(t)
	x := testutil.Tensor(t, golden+"vit_input.safetensors", "x")
	want := testutil.Tensor(t, golden+"vit_output.safetensors", "y")
	if len(want.Shape) != len(YShape) || want.Len() != YLen {
		t.Fatalf("golden output has shape %v, the package %v", want.Shape, YShape)
	}
	// Twice: the second call must not see anything the first one left in the arena.
	for range 2 {
		y, err := m.Forward(x.F32)
		if err != nil {
			t.Fatal(err)
		}
		worst, scale := testutil.MaxDiff(y, want.F32)
		if !(worst <= 1e-4*scale) {
			t.Fatalf("max|Δ| = %g, tolerance %g", worst, 1e-4*scale)
		}
		t.Logf("max|Δ| vs PyTorch = %g (tolerance %g)", worst, 1e-4*scale)
	}
}

func TestWrongInputLength(t *testing.T) {
	m := load(t)
	_, err := m.Forward(make([]float32, XLen-1))
	if err == nil || !strings.Contains(err.Error(), "input x has 6143 elements, want 6144") {
		t.Fatalf("got %v, want a length error", err)
	}
}

// TestLoadErrors checks that a checkpoint with a missing key, an unknown key and a wrong
// shape is refused with all three named.
func TestLoadErrors(t *testing.T) {
	f, err := runtime.OpenSafetensors(golden + "vit_weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	tensors := map[string]*runtime.Tensor{}
	for _, name := range f.Names() {
		if tensors[name], err = f.Tensor(name); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	delete(tensors, "Chain_2.LayerNorm_1.bias")
	tensors["Chain_3.LayerNorm_1.bias"] = runtime.NewTensor(64)
	tensors["Conv2d.bias"] = runtime.NewTensor(65)
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := runtime.WriteSafetensors(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if m != nil || err == nil {
		t.Fatal("a bad checkpoint loaded")
	}
	for _, want := range []string{
		`missing weight "Chain_2.LayerNorm_1.bias"`,
		`parameter @Chain_2.LayerNorm_1.bias, expected shape [64]`,
		`keys that no weight uses: "Chain_3.LayerNorm_1.bias"`,
		`key "Conv2d.bias" has shape [65], the model wants [64]`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func BenchmarkForward(b *testing.B) {
	m := load(b)
	x := testutil.Tensor(b, golden+"vit_input.safetensors", "x")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Forward(x.F32); err != nil {
			b.Fatal(err)
		}
	}
}
