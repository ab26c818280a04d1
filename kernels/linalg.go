package kernels

import (
	"fmt"
	"sync"
)

// Linear computes y = x·wᵀ + b, PyTorch's nn.Linear: x is [rows, in], w is [out, in], b is
// [out] or nil, y is [rows, out].
func Linear(y, x []float32, rows, in, out int, w, b []float32) {
	LinearW(y, x, rows, in, out, F32Weights(w), b)
}

// LinearW is Linear with weights of any precision, packed or not (see Weights). The bias
// stays float32.
func LinearW(y, x []float32, rows, in, out int, w Weights, b []float32) {
	if rows == 0 || out == 0 {
		return
	}
	linearGemm(y, x, rows, in, out, w, b, false)
}

// linearGemm computes y = x·wᵀ (+ b) with Sgemm's machinery, reading w where it lies:
// float32 as Sgemm does, half precision widened while packed, packed panels as they are.
// serialOnly keeps it on the calling goroutine.
func linearGemm(y, x []float32, rows, in, out int, w Weights, b []float32, serialOnly bool) {
	beta := float32(0)
	if b != nil {
		// Start from the bias and let the GEMM accumulate onto it.
		for r := range rows {
			copy(y[r*out:(r+1)*out], b[:out])
		}
		beta = 1
	}
	kr := gemmKernel
	checkOperand("a", false, rows, in, x, in)
	checkOperand("c", false, rows, out, y, out)
	if in == 0 {
		scaleC(rows, out, beta, y, out)
		return
	}
	g := gemmJobs.Get().(*gemmJob)
	g.transA, g.transB = false, true
	g.m, g.n, g.k = rows, out, in
	g.alpha, g.beta = 1, beta
	g.a, g.lda, g.c, g.ldc, g.ldb = x, in, y, out, in
	g.serialOnly = serialOnly
	var buf *[]float32
	switch pre := w.panelsFor(kr, out, in); {
	case pre != nil:
		g.bPre = pre
	case w.packed != nil: // packed for another micro-kernel
		g.b, buf = w.matrix(out, in)
	case w.format == WeightF32:
		checkOperand("b", true, in, out, w.f32, in)
		g.b = w.f32
	default:
		if len(w.half) < out*in {
			panic(fmt.Sprintf("kernels.LinearW: %d weights, want %d×%d", len(w.half), out, in))
		}
		g.bHalf, g.bFormat = w.half, w.format
	}
	g.run()
	g.a, g.b, g.c, g.bHalf, g.bPre, g.bFormat, g.serialOnly = nil, nil, nil, nil, nil, WeightF32, false
	gemmJobs.Put(g)
	if buf != nil {
		putScratch(buf)
	}
}

// LinearFused is Linear followed by the epilogue ep (its residual laid out as y [rows,
// out]). The product comes from Sgemm in one call (splitting it would pack the weights once
// per piece); the epilogue then runs as one element-wise sweep, in parallel spans.
func LinearFused(y, x []float32, rows, in, out int, w, b []float32, ep Epilogue) {
	LinearFusedW(y, x, rows, in, out, F32Weights(w), b, ep)
}

// LinearFusedW is LinearFused with weights of any precision, packed or not.
func LinearFusedW(y, x []float32, rows, in, out int, w Weights, b []float32, ep Epilogue) {
	ep.check(rows * out)
	LinearW(y, x, rows, in, out, w, b)
	EpilogueSpan(y[:rows*out], ep)
}

// gluBlockFloats bounds the intermediate of LinearGLU: rows are done in blocks whose linear
// result (before the GLU halves it) stays in L2.
var gluBlockFloats = 1 << 16

// LinearGLU computes GEGLU-style y = a · act(g), where [a, g] = x·wᵀ + b splits the out
// features in halves (Refiners' Linear then GLU): x is [rows, in], w is [out, in], b is
// [out] or nil, y is [rows, out/2]; act is an element-wise kernel as GLU takes. The linear
// result lives only in a pooled block of rows.
func LinearGLU(y, x []float32, rows, in, out int, w, b []float32, act func(y, x []float32)) {
	LinearGLUW(y, x, rows, in, out, F32Weights(w), b, act)
}

// LinearGLUW is LinearGLU with weights of any precision, packed or not. Unpacked weights
// are packed once per call, for all blocks of rows.
func LinearGLUW(y, x []float32, rows, in, out int, w Weights, b []float32, act func(y, x []float32)) {
	if rows == 0 || out == 0 {
		return
	}
	half := out / 2
	block := max(1, min(rows, gluBlockFloats/out))
	if block < rows && w.panelsFor(gemmKernel, out, in) == nil {
		p := packScratch(w, out, in)
		defer releasePacked(p)
		w = Weights{format: WeightF32, packed: p}
	}
	buf := getScratch(block * out)
	defer putScratch(buf)
	for r0 := 0; r0 < rows; r0 += block {
		n := min(block, rows-r0)
		t := (*buf)[:n*out]
		LinearW(t, x[r0*in:(r0+n)*in], n, in, out, w, b)
		for r := range n {
			a, g := t[r*out:r*out+half], t[r*out+half:(r+1)*out]
			yr := y[(r0+r)*half : (r0+r+1)*half]
			act(yr, g)
			for i := range yr {
				yr[i] *= a[i]
			}
		}
	}
}

// packScratch packs w's [out, in] matrix into float32 panels for the current micro-kernel
// in scratch (half precision widened on the way), for calls that use the weights many times.
// Give the result back with releasePacked.
func packScratch(w Weights, out, in int) *packedWeights {
	nr := gemmKernel.nr
	p, ok := packedScratch.Get().(*packedWeights)
	if !ok {
		p = new(packedWeights)
	}
	*p = packedWeights{format: WeightF32, out: out, in: in, nr: nr}
	p.buf = getScratch(p.panels() * in * nr)
	p.f32 = *p.buf
	var src []float32
	var mbuf *[]float32
	if w.packed != nil || w.format == WeightF32 {
		src, mbuf = w.matrix(out, in)
	}
	tmp := getScratch(nr * widenBlock)
	for q := range p.panels() {
		rows := min(nr, out-q*nr)
		panel := p.f32[q*in*nr : (q+1)*in*nr]
		if src != nil {
			packPanelF32(panel, src[q*nr*in:], rows, in, nr)
		} else {
			// Widen while packing rather than into a whole float32 copy first.
			packWidenedPanel(panel, w.half[q*nr*in:], w.format, rows, in, in, nr, *tmp)
		}
	}
	putScratch(tmp)
	if mbuf != nil {
		putScratch(mbuf)
	}
	return p
}

// packedScratch recycles the headers of packScratch's panels.
var packedScratch sync.Pool

// releasePacked gives back panels from packScratch.
func releasePacked(p *packedWeights) {
	putScratch(p.buf)
	*p = packedWeights{}
	packedScratch.Put(p)
}

// BatchedMatMul computes y[i] = a[i]·b[i] for i < batch, where a[i] is the m×k matrix at
// a[i·aBatchStride:], b[i] the k×n matrix at b[i·bBatchStride:], and y[i] the m×n matrix at
// y[i·m·n:]. A stride of 0 uses the same matrix for every batch entry (broadcasting).
func BatchedMatMul(y, a, b []float32, batch, m, k, n int, aBatchStride, bBatchStride int) {
	if batch == 0 || m == 0 || n == 0 {
		return
	}
	if batch == 1 {
		Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, y, n)
		return
	}
	if aBatchStride == 0 && bBatchStride == 0 {
		// Every output is the same product: compute it once.
		Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, y, n)
		for i := 1; i < batch; i++ {
			copy(y[i*m*n:(i+1)*m*n], y[:m*n])
		}
		return
	}
	if bBatchStride == 0 && aBatchStride == m*k {
		// A shared right matrix with contiguous left matrices is one tall GEMM.
		Sgemm(false, false, batch*m, n, k, 1, a, k, b, n, 0, y, n)
		return
	}
	if Workers() == 1 {
		matMuls(y, a, b, m, k, n, aBatchStride, bBatchStride, 0, batch)
		return
	}
	runPooled(&matMulJobs, batch, matMulJob{y, a, b, m, k, n, aBatchStride, bBatchStride})
}

type matMulJob struct {
	y, a, b                    []float32
	m, k, n                    int
	aBatchStride, bBatchStride int
}

var matMulJobs sync.Pool

func (j *matMulJob) run(lo, hi int) {
	matMuls(j.y, j.a, j.b, j.m, j.k, j.n, j.aBatchStride, j.bBatchStride, lo, hi)
}

// matMuls computes batch entries [lo, hi) of BatchedMatMul.
func matMuls(y, a, b []float32, m, k, n, aBatchStride, bBatchStride, lo, hi int) {
	for i := lo; i < hi; i++ {
		Sgemm(false, false, m, n, k, 1, a[i*aBatchStride:], k, b[i*bBatchStride:], n, 0, y[i*m*n:], n)
	}
}
