package kernels

import (
	"unsafe"
)

// Implicit-GEMM convolution. The product is Yᵀ = colsᵀ · Wᵀ: output pixels are its rows,
// output channels its columns, the depth C·KH·KW. The column (im2col) matrix is never
// written out: each task packs the micro-panels of its block of output pixels straight from
// the input (mr pixels per panel, one row of mr values per (channel, kh, kw)), the weights
// are packed once per call into nr-channel panels that all workers share, and the
// micro-kernel of Sgemm multiplies them into a small pixel-major tile. The tile is then
// written to the NCHW output one channel row at a time, with the bias and the fused
// epilogue applied while it is in cache. Against im2col + Sgemm this saves writing and
// re-reading the column matrix, the separate bias fill, and the nesting of Sgemm's own
// workers inside the convolution's.

// implicitKC bounds the depth of one micro-kernel call: deeper products are cut into equal
// steps, so that a step's panels stay in L1 and L2.
var implicitKC = 320

// implicitBlockPixels is about how many output pixels one task covers. Blocks are whole
// output rows (or equal pieces of one, for wide images): packing then reads each input row
// as one long run, which the hardware prefetcher follows, where short pieces of many rows
// would each miss the cache.
var implicitBlockPixels = 512

// implicitFits reports whether the implicit path suits p: one group, and output channels
// that fill the micro-kernel's columns well (at most a quarter of them padding).
func implicitFits(p Conv2dParams) bool {
	nr := gemmKernel.nr
	panels := (p.K + nr - 1) / nr
	return p.Groups == 1 && p.C > 0 && 4*panels*nr <= 5*p.K
}

// implicitGeom is the blocking of one implicit convolution. A task covers, in one image, a
// rectangle of output pixels: rows whole rows (pieces of one row of at most piece pixels
// when rows are wide). Its pixels are cut into panels of mr row by row, the last panel of a
// row padded: a panel never spans two output rows, so its mr values for one (kh, kw) are
// one run of an input row.
type implicitGeom struct {
	oh, ow, ohw int
	taps        int // KH·KW
	kTot, kc    int // GEMM depth, depth per step
	panels, ldc int // weight panels (ceil(K/nr)), row stride of the tile (panels·nr)
	rows        int // output rows per task
	pieces      int // pieces per output row (1: whole rows)
	piece       int // pixels per piece (a multiple of mr, or ow)
	perImage    int // tasks per image
	maxChunks   int // the most panels of a task
	mr, nr      int
	unitStride  bool // StrideW == 1: a panel row is a contiguous run of an input row
}

func newImplicitGeom(p Conv2dParams, kr *microKernel) implicitGeom {
	g := implicitGeom{oh: p.OutH(), ow: p.OutW(), taps: p.KH * p.KW, mr: kr.mr, nr: kr.nr, unitStride: p.StrideW == 1}
	g.ohw = g.oh * g.ow
	g.kTot = p.C * g.taps
	// Depth steps hold whole input channels (all their taps), as the packing goes by
	// channel.
	steps := min((g.kTot+implicitKC-1)/implicitKC, p.C)
	g.kc = (p.C + steps - 1) / steps * g.taps
	g.panels = (p.K + g.nr - 1) / g.nr
	g.ldc = g.panels * g.nr
	// Enough tasks that every worker gets a few, on small images too.
	want := (Workers()*minTasksPerWorker + p.N - 1) / p.N
	g.pieces, g.piece = 1, g.ow
	g.rows = max(1, min(implicitBlockPixels/g.ow, g.oh/min(want, g.oh)))
	if g.ow > implicitBlockPixels || (g.rows == 1 && g.oh < want) {
		g.pieces = max((g.ow+implicitBlockPixels-1)/implicitBlockPixels, (want+g.oh-1)/g.oh)
		g.piece = (g.ow + g.pieces - 1) / g.pieces
		g.piece = (g.piece + g.mr - 1) / g.mr * g.mr // pieces start on panel boundaries
		g.pieces = (g.ow + g.piece - 1) / g.piece
	}
	g.perImage = (g.oh + g.rows - 1) / g.rows * g.pieces
	g.maxChunks = g.rows * ((g.piece + g.mr - 1) / g.mr)
	return g
}

// implicitTask is the rectangle of output pixels of one task: rows oy0 … oy0+rows−1,
// columns ox0 … ox0+width−1, in panels of mr; perRow panels a row.
type implicitTask struct {
	oy0, rows, ox0, width, perRow int
}

func (g *implicitGeom) task(t int) implicitTask {
	b := t % g.perImage
	r, piece := b/g.pieces, b%g.pieces
	k := implicitTask{oy0: r * g.rows, ox0: piece * g.piece}
	k.rows = min(g.rows, g.oh-k.oy0)
	k.width = min(g.piece, g.ow-k.ox0)
	k.perRow = (k.width + g.mr - 1) / g.mr
	return k
}

// chunk returns the output row, first column and valid pixel count of panel ch.
func (k *implicitTask) chunk(ch, mr int) (oy, ox, valid int) {
	r, c := ch/k.perRow, ch%k.perRow
	return k.oy0 + r, k.ox0 + c*mr, min(mr, k.width-c*mr)
}

func conv2dImplicit(y, x []float32, w Weights, b []float32, p Conv2dParams, ep *Epilogue) {
	kr := gemmKernel
	g := newImplicitGeom(p, kr)
	// The weights are the GEMM's B, [K, kTot] in panels of nr output channels.
	wp, scratch := w.kernelPanels(kr, p.K, g.kTot)
	if scratch {
		defer releasePacked(wp)
	}
	tasks := p.N * g.perImage
	if Workers() == 1 || tasks == 1 {
		implicitTasks(y, x, b, wp, p, ep, &g, 0, tasks)
		return
	}
	runPooled(&implicitJobs, tasks, implicitJob{y, x, b, wp, p, *ep, g})
}

type implicitJob struct {
	y, x, b []float32
	wp      *packedWeights
	p       Conv2dParams
	ep      Epilogue
	g       implicitGeom
}

var implicitJobs pool

func (j *implicitJob) run(lo, hi int) {
	implicitTasks(j.y, j.x, j.b, j.wp, j.p, &j.ep, &j.g, lo, hi)
}

// Entries of the tap table: the offset in an input channel plane of the first of a panel's
// mr values for one (kh, kw), or one of these.
const (
	tapZero   = -1 // the whole panel row reads padding
	tapGather = -2 // some valid pixels read padding
)

// implicitTasks computes tasks [lo, hi) (see implicitGeom). Each micro-panel of output
// pixels is packed and multiplied right away, so that it is still in L1 for the
// micro-kernel; the task's input rows stay in L2 between panels.
func implicitTasks(y, x, b []float32, wp *packedWeights, p Conv2dParams, ep *Epilogue, g *implicitGeom, lo, hi int) {
	kr := gemmKernel
	var hk halfKernel
	if wp.format != WeightF32 {
		hk = kr.halfFn(wp.format)
	}
	mr, nr := g.mr, g.nr
	// One scratch buffer per worker holds the packed panel, the tile and the tap table
	// (int32 and float32 have one size).
	na, nc, nt := mr*g.kc, g.maxChunks*mr*g.ldc, g.maxChunks*g.taps
	buf := getScratch(na + nc + nt)
	defer putScratch(buf)
	a, c := (*buf)[:na], (*buf)[na:na+nc]
	table := unsafe.Slice((*int32)(unsafe.Pointer(&(*buf)[na+nc])), nt)
	plane := p.H * p.W
	for t := lo; t < hi; t++ {
		n := t / g.perImage
		k := g.task(t)
		chunks := k.rows * k.perRow
		tapTable(table, p, g, &k, chunks)
		xn := x[n*p.C*plane : (n+1)*p.C*plane]
		for pc := 0; pc < g.kTot; pc += g.kc {
			kb := min(g.kc, g.kTot-pc)
			beta := float32(0)
			if pc > 0 {
				beta = 1
			}
			for ch := range chunks {
				ap := a[:kb*mr]
				packPanel(ap, xn, table[ch*g.taps:(ch+1)*g.taps], p, g, &k, ch, pc/g.taps, kb/g.taps)
				for q := range g.panels {
					off := q*g.kTot*nr + pc*nr
					ct := c[ch*mr*g.ldc+q*nr:]
					if hk != nil {
						hk(kb, ap, wp.half[off:off+kb*nr], ct, g.ldc, 1, beta)
					} else {
						kr.fn(kb, ap, wp.f32[off:off+kb*nr], ct, g.ldc, 1, beta)
					}
				}
			}
		}
		yn := y[n*p.K*g.ohw : (n+1)*p.K*g.ohw]
		var res []float32
		if ep.Residual != nil {
			res = ep.Residual[n*p.K*g.ohw : (n+1)*p.K*g.ohw]
		}
		for r := range k.rows {
			p0 := (k.oy0+r)*g.ow + k.ox0
			storeTransposed(yn, c[r*k.perRow*mr*g.ldc:], b, res, ep, p.K, g.ohw, p0, k.width, g.ldc)
			if ep.Act != ActNone && ep.Act != ActReLU {
				for ch := range p.K {
					o := ch*g.ohw + p0
					ep.Act.Apply(yn[o:o+k.width], yn[o:o+k.width])
				}
			}
		}
	}
}

// storeTransposed writes the pixel-major tile c (cols pixels, row stride ldc) to channel
// rows [p0, p0+cols) of the channel-major y [K, ohw], adding the bias b (when not nil) and
// doing the epilogue's affine step, residual add (res is laid out as y) and ReLU on the way;
// other activations are left to the caller. Eight channels at a time: each tile row is then
// read as a run of contiguous values, and whole 8×8 blocks are transposed in registers.
func storeTransposed(y, c, b, res []float32, ep *Epilogue, k, ohw, p0, cols, ldc int) {
	relu := ep.Act == ActReLU
	k8 := k &^ 7
	for k0 := 0; k0 < k8; k0 += 8 {
		var bias [8]float32
		if b != nil {
			bias = [8]float32(b[k0 : k0+8])
		}
		done := 0
		if !ep.Affine {
			var r []float32
			if res != nil {
				r = res[k0*ohw+p0:]
			}
			done = transposeStore8(y[k0*ohw+p0:], ohw, c[k0:], ldc, &bias, r, cols, relu)
		}
		r0 := y[k0*ohw+p0 : k0*ohw+p0+cols]
		r1 := y[(k0+1)*ohw+p0 : (k0+1)*ohw+p0+cols]
		r2 := y[(k0+2)*ohw+p0 : (k0+2)*ohw+p0+cols]
		r3 := y[(k0+3)*ohw+p0 : (k0+3)*ohw+p0+cols]
		r4 := y[(k0+4)*ohw+p0 : (k0+4)*ohw+p0+cols]
		r5 := y[(k0+5)*ohw+p0 : (k0+5)*ohw+p0+cols]
		r6 := y[(k0+6)*ohw+p0 : (k0+6)*ohw+p0+cols]
		r7 := y[(k0+7)*ohw+p0 : (k0+7)*ohw+p0+cols]
		for i := done; i < cols; i++ {
			v := (*[8]float32)(c[i*ldc+k0 : i*ldc+k0+8])
			r0[i] = v[0] + bias[0]
			r1[i] = v[1] + bias[1]
			r2[i] = v[2] + bias[2]
			r3[i] = v[3] + bias[3]
			r4[i] = v[4] + bias[4]
			r5[i] = v[5] + bias[5]
			r6[i] = v[6] + bias[6]
			r7[i] = v[7] + bias[7]
		}
		for j := range 8 {
			o := (k0+j)*ohw + p0
			finishRow(y[o+done:o+cols], res, ep, o+done)
		}
	}
	for kk := k8; kk < k; kk++ {
		bias := float32(0)
		if b != nil {
			bias = b[kk]
		}
		row := y[kk*ohw+p0 : kk*ohw+p0+cols]
		for i := range row {
			row[i] = c[i*ldc+kk] + bias
		}
		finishRow(row, res, ep, kk*ohw+p0)
	}
}

// finishRow does the epilogue's affine step, residual add (from res at off) and ReLU on
// row, a span of the result just written, in one sweep.
func finishRow(row, res []float32, ep *Epilogue, off int) {
	relu := ep.Act == ActReLU
	switch {
	case !ep.Affine && res == nil && !relu:
	case !ep.Affine && res == nil:
		reluSpan(row, row)
	case !ep.Affine:
		r := res[off : off+len(row)]
		i := addReluVec(row, row, r, relu)
		for ; i < len(row); i++ {
			v := row[i] + r[i]
			if relu && v < 0 {
				v = 0
			}
			row[i] = v
		}
	default:
		var r []float32
		if res != nil {
			r = res[off : off+len(row)]
		}
		s, sh := ep.Scale, ep.Shift
		for i, v := range row {
			v = v*s + sh
			if r != nil {
				v += r[i]
			}
			if relu && v < 0 {
				v = 0
			}
			row[i] = v
		}
	}
}

// tapTable fills table[chunk·taps + tap] for the panels of task k. A panel is read with one
// run of mr values when its valid pixels read no padding; the values past the valid ones
// then come from beyond the row, harmlessly: they only reach tile rows that are never
// stored. The run must stay inside the channel plane, though.
func tapTable(table []int32, p Conv2dParams, g *implicitGeom, k *implicitTask, chunks int) {
	mr := g.mr
	plane := p.H * p.W
	for ch := range chunks {
		oy, ox, valid := k.chunk(ch, mr)
		col := table[ch*g.taps : (ch+1)*g.taps]
		for kh := range p.KH {
			iy := oy*p.StrideH - p.PadH + kh*p.DilH
			for kw := range p.KW {
				e := &col[kh*p.KW+kw]
				ix0 := ox*p.StrideW - p.PadW + kw*p.DilW
				switch {
				case iy < 0 || iy >= p.H:
					*e = tapZero
				case ix0 >= 0 && ix0+(valid-1)*p.StrideW < p.W && iy*p.W+ix0+(mr-1)*p.StrideW < plane:
					*e = int32(iy*p.W + ix0)
				default:
					*e = tapGather
				}
			}
		}
	}
}

// packPanel packs panel ch of task k for input channels [c0, c0+nc) into a, k-major: mr
// values for each (channel, tap), col holding the panel's tap table entries.
func packPanel(a, xn []float32, col []int32, p Conv2dParams, g *implicitGeom, k *implicitTask, ch, c0, nc int) {
	mr, taps := g.mr, g.taps
	plane := p.H * p.W
	src := xn[c0*plane:]
	if g.unitStride && packPanelVec(a, src, plane, col, nc, mr) {
		for tap, off := range col {
			if off != tapGather {
				continue
			}
			// The valid pixels that read the input form one run [lo, hi) of the panel row,
			// the same for every channel.
			oy, ox, valid := k.chunk(ch, mr)
			kh, kw := tap/p.KW, tap%p.KW
			offW := kw*p.DilW - p.PadW
			lo, hi := validRange(ox, ox+valid, 1, offW, p.W)
			base := (oy*p.StrideH-p.PadH+kh*p.DilH)*p.W + lo + offW
			lo, hi = lo-ox, hi-ox
			for c := range nc {
				d := a[(c*taps+tap)*mr : (c*taps+tap+1)*mr]
				clear(d[:lo])
				clear(d[hi:])
				s := src[c*plane+base : c*plane+base+hi-lo]
				for i, v := range s {
					d[lo+i] = v
				}
			}
		}
		return
	}
	sw := p.StrideW
	for c := range nc {
		xc := src[c*plane : (c+1)*plane]
		for tap, off := range col {
			d := a[(c*taps+tap)*mr : (c*taps+tap+1)*mr]
			switch {
			case off >= 0:
				if sw == 1 {
					copyPanelRow(d, xc[off:int(off)+mr])
					continue
				}
				s := xc[off:]
				for i := range d {
					d[i] = s[i*sw]
				}
			case off == tapZero:
				clear(d)
			default:
				oy, ox, valid := k.chunk(ch, mr)
				gatherPanelRow(d, xc, p, oy, ox, valid, tap)
			}
		}
	}
}

// copyPanelRow copies len(d) contiguous values; the usual widths move in 16-byte pieces,
// where copy would call memmove.
func copyPanelRow(d, s []float32) {
	switch len(d) {
	case 12:
		*(*[4]float32)(d[0:4]) = [4]float32(s[0:4])
		*(*[4]float32)(d[4:8]) = [4]float32(s[4:8])
		*(*[4]float32)(d[8:12]) = [4]float32(s[8:12])
	case 6:
		*(*[4]float32)(d[0:4]) = [4]float32(s[0:4])
		*(*[2]float32)(d[4:6]) = [2]float32(s[4:6])
	case 4:
		*(*[4]float32)(d) = [4]float32(s)
	default:
		copy(d, s)
	}
}

// gatherPanelRow fills d with the input values that tap reads for the valid output pixels
// (oy, ox) … (oy, ox+valid−1) of xc's image, zero where the tap reads padding and past them.
func gatherPanelRow(d, xc []float32, p Conv2dParams, oy, ox, valid, tap int) {
	kh, kw := tap/p.KW, tap%p.KW
	offW := kw*p.DilW - p.PadW
	iy := oy*p.StrideH - p.PadH + kh*p.DilH
	lo, hi := validRange(ox, ox+valid, p.StrideW, offW, p.W)
	clear(d[:lo-ox])
	clear(d[hi-ox:])
	xr := xc[iy*p.W : (iy+1)*p.W]
	ix := lo*p.StrideW + offW
	for j := lo - ox; j < hi-ox; j++ {
		d[j] = xr[ix]
		ix += p.StrideW
	}
}
