package kernels

import (
	"math"
)

// Normalization kernels. Statistics are accumulated in float64 with two passes (mean, then
// the mean of squared deviations), so a large common offset does not eat the variance;
// variances are population variances (divide by the count), eps is added to the variance
// under the square root, as PyTorch does. Affine weight and bias may be nil (no affine).

// meanRstd returns the mean of xs and 1/√(var+eps). The vector path accumulates in float64
// lanes; the scalar tail (and the portable path) in four accumulators, which break the
// floating-point add dependency chain that otherwise bounds the speed.
func meanRstd(xs []float32, eps float32) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s0, done := sumF64(xs)
	rest := xs[done:]
	n4 := len(rest) &^ 3
	var s1, s2, s3 float64
	for i := 0; i < n4; i += 4 {
		v := rest[i : i+4 : i+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	for _, v := range rest[n4:] {
		s0 += float64(v)
	}
	mean := (s0 + s1 + s2 + s3) / float64(len(xs))
	s0, done = sqDevF64(xs, mean)
	rest = xs[done:]
	n4 = len(rest) &^ 3
	s1, s2, s3 = 0, 0, 0
	for i := 0; i < n4; i += 4 {
		v := rest[i : i+4 : i+4]
		d0, d1, d2, d3 := float64(v[0])-mean, float64(v[1])-mean, float64(v[2])-mean, float64(v[3])-mean
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for _, v := range rest[n4:] {
		d := float64(v) - mean
		s0 += d * d
	}
	q := s0 + s1 + s2 + s3
	return mean, 1 / math.Sqrt(q/float64(len(xs))+float64(eps))
}

// normalizeAffine writes y = (x − mean)·rstd·w + b, where w and b are scalars (nil slices
// read as 1 and 0, so per-channel callers pass one-element views).
func normalizeAffine(y, x []float32, mean, rstd float64, w, b float32) {
	scale := float32(rstd) * w
	m := float32(mean)
	for i := normAffineVec(y, x, m, scale, b); i < len(x); i++ {
		y[i] = (x[i]-m)*scale + b
	}
}

// LayerNorm normalizes each of the rows of x [rows, cols] (cols = the product of the
// normalized shape) and applies the element-wise affine w, b [cols] (or nil).
func LayerNorm(y, x []float32, rows, cols int, w, b []float32, eps float32) {
	LayerNormAct(y, x, rows, cols, w, b, eps, ActNone)
}

// LayerNormAct is LayerNorm followed by the activation act, applied to each row while it
// is in cache.
func LayerNormAct(y, x []float32, rows, cols int, w, b []float32, eps float32, act Activation) {
	if serial(rows*cols) || rows == 1 {
		layerNormRows(y, x, cols, w, b, eps, act, 0, rows)
		return
	}
	runPooled(&layerNormJobs, rows, layerNormJob{y, x, w, b, cols, eps, act})
}

type layerNormJob struct {
	y, x, w, b []float32
	cols       int
	eps        float32
	act        Activation
}

var layerNormJobs pool

func (j *layerNormJob) run(lo, hi int) {
	layerNormRows(j.y, j.x, j.cols, j.w, j.b, j.eps, j.act, lo, hi)
}

func layerNormRows(y, x []float32, cols int, w, b []float32, eps float32, act Activation, lo, hi int) {
	for r := lo; r < hi; r++ {
		xr, yr := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
		mean, rstd := meanRstd(xr, eps)
		m, s := float32(mean), float32(rstd)
		switch {
		case w != nil && b != nil:
			w, b := w[:cols], b[:cols]
			for i := lnAffineVec(yr, xr, w, b, m, s); i < cols; i++ {
				y := (xr[i] - m) * s
				yr[i] = y*w[i] + b[i]
			}
		case w != nil:
			w := w[:cols]
			for i, v := range xr {
				yr[i] = (v - m) * s * w[i]
			}
		default:
			for i, v := range xr {
				yr[i] = (v - m) * s
			}
			if b != nil {
				for i := range yr {
					yr[i] += b[i]
				}
			}
		}
		if act != ActNone {
			act.Apply(yr, yr)
		}
	}
}

// GroupNorm normalizes x [n, c, hw] over each group of c/groups consecutive channels (and
// all hw positions) and applies the per-channel affine w, b [c] (or nil).
func GroupNorm(y, x []float32, n, c, hw, groups int, w, b []float32, eps float32) {
	GroupNormAct(y, x, n, c, hw, groups, w, b, eps, ActNone)
}

// GroupNormAct is GroupNorm followed by the activation act, applied to each channel of a
// group while it is in cache.
func GroupNormAct(y, x []float32, n, c, hw, groups int, w, b []float32, eps float32, act Activation) {
	cpg := c / groups
	if serial(n*c*hw) || n*groups == 1 {
		groupNormGroups(y, x, cpg, hw, groups, w, b, eps, act, 0, n*groups)
		return
	}
	runPooled(&groupNormJobs, n*groups, groupNormJob{y, x, w, b, cpg, hw, groups, eps, act})
}

type groupNormJob struct {
	y, x, w, b      []float32
	cpg, hw, groups int
	eps             float32
	act             Activation
}

var groupNormJobs pool

func (j *groupNormJob) run(lo, hi int) {
	groupNormGroups(j.y, j.x, j.cpg, j.hw, j.groups, j.w, j.b, j.eps, j.act, lo, hi)
}

// normPiece is how many values of a channel GroupNormAct normalizes before activating them.
const normPiece = 4096

// groupNormGroups normalizes groups [lo, hi) of all images (group t is image t/groups).
func groupNormGroups(y, x []float32, cpg, hw, groups int, w, b []float32, eps float32, act Activation, lo, hi int) {
	size := cpg * hw
	for t := lo; t < hi; t++ {
		g := t % groups
		off := t * size
		mean, rstd := meanRstd(x[off:off+size], eps)
		for ci := range cpg {
			ch := g*cpg + ci
			wv, bv := float32(1), float32(0)
			if w != nil {
				wv = w[ch]
			}
			if b != nil {
				bv = b[ch]
			}
			// In pieces, so that the activation finds each in L1.
			for o := off + ci*hw; o < off+(ci+1)*hw; o += normPiece {
				e := min(o+normPiece, off+(ci+1)*hw)
				normalizeAffine(y[o:e], x[o:e], mean, rstd, wv, bv)
				if act != ActNone {
					act.Apply(y[o:e], y[o:e])
				}
			}
		}
	}
}

// InstanceNorm2d normalizes each channel of each image of x [n, c, hw] over its hw positions
// and applies the per-channel affine w, b [c] (or nil): GroupNorm with one channel a group.
func InstanceNorm2d(y, x []float32, n, c, hw int, w, b []float32, eps float32) {
	GroupNorm(y, x, n, c, hw, c, w, b, eps)
}

// layerNorm2dBlock is how many pixels one LayerNorm2d task covers.
const layerNorm2dBlock = 256

// LayerNorm2d is Refiners' LayerNorm2d (as in SAM / ConvNeXt): at every pixel of x
// [n, c, hw], normalize the c channel values (population variance) and apply the
// per-channel affine w, b [c] (or nil).
func LayerNorm2d(y, x []float32, n, c, hw int, w, b []float32, eps float32) {
	blocks := (hw + layerNorm2dBlock - 1) / layerNorm2dBlock
	if serial(n*c*hw) || n*blocks == 1 {
		layerNorm2dBlocks(y, x, c, hw, w, b, eps, 0, n*blocks)
		return
	}
	runPooled(&layerNorm2dJobs, n*blocks, layerNorm2dJob{y, x, w, b, c, hw, eps})
}

type layerNorm2dJob struct {
	y, x, w, b []float32
	c, hw      int
	eps        float32
}

var layerNorm2dJobs pool

func (j *layerNorm2dJob) run(lo, hi int) {
	layerNorm2dBlocks(j.y, j.x, j.c, j.hw, j.w, j.b, j.eps, lo, hi)
}

// layerNorm2dBlocks normalizes pixel blocks [lo, hi) of all images.
func layerNorm2dBlocks(y, x []float32, c, hw int, w, b []float32, eps float32, lo, hi int) {
	blocks := (hw + layerNorm2dBlock - 1) / layerNorm2dBlock
	acc := getScratch64(2 * layerNorm2dBlock)
	defer putScratch64(acc)
	for t := lo; t < hi; t++ {
		img, p0 := t/blocks, (t%blocks)*layerNorm2dBlock
		np := min(layerNorm2dBlock, hw-p0)
		mean, q := (*acc)[:np], (*acc)[layerNorm2dBlock:layerNorm2dBlock+np]
		clear(mean)
		clear(q)
		base := img * c * hw
		// Walk channel by channel so reads stay contiguous.
		for ch := range c {
			xr := x[base+ch*hw+p0 : base+ch*hw+p0+np]
			for i, v := range xr {
				mean[i] += float64(v)
			}
		}
		for i := range mean {
			mean[i] /= float64(c)
		}
		for ch := range c {
			xr := x[base+ch*hw+p0 : base+ch*hw+p0+np]
			for i, v := range xr {
				d := float64(v) - mean[i]
				q[i] += d * d
			}
		}
		for i := range q { // q becomes 1/√(var+eps)
			q[i] = 1 / math.Sqrt(q[i]/float64(c)+float64(eps))
		}
		for ch := range c {
			wv, bv := float32(1), float32(0)
			if w != nil {
				wv = w[ch]
			}
			if b != nil {
				bv = b[ch]
			}
			o := base + ch*hw + p0
			xr, yr := x[o:o+np], y[o:o+np]
			for i, v := range xr {
				yr[i] = float32((float64(v)-mean[i])*q[i])*wv + bv
			}
		}
	}
}

// Softmax computes the softmax of x [outer, dim, inner] along its middle axis (the maximum
// is subtracted first, so large logits do not overflow). A slice that is all −Inf gives NaN,
// as in PyTorch.
func Softmax(y, x []float32, outer, dim, inner int) {
	const blk = softmaxBlock
	tasks := outer
	if inner > 1 {
		tasks = outer * ((inner + blk - 1) / blk)
	}
	if serial(outer*dim*inner) || tasks == 1 {
		softmaxTasks(y, x, outer, dim, inner, 0, tasks)
		return
	}
	runPooled(&softmaxJobs, tasks, softmaxJob{y, x, outer, dim, inner})
}

type softmaxJob struct {
	y, x              []float32
	outer, dim, inner int
}

var softmaxJobs pool

func (j *softmaxJob) run(lo, hi int) { softmaxTasks(j.y, j.x, j.outer, j.dim, j.inner, lo, hi) }

// softmaxBlock is how many inner positions one task of a strided softmax covers.
const softmaxBlock = 256

// softmaxTasks computes tasks [lo, hi): rows when inner is 1, else blocks of softmaxBlock
// inner positions of one outer index.
func softmaxTasks(y, x []float32, outer, dim, inner, lo, hi int) {
	if inner == 1 {
		for r := lo; r < hi; r++ {
			softmaxRow(y[r*dim:(r+1)*dim], x[r*dim:(r+1)*dim])
		}
		return
	}
	// Strided case: keep running maxima and sums for a block of inner positions and sweep
	// the dim rows, which are contiguous.
	const blk = softmaxBlock
	blocks := (inner + blk - 1) / blk
	acc := getScratch64(2 * blk)
	defer putScratch64(acc)
	for t := lo; t < hi; t++ {
		o, i0 := t/blocks, (t%blocks)*blk
		ni := min(blk, inner-i0)
		mx, sum := (*acc)[:ni], (*acc)[blk:blk+ni]
		base := o*dim*inner + i0
		for i := range mx {
			mx[i] = math.Inf(-1)
			sum[i] = 0
		}
		for d := range dim {
			xr := x[base+d*inner : base+d*inner+ni]
			for i, v := range xr {
				if float64(v) > mx[i] || v != v {
					mx[i] = float64(v)
				}
			}
		}
		for d := range dim {
			xr, yr := x[base+d*inner:base+d*inner+ni], y[base+d*inner:base+d*inner+ni]
			for i, v := range xr {
				e := exp32(v - float32(mx[i]))
				yr[i] = e
				sum[i] += float64(e)
			}
		}
		for i := range sum {
			sum[i] = 1 / sum[i]
		}
		for d := range dim {
			yr := y[base+d*inner : base+d*inner+ni]
			for i := range yr {
				yr[i] = float32(float64(yr[i]) * sum[i])
			}
		}
	}
}

// softmaxRow writes the softmax of a contiguous row.
func softmaxRow(y, x []float32) {
	// A NaN anywhere gives NaN everywhere through the sum, as in PyTorch, so the maximum
	// may skip NaNs.
	mx := maxOf(x)
	copy(y, x)
	scale(y, 1/expShiftSum(y, mx))
}
