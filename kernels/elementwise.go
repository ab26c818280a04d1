package kernels

import (
	"math"
)

// Element-wise kernels: y and x have the same length and y may alias x.

// elemGrain is the smallest span worth handing to another goroutine: below it the cost of
// starting one outweighs the work.
const elemGrain = 1 << 14

// serial reports whether work of this many elements stays on the calling goroutine.
func serial(work int) bool { return work < 2*elemGrain || Workers() == 1 }

// spanOp is the element-wise operation of a spanJob.
type spanOp uint8

const (
	spanFunc      spanOp = iota // fn(y, x)
	spanGate                    // sigmoidGate(y, x, p, q, mulx)
	spanClamp                   // clampSpan(y, x, p, q)
	spanScaleBias               // scaleBiasSpan(y, x, p, q)
	spanAdd                     // y = x + b
)

// spanJob is an element-wise kernel over n elements, split in spans of elemGrain.
type spanJob struct {
	op      spanOp
	n       int
	y, x, b []float32
	fn      func(y, x []float32)
	p, q    float32
	mulx    bool
}

var spanJobs pool

func (j *spanJob) run(lo, hi int) {
	lo, hi = lo*elemGrain, min(hi*elemGrain, j.n)
	y, x := j.y[lo:hi], j.x[lo:hi]
	switch j.op {
	case spanFunc:
		j.fn(y, x)
	case spanGate:
		sigmoidGate(y, x, j.p, j.q, j.mulx)
	case spanClamp:
		clampSpan(y, x, j.p, j.q)
	case spanScaleBias:
		scaleBiasSpan(y, x, j.p, j.q)
	case spanAdd:
		binaryRow(OpAdd, y, x, 1, j.b[lo:hi], 1)
	}
}

// parallelSpans runs j over its n elements in spans of elemGrain, in parallel.
func parallelSpans(j spanJob) {
	runPooled(&spanJobs, (j.n+elemGrain-1)/elemGrain, j)
}

// exp32 is e^x in float32 to about 1 ulp (Cephes expf: x = n·ln2 + r, a degree-6
// polynomial for e^r, then the exponent bits for 2^n). It is several times faster than
// math.Exp, which matters in softmax and attention.
func exp32(x float32) float32 {
	// Outside this range (and for NaN) the result under- or overflows or 2^n does not fit
	// the exponent field: defer to math.Exp, which handles every edge.
	if !(x >= -87 && x <= 88) {
		return float32(math.Exp(float64(x)))
	}
	const (
		log2e = 1.44269504088896341
		ln2Hi = 0.693359375
		ln2Lo = -2.12194440e-4
	)
	fx := x*log2e + 0.5
	n := int32(fx)
	if float32(n) > fx { // int32() truncates toward zero; we want floor
		n--
	}
	fn := float32(n)
	r := x - fn*ln2Hi
	r -= fn * ln2Lo
	z := r * r
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*z + r + 1
	return p * math.Float32frombits(uint32(n+127)<<23)
}

var negInf = float32(math.Inf(-1))

func sigmoid32(x float32) float32 { return 1 / (1 + exp32(-x)) }

// sigmoidGateGo is the portable sigmoidGate: s = σ(alpha·(x + cubic·x³)), y = x·s or s.
func sigmoidGateGo(y, x []float32, alpha, cubic float32, mulx bool) {
	for i, v := range x {
		s := sigmoid32(alpha * v * (1 + cubic*v*v))
		if mulx {
			s *= v
		}
		y[i] = s
	}
}

// mapSpans applies span to x in one go when it is small, else spread over the workers.
func mapSpans(y, x []float32, span func(y, x []float32)) {
	if serial(len(x)) {
		span(y, x)
		return
	}
	parallelSpans(spanJob{op: spanFunc, n: len(x), y: y, x: x, fn: span})
}

// ReLU computes y = max(x, 0); NaN stays NaN as in torch.
func ReLU(y, x []float32) {
	mapSpans(y, x, reluSpan)
}

func reluSpan(y, x []float32) {
	y = y[:len(x)]
	for i := reluVec(y, x); i < len(x); i++ {
		v := x[i]
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
}

// SiLU computes y = x·σ(x).
func SiLU(y, x []float32) { gateKernel(y, x, 1, 0, true) }

// Sigmoid computes y = 1/(1+e^−x).
func Sigmoid(y, x []float32) { gateKernel(y, x, 1, 0, false) }

// gateKernel is sigmoidGate spread over workers.
func gateKernel(y, x []float32, alpha, cubic float32, mulx bool) {
	if serial(len(x)) {
		sigmoidGate(y, x, alpha, cubic, mulx)
		return
	}
	parallelSpans(spanJob{op: spanGate, n: len(x), y: y, x: x, p: alpha, q: cubic, mulx: mulx})
}

// Tanh computes y = tanh(x).
func Tanh(y, x []float32) {
	mapSpans(y, x, tanh32)
}

// tanhGo is the portable tanh, in float64.
func tanhGo(y, x []float32) { float64Span(y, x, math.Tanh) }

// Sin computes y = sin(x) (in float64, so large arguments reduce correctly).
func Sin(y, x []float32) {
	mapSpans(y, x, sinSpan)
}

func sinSpan(y, x []float32) { float64Span(y, x, math.Sin) }

// Cos computes y = cos(x).
func Cos(y, x []float32) {
	mapSpans(y, x, cosSpan)
}

func cosSpan(y, x []float32) { float64Span(y, x, math.Cos) }

// float64Span computes y = f(x) in float64, for the functions used on a handful of values
// (a timestep embedding), where precision matters more than speed.
func float64Span(y, x []float32, f func(float64) float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = float32(f(float64(v)))
	}
}

// Exp computes y = e^x to about 1 ulp (exp32, vectorized on AVX2): underflow gives 0 below
// about −87.3 where torch gives subnormals, a difference under 1.2e−38.
func Exp(y, x []float32) {
	mapSpans(y, x, expSpan)
}

// GeLUApprox selects the GeLU formula, as Refiners' GeLU(approximation=...).
type GeLUApprox uint8

const (
	GeLUExact   GeLUApprox = iota // x·Φ(x) = x/2·(1+erf(x/√2)): "none"
	GeLUTanh                      // x/2·(1+tanh(√(2/π)·(x+0.044715x³))): "tanh"
	GeLUSigmoid                   // x·σ(1.702x): "sigmoid"
)

// String gives the Refiners/PyTorch name of the approximation.
func (a GeLUApprox) String() string {
	switch a {
	case GeLUExact:
		return "none"
	case GeLUTanh:
		return "tanh"
	case GeLUSigmoid:
		return "sigmoid"
	}
	return "GeLUApprox(?)"
}

// GeLU computes the Gaussian error linear unit with the given approximation.
func GeLU(y, x []float32, approx GeLUApprox) {
	switch approx {
	case GeLUTanh:
		// x/2·(1+tanh(u)) = x·σ(2u), u = √(2/π)·(x+0.044715x³)
		gateKernel(y, x, 2*0.7978845608028654, 0.044715, true)
	case GeLUSigmoid:
		gateKernel(y, x, 1.702, 0, true)
	default:
		mapSpans(y, x, geluErf)
	}
}

// geluErfGo is the portable exact GeLU, in float64.
func geluErfGo(y, x []float32) {
	for i, v := range x {
		u := float64(v)
		y[i] = float32(0.5 * u * (1 + math.Erf(u*math.Sqrt2/2)))
	}
}

// Clamp computes y = min(max(x, lo), hi) as torch.clamp (NaN stays NaN).
func Clamp(y, x []float32, lo, hi float32) {
	if serial(len(x)) {
		clampSpan(y, x, lo, hi)
		return
	}
	parallelSpans(spanJob{op: spanClamp, n: len(x), y: y, x: x, p: lo, q: hi})
}

func clampSpan(y, x []float32, lo, hi float32) {
	y = y[:len(x)]
	for i, v := range x {
		if v < lo {
			v = lo
		}
		if v > hi {
			v = hi
		}
		y[i] = v
	}
}

// ScaleBias computes y = x·scale + bias (Refiners' Multiply(scale, bias)).
func ScaleBias(y, x []float32, scale, bias float32) {
	if serial(len(x)) {
		scaleBiasSpan(y, x, scale, bias)
		return
	}
	parallelSpans(spanJob{op: spanScaleBias, n: len(x), y: y, x: x, p: scale, q: bias})
}

func scaleBiasSpan(y, x []float32, scale, bias float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = v*scale + bias
	}
}

// BinaryOp is an arithmetic operation of Binary.
type BinaryOp uint8

const (
	OpAdd BinaryOp = iota
	OpSub
	OpMul
	OpDiv
)

// String gives the operation's name.
func (op BinaryOp) String() string {
	switch op {
	case OpAdd:
		return "add"
	case OpSub:
		return "sub"
	case OpMul:
		return "mul"
	case OpDiv:
		return "div"
	}
	return "BinaryOp(?)"
}

// Add computes y = a + b for same-length slices (y may alias a or b).
func Add(y, a, b []float32) {
	if serial(len(y)) {
		binaryRow(OpAdd, y, a, 1, b, 1)
		return
	}
	parallelSpans(spanJob{op: spanAdd, n: len(y), y: y, x: a, b: b})
}

// Binary computes y = a op b with numpy broadcasting: shapes are right-aligned, and a
// dimension of size 1 (or a missing leading one) repeats along y's. y has shape yShape, the
// broadcast of aShape and bShape; len(y) = prod(yShape). y may alias an operand whose shape
// equals yShape.
func Binary(op BinaryOp, y []float32, yShape []int, a []float32, aShape []int, b []float32, bShape []int) {
	// Describe each output dimension by (size, stride in a, stride in b), skip size-1 ones,
	// and merge neighbours that walk both operands contiguously, so the common cases (same
	// shape, row vector, column vector, scalar) end up as one or two dimensions.
	var buf [maxStackDims]bcastDim
	dims := buf[:0]
	sa, sb := 1, 1
	na, nb := len(aShape), len(bShape)
	for i := len(yShape) - 1; i >= 0; i-- {
		size := yShape[i]
		ai, bi := i-(len(yShape)-na), i-(len(yShape)-nb)
		da, db := 0, 0
		if ai >= 0 && aShape[ai] != 1 {
			da = sa
			sa *= aShape[ai]
		}
		if bi >= 0 && bShape[bi] != 1 {
			db = sb
			sb *= bShape[bi]
		}
		if size == 1 {
			continue
		}
		if n := len(dims); n > 0 {
			in := dims[n-1]
			if da == in.sa*in.size && db == in.sb*in.size {
				dims[n-1].size *= size
				continue
			}
		}
		dims = append(dims, bcastDim{size, da, db})
	}
	// dims runs innermost first.
	if len(dims) == 0 {
		dims = append(dims, bcastDim{1, 0, 0})
	}
	rows := 1
	for _, d := range dims[1:] {
		rows *= d.size
	}
	if serial(len(y)) {
		binaryRows(op, y, a, b, dims, 0, rows)
		return
	}
	j, ok := binaryJobs.Get().(*binaryJob)
	if !ok {
		j = new(binaryJob)
	}
	j.op, j.y, j.a, j.b = op, y, a, b
	// dims lives on this stack: copy it into the job's own array.
	j.dims = append(j.dimBuf[:0], dims...)
	parallelRun(rows, j)
	j.y, j.a, j.b, j.dims = nil, nil, nil, nil
	binaryJobs.Put(j)
}

type binaryJob struct {
	op      BinaryOp
	y, a, b []float32
	dims    []bcastDim
	dimBuf  [maxStackDims]bcastDim
}

var binaryJobs pool

func (j *binaryJob) run(lo, hi int) { binaryRows(j.op, j.y, j.a, j.b, j.dims, lo, hi) }

// maxStackDims is the rank up to which index bookkeeping lives on the stack.
const maxStackDims = 8

// bcastDim is one output dimension of Binary: its size and its strides in a and b.
type bcastDim struct{ size, sa, sb int }

// binaryRows computes output rows [lo, hi) of Binary; dims[0] is the row, dims[1:] the
// outer dimensions, innermost first.
func binaryRows(op BinaryOp, y, a, b []float32, dims []bcastDim, lo, hi int) {
	inner, outer := dims[0], dims[1:]
	var buf [maxStackDims]int
	idx := buf[:0]
	if len(outer) > len(buf) {
		idx = make([]int, 0, len(outer))
	}
	offA, offB := 0, 0
	r := lo
	for _, d := range outer {
		i := r % d.size
		r /= d.size
		idx = append(idx, i)
		offA += i * d.sa
		offB += i * d.sb
	}
	rowLen := inner.size
	for row := lo; row < hi; row++ {
		binaryRow(op, y[row*rowLen:(row+1)*rowLen], a[offA:], inner.sa, b[offB:], inner.sb)
		for j, d := range outer {
			idx[j]++
			offA += d.sa
			offB += d.sb
			if idx[j] < d.size {
				break
			}
			idx[j] = 0
			offA -= d.size * d.sa
			offB -= d.size * d.sb
		}
	}
}

// binaryRow computes y[i] = a[i·sa] op b[i·sb]; a stride of 0 repeats one value.
func binaryRow(op BinaryOp, y, a []float32, sa int, b []float32, sb int) {
	n := len(y)
	switch {
	case sa == 1 && sb == 1:
		a, b = a[:n], b[:n]
		switch op {
		case OpAdd:
			for i := addReluVec(y, a, b, false); i < n; i++ {
				y[i] = a[i] + b[i]
			}
		case OpSub:
			for i := range y {
				y[i] = a[i] - b[i]
			}
		case OpMul:
			for i := range y {
				y[i] = a[i] * b[i]
			}
		case OpDiv:
			for i := range y {
				y[i] = a[i] / b[i]
			}
		}
	case sa == 1 && sb == 0:
		a, s := a[:n], b[0]
		switch op {
		case OpAdd:
			for i := range y {
				y[i] = a[i] + s
			}
		case OpSub:
			for i := range y {
				y[i] = a[i] - s
			}
		case OpMul:
			for i := range y {
				y[i] = a[i] * s
			}
		case OpDiv:
			for i := range y {
				y[i] = a[i] / s
			}
		}
	case sa == 0 && sb == 1:
		s, b := a[0], b[:n]
		switch op {
		case OpAdd:
			for i := range y {
				y[i] = s + b[i]
			}
		case OpSub:
			for i := range y {
				y[i] = s - b[i]
			}
		case OpMul:
			for i := range y {
				y[i] = s * b[i]
			}
		case OpDiv:
			for i := range y {
				y[i] = s / b[i]
			}
		}
	default:
		ia, ib := 0, 0
		for i := range y {
			u, v := a[ia], b[ib]
			switch op {
			case OpAdd:
				y[i] = u + v
			case OpSub:
				y[i] = u - v
			case OpMul:
				y[i] = u * v
			case OpDiv:
				y[i] = u / v
			}
			ia += sa
			ib += sb
		}
	}
}
