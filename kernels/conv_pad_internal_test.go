package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Convolutions padded more than their kernel needs (PadW > KW−1: an output row is then
// longer than the input row and one gap of padding) on the padded-grid paths (few output
// channels, and the grid GEMM) against the direct convolution. The differential fuzzer
// (internal/fuzzgen, seed 200152: a 3×1 kernel with padding 3) found the grid's rows one
// gap short: the small-K path read past its plane and panicked.
func TestConvWidePadding(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ k, kh, kw, ph, pw, s int }{
		{1, 3, 1, 3, 3, 1}, {1, 1, 1, 2, 2, 1}, {3, 3, 3, 4, 1, 1}, {4, 1, 3, 0, 3, 1}, {2, 3, 3, 3, 3, 2},
		{32, 3, 1, 3, 3, 1}, {32, 3, 3, 1, 4, 1}, {32, 1, 1, 2, 2, 1}, {32, 3, 3, 3, 3, 2},
	} {
		p := Conv2dParams{N: 2, C: 3, H: 5, W: 6, K: c.k, KH: c.kh, KW: c.kw, StrideH: c.s, StrideW: c.s, PadH: c.ph, PadW: c.pw, DilH: 1, DilW: 1, Groups: 1}
		name := fmt.Sprintf("K%d_%dx%d_pad%dx%d_stride%d", c.k, c.kh, c.kw, c.ph, c.pw, c.s)
		t.Run(name, func(t *testing.T) {
			q := p.normalized()
			x := make([]float32, p.N*p.C*p.H*p.W)
			w := make([]float32, p.K*p.C*p.KH*p.KW)
			b := make([]float32, p.K)
			for _, s := range [][]float32{x, w, b} {
				for i := range s {
					s[i] = float32(r.Float64()*2 - 1)
				}
			}
			n := p.N * p.K * q.OutH() * q.OutW()
			got, want := make([]float32, n), make([]float32, n)
			Conv2d(got, x, w, b, p)
			conv2dDirect(want, x, w, b, q, &Epilogue{})
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
					t.Fatalf("element %d: %g, direct %g", i, got[i], want[i])
				}
			}
		})
	}
}
