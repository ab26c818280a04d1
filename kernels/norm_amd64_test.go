package kernels

import (
	"math"
	"testing"
)

// TestNormVectorPaths: the vector statistics agree with the scalar ones to float64 rounding,
// and the vector affine steps give the scalar ones' bits (the same operations in the same
// order), for every tail length.
func TestNormVectorPaths(t *testing.T) {
	if !cpu.avx2FMA {
		t.Skip("no AVX2")
	}
	for n := 1; n < 70; n++ {
		x := make([]float32, n)
		w, b := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = 1000 + float32((i*7919)%113)*0.37
			w[i], b[i] = float32(i%7)*0.3-1, float32(i%5)*0.1
		}
		mv, rv := meanRstd(x, 1e-5)
		cpu.avx2FMA = false
		ms, rs := meanRstd(x, 1e-5)
		want, wantLN := make([]float32, n), make([]float32, n)
		normalizeAffine(want, x, ms, rs, 1.5, 0.25)
		layerNormRows(wantLN, x, n, w, b, 1e-5, ActNone, 0, 1)
		cpu.avx2FMA = true
		if math.Abs(mv-ms) > 1e-12*math.Abs(ms) || math.Abs(rv-rs) > 1e-9*rs {
			t.Fatalf("n=%d: vector mean, rstd %v %v, scalar %v %v", n, mv, rv, ms, rs)
		}
		got, gotLN := make([]float32, n), make([]float32, n)
		normalizeAffine(got, x, ms, rs, 1.5, 0.25)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: normalizeAffine[%d] vector %v, scalar %v", n, i, got[i], want[i])
			}
		}
		layerNormRows(gotLN, x, n, w, b, 1e-5, ActNone, 0, 1)
		for i := range gotLN {
			if d := math.Abs(float64(gotLN[i] - wantLN[i])); d > 1e-5 {
				t.Fatalf("n=%d: LayerNorm[%d] vector %v, scalar %v", n, i, gotLN[i], wantLN[i])
			}
		}
	}
}
