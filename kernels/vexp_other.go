//go:build !amd64

package kernels

// expShiftSum sets x[i] = e^(x[i]−shift) and returns the sum of the results.
func expShiftSum(x []float32, shift float32) float32 {
	var sum float32
	for i, v := range x {
		e := exp32(v - shift)
		x[i] = e
		sum += e
	}
	return sum
}

// expSpan computes y = e^x (y may alias x).
func expSpan(y, x []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = exp32(v)
	}
}

// maxOf returns the largest element of x (−Inf for none).
func maxOf(x []float32) float32 {
	mx := float32(negInf)
	for _, v := range x {
		if v > mx {
			mx = v
		}
	}
	return mx
}

// sigmoidGate computes s = σ(alpha·(x + cubic·x³)) and y = x·s when mulx, else y = s.
func sigmoidGate(y, x []float32, alpha, cubic float32, mulx bool) {
	sigmoidGateGo(y[:len(x)], x, alpha, cubic, mulx)
}

// geluErf computes the exact (erf) GeLU y = x·Φ(x).
func geluErf(y, x []float32) { geluErfGo(y[:len(x)], x) }

// tanh32 computes y = tanh(x).
func tanh32(y, x []float32) { tanhGo(y[:len(x)], x) }

// scale sets x[i] *= s.
func scale(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

// axpy sets y[i] += a·x[i] for i < len(y) (x at least as long).
func axpy(y, x []float32, a float32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += a * v
	}
}

// expColumns sets s[r·width+c] = e^(s[r·width+c] − shift[c]) for r < rows, c < width, and
// adds each column's results to sum[c].
func expColumns(s []float32, rows, width int, shift, sum []float32) {
	expColumnsGo(s, rows, width, shift, sum)
}

// maxColumns sets m[c] = max(m[c], s[r·width+c] for r < rows), for c < width.
func maxColumns(s []float32, rows, width int, m []float32) { maxColumnsGo(s, rows, width, m) }
