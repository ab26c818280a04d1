package vitcross

import (
	"math"
	"testing"

	"github.com/rfc-project/rfc/runtime"
)

const golden = "../../testdata/golden/"

func readTensor(t testing.TB, path, name string) *runtime.Tensor {
	t.Helper()
	f, err := runtime.OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestMatchesPyTorch compares the compiled ViTCross (two inputs: the image and the context
// tokens) with scripts/golden/vit.py: max|Δ| ≤ 1e-4·max(1, max|ref|).
func TestMatchesPyTorch(t *testing.T) {
	m, err := Load(golden + "vitcross_weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	x := readTensor(t, golden+"vitcross_input.safetensors", "x")
	embed := readTensor(t, golden+"vitcross_input.safetensors", "my_embed")
	want := readTensor(t, golden+"vitcross_output.safetensors", "y")
	y, err := m.Forward(x.F32, embed.F32)
	if err != nil {
		t.Fatal(err)
	}
	if len(y) != len(want.F32) {
		t.Fatalf("got %d values, want %d", len(y), len(want.F32))
	}
	scale, worst := 1.0, 0.0
	for i, w := range want.F32 {
		scale = math.Max(scale, math.Abs(float64(w)))
		if d := math.Abs(float64(y[i]) - float64(w)); !(d <= worst) {
			worst = d
		}
	}
	if !(worst <= 1e-4*scale) {
		t.Fatalf("max|Δ| = %g, tolerance %g", worst, 1e-4*scale)
	}
	t.Logf("max|Δ| vs PyTorch = %g (tolerance %g)", worst, 1e-4*scale)
}

func BenchmarkForward(b *testing.B) {
	m, err := Load(golden + "vitcross_weights.safetensors")
	if err != nil {
		b.Fatal(err)
	}
	x := readTensor(b, golden+"vitcross_input.safetensors", "x")
	embed := readTensor(b, golden+"vitcross_input.safetensors", "my_embed")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Forward(x.F32, embed.F32); err != nil {
			b.Fatal(err)
		}
	}
}
