package kernels

// convScratchFloats bounds the im2col / col2im buffer of one worker (floats). Tiling the
// output pixels by it keeps the buffer in L2-sized pieces even for 512×512 images.
var convScratchFloats = 1 << 19

// minTasksPerWorker is how many tasks per worker a conv splits into when it can, so that
// uneven tiles still balance.
const minTasksPerWorker = 2

// Conv2dParams describes a 2-D convolution as PyTorch's F.conv2d: input [N, C, H, W],
// weight [K, C/Groups, KH, KW], output [N, K, OutH, OutW]. Stride, dilation and groups of 0
// mean 1.
type Conv2dParams struct {
	N, C, H, W       int
	K, KH, KW        int
	StrideH, StrideW int
	PadH, PadW       int
	DilH, DilW       int
	Groups           int
}

func orOne(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

func (p Conv2dParams) normalized() Conv2dParams {
	p.StrideH, p.StrideW = orOne(p.StrideH), orOne(p.StrideW)
	p.DilH, p.DilW = orOne(p.DilH), orOne(p.DilW)
	p.Groups = orOne(p.Groups)
	return p
}

// OutH is the output height: (H + 2·PadH − DilH·(KH−1) − 1)/StrideH + 1.
func (p Conv2dParams) OutH() int {
	p = p.normalized()
	return (p.H+2*p.PadH-p.DilH*(p.KH-1)-1)/p.StrideH + 1
}

// OutW is the output width.
func (p Conv2dParams) OutW() int {
	p = p.normalized()
	return (p.W+2*p.PadW-p.DilW*(p.KW-1)-1)/p.StrideW + 1
}

// Conv2d computes y = conv2d(x, w) + b. x is [N, C, H, W], w is [K, C/Groups, KH, KW], b is
// [K] or nil, y is [N, K, OutH, OutW]. Paths: convolutions with one group and enough output
// channels to fill the GEMM micro-kernel are implicit GEMMs (conv_implicit.go: no column
// matrix); convolutions with one input channel per group (depthwise) are computed directly
// (vectorized row updates); other 1×1 stride-1 unpadded convolutions are a GEMM on the input
// as it lies; one-group convolutions with few output channels (an RGB output) are computed
// directly too (conv_direct.go); everything else goes through im2col + Sgemm per group, tiled over output pixels
// (and, for wide layers, input-channel chunks) so the column buffer stays near
// convScratchFloats per worker. Scratch comes from pools.
func Conv2d(y, x, w, b []float32, p Conv2dParams) { Conv2dFused(y, x, w, b, p, Epilogue{}) }

// Conv2dFused is Conv2d followed by the epilogue ep (its residual laid out as y), applied
// to each tile of the output right after the tile is computed.
func Conv2dFused(y, x, w, b []float32, p Conv2dParams, ep Epilogue) {
	Conv2dFusedW(y, x, F32Weights(w), b, p, ep)
}

// Conv2dW is Conv2d with weights of any precision, packed or not (see Weights); the bias
// stays float32.
func Conv2dW(y, x []float32, w Weights, b []float32, p Conv2dParams) {
	Conv2dFusedW(y, x, w, b, p, Epilogue{})
}

// Conv2dFusedW is Conv2dFused with weights of any precision, packed or not. The
// implicit-GEMM path (one group, enough output channels: all of Stable Diffusion's 3×3 and
// 1×1 convolutions but the last) reads packed weights as they lie and widens half-precision
// ones while packing them; the other paths widen or unpack them into scratch first.
func Conv2dFusedW(y, x []float32, w Weights, b []float32, p Conv2dParams, ep Epilogue) {
	p = p.normalized()
	if p.N == 0 || p.K == 0 || p.OutH() <= 0 || p.OutW() <= 0 {
		return
	}
	ep.check(p.N * p.K * p.OutH() * p.OutW())
	cg := p.C / p.Groups
	switch {
	case winoFits(p):
		conv2dWinograd(y, x, w, b, p, &ep)
		return
	case gridFits(p) && cg > 1:
		conv2dGrid(y, x, w, b, p, &ep)
		return
	case implicitFits(p) && cg > 1:
		conv2dImplicit(y, x, w, b, p, &ep)
		return
	}
	wf, buf := w.matrix(p.K, cg*p.KH*p.KW)
	switch {
	case cg == 1:
		conv2dDepthwise(y, x, wf, b, p, &ep)
	case p.KH == 1 && p.KW == 1 && p.StrideH == 1 && p.StrideW == 1 && p.PadH == 0 && p.PadW == 0:
		conv2dPointwise(y, x, wf, b, p, &ep)
	case p.K <= 2*smallKRows && smallKFits(p):
		conv2dSmallK(y, x, wf, b, p, &ep)
	case p.Groups == 1 && p.K <= directMaxK:
		conv2dDirect(y, x, wf, b, p, &ep)
	default:
		conv2dIm2col(y, x, wf, b, p, &ep)
	}
	if buf != nil {
		putScratch(buf)
	}
}

// applyRows runs ep over rows [k0, k0+rows) of a [*, ld] block of y starting at element
// yo, columns [0, cols).
func (e *Epilogue) applyRows(y []float32, yo, ld, cols, rows int) {
	if e.empty() {
		return
	}
	for k := range rows {
		o := yo + k*ld
		e.apply(y[o:o+cols], o)
	}
}

// pixelTile picks how many output pixels one task covers: at most limit (the scratch
// bound), and small enough that there are a few tasks per worker.
func pixelTile(pixels, images, limit int) int {
	t := pixels
	want := Workers() * minTasksPerWorker
	if images < want {
		per := (want + images - 1) / images
		t = max((pixels+per-1)/per, 64)
	}
	t = min(t, max(limit, 1), pixels)
	return max(t, 1)
}

// fillBias sets rows [k0, k0+rows) of a [*, ld] matrix, columns [c0, c0+cols), to b[k] (or 0).
func fillBias(y []float32, ld, c0, cols, k0, rows int, b []float32) {
	for k := range rows {
		v := float32(0)
		if b != nil {
			v = b[k0+k]
		}
		row := y[k*ld+c0 : k*ld+c0+cols]
		for i := range row {
			row[i] = v
		}
	}
}

func conv2dPointwise(y, x, w, b []float32, p Conv2dParams, ep *Epilogue) {
	hw := p.H * p.W
	images := p.N * p.Groups
	tile := pixelTile(hw, images, hw)
	tiles := (hw + tile - 1) / tile
	runConvTasks(pointwiseTiles, y, x, w, b, p, ep, tile, images*tiles)
}

// convBody computes tasks [lo, hi) of a convolution. tile is the body's own task size
// where it has one (output pixels per task); nested: it runs on a worker of the parallel
// kernel.
type convBody func(y, x, w, b []float32, p Conv2dParams, ep Epilogue, tile, lo, hi int, nested bool)

// runConvTasks runs tasks [0, n) of body: on the calling goroutine when there is one worker
// or one task, else spread over the workers.
func runConvTasks(body convBody, y, x, w, b []float32, p Conv2dParams, ep *Epilogue, tile, n int) {
	if Workers() == 1 || n == 1 {
		body(y, x, w, b, p, *ep, tile, 0, n, false)
		return
	}
	runPooled(&convJobs, n, convJob{y, x, w, b, p, *ep, tile, body})
}

type convJob struct {
	y, x, w, b []float32
	p          Conv2dParams
	ep         Epilogue
	tile       int
	body       convBody
}

var convJobs pool

func (j *convJob) run(lo, hi int) { j.body(j.y, j.x, j.w, j.b, j.p, j.ep, j.tile, lo, hi, true) }

// pointwiseTiles computes tasks [lo, hi) of a 1×1 convolution: task t is pixel tile
// t%tiles of image·group t/tiles. nested: it runs on a worker of the parallel kernel.
func pointwiseTiles(y, x, w, b []float32, p Conv2dParams, ep Epilogue, tile, lo, hi int, nested bool) {
	gemm := sgemmFor(nested)
	hw := p.H * p.W
	cg, kg := p.C/p.Groups, p.K/p.Groups
	tiles := (hw + tile - 1) / tile
	for t := lo; t < hi; t++ {
		img, p0 := t/tiles, (t%tiles)*tile
		n, g := img/p.Groups, img%p.Groups
		cols := min(tile, hw-p0)
		yo := (n*p.K+g*kg)*hw + p0
		beta := float32(0)
		if b != nil {
			fillBias(y[yo:], hw, 0, cols, g*kg, kg, b)
			beta = 1
		}
		gemm(false, false, kg, cols, cg, 1, w[g*kg*cg:], cg, x[(n*p.C+g*cg)*hw+p0:], hw, beta, y[yo:], hw)
		ep.applyRows(y, yo, hw, cols, kg)
	}
}

func conv2dIm2col(y, x, w, b []float32, p Conv2dParams, ep *Epilogue) {
	oh, ow := p.OutH(), p.OutW()
	ohw := oh * ow
	rowsK := p.C / p.Groups * p.KH * p.KW
	images := p.N * p.Groups
	tile := pixelTile(ohw, images, max(minIm2colTile, convScratchFloats/rowsK))
	tiles := (ohw + tile - 1) / tile
	runConvTasks(im2colTiles, y, x, w, b, p, ep, tile, images*tiles)
}

// minIm2colTile is the fewest output pixels an im2col GEMM covers when the scratch bound
// allows fewer: below it the GEMM streams the weights once per handful of pixels. Wide
// layers instead split the input channels into chunks (see im2colTiles).
const minIm2colTile = 256

// im2colTiles computes tasks [lo, hi) of an im2col convolution: task t is output-pixel tile
// t%tiles of image·group t/tiles. When the columns of all input channels would exceed the
// scratch bound, they are built and multiplied a chunk of channels at a time, accumulating
// into y.
func im2colTiles(y, x, w, b []float32, p Conv2dParams, ep Epilogue, tile, lo, hi int, nested bool) {
	gemm := sgemmFor(nested)
	oh, ow := p.OutH(), p.OutW()
	ohw := oh * ow
	cg, kg := p.C/p.Groups, p.K/p.Groups
	kk := p.KH * p.KW
	rowsK := cg * kk
	chunk := min(cg, max(1, convScratchFloats/(tile*kk))) // input channels per GEMM
	tiles := (ohw + tile - 1) / tile
	buf := getScratch(chunk * kk * tile)
	defer putScratch(buf)
	for t := lo; t < hi; t++ {
		img, p0 := t/tiles, (t%tiles)*tile
		n, g := img/p.Groups, img%p.Groups
		cols := min(tile, ohw-p0)
		yo := (n*p.K+g*kg)*ohw + p0
		beta := float32(0)
		if b != nil {
			fillBias(y[yo:], ohw, 0, cols, g*kg, kg, b)
			beta = 1
		}
		for c0 := 0; c0 < cg; c0 += chunk {
			nc := min(chunk, cg-c0)
			colBuf := (*buf)[:nc*kk*cols]
			im2col(colBuf, x[(n*p.C+g*cg+c0)*p.H*p.W:], nc, p, ow, p0, cols)
			gemm(false, false, kg, cols, nc*kk, 1, w[g*kg*rowsK+c0*kk:], rowsK, colBuf, cols, beta, y[yo:], ohw)
			beta = 1
		}
		ep.applyRows(y, yo, ohw, cols, kg)
	}
}

// validRange returns the sub-range [a, b) of [lo, hi) of the o with 0 ≤ o·stride+off < size
// (lo ≤ a ≤ b ≤ hi; a == b when there is none).
func validRange(lo, hi, stride, off, size int) (int, int) {
	a, b := lo, hi
	if off < 0 { // o·stride ≥ −off
		a = max(a, (-off+stride-1)/stride)
	}
	if last := size - 1 - off; last < 0 { // o·stride ≤ size−1−off
		b = lo
	} else {
		b = min(b, last/stride+1)
	}
	a = min(a, hi)
	return a, max(a, b)
}

// im2col writes the [cg·KH·KW, cols] column matrix for output pixels [p0, p0+cols) of one
// image and group (x points at its first input channel).
func im2col(dst, x []float32, cg int, p Conv2dParams, ow, p0, cols int) {
	plane := p.H * p.W
	r := 0
	for c := range cg {
		xc := x[c*plane : (c+1)*plane]
		for kh := range p.KH {
			for kw := range p.KW {
				row := dst[r*cols : (r+1)*cols]
				r++
				offW := kw*p.DilW - p.PadW
				for i := 0; i < cols; {
					pix := p0 + i
					oy, ox0 := pix/ow, pix%ow
					ox1 := min(ow, ox0+cols-i)
					seg := row[i : i+ox1-ox0]
					i += ox1 - ox0
					iy := oy*p.StrideH - p.PadH + kh*p.DilH
					if iy < 0 || iy >= p.H {
						clear(seg)
						continue
					}
					xr := xc[iy*p.W : (iy+1)*p.W]
					lo, hi := validRange(ox0, ox1, p.StrideW, offW, p.W)
					clear(seg[:lo-ox0])
					clear(seg[hi-ox0:])
					if lo == hi {
						continue
					}
					if p.StrideW == 1 {
						copy(seg[lo-ox0:hi-ox0], xr[lo+offW:hi+offW])
					} else {
						ix := lo*p.StrideW + offW
						for j := lo - ox0; j < hi-ox0; j++ {
							seg[j] = xr[ix]
							ix += p.StrideW
						}
					}
				}
			}
		}
	}
}

// conv2dDepthwise handles one input channel per group: output channel k reads input
// channel k/(K/C) only, so a direct loop beats a GEMM with an inner dimension of KH·KW.
func conv2dDepthwise(y, x, w, b []float32, p Conv2dParams, ep *Epilogue) {
	runConvTasks(depthwisePlanes, y, x, w, b, p, ep, 1, p.N*p.K)
}

// depthwisePlanes computes output planes [lo, hi) (image·output channel) of a depthwise
// convolution.
func depthwisePlanes(y, x, w, b []float32, p Conv2dParams, ep Epilogue, _, lo, hi int, _ bool) {
	oh, ow := p.OutH(), p.OutW()
	mult := p.K / p.C
	plane := p.H * p.W
	for t := lo; t < hi; t++ {
		n, k := t/p.K, t%p.K
		xc := x[(n*p.C+k/mult)*plane : (n*p.C+k/mult+1)*plane]
		wk := w[k*p.KH*p.KW : (k+1)*p.KH*p.KW]
		yk := y[t*oh*ow : (t+1)*oh*ow]
		bias := float32(0)
		if b != nil {
			bias = b[k]
		}
		for oy := range oh {
			yr := yk[oy*ow : (oy+1)*ow]
			for i := range yr {
				yr[i] = bias
			}
			for kh := range p.KH {
				iy := oy*p.StrideH - p.PadH + kh*p.DilH
				if iy < 0 || iy >= p.H {
					continue
				}
				xr := xc[iy*p.W : (iy+1)*p.W]
				for kw := range p.KW {
					wv := wk[kh*p.KW+kw]
					off := kw*p.DilW - p.PadW
					lo, hi := validRange(0, ow, p.StrideW, off, p.W)
					if lo == hi {
						continue
					}
					if p.StrideW == 1 {
						axpy(yr[lo:hi], xr[lo+off:hi+off], wv)
					} else {
						ix := lo*p.StrideW + off
						for ox := lo; ox < hi; ox++ {
							yr[ox] += wv * xr[ix]
							ix += p.StrideW
						}
					}
				}
			}
		}
		if !ep.empty() {
			ep.apply(yk, t*oh*ow)
		}
	}
}

// ConvTranspose2dParams describes PyTorch's F.conv_transpose2d: input [N, C, H, W], weight
// [C, K/Groups, KH, KW], output [N, K, OutH, OutW]. Stride, dilation and groups of 0 mean 1.
type ConvTranspose2dParams struct {
	N, C, H, W       int
	K, KH, KW        int
	StrideH, StrideW int
	PadH, PadW       int
	OutPadH, OutPadW int
	DilH, DilW       int
	Groups           int
}

func (p ConvTranspose2dParams) normalized() ConvTranspose2dParams {
	p.StrideH, p.StrideW = orOne(p.StrideH), orOne(p.StrideW)
	p.DilH, p.DilW = orOne(p.DilH), orOne(p.DilW)
	p.Groups = orOne(p.Groups)
	return p
}

// OutH is (H−1)·StrideH − 2·PadH + DilH·(KH−1) + OutPadH + 1.
func (p ConvTranspose2dParams) OutH() int {
	p = p.normalized()
	return (p.H-1)*p.StrideH - 2*p.PadH + p.DilH*(p.KH-1) + p.OutPadH + 1
}

// OutW is (W−1)·StrideW − 2·PadW + DilW·(KW−1) + OutPadW + 1.
func (p ConvTranspose2dParams) OutW() int {
	p = p.normalized()
	return (p.W-1)*p.StrideW - 2*p.PadW + p.DilW*(p.KW-1) + p.OutPadW + 1
}

// ConvTranspose2d computes y = conv_transpose2d(x, w) + b. x is [N, C, H, W], w is
// [C, K/Groups, KH, KW] (PyTorch layout), b is [K] or nil, y is [N, K, OutH, OutW].
// Per group, a GEMM Wᵀ·X gives every (output channel, kh, kw) contribution of a tile of
// input pixels, and col2im adds them into place. Tasks own disjoint output channels, so
// the scatter needs no locking.
func ConvTranspose2d(y, x, w, b []float32, p ConvTranspose2dParams) {
	ConvTranspose2dW(y, x, F32Weights(w), b, p)
}

// ConvTranspose2dW is ConvTranspose2d with weights of any precision (w holds the
// [C, K/Groups·KH·KW] matrix), widened or unpacked into scratch first.
func ConvTranspose2dW(y, x []float32, wt Weights, b []float32, p ConvTranspose2dParams) {
	p = p.normalized()
	w, buf := wt.matrix(p.C, p.K/p.Groups*p.KH*p.KW)
	if buf != nil {
		defer putScratch(buf)
	}
	oh, ow := p.OutH(), p.OutW()
	if p.N == 0 || p.K == 0 || oh <= 0 || ow <= 0 {
		return
	}
	kg := p.K / p.Groups
	images := p.N * p.Groups
	// Split each group's output channels into blocks when images alone are too few tasks.
	blocks := 1
	if want := Workers() * minTasksPerWorker; images < want {
		blocks = min(kg, (want+images-1)/images)
	}
	per := (kg + blocks - 1) / blocks
	blocks = (kg + per - 1) / per
	if Workers() == 1 || images*blocks == 1 {
		convTransposeTasks(y, x, w, b, p, blocks, per, 0, images*blocks, false)
		return
	}
	runPooled(&convTransposeJobs, images*blocks, convTransposeJob{y, x, w, b, p, blocks, per})
}

type convTransposeJob struct {
	y, x, w, b  []float32
	p           ConvTranspose2dParams
	blocks, per int
}

var convTransposeJobs pool

func (j *convTransposeJob) run(lo, hi int) {
	convTransposeTasks(j.y, j.x, j.w, j.b, j.p, j.blocks, j.per, lo, hi, true)
}

// convTransposeTasks computes tasks [lo, hi) of ConvTranspose2d: task t is output-channel
// block t%blocks (of per channels) of image·group t/blocks.
func convTransposeTasks(y, x, w, b []float32, p ConvTranspose2dParams, blocks, per, lo, hi int, nested bool) {
	gemm := sgemmFor(nested)
	oh, ow := p.OutH(), p.OutW()
	hw, ohw := p.H*p.W, oh*ow
	cg, kg := p.C/p.Groups, p.K/p.Groups
	kk := p.KH * p.KW
	tile := max(1, min(hw, convScratchFloats/(per*kk)))
	buf := getScratch(per * kk * tile)
	defer putScratch(buf)
	for t := lo; t < hi; t++ {
		img, blk := t/blocks, t%blocks
		n, g := img/p.Groups, img%p.Groups
		k0 := blk * per
		nk := min(per, kg-k0)
		yo := (n*p.K + g*kg + k0) * ohw
		fillBias(y[yo:], ohw, 0, ohw, g*kg+k0, nk, b)
		xo := (n*p.C + g*cg) * hw
		for p0 := 0; p0 < hw; p0 += tile {
			cols := min(tile, hw-p0)
			c := (*buf)[:nk*kk*cols]
			// c[(k, kh, kw), pixel] = Σ_ci w[g·cg+ci, k0+k, kh, kw] · x[ci, pixel]
			gemm(true, false, nk*kk, cols, cg, 1, w[g*cg*kg*kk+k0*kk:], kg*kk, x[xo+p0:], hw, 0, c, cols)
			col2im(y[yo:], c, nk, p, oh, ow, p0, cols)
		}
	}
}

// col2im adds the [nk·KH·KW, cols] contributions of input pixels [p0, p0+cols) into nk
// output planes of size oh×ow.
func col2im(y, c []float32, nk int, p ConvTranspose2dParams, oh, ow, p0, cols int) {
	r := 0
	for k := range nk {
		yk := y[k*oh*ow : (k+1)*oh*ow]
		for kh := range p.KH {
			for kw := range p.KW {
				row := c[r*cols : (r+1)*cols]
				r++
				offW := kw*p.DilW - p.PadW
				for i := 0; i < cols; {
					pix := p0 + i
					iy, ix0 := pix/p.W, pix%p.W
					ix1 := min(p.W, ix0+cols-i)
					seg := row[i : i+ix1-ix0]
					i += ix1 - ix0
					oy := iy*p.StrideH - p.PadH + kh*p.DilH
					if oy < 0 || oy >= oh {
						continue
					}
					yr := yk[oy*ow : (oy+1)*ow]
					lo, hi := validRange(ix0, ix1, p.StrideW, offW, ow)
					if lo == hi {
						continue
					}
					if p.StrideW == 1 {
						axpy(yr[lo+offW:hi+offW], seg[lo-ix0:hi-ix0], 1)
					} else {
						ox := lo*p.StrideW + offW
						for j := lo - ix0; j < hi-ix0; j++ {
							yr[ox] += seg[j]
							ox += p.StrideW
						}
					}
				}
			}
		}
	}
}
