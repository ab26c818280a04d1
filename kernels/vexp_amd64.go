package kernels

//go:noescape
func expShiftSumAVX2(x *float32, n int, shift float32) float32

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func expAVX2(y, x *float32, n int)

// expMaxVector is the largest argument the vector exp takes: it clamps there, below the
// 88.72 where e^x overflows float32.
const expMaxVector = 88

// expSpan computes y = e^x (y may alias x). Spans that reach above expMaxVector (or hold
// NaN, which maxOf may return) take the portable path, which handles every edge.
func expSpan(y, x []float32) {
	n8 := len(x) &^ 7
	if cpu.avx2FMA && n8 > 0 && maxOf(x[:n8]) <= expMaxVector {
		_ = y[len(x)-1] // the assembly trusts its bounds
		expAVX2(&y[0], &x[0], n8)
	} else {
		n8 = 0
	}
	for i, v := range x[n8:] {
		y[n8+i] = exp32(v)
	}
}

// expShiftSum sets x[i] = e^(x[i]−shift) and returns the sum of the results.
func expShiftSum(x []float32, shift float32) float32 {
	n8 := len(x) &^ 7
	var sum float32
	if cpu.avx2FMA && n8 > 0 {
		sum = expShiftSumAVX2(&x[0], n8, shift)
	} else {
		n8 = 0
	}
	for i, v := range x[n8:] {
		e := exp32(v - shift)
		x[n8+i] = e
		sum += e
	}
	return sum
}

// maxOf returns the largest element of x (−Inf for none).
func maxOf(x []float32) float32 {
	n8 := len(x) &^ 7
	mx := float32(negInf)
	if cpu.avx2FMA && n8 > 0 {
		mx = maxAVX2(&x[0], n8)
	} else {
		n8 = 0
	}
	for _, v := range x[n8:] {
		if v > mx {
			mx = v
		}
	}
	return mx
}

//go:noescape
func sigmoidGateAVX2(y, x *float32, n int, alpha, cubic float32, mulx bool)

// sigmoidGate computes s = σ(alpha·(x + cubic·x³)) and y = x·s when mulx, else y = s.
func sigmoidGate(y, x []float32, alpha, cubic float32, mulx bool) {
	if n16 := len(x) &^ 15; cpu.avx512 && cpu.avx2FMA && n16 > 0 {
		_ = y[len(x)-1] // the assembly trusts its bounds
		sigmoidGateAVX512(&y[0], &x[0], n16, alpha, cubic, mulx)
		y, x = y[n16:], x[n16:]
	}
	n8 := len(x) &^ 7
	if cpu.avx2FMA && n8 > 0 {
		_ = y[len(x)-1] // the assembly trusts its bounds
		sigmoidGateAVX2(&y[0], &x[0], n8, alpha, cubic, mulx)
	} else {
		n8 = 0
	}
	sigmoidGateGo(y[n8:len(x)], x[n8:], alpha, cubic, mulx)
}

//go:noescape
func geluErfAVX2(y, x *float32, n int)

// geluErf computes the exact (erf) GeLU y = x·Φ(x).
func geluErf(y, x []float32) {
	if n16 := len(x) &^ 15; cpu.avx512 && cpu.avx2FMA && n16 > 0 {
		_ = y[len(x)-1] // the assembly trusts its bounds
		geluErfAVX512(&y[0], &x[0], n16)
		y, x = y[n16:], x[n16:]
	}
	n8 := len(x) &^ 7
	if cpu.avx2FMA && n8 > 0 {
		_ = y[len(x)-1] // the assembly trusts its bounds
		geluErfAVX2(&y[0], &x[0], n8)
	} else {
		n8 = 0
	}
	geluErfGo(y[n8:len(x)], x[n8:])
}

//go:noescape
func sigmoidGateAVX512(y, x *float32, n int, alpha, cubic float32, mulx bool)

//go:noescape
func geluErfAVX512(y, x *float32, n int)

//go:noescape
func tanhAVX2(y, x *float32, n int)

// tanh32 computes y = tanh(x).
func tanh32(y, x []float32) {
	n8 := len(x) &^ 7
	if cpu.avx2FMA && n8 > 0 {
		_ = y[len(x)-1] // the assembly trusts its bounds
		tanhAVX2(&y[0], &x[0], n8)
	} else {
		n8 = 0
	}
	tanhGo(y[n8:len(x)], x[n8:])
}

//go:noescape
func scaleAVX2(x *float32, n int, s float32)

// scale sets x[i] *= s. (A scalar loop right after the vector stores of expShiftSum stalls on
// store-to-load forwarding; a vector one does not.)
func scale(x []float32, s float32) {
	n8 := len(x) &^ 7
	if cpu.avx2FMA && n8 > 0 {
		scaleAVX2(&x[0], n8, s)
	} else {
		n8 = 0
	}
	for i := n8; i < len(x); i++ {
		x[i] *= s
	}
}

//go:noescape
func axpyAVX2(y, x *float32, n int, a float32)

// axpy sets y[i] += a·x[i] for i < len(y) (x at least as long). The result is fused
// (one rounding) on the vector part and not on the tail.
func axpy(y, x []float32, a float32) {
	n8 := len(y) &^ 7
	if cpu.avx2FMA && n8 > 0 {
		_ = x[len(y)-1] // the assembly trusts its bounds
		axpyAVX2(&y[0], &x[0], n8, a)
	} else {
		n8 = 0
	}
	x = x[n8:len(y)]
	for i, v := range x {
		y[n8+i] += a * v
	}
}

//go:noescape
func expColumnsAVX2(s *float32, rows, width int, shift, sum *float32)

//go:noescape
func expColumnsAVX512(s *float32, rows, width int, shift, sum *float32)

//go:noescape
func maxColumnsAVX2(s *float32, rows, width int, m *float32)

// expColumns sets s[r·width+c] = e^(s[r·width+c] − shift[c]) for r < rows, c < width, and
// adds each column's results to sum[c].
func expColumns(s []float32, rows, width int, shift, sum []float32) {
	if rows == 0 {
		return
	}
	_, _, _ = s[rows*width-1], shift[width-1], sum[width-1]
	if cpu.avx512 && cpu.avx2FMA && width%16 == 0 {
		expColumnsAVX512(&s[0], rows, width, &shift[0], &sum[0])
		return
	}
	if cpu.avx2FMA && width%8 == 0 {
		expColumnsAVX2(&s[0], rows, width, &shift[0], &sum[0])
		return
	}
	expColumnsGo(s, rows, width, shift, sum)
}

// maxColumns sets m[c] = max(m[c], s[r·width+c] for r < rows), for c < width.
func maxColumns(s []float32, rows, width int, m []float32) {
	if rows == 0 {
		return
	}
	_, _ = s[rows*width-1], m[width-1]
	if cpu.avx2FMA && width%8 == 0 {
		maxColumnsAVX2(&s[0], rows, width, &m[0])
		return
	}
	maxColumnsGo(s, rows, width, m)
}
