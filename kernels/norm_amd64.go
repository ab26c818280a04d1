package kernels

//go:noescape
func sumF64AVX2(x *float32, n int) float64

//go:noescape
func sqDevF64AVX2(x *float32, n int, mean float64) float64

//go:noescape
func normAffineAVX2(y, x *float32, n int, m, s, b float32)

//go:noescape
func lnAffineAVX2(y, x, w, b *float32, n int, m, s float32)

// sumF64 is the sum of xs in float64, and sqDevF64 that of (x − mean)², over the leading
// multiple of 16 of xs; each returns how many elements it did.
func sumF64(xs []float32) (float64, int) {
	n := len(xs) &^ 15
	if !cpu.avx2FMA || n == 0 {
		return 0, 0
	}
	return sumF64AVX2(&xs[0], n), n
}

func sqDevF64(xs []float32, mean float64) (float64, int) {
	n := len(xs) &^ 15
	if !cpu.avx2FMA || n == 0 {
		return 0, 0
	}
	return sqDevF64AVX2(&xs[0], n, mean), n
}

// normAffineVec sets y[i] = (x[i] − m)·s + b over the leading multiple of 8 of x and returns
// how many it did.
func normAffineVec(y, x []float32, m, s, b float32) int {
	n := len(x) &^ 7
	if !cpu.avx2FMA || n == 0 {
		return 0
	}
	_ = y[n-1]
	normAffineAVX2(&y[0], &x[0], n, m, s, b)
	return n
}

// lnAffineVec sets y[i] = ((x[i] − m)·s)·w[i] + b[i] over the leading multiple of 8 of x and
// returns how many it did.
func lnAffineVec(y, x, w, b []float32, m, s float32) int {
	n := len(x) &^ 7
	if !cpu.avx2FMA || n == 0 {
		return 0
	}
	_, _, _ = y[n-1], w[n-1], b[n-1]
	lnAffineAVX2(&y[0], &x[0], &w[0], &b[0], n, m, s)
	return n
}
