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

// TestExpMaxColumns checks the column-wise exponential and maximum of the unmasked
// attention against math.Exp, for the widths each vector path takes and an odd one.
func TestExpMaxColumns(t *testing.T) {
	for _, width := range []int{4, 8, 16, 32, 48} {
		const rows = 23
		s := make([]float32, rows*width)
		for i := range s {
			s[i] = -95 + float32(i%171)*1.01 // up to e^79: softmax meets only x − max ≤ 0
		}
		s[3] = negInf
		s[width+1] = float32(math.NaN())
		orig := append([]float32(nil), s...)
		shift, sum, m := make([]float32, width), make([]float32, width), make([]float32, width)
		for c := range width {
			shift[c] = float32(c%5) - 2
			m[c] = negInf
		}
		maxColumns(s, rows, width, m)
		for c := range width {
			want, nan := negInf, false
			for r := range rows {
				v := orig[r*width+c]
				nan = nan || v != v
				want = max(want, v)
			}
			if nan && m[c] == m[c] && !(orig[width+c] != orig[width+c]) || !nan && m[c] != want {
				t.Fatalf("width %d: max of column %d = %v, want %v", width, c, m[c], want)
			}
		}
		expColumns(s, rows, width, shift, sum)
		for c := range width {
			var wantSum float64
			for r := range rows {
				v, got := orig[r*width+c], s[r*width+c]
				want := math.Exp(float64(v - shift[c]))
				if v != v {
					if got == got {
						t.Fatalf("width %d: e^NaN = %v", width, got)
					}
					wantSum = math.NaN()
					continue
				}
				wantSum += want
				if d := math.Abs(float64(got) - want); d > 3e-7*want && d > 1e-37 {
					t.Fatalf("width %d: e^(%v − %v) = %v, want %v", width, v, shift[c], got, want)
				}
			}
			if g := float64(sum[c]); wantSum != wantSum && g == g || math.Abs(g-wantSum) > 1e-6*wantSum {
				t.Fatalf("width %d: column %d sums to %v, want %v", width, c, g, wantSum)
			}
		}
	}
}
