package taef2decsized

import (
	"slices"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/runtime"
)

const golden = "../../../testdata/golden/"

// TestSizesMatchPyTorch runs one Model, with the real weights, on latents of three sizes
// (8×8 from scripts/golden/taesd.py, 6×10 and 11×7 from scripts/golden/sizes.py), then the
// first again, each against the upstream PyTorch model: max|Δ| ≤ 1e-4·max(1, max|ref|).
// After one call at each size, calls at any of them allocate nothing.
func TestSizesMatchPyTorch(t *testing.T) {
	m, err := Load("../../../testdata/taef2/decoder.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	sizes := golden + "taef2_decoder_sizes.safetensors"
	cases := []struct{ x, y *runtime.Tensor }{
		{testutil.Tensor(t, golden+"taef2_decoder_input.safetensors", "x"), testutil.Tensor(t, golden+"taef2_decoder_output.safetensors", "y")},
		{testutil.Tensor(t, sizes, "x_6x10"), testutil.Tensor(t, sizes, "y_6x10")},
		{testutil.Tensor(t, sizes, "x_11x7"), testutil.Tensor(t, sizes, "y_11x7")},
	}
	for _, c := range append(cases, cases[0]) {
		y, shape, err := m.Forward(c.x.F32, c.x.Shape)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(shape, c.y.Shape) {
			t.Fatalf("latent %v: output shape %v, PyTorch's %v", c.x.Shape, shape, c.y.Shape)
		}
		worst, scale := testutil.MaxDiff(y, c.y.F32)
		if !(worst <= 1e-4*scale) {
			t.Fatalf("latent %v: max|Δ| = %g, tolerance %g", c.x.Shape, worst, 1e-4*scale)
		}
		t.Logf("latent %v → image %v: max|Δ| vs PyTorch = %g (tolerance %g)", c.x.Shape, shape, worst, 1e-4*scale)
	}
	all := func() {
		for _, c := range cases {
			m.Forward(c.x.F32, c.x.Shape)
		}
	}
	if n := testing.AllocsPerRun(3, all); n != 0 {
		t.Errorf("%g allocations per round of three calls at three sizes, want 0", n)
	}
}
