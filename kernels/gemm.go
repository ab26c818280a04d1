package kernels

import (
	"fmt"
	"sync/atomic"
)

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where op(X) is X or
// Xᵀ. op(A) is m×k, op(B) is k×n, C is m×n; lda, ldb, ldc are the row strides of A, B, C as
// stored. When beta is 0, C is not read (NaNs in C do not propagate).
//
// The implementation follows GotoBLAS/BLIS: op(B) is packed in kc×nc panels shared by all
// workers, op(A) in mc×kc blocks per worker, and a register-blocked micro-kernel (AVX-512 or
// AVX2+FMA assembly on amd64, Go elsewhere) computes mr×nr tiles of C. Rows of C are split
// across Workers() goroutines (columns when C has too few rows). Packing buffers (up to
// about 8 MiB for B plus 0.6 MiB per worker for A with the AVX-512 kernel) come from a
// free list (pool.go), so repeated calls do not allocate.
//
// Sgemm panics if a slice is too short for its shape and stride, since the assembly kernels
// would otherwise touch memory outside it.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(false, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmSerial is Sgemm on the calling goroutine alone: for the tasks of a parallel kernel,
// whose workers would otherwise each start Sgemm's and oversubscribe the cores.
func sgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(true, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmFor returns the Sgemm a kernel's task calls: sgemmSerial when the task runs on a
// worker of a parallel kernel (nested), Sgemm when it is the kernel's only task.
func sgemmFor(nested bool) func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if nested {
		return sgemmSerial
	}
	return Sgemm
}

func sgemm(serial, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	checkOperand("a", transA, m, k, a, lda)
	checkOperand("b", transB, k, n, b, ldb)
	checkOperand("c", false, m, n, c, ldc)
	if k <= 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	g := gemmJobs.Get().(*gemmJob)
	g.transA, g.transB = transA, transB
	g.m, g.n, g.k = m, n, k
	g.alpha, g.beta = alpha, beta
	g.a, g.b, g.c = a, b, c
	g.lda, g.ldb, g.ldc = lda, ldb, ldc
	g.bHalf, g.bFormat, g.bPre, g.bCol0, g.serialOnly = nil, WeightF32, nil, 0, serial
	g.run()
	// Drop the caller's slices so the pooled job does not keep them alive.
	g.a, g.b, g.c, g.serialOnly = nil, nil, nil, false
	gemmJobs.Put(g)
}

// MatMul computes c = a·b for contiguous row-major a (m×k), b (k×n) and c (m×n).
func MatMul(c, a, b []float32, m, n, k int) {
	Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
}

// checkOperand panics unless x holds a rows×cols matrix (cols×rows stored when trans) with
// row stride ld.
func checkOperand(name string, trans bool, rows, cols int, x []float32, ld int) {
	if trans {
		rows, cols = cols, rows
	}
	if rows <= 0 || cols <= 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("kernels.Sgemm: ld%s=%d is less than the %d columns of %s as stored", name, ld, cols, name))
	}
	if need := (rows-1)*ld + cols; len(x) < need {
		panic(fmt.Sprintf("kernels.Sgemm: len(%s)=%d, want at least %d for %d×%d with ld%s=%d", name, len(x), need, rows, cols, name, ld))
	}
}

// scaleC sets C = beta·C, writing zeros without reading C when beta is 0.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// microKernel is a register-blocked kernel with the blocking sizes that suit it.
type microKernel struct {
	name   string
	mr, nr int // C tile computed per call
	// kc: depth of packed panels, so an nr-wide B micro-panel stays in L1;
	// mc: rows of a packed A block, which stays in L2;
	// nc: columns of the packed B panel shared by the workers (L3).
	kc, mc, nc int
	// fn stores alpha·A·B + beta·C into the mr×nr tile at c (row stride ldc), where a is
	// packed k×mr and b packed k×nr; beta == 0 means C is not read.
	fn func(k int, a, b, c []float32, ldc int, alpha, beta float32)
	// half[f] is fn for a B panel of half-precision bits of format f (WeightF16,
	// WeightBF16); nil where the kernel has none, and the panel is widened first.
	half [3]halfKernel
}

// halfKernel is a micro-kernel whose packed B panel holds half-precision bits.
type halfKernel func(k int, a []float32, b []uint16, c []float32, ldc int, alpha, beta float32)

// halfFn returns kr's variant for B panels of format f, or nil when it has none (or the CPU
// lacks the instructions it needs).
func (kr *microKernel) halfFn(f WeightFormat) halfKernel {
	if !halfKernelsRun(f) {
		return nil
	}
	return kr.half[f]
}

// gemmKernel is the micro-kernel Sgemm uses; set at init to the best the CPU supports.
var gemmKernel = bestGemmKernel()

// bestGemmKernel returns the fastest supported kernel (the first of gemmKernels).
func bestGemmKernel() *microKernel { return gemmKernels()[0] }

// goKernel is the portable 4×4 micro-kernel.
var goKernel = &microKernel{name: "go4x4", mr: 4, nr: 4, kc: 256, mc: 128, nc: 2048, fn: sgemmKernelGo}

// minParallelWork is the m·n·k below which splitting across goroutines costs more than
// it saves (measured on Zen 5: two workers win from about 40³ up).
const minParallelWork = 40 * 40 * 40

// gemmJob holds one Sgemm call's operands and the packing buffers, reused through gemmJobs.
type gemmJob struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int

	// Where op(B) comes from when it is weights: bHalf holds it as half-precision bits of
	// format bFormat, laid out as b would be (b is then nil); or bPre holds W, op(B) = Wᵀ,
	// already in micro-panels, and nothing is packed.
	bHalf   []uint16
	bFormat WeightFormat
	bPre    *packedWeights
	bCol0   int // with bPre: op(B)'s first column is W's row bCol0 (a multiple of nr)
	// serialOnly keeps the product on the calling goroutine: the caller is one task of a
	// parallel kernel, whose workers would otherwise each start Sgemm's.
	serialOnly bool

	kern       *microKernel
	mc, nc, kc int  // the kernel's blocking, rounded to whole micro-panels
	kcap       int  // min(kc, k): the stride of packed B panels, the same for every k block
	slots      int  // packed B panels per worker when splitting columns
	nw         int  // goroutines in this call
	splitM     bool // workers split rows of C and share packed B; otherwise they split columns

	bpack []float32   // packed B panels
	apack [][]float32 // per-worker packed A block
	edge  [][]float32 // per-worker mr×nr scratch tile for partial tiles of C
	wide  [][]float32 // per-worker scratch for widening half-precision B

	bar     gemmBarrier
	pending atomic.Int32  // helper shares not yet finished
	done    chan struct{} // receives one token when pending reaches 0
}

var gemmJobs = pool{New: func() any {
	g := &gemmJob{done: make(chan struct{}, 1)}
	g.bar.cond.L = &g.bar.mu
	return g
}}

// run sizes the buffers and computes C on nw goroutines.
func (g *gemmJob) run() {
	kr := gemmKernel
	g.kern = kr
	mTiles := gemmCeilDiv(g.m, kr.mr)
	nTiles := gemmCeilDiv(g.n, kr.nr)
	nw := Workers()
	if g.m*g.n*g.k < minParallelWork || g.serialOnly {
		nw = 1
	}
	// Splitting rows shares one packed B; split columns only when rows are too few to go round.
	g.splitM = mTiles >= 2*nw || mTiles >= nTiles
	if g.splitM {
		nw = min(nw, mTiles)
	} else {
		nw = min(nw, nTiles)
	}
	g.nw = nw

	// Blocks hold whole micro-panels, whatever the table says.
	g.mc = max(kr.mc/kr.mr, 1) * kr.mr
	g.nc = max(kr.nc/kr.nr, 1) * kr.nr
	g.kc = max(kr.kc, 1)
	kc := min(g.kc, g.k)
	g.kcap = kc
	nc := min(g.nc, nTiles*kr.nr)
	mc := min(g.mc, mTiles*kr.mr)
	bpanels := nc / kr.nr
	if !g.splitM {
		g.slots = gemmCeilDiv(bpanels, nw)
		bpanels = g.slots * nw
	}
	if g.bPre == nil {
		g.bpack = gemmGrow(g.bpack, kc*bpanels*kr.nr)
	}
	// Half-precision B is widened while packed (rows of it at a time), or panel by panel
	// when packed already but the micro-kernel reads float32 only.
	wide := 0
	if g.bHalf != nil || g.bPre != nil && g.bPre.format != WeightF32 && kr.halfFn(g.bPre.format) == nil {
		wide = max(kc, widenBlock) * kr.nr
	}
	for len(g.apack) < nw {
		g.apack = append(g.apack, nil)
		g.edge = append(g.edge, nil)
		g.wide = append(g.wide, nil)
	}
	for w := 0; w < nw; w++ {
		g.apack[w] = gemmGrow(g.apack[w], mc*kc)
		g.edge[w] = gemmGrow(g.edge[w], kr.mr*kr.nr)
		g.wide[w] = gemmGrow(g.wide[w], wide)
	}
	if nw == 1 {
		g.work(0)
		return
	}
	g.runShares(nw)
}

// work runs worker w's share of the jc/pc/ic loop nest.
func (g *gemmJob) work(w int) {
	kr := g.kern
	mr, nr := kr.mr, kr.nr
	ap, edge, wide := g.apack[w], g.edge[w], g.wide[w]
	first := true
	for jc := 0; jc < g.n; jc += g.nc {
		nb := min(g.nc, g.n-jc)
		panels := gemmCeilDiv(nb, nr)
		plo, phi := gemmShare(panels, g.nw, w)
		for pc := 0; pc < g.k; pc += g.kc {
			kb := min(g.kc, g.k-pc)
			beta := g.beta
			if pc > 0 {
				beta = 1 // later k blocks accumulate onto the first one's result
			}
			stride := g.kcap * nr
			if pre := g.bPre; pre != nil {
				// Packed weights: workers read the panels they need where they lie.
				pb := panelsB{f32: pre.f32, half: pre.half, format: pre.format, base: (g.bCol0+jc)*pre.in + pc*nr, stride: pre.in * nr}
				rowLo, rowEnd := 0, g.m
				if g.splitM {
					tlo, thi := gemmShare(gemmCeilDiv(g.m, mr), g.nw, w)
					rowLo, rowEnd, plo, phi = tlo*mr, min(thi*mr, g.m), 0, panels
				}
				for ic := rowLo; ic < rowEnd; ic += g.mc {
					mb := min(g.mc, rowEnd-ic)
					g.packA(ap, ic, mb, pc, kb)
					g.macro(ap, &pb, edge, wide, ic, mb, jc, nb, plo, phi, kb, beta)
				}
				continue
			}
			if !g.splitM {
				// Each worker computes with the panels it packed itself, kept in slots of
				// its own so that a worker running ahead into the next slab cannot
				// overwrite panels another worker still reads.
				bp := g.bpack[w*g.slots*stride:]
				g.packB(bp, pc, kb, jc, nb, plo, phi, wide)
				pb := panelsB{f32: bp, base: -plo * stride, stride: stride}
				for ic := 0; ic < g.m; ic += g.mc {
					mb := min(g.mc, g.m-ic)
					g.packA(ap, ic, mb, pc, kb)
					g.macro(ap, &pb, edge, wide, ic, mb, jc, nb, plo, phi, kb, beta)
				}
				continue
			}
			if g.nw > 1 && !first {
				g.bar.wait() // all are done with the previous B panel
			}
			first = false
			g.packB(g.bpack[plo*stride:], pc, kb, jc, nb, plo, phi, wide)
			if g.nw > 1 {
				g.bar.wait() // all of this B panel is packed
			}
			pb := panelsB{f32: g.bpack, stride: stride}
			tlo, thi := gemmShare(gemmCeilDiv(g.m, mr), g.nw, w)
			rowEnd := min(thi*mr, g.m)
			for ic := tlo * mr; ic < rowEnd; ic += g.mc {
				mb := min(g.mc, rowEnd-ic)
				g.packA(ap, ic, mb, pc, kb)
				g.macro(ap, &pb, edge, wide, ic, mb, jc, nb, 0, panels, kb, beta)
			}
		}
	}
}

// panelsB locates the packed micro-panels of B for one depth block of one column slab:
// panel q of the slab starts at base + q·stride, in f32 or (format not WeightF32) in half.
type panelsB struct {
	f32          []float32
	half         []uint16
	format       WeightFormat
	base, stride int
}

// macro multiplies the packed mb×kb block of A by B panels [plo, phi) of the current
// nb-column slab starting at column jc, updating C. wide is scratch for widening a
// half-precision panel when the micro-kernel has no variant that reads it.
func (g *gemmJob) macro(ap []float32, pb *panelsB, edge, wide []float32, ic, mb, jc, nb, plo, phi, kb int, beta float32) {
	kr := g.kern
	mr, nr := kr.mr, kr.nr
	c, ldc, alpha := g.c, g.ldc, g.alpha
	var hk halfKernel
	if pb.format != WeightF32 {
		hk = kr.halfFn(pb.format)
	}
	for q := plo; q < phi; q++ {
		j := jc + q*nr
		cols := min(nr, jc+nb-j)
		o := pb.base + q*pb.stride
		var bpanel []float32
		var hpanel []uint16
		switch {
		case pb.format == WeightF32:
			bpanel = pb.f32[o : o+kb*nr]
		case hk != nil:
			hpanel = pb.half[o : o+kb*nr]
		default:
			bpanel = wide[:kb*nr]
			widenHalf(bpanel, pb.half[o:o+kb*nr], pb.format)
		}
		for i := 0; i < mb; i += mr {
			rows := min(mr, mb-i)
			apanel := ap[(i/mr)*kb*mr : (i/mr+1)*kb*mr]
			ci := (ic+i)*ldc + j
			if rows == mr && cols == nr {
				kr.tile(kb, apanel, bpanel, hpanel, hk, c[ci:], ldc, alpha, beta)
				continue
			}
			// Partial tile: compute into scratch, then merge only the valid part.
			kr.tile(kb, apanel, bpanel, hpanel, hk, edge, nr, alpha, 0)
			for r := 0; r < rows; r++ {
				dst := c[ci+r*ldc : ci+r*ldc+cols]
				src := edge[r*nr : r*nr+cols]
				if beta == 0 {
					copy(dst, src)
					continue
				}
				for t, v := range src {
					dst[t] = v + beta*dst[t]
				}
			}
		}
	}
}

// tile runs the micro-kernel on a float32 B panel bf, or on the half-precision panel bh with
// its variant hk when bh is not nil.
func (kr *microKernel) tile(kb int, ap, bf []float32, bh []uint16, hk halfKernel, c []float32, ldc int, alpha, beta float32) {
	if bh != nil {
		hk(kb, ap, bh, c, ldc, alpha, beta)
		return
	}
	kr.fn(kb, ap, bf, c, ldc, alpha, beta)
}

// packA copies rows [ic, ic+mb) and columns [pc, pc+kb) of op(A) into dst as mr-row
// micro-panels, each stored k-major (mr values per k step), zero-padding the last panel.
func (g *gemmJob) packA(dst []float32, ic, mb, pc, kb int) {
	mr := g.kern.mr
	a, lda := g.a, g.lda
	if g.transA {
		// op(A) row i is column i of the stored k×m matrix: each k step is contiguous.
		packPanels(dst, a[pc*lda+ic:], lda, mb, mr, kb*mr, kb)
		return
	}
	for t := 0; t*mr < mb; t++ {
		i0 := ic + t*mr
		rows := min(mr, ic+mb-i0)
		panel := dst[t*kb*mr : (t+1)*kb*mr]
		transposeInto(panel, a[i0*lda+pc:], lda, rows, mr, kb)
		if rows < mr {
			for p := 0; p < kb; p++ {
				clear(panel[p*mr+rows : p*mr+mr])
			}
		}
	}
}

// packPanels cuts each of k rows of src (row stride ld, cols wide) into width-wide pieces
// and stores piece t of row p at dst[t*stride+p*width:], zero-padding the last piece.
//
// Rows go in groups of packRowGroup: within a group the loads of each row stream, and each
// piece's stores land in a few consecutive lines. Storing one row at a time across all
// pieces would instead hit lines stride apart, which share an L1 set when stride is a
// multiple of 4 KiB, and thrash it.
func packPanels(dst, src []float32, ld, cols, width, stride, k int) {
	full := cols / width
	rest := cols - full*width
	group := packRowGroup
	if width%16 == 0 {
		group = 1 // pieces are whole cache lines (when src rows are aligned): no set conflicts to avoid
	}
	for p0 := 0; p0 < k; p0 += group {
		p1 := min(p0+group, k)
		for t := 0; t < full; t++ {
			for p := p0; p < p1; p++ {
				d, s := dst[t*stride+p*width:], src[p*ld+t*width:]
				switch width {
				case 32:
					*(*[32]float32)(d) = [32]float32(s)
				case 16:
					*(*[16]float32)(d) = [16]float32(s)
				case 12:
					// Three 16-byte moves: a 48-byte array copy would call memmove.
					*(*[4]float32)(d[0:4]) = [4]float32(s[0:4])
					*(*[4]float32)(d[4:8]) = [4]float32(s[4:8])
					*(*[4]float32)(d[8:12]) = [4]float32(s[8:12])
				default:
					copy(d[:width], s[:width])
				}
			}
		}
		if rest > 0 {
			for p := p0; p < p1; p++ {
				d := dst[full*stride+p*width : full*stride+p*width+width]
				copy(d, src[p*ld+full*width:p*ld+cols])
				clear(d[rest:])
			}
		}
	}
}

// packRowGroup is how many rows packPanels copies before moving to the next piece.
var packRowGroup = 8

// transposeGo writes dst[p*width+r] = src[r*ld+p] for r < rows, p < k.
func transposeGo(dst, src []float32, ld, rows, width, k int) {
	for r := 0; r < rows; r++ {
		s := src[r*ld : r*ld+k]
		d := dst[r:]
		for p, v := range s {
			d[p*width] = v
		}
	}
}

// packB copies micro-panels [plo, phi) of rows [pc, pc+kb) of the nb-column slab of op(B)
// starting at column jc into dst (panel plo first), each panel nr columns wide, stored
// k-major with stride kcap·nr, zero-padded. Half-precision B is widened on the way, through
// tmp (nr·widenBlock floats).
func (g *gemmJob) packB(dst []float32, pc, kb, jc, nb, plo, phi int, tmp []float32) {
	nr := g.kern.nr
	b, ldb := g.b, g.ldb
	if plo >= phi {
		return
	}
	if g.bHalf != nil {
		g.packBHalf(dst, pc, kb, jc, nb, plo, phi, tmp)
		return
	}
	if !g.transB {
		j0 := jc + plo*nr
		cols := min(phi*nr, nb) - plo*nr
		packPanels(dst, b[pc*ldb+j0:], ldb, cols, nr, g.kcap*nr, kb)
		return
	}
	for q := plo; q < phi; q++ {
		j0 := jc + q*nr
		cols := min(nr, jc+nb-j0)
		panel := dst[(q-plo)*g.kcap*nr : (q-plo)*g.kcap*nr+kb*nr]
		// op(B) column j is row j of the stored n×k matrix.
		transposeInto(panel, b[j0*ldb+pc:], ldb, cols, nr, kb)
		if cols < nr {
			for p := 0; p < kb; p++ {
				clear(panel[p*nr+cols : p*nr+nr])
			}
		}
	}
}

// packBHalf is packB for half-precision B.
func (g *gemmJob) packBHalf(dst []float32, pc, kb, jc, nb, plo, phi int, tmp []float32) {
	nr := g.kern.nr
	b, ldb, f := g.bHalf, g.ldb, g.bFormat
	stride := g.kcap * nr
	if g.transB {
		for q := plo; q < phi; q++ {
			j0 := jc + q*nr
			panel := dst[(q-plo)*stride : (q-plo)*stride+kb*nr]
			// op(B) column j is row j of the stored n×k matrix.
			packWidenedPanel(panel, b[j0*ldb+pc:], f, min(nr, jc+nb-j0), ldb, kb, nr, tmp)
		}
		return
	}
	for p := range kb {
		row := b[(pc+p)*ldb:]
		for q := plo; q < phi; q++ {
			j0 := jc + q*nr
			cols := min(nr, jc+nb-j0)
			d := dst[(q-plo)*stride+p*nr : (q-plo)*stride+p*nr+nr]
			widenHalf(d, row[j0:j0+cols], f)
			clear(d[cols:])
		}
	}
}

// sgemmKernelGo is the portable micro-kernel: a 4×4 tile in sixteen scalar accumulators.
func sgemmKernelGo(k int, a, b, c []float32, ldc int, alpha, beta float32) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	a, b = a[:4*k], b[:4*k]
	for p := 0; p < k; p++ {
		av := a[4*p : 4*p+4 : 4*p+4]
		bv := b[4*p : 4*p+4 : 4*p+4]
		a0, a1, a2, a3 := av[0], av[1], av[2], av[3]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	storeRow4(c[0:4:4], c00, c01, c02, c03, alpha, beta)
	storeRow4(c[ldc:ldc+4:ldc+4], c10, c11, c12, c13, alpha, beta)
	storeRow4(c[2*ldc:2*ldc+4:2*ldc+4], c20, c21, c22, c23, alpha, beta)
	storeRow4(c[3*ldc:3*ldc+4:3*ldc+4], c30, c31, c32, c33, alpha, beta)
}

func storeRow4(c []float32, v0, v1, v2, v3, alpha, beta float32) {
	if beta == 0 {
		c[0], c[1], c[2], c[3] = alpha*v0, alpha*v1, alpha*v2, alpha*v3
		return
	}
	c[0] = alpha*v0 + beta*c[0]
	c[1] = alpha*v1 + beta*c[1]
	c[2] = alpha*v2 + beta*c[2]
	c[3] = alpha*v3 + beta*c[3]
}

// gemmShare returns worker w's contiguous part of [0, n) split nw ways.
func gemmShare(n, nw, w int) (lo, hi int) {
	return n * w / nw, n * (w + 1) / nw
}

func gemmCeilDiv(a, b int) int { return (a + b - 1) / b }

// gemmGrow returns s resliced to n, reallocating only when its capacity is short.
func gemmGrow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// SgemmKernelName names the micro-kernel Sgemm uses on this CPU (for benchmark reports).
func SgemmKernelName() string { return gemmKernel.name }
