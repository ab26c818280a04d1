package kernels

import (
	"fmt"
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
	checkOperand("a", false, rows, in, x, in)
	checkOperand("c", false, rows, out, y, out)
	if in == 0 {
		scaleC(rows, out, beta, y, out)
		return
	}
	if pre := w.panelsFor(gemmKernel, out, in); pre != nil {
		gemmPacked(y, out, x, in, rows, pre, 0, out, beta, serialOnly)
		return
	}
	g := gemmJobs.Get().(*gemmJob)
	g.transA, g.transB = false, true
	g.m, g.n, g.k = rows, out, in
	g.alpha, g.beta = 1, beta
	g.a, g.lda, g.c, g.ldc, g.ldb = x, in, y, out, in
	g.bPre, g.bCol0, g.serialOnly = nil, 0, serialOnly
	var buf *[]float32
	switch {
	case w.packed != nil: // packed for another micro-kernel
		g.b, buf = w.matrix(out, in)
		g.bHalf, g.bFormat = nil, WeightF32
	case w.format == WeightF32:
		checkOperand("b", true, in, out, w.f32, in)
		g.b, g.bHalf, g.bFormat = w.f32, nil, WeightF32
	default:
		if len(w.half) < out*in {
			panic(fmt.Sprintf("kernels.LinearW: %d weights, want %d×%d", len(w.half), out, in))
		}
		g.b, g.bHalf, g.bFormat = nil, w.half, w.format
	}
	g.run()
	g.a, g.b, g.c, g.bHalf, g.bFormat, g.serialOnly = nil, nil, nil, nil, WeightF32, false
	gemmJobs.Put(g)
	if buf != nil {
		putScratch(buf)
	}
}

// gemmPacked computes c = x·W[col0 : col0+cols]ᵀ + beta·c, where W is in the panels p (of
// the current micro-kernel; col0 a multiple of its nr), x is [rows, p.in] with row stride
// lda and c is [rows, cols] with row stride ldc. serialOnly keeps it on the calling
// goroutine.
func gemmPacked(c []float32, ldc int, x []float32, lda, rows int, p *packedWeights, col0, cols int, beta float32, serialOnly bool) {
	g := gemmJobs.Get().(*gemmJob)
	g.transA, g.transB = false, true
	g.m, g.n, g.k = rows, cols, p.in
	g.alpha, g.beta = 1, beta
	g.a, g.lda, g.c, g.ldc = x, lda, c, ldc
	g.b, g.bHalf, g.bFormat = nil, nil, WeightF32
	g.bPre, g.bCol0, g.serialOnly = p, col0, serialOnly
	g.run()
	g.a, g.c, g.bPre, g.bCol0, g.serialOnly = nil, nil, nil, 0, false
	gemmJobs.Put(g)
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

// gluBlockFloats bounds the intermediate of one LinearGLU task, and with it the task's
// blocks of rows and columns: the task's linear result (before the GLU halves it) stays in
// L2.
var gluBlockFloats = 1 << 16

// gluWeightBytes bounds the weights of one LinearGLU task's column block, so that a worker's
// consecutive tasks, which share them, find them in L2.
const gluWeightBytes = 512 << 10

// LinearGLU computes GEGLU-style y = a · act(g), where [a, g] = x·wᵀ + b splits the out
// features in halves (Refiners' Linear then GLU): x is [rows, in], w is [out, in], b is
// [out] or nil, y is [rows, out/2]; act is an element-wise kernel as GLU takes. The linear
// result lives only in a pooled block of rows.
func LinearGLU(y, x []float32, rows, in, out int, w, b []float32, act func(y, x []float32)) {
	LinearGLUW(y, x, rows, in, out, F32Weights(w), b, act)
}

// LinearGLUW is LinearGLU with weights of any precision, packed or not. Both operands are
// packed once per call (weights already packed are used as they lie), then the work runs in
// tasks of a block of rows and a block of output columns (the matching columns of both
// halves): micro-kernel calls into a tile that stays in cache, then the tile's GLU.
func LinearGLUW(y, x []float32, rows, in, out int, w Weights, b []float32, act func(y, x []float32)) {
	if rows == 0 || out < 2 {
		return
	}
	kr := gemmKernel
	mr, nr := kr.mr, kr.nr
	half := out / 2
	checkOperand("a", false, rows, in, x, in)
	if in == 0 {
		w = F32Weights(nil) // no weights to read; the bias alone decides
	}
	// The halves as two packed matrices: views of w's panels when they split on a panel
	// and the micro-kernel reads their precision, else packed here as float32.
	ga, gg := getPackedHeader(), getPackedHeader()
	defer putPackedHeader(ga)
	defer putPackedHeader(gg)
	if pre := w.panelsFor(kr, out, in); pre != nil && half%nr == 0 && (pre.format == WeightF32 || kr.halfFn(pre.format) != nil) {
		*ga, *gg = *pre, *pre
		ga.out, gg.out = half, half
		if pre.format == WeightF32 {
			gg.f32 = pre.f32[half*in:]
		} else {
			gg.half = pre.half[half*in:]
		}
	} else {
		packScratchRows(ga, w, out, in, 0, half)
		packScratchRows(gg, w, out, in, half, half)
		defer putScratch(ga.buf)
		defer putScratch(gg.buf)
	}
	elem := 4
	if ga.format != WeightF32 {
		elem = 2
	}
	// Column blocks: as wide as the weights' budget allows, narrower when rows are too few
	// to give every worker tasks; row blocks: whole micro-panels within the tile budget.
	cb := ceilTo(half, nr)
	cb = min(cb, max(nr, gluWeightBytes/(2*max(in, 1)*elem)/nr*nr))
	rowPanels := (rows + mr - 1) / mr
	want := 2 * Workers()
	if Workers() > 1 {
		for cb > nr && (rowPanels+3)/4*((half+cb-1)/cb) < want {
			cb = max(nr, cb/2/nr*nr)
		}
	}
	rb := max(mr, gluBlockFloats/(2*cb)/mr*mr)
	rb = min(rb, rowPanels*mr)
	tasks := (rows + rb - 1) / rb * ((half + cb - 1) / cb)

	j, ok := linearGLUJobs.Get().(*linearGLUJob)
	if !ok {
		j = new(linearGLUJob)
	}
	*j = linearGLUJob{y: y, x: x, b: b, rows: rows, in: in, half: half, rb: rb, cb: cb, a: ga, g: gg, act: act}
	xbuf := getScratch(rowPanels * mr * in)
	j.xp = *xbuf
	j.packing = true
	parallelRun(rowPanels, j)
	j.packing = false
	parallelRun(tasks, j)
	putScratch(xbuf)
	*j = linearGLUJob{}
	linearGLUJobs.Put(j)
}

type linearGLUJob struct {
	y, x, b, xp            []float32
	rows, in, half, rb, cb int
	a, g                   *packedWeights
	act                    func(y, x []float32)
	packing                bool // the phase: packing x as A panels, or the tasks
}

var linearGLUJobs pool

// run packs row panels [lo, hi) of x, or computes tasks [lo, hi): task t is column block
// t/rowBlocks of row block t%rowBlocks, so a worker's consecutive tasks share the weights
// of one column block.
func (j *linearGLUJob) run(lo, hi int) {
	kr := gemmKernel
	mr, nr := kr.mr, kr.nr
	in := j.in
	if j.packing {
		for i := lo; i < hi; i++ {
			packRows(j.xp[i*mr*in:(i+1)*mr*in], j.x[i*mr*in:], in, min(mr, j.rows-i*mr), mr, in)
		}
		return
	}
	ld := 2 * j.cb // the tile: rows padded to mr, each column block padded to nr
	buf := getScratch(j.rb * ld)
	defer putScratch(buf)
	hk := kr.halfFn(j.a.format)
	rowBlocks := (j.rows + j.rb - 1) / j.rb
	kc := min(kr.kc, in)
	for t := lo; t < hi; t++ {
		c0, r0 := t/rowBlocks*j.cb, t%rowBlocks*j.rb
		n, cols := min(j.rb, j.rows-r0), min(j.cb, j.half-c0)
		tile := (*buf)[:ceilTo(n, mr)*ld]
		beta := float32(0)
		if j.b != nil {
			for r := range n {
				copy(tile[r*ld:r*ld+cols], j.b[c0:c0+cols])
				copy(tile[r*ld+j.cb:r*ld+j.cb+cols], j.b[j.half+c0:j.half+c0+cols])
			}
			beta = 1
		}
		if in == 0 && j.b == nil {
			clear(tile) // no product and no bias: zero
		}
		for pc := 0; pc < in; pc += kc {
			kb := min(kc, in-pc)
			if pc > 0 {
				beta = 1
			}
			for side, p := range [2]*packedWeights{j.a, j.g} {
				for q := c0 / nr; q*nr < c0+cols; q++ {
					o := q*in*nr + pc*nr
					var bf []float32
					var bh []uint16
					switch {
					case p.format == WeightF32:
						bf = p.f32[o : o+kb*nr]
					default:
						bh = p.half[o : o+kb*nr]
					}
					for i := 0; i < n; i += mr {
						ap := j.xp[(r0+i)*in+pc*mr : (r0+i)*in+(pc+kb)*mr]
						ct := tile[i*ld+side*j.cb+(q*nr-c0):]
						kr.tile(kb, ap, bf, bh, hk, ct, ld, 1, beta)
					}
				}
			}
		}
		for r := range n {
			a, g := tile[r*ld:r*ld+cols], tile[r*ld+j.cb:r*ld+j.cb+cols]
			yr := j.y[(r0+r)*j.half+c0 : (r0+r)*j.half+c0+cols]
			j.act(yr, g)
			mulSpan(yr, a)
		}
	}
}

// mulSpan sets y[i] *= a[i].
func mulSpan(y, a []float32) {
	binaryRow(OpMul, y, y, 1, a, 1)
}

// packScratch packs w's [out, in] matrix into float32 panels for the current micro-kernel
// in scratch (half precision widened on the way), for calls that use the weights many times.
// Give the result back with releasePacked.
func packScratch(w Weights, out, in int) *packedWeights {
	p := getPackedHeader()
	packScratchRows(p, w, out, in, 0, out)
	return p
}

// releasePacked gives back panels from packScratch.
func releasePacked(p *packedWeights) {
	putScratch(p.buf)
	putPackedHeader(p)
}

// packScratchRows sets p to rows [row0, row0+n) of w's [out, in] matrix packed into float32
// panels in scratch (p.buf, for the caller to give back).
func packScratchRows(p *packedWeights, w Weights, out, in, row0, n int) {
	nr := gemmKernel.nr
	*p = packedWeights{format: WeightF32, out: n, in: in, nr: nr}
	p.buf = getScratch(p.panels() * in * nr)
	p.f32 = *p.buf
	var src []float32
	var mbuf *[]float32
	if w.packed != nil || w.format == WeightF32 {
		src, mbuf = w.matrix(out, in)
		src = src[row0*in:]
	}
	tmp := getScratch(nr * widenBlock)
	for q := range p.panels() {
		rows := min(nr, n-q*nr)
		panel := p.f32[q*in*nr : (q+1)*in*nr]
		if src != nil {
			packPanelF32(panel, src[q*nr*in:], rows, in, nr)
		} else {
			// Widen while packing rather than into a whole float32 copy first.
			packWidenedPanel(panel, w.half[(row0+q*nr)*in:], w.format, rows, in, in, nr, *tmp)
		}
	}
	putScratch(tmp)
	if mbuf != nil {
		putScratch(mbuf)
	}
}

// packedHeaders recycles the headers of panels packed per call.
var packedHeaders pool

func getPackedHeader() *packedWeights {
	if p, ok := packedHeaders.Get().(*packedWeights); ok {
		return p
	}
	return new(packedWeights)
}

func putPackedHeader(p *packedWeights) {
	*p = packedWeights{}
	packedHeaders.Put(p)
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

var matMulJobs pool

func (j *matMulJob) run(lo, hi int) {
	matMuls(j.y, j.a, j.b, j.m, j.k, j.n, j.aBatchStride, j.bBatchStride, lo, hi)
}

// matMuls computes batch entries [lo, hi) of BatchedMatMul, each on the calling goroutine
// (it runs on a worker, or with one worker).
func matMuls(y, a, b []float32, m, k, n, aBatchStride, bBatchStride, lo, hi int) {
	for i := lo; i < hi; i++ {
		sgemmSerial(false, false, m, n, k, 1, a[i*aBatchStride:], k, b[i*bBatchStride:], n, 0, y[i*m*n:], n)
	}
}
