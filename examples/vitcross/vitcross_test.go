package vitcross

import (
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
)

const golden = "../../testdata/golden/"

// TestMatchesPyTorch compares the compiled ViTCross (two inputs: the image and the context
// tokens) with scripts/golden/vit.py: max|Δ| ≤ 1e-4·max(1, max|ref|).
func TestMatchesPyTorch(t *testing.T) {
	m, err := Load(golden + "vitcross_weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	x := testutil.Tensor(t, golden+"vitcross_input.safetensors", "x")
	embed := testutil.Tensor(t, golden+"vitcross_input.safetensors", "my_embed")
	want := testutil.Tensor(t, golden+"vitcross_output.safetensors", "y")
	y, err := m.Forward(x.F32, embed.F32)
	if err != nil {
		t.Fatal(err)
	}
	if len(y) != len(want.F32) {
		t.Fatalf("got %d values, want %d", len(y), len(want.F32))
	}
	worst, scale := testutil.MaxDiff(y, want.F32)
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
	x := testutil.Tensor(b, golden+"vitcross_input.safetensors", "x")
	embed := testutil.Tensor(b, golden+"vitcross_input.safetensors", "my_embed")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Forward(x.F32, embed.F32); err != nil {
			b.Fatal(err)
		}
	}
}
