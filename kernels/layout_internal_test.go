package kernels

import "testing"

// TestDup2Vec: the vector 2× widening of nearest upsampling against its definition, for
// every tail length.
func TestDup2Vec(t *testing.T) {
	for n := range 40 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i) + 0.5
		}
		y := make([]float32, 2*n)
		for i := dup2Vec(y, x); i < n; i++ {
			y[2*i], y[2*i+1] = x[i], x[i]
		}
		for i, v := range y {
			if v != x[i/2] {
				t.Fatalf("n=%d: y[%d] = %v, want %v", n, i, v, x[i/2])
			}
		}
	}
}
