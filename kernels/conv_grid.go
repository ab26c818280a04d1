package kernels

import (
	"unsafe"
)

// Implicit-GEMM convolution on the padded grid, for stride 1 and dilation 1. The input is
// laid out (copied, when the convolution pads) with rows of pitch W+PW whose last PW values
// are zeros, which serve as the right padding of one row and the left padding of the next,
// between PH zero rows above and below. Output pixel (oy, ox) then reads, for tap (kh, kw),
// the value at g + kh·pitch + kw, where g = oy·pitch + ox is its index on the grid of OH rows
// of pitch columns. Consecutive grid pixels read consecutive values, whatever row they are
// on, so the micro-panels of mr pixels run on across rows and each is packed with one run
// per (channel, tap), without bounds tests. The grid's columns past OW are computed and
// dropped: PW of every W+PW (3×3 convolutions: one in 17 at 16², one in 65 at 64²), where
// panels cut at the end of each row waste mr − W mod mr of every W (one in 3 at 16²).
//
// Stride 2 runs on the same grid after a polyphase split: tap (kh, kw) reads phase
// (kh mod 2, kw mod 2) of the padded input, the plane of its values at (2i + kh mod 2,
// 2j + kw mod 2), at (oy + kh div 2, ox + kw div 2). The four phases of a channel are laid
// out one after the other with pitch OW + (KW−1) div 2, so a tap is again a fixed offset
// from the grid pixel, and the packing reads runs of consecutive values.
//
// A task is a block of panels of one image and a block of output-channel panels: images too
// small to give every worker pixel blocks are split by output channels instead, so that the
// weights are not streamed once per worker for a handful of pixels.

// gridTileFloats bounds a task's result tile (pixels × output channels, in floats): the
// tile stays in L2 while the depth steps accumulate onto it.
var gridTileFloats = 1 << 17

// gridFits reports whether the grid path suits p (already normalized): one group, strides
// 1 or 2 (the same both ways), dilation 1, output channels that fill the micro-kernel's
// columns.
func gridFits(p Conv2dParams) bool {
	return implicitFits(p) && p.StrideH == p.StrideW && p.StrideH <= 2 && p.DilH == 1 && p.DilW == 1 &&
		p.KH*p.KW <= maxGridTaps
}

// maxGridTaps bounds KH·KW on the grid path (the tap offsets live in an array).
const maxGridTaps = 64

type gridGeom struct {
	oh, ow, ohw  int
	pitch        int  // columns of the grid and of the laid-out input rows
	padded       bool // the input is copied into a padded layout (else read as it lies)
	plane        int  // floats per input channel as laid out
	grid         int  // grid pixels per image: (oh−1)·pitch + ow
	panels       int  // pixel panels per image
	safePanels   int  // panels whose runs stay inside the channel plane (the vector packer's)
	taps         int  // KH·KW
	stride       int
	phaseSize    int                // floats per phase plane (stride 2)
	tapOff       [maxGridTaps]int32 // where tap t reads, relative to the grid pixel
	kTot, kc     int                // GEMM depth, depth per step (whole channels)
	wPanels, ldc int                // weight panels, tile row stride (a K block's columns)
	perBlock     int                // pixel panels per task
	blocks       int                // pixel blocks per image
	kPer, kParts int                // weight panels per K block, K blocks
	mr, nr       int
}

func newGridGeom(p Conv2dParams, kr *microKernel) gridGeom {
	g := gridGeom{mr: kr.mr, nr: kr.nr}
	g.setLayout(p, g.mr, false)
	g.kTot = p.C * g.taps
	steps := min((g.kTot+implicitKC-1)/implicitKC, p.C)
	g.kc = (p.C + steps - 1) / steps * g.taps
	g.wPanels = (p.K + g.nr - 1) / g.nr

	// Pixel blocks within the tile budget; K blocks when the pixel blocks are too few (every
	// pixel block streams the weights of its K block); then as many tasks as make the
	// workers' contiguous shares even, when the pixel blocks allow.
	g.blocks = (g.panels*g.mr*g.wPanels*g.nr + gridTileFloats - 1) / gridTileFloats
	g.blocks = max(1, min(g.panels, g.blocks))
	g.kParts = 1
	if w := Workers(); w > 1 {
		if want := w * minTasksPerWorker; p.N*g.blocks < want {
			g.kParts = min(g.wPanels, (want+p.N*g.blocks-1)/(p.N*g.blocks))
		}
		for p.N*g.blocks*g.kParts%w != 0 && g.blocks < g.panels {
			g.blocks++
		}
	}
	g.perBlock = (g.panels + g.blocks - 1) / g.blocks
	g.blocks = (g.panels + g.perBlock - 1) / g.perBlock
	g.kPer = (g.wPanels + g.kParts - 1) / g.kParts
	g.kParts = (g.wPanels + g.kPer - 1) / g.kPer
	g.ldc = g.kPer * g.nr
	return g
}

// setLayout fills the layout of the grid for p: pitch, phases, tap offsets, the laid-out
// plane, and panels of width pixels, the last of which may read width − 1 values past the
// last grid pixel's reach. forceCopy lays the input out even when it could be read as it
// lies.
func (g *gridGeom) setLayout(p Conv2dParams, width int, forceCopy bool) {
	g.oh, g.ow, g.taps, g.stride = p.OutH(), p.OutW(), p.KH*p.KW, p.StrideH
	g.ohw = g.oh * g.ow
	g.padded = p.PadH > 0 || p.PadW > 0 || g.stride > 1 || forceCopy
	g.pitch = p.W
	if g.padded {
		// One gap of PadW zeros between rows pads a row's right and the next one's left;
		// a padding wider than the kernel needs (PadW > KW−1) makes an output row longer
		// than that (ow > W+PadW), and the gap must then hold both sides.
		g.pitch = max(p.W+p.PadW, g.ow+p.KW-1)
	}
	if g.stride > 1 {
		s := g.stride
		g.pitch = g.ow + (p.KW-1)/s
		g.phaseSize = (g.oh + (p.KH-1)/s) * g.pitch
	}
	for kh := range p.KH {
		for kw := range p.KW {
			off := kh*g.pitch + kw
			if s := g.stride; s > 1 {
				off = (kh%s*s+kw%s)*g.phaseSize + kh/s*g.pitch + kw/s
			}
			g.tapOff[kh*p.KW+kw] = int32(off)
		}
	}
	g.grid = (g.oh-1)*g.pitch + g.ow
	g.panels = (g.grid + width - 1) / width
	// The furthest a panel reads: its last pixel's last tap.
	reach := int(g.tapOff[g.taps-1]) + width
	switch {
	case g.stride > 1:
		// Each phase holds every value its taps read for the valid pixels.
		g.plane = g.stride*g.stride*g.phaseSize + width
		g.safePanels = g.panels
	case g.padded:
		g.plane = (p.H+2*p.PadH)*g.pitch + p.PadW + width
		g.safePanels = g.panels
	default:
		g.plane = p.H * p.W
		if g.plane >= reach {
			g.safePanels = min(g.panels, (g.plane-reach)/width+1)
		}
	}
}

type gridJob struct {
	y, x, b, xl []float32 // xl: the input as laid out (x itself when not padded)
	wp          *packedWeights
	p           Conv2dParams
	ep          Epilogue
	g           gridGeom
	layout      bool // the job's phase: laying out the input, or the tasks
}

var gridJobs pool

func conv2dGrid(y, x []float32, w Weights, b []float32, p Conv2dParams, ep *Epilogue) {
	kr := gemmKernel
	g := newGridGeom(p, kr)
	wp, scratch := w.kernelPanels(kr, p.K, g.kTot)
	if scratch {
		defer releasePacked(wp)
	}
	j, ok := gridJobs.Get().(*gridJob)
	if !ok {
		j = new(gridJob)
	}
	*j = gridJob{y: y, x: x, b: b, xl: x, wp: wp, p: p, ep: *ep, g: g}
	if g.padded {
		buf := getScratch(p.N * p.C * g.plane)
		defer putScratch(buf)
		j.xl = *buf
		j.layout = true
		layoutPlanes(j, p.N*p.C, g.plane)
		j.layout = false
	}
	tasks := p.N * g.blocks * g.kParts
	parallelRun(tasks, j) // on this goroutine when there is one worker or one task
	*j = gridJob{}
	gridJobs.Put(j)
}

// layoutPlanes runs the layout phase of a convolution job over planes planes of plane
// elements: on the workers unless the copy is too small to share.
func layoutPlanes(j rangeJob, planes, plane int) {
	if serial(planes * plane) {
		j.run(0, planes)
		return
	}
	parallelRun(planes, j)
}

func (j *gridJob) run(lo, hi int) {
	if j.layout {
		if j.g.stride > 1 {
			layoutPhases(j.xl, j.x, &j.p, &j.g, lo, hi)
		} else {
			layoutPadded(j.xl, j.x, &j.p, &j.g, lo, hi)
		}
		return
	}
	gridTasks(j, lo, hi)
}

// layoutPadded copies input planes [lo, hi) (image·channel) of x into the padded layout:
// PH zero rows of pitch, then each row's W values followed by PW zeros, PH zero rows and
// zeros to the plane's end (the slack the last panels read), all after PW leading zeros.
func layoutPadded(dst, x []float32, p *Conv2dParams, g *gridGeom, lo, hi int) {
	plane := p.H * p.W
	for t := lo; t < hi; t++ {
		d := dst[t*g.plane : (t+1)*g.plane]
		s := x[t*plane : (t+1)*plane]
		head := p.PadH*g.pitch + p.PadW
		clear(d[:head])
		for r := range p.H {
			row := d[head+r*g.pitch : head+(r+1)*g.pitch]
			copy(row, s[r*p.W:(r+1)*p.W])
			clear(row[p.W:])
		}
		clear(d[head+p.H*g.pitch:])
	}
}

// layoutPhases copies input planes [lo, hi) (image·channel) of x into the stride-s polyphase
// layout: phase (a, b) at (a·s+b)·phaseSize holds, at i·pitch + j, the padded input's value
// at (s·i+a, s·j+b) (zero in the padding), followed by zeros to the plane's end.
func layoutPhases(dst, x []float32, p *Conv2dParams, g *gridGeom, lo, hi int) {
	plane, s := p.H*p.W, g.stride
	rows := g.phaseSize / g.pitch
	for t := lo; t < hi; t++ {
		d := dst[t*g.plane : (t+1)*g.plane]
		xc := x[t*plane : (t+1)*plane]
		for a := range s {
			for b := range s {
				ph := d[(a*s+b)*g.phaseSize : (a*s+b+1)*g.phaseSize]
				// Columns j read input column s·j + b − PW: those in [0, W).
				jlo, jhi := validRange(0, g.pitch, s, b-p.PadW, p.W)
				for i := range rows {
					row := ph[i*g.pitch : (i+1)*g.pitch]
					iy := s*i + a - p.PadH
					if iy < 0 || iy >= p.H || jlo >= jhi {
						clear(row)
						continue
					}
					clear(row[:jlo])
					clear(row[jhi:])
					xr := xc[iy*p.W : (iy+1)*p.W]
					ix := s*jlo + b - p.PadW
					for j := jlo; j < jhi; j++ {
						row[j] = xr[ix]
						ix += s
					}
				}
			}
		}
		clear(d[s*s*g.phaseSize:])
	}
}

// gridTasks computes tasks [lo, hi): task t is K block t%kParts of pixel block
// (t/kParts)%blocks of image t/(kParts·blocks).
func gridTasks(j *gridJob, lo, hi int) {
	p, g, ep := &j.p, &j.g, &j.ep
	kr := gemmKernel
	mr, nr := g.mr, g.nr
	wp := j.wp
	var hk halfKernel
	if wp.format != WeightF32 {
		hk = kr.halfFn(wp.format)
	}
	na, nc := mr*g.kc, g.perBlock*mr*g.ldc
	buf := getScratch(na + nc + g.taps)
	defer putScratch(buf)
	a, c := (*buf)[:na], (*buf)[na:na+nc]
	offs := asInt32((*buf)[na+nc : na+nc+g.taps])
	for t := lo; t < hi; t++ {
		kq := t % g.kParts
		blk := t / g.kParts % g.blocks
		n := t / (g.kParts * g.blocks)
		q0 := kq * g.kPer
		q1 := min(g.wPanels, q0+g.kPer)
		k0, k1 := q0*nr, min(p.K, q1*nr)
		pan0 := blk * g.perBlock
		pan1 := min(g.panels, pan0+g.perBlock)
		xn := j.xl[n*p.C*g.plane : (n+1)*p.C*g.plane]
		for pc := 0; pc < g.kTot; pc += g.kc {
			kb := min(g.kc, g.kTot-pc)
			c0, ncs := pc/g.taps, kb/g.taps
			beta := float32(0)
			if pc > 0 {
				beta = 1
			}
			for pan := pan0; pan < pan1; pan++ {
				ap := a[:kb*mr]
				gridPackPanel(ap, xn[c0*g.plane:], offs, p, g, pan, ncs)
				ct := c[(pan-pan0)*mr*g.ldc:]
				for q := q0; q < q1; q++ {
					off := q*g.kTot*nr + pc*nr
					if hk != nil {
						hk(kb, ap, wp.half[off:off+kb*nr], ct[(q-q0)*nr:], g.ldc, 1, beta)
					} else {
						kr.fn(kb, ap, wp.f32[off:off+kb*nr], ct[(q-q0)*nr:], g.ldc, 1, beta)
					}
				}
			}
		}
		// Store the valid grid pixels, output row by output row, channels [k0, k1).
		yn := j.y[(n*p.K+k0)*g.ohw:]
		var res []float32
		if ep.Residual != nil {
			res = ep.Residual[(n*p.K+k0)*g.ohw:]
		}
		var bias []float32
		if j.b != nil {
			bias = j.b[k0:k1]
		}
		g0, g1 := pan0*mr, min(g.grid, pan1*mr)
		for oy := g0 / g.pitch; oy*g.pitch < g1; oy++ {
			lo, hi := max(g0, oy*g.pitch), min(g1, oy*g.pitch+g.ow)
			if lo >= hi {
				continue
			}
			ox := lo - oy*g.pitch
			storeTransposed(yn, c[(lo-g0)*g.ldc:], bias, res, ep, k1-k0, g.ohw, oy*g.ow+ox, hi-lo, g.ldc)
			if ep.Act != ActNone && ep.Act != ActReLU {
				for ch := range k1 - k0 {
					o := ch*g.ohw + oy*g.ow + ox
					ep.Act.Apply(yn[o:o+hi-lo], yn[o:o+hi-lo])
				}
			}
		}
	}
}

// gridPackPanel packs pixel panel pan for nc input channels from src (the laid-out input
// from the first of them) into a, k-major: mr values for each (channel, tap).
func gridPackPanel(a, src []float32, offs []int32, p *Conv2dParams, g *gridGeom, pan, nc int) {
	mr := g.mr
	g0 := int32(pan * mr)
	for t := range g.taps {
		offs[t] = g0 + g.tapOff[t]
	}
	if pan < g.safePanels {
		if packPanelVec(a, src, g.plane, offs, nc, mr) {
			return
		}
		for c := range nc {
			xc := src[c*g.plane : (c+1)*g.plane]
			for tap, off := range offs {
				copyPanelRow(a[(c*g.taps+tap)*mr:(c*g.taps+tap+1)*mr], xc[off:int(off)+mr])
			}
		}
		return
	}
	// A last panel of an unpadded input: its runs may pass the channel plane's end; the
	// values there only reach grid pixels past the last, which are dropped.
	for c := range nc {
		xc := src[c*g.plane : (c+1)*g.plane]
		for tap, off := range offs {
			d := a[(c*g.taps+tap)*mr : (c*g.taps+tap+1)*mr]
			end := min(int(off)+mr, len(xc))
			n := copy(d, xc[min(int(off), end):end])
			clear(d[n:])
		}
	}
}

// asInt32 views float32 scratch as int32s (the types have one size).
func asInt32(s []float32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&s[0])), len(s))
}
