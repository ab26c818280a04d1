package kernels

import (
	"math"
	"testing"
)

// TestExp32 compares the scalar and vector exponentials with math.Exp over the whole float32
// range that softmax meets, with every tail length of the vector loop.
func TestExp32(t *testing.T) {
	const relTol = 3e-7 // about 2.5 ulp
	near := func(got float32, want float64) bool {
		if want < 1e-37 { // flushed or denormal: only the absolute size matters
			return math.Abs(float64(got)-want) < 1e-37
		}
		return math.Abs(float64(got)-want) <= relTol*want
	}
	for x := float32(-100); x <= 88.5; x += 0.01237 {
		if got, want := exp32(x), math.Exp(float64(x)); !near(got, want) {
			t.Fatalf("exp32(%v) = %v, want %v", x, got, want)
		}
	}
	for n := range 40 {
		for _, shift := range []float32{0, 3.5, -2} {
			xs := make([]float32, n)
			for i := range xs {
				xs[i] = -90 + float32(i)*2.4 + float32(n)*0.01
			}
			orig := append([]float32(nil), xs...)
			sum := expShiftSum(xs, shift)
			var wantSum float64
			for i, v := range orig {
				want := math.Exp(float64(v - shift))
				wantSum += want
				if !near(xs[i], want) {
					t.Fatalf("n=%d shift=%v: e^(%v−shift) = %v, want %v", n, shift, v, xs[i], want)
				}
			}
			if math.Abs(float64(sum)-wantSum) > 1e-6*max(wantSum, 1e-30) {
				t.Fatalf("n=%d shift=%v: sum %v, want %v", n, shift, sum, wantSum)
			}
		}
	}
	special := []float32{negInf, float32(math.NaN()), 0, -87.5, -200, 1, 2, 3}
	expShiftSum(special, 0)
	if special[0] != 0 || special[1] == special[1] || special[2] != 1 || special[4] != 0 {
		t.Errorf("e^(−Inf, NaN, 0, −87.5, −200) = %v, want 0, NaN, 1, ~0, 0", special[:5])
	}
}

func TestMaxOf(t *testing.T) {
	for n := 1; n < 40; n++ {
		xs := make([]float32, n)
		want := negInf
		for i := range xs {
			xs[i] = float32((i*7919)%101) - 50
			want = max(want, xs[i])
		}
		if got := maxOf(xs); got != want {
			t.Fatalf("n=%d: maxOf = %v, want %v", n, got, want)
		}
	}
	if got := maxOf(nil); got != negInf {
		t.Errorf("maxOf(nil) = %v, want -Inf", got)
	}
}
