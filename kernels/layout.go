package kernels

import (
	"fmt"
	"math"
)

// Layout kernels move data without arithmetic (except the interpolating upsample). y never
// aliases x here.

// permDim is one dimension of a permuted copy: its size and its strides in x and in y.
type permDim struct{ size, in, out int }

// How a permuted copy moves its innermost y dimension (see Permute).
const (
	permCopy    = iota // contiguous in x too: copy rows
	permBlocked        // strided in x; paired with the y dimension contiguous in x
	permGather         // strided in x, and no y dimension is contiguous in x
)

// permPlan is a Permute after merging: the innermost y dimension a, for permBlocked the
// y dimension b that is contiguous in x, and the remaining dimensions rest (innermost first)
// that the outer loop walks.
type permPlan struct {
	kind int
	a, b permDim
	rest []permDim
}

// Permute copies x of shape shape into y with its dimensions reordered: y's dimension i is
// x's dimension perm[i], so y has shape [shape[perm[0]], shape[perm[1]], …].
func Permute(y, x []float32, shape []int, perm []int) {
	nd := len(shape)
	var strideBuf [maxStackDims]int
	inStride := strideBuf[:0]
	if nd > maxStackDims {
		inStride = make([]int, 0, nd)
	}
	inStride = inStride[:nd]
	total := 1
	for d := nd - 1; d >= 0; d-- {
		inStride[d] = total
		total *= shape[d]
	}
	if total == 0 {
		return
	}
	// y's dimensions innermost first, size-1 ones dropped and contiguous runs merged.
	var dimBuf [maxStackDims]permDim
	dims := dimBuf[:0]
	os := 1
	for i := nd - 1; i >= 0; i-- {
		size, in := shape[perm[i]], inStride[perm[i]]
		if size == 1 {
			continue
		}
		if n := len(dims); n > 0 && dims[n-1].in*dims[n-1].size == in {
			dims[n-1].size *= size
			os *= size
			continue
		}
		dims = append(dims, permDim{size, in, os})
		os *= size
	}
	if len(dims) == 0 {
		y[0] = x[0]
		return
	}
	pl := permPlan{kind: permCopy, a: dims[0], rest: dims[1:]}
	if pl.a.in != 1 {
		// The innermost y dimension strides through x. Pair it with the y dimension that is
		// contiguous in x (there is one unless x's last dimension has size 1, which was
		// dropped) and copy in square blocks, so both sides move whole cache lines.
		pl.kind = permGather
		for i := 1; i < len(dims); i++ {
			if dims[i].in == 1 {
				pl.kind, pl.b = permBlocked, dims[i]
				// Drop dims[i] from rest, keeping order, in place.
				copy(dims[i:], dims[i+1:])
				pl.rest = dims[1 : len(dims)-1]
				break
			}
		}
	}
	count := total / pl.a.size
	if pl.kind == permBlocked {
		count /= pl.b.size
	}
	if serial(total) || count == 1 {
		permuteRange(y, x, &pl, 0, count)
		return
	}
	j, ok := permuteJobs.Get().(*permuteJob)
	if !ok {
		j = new(permuteJob)
	}
	j.y, j.x = y, x
	// The plan's dimensions live on this stack: copy them into the job, whose own array
	// holds any rank the stack one does.
	j.pl.kind, j.pl.a, j.pl.b = pl.kind, pl.a, pl.b
	j.pl.rest = append(j.rest[:0], pl.rest...)
	parallelRun(count, j)
	j.y, j.x, j.pl.rest = nil, nil, nil
	permuteJobs.Put(j)
}

type permuteJob struct {
	y, x []float32
	pl   permPlan
	rest [maxStackDims]permDim
}

var permuteJobs pool

func (j *permuteJob) run(lo, hi int) { permuteRange(j.y, j.x, &j.pl, lo, hi) }

// permuteRange does the outer indices [lo, hi) of a permuted copy (over pl.rest).
func permuteRange(y, x []float32, pl *permPlan, lo, hi int) {
	var idxBuf [maxStackDims]int
	idx := idxBuf[:0]
	if len(pl.rest) > maxStackDims {
		idx = make([]int, 0, len(pl.rest))
	}
	in, out := 0, 0
	r := lo
	for _, dim := range pl.rest {
		i := r % dim.size
		r /= dim.size
		idx = append(idx, i)
		in += i * dim.in
		out += i * dim.out
	}
	a, b := pl.a, pl.b
	for t := lo; t < hi; t++ {
		switch pl.kind {
		case permCopy:
			copy(y[out:out+a.size], x[in:in+a.size])
		case permGather:
			row := y[out : out+a.size]
			src := in
			for i := range row {
				row[i] = x[src]
				src += a.in
			}
		case permBlocked: // y[out + ia + ib·b.out] = x[in + ia·a.in + ib]
			const blk = 32
			for ib0 := 0; ib0 < b.size; ib0 += blk {
				ib1 := min(ib0+blk, b.size)
				for ia0 := 0; ia0 < a.size; ia0 += blk {
					ia1 := min(ia0+blk, a.size)
					for ib := ib0; ib < ib1; ib++ {
						row := y[out+ib*b.out+ia0 : out+ib*b.out+ia1]
						src := in + ia0*a.in + ib
						for i := range row {
							row[i] = x[src]
							src += a.in
						}
					}
				}
			}
		}
		for d, dim := range pl.rest {
			idx[d]++
			in += dim.in
			out += dim.out
			if idx[d] < dim.size {
				break
			}
			idx[d] = 0
			in -= dim.size * dim.in
			out -= dim.size * dim.out
		}
	}
}

// Slice copies x[..., start:end:step, ...] (along dim) into y: x has shape shape, y the same
// shape except ceil((end−start)/step) along dim. Requires 0 ≤ start ≤ end ≤ shape[dim] and
// step ≥ 1 (callers resolve negative and open bounds).
func Slice(y, x []float32, shape []int, dim, start, end, step int) {
	outer, inner := 1, 1
	for _, s := range shape[:dim] {
		outer *= s
	}
	for _, s := range shape[dim+1:] {
		inner *= s
	}
	n := (end - start + step - 1) / step
	if n <= 0 {
		return
	}
	size := shape[dim]
	if serial(outer*n*inner) || outer == 1 {
		sliceRows(y, x, size, inner, start, n, step, 0, outer)
		return
	}
	runPooled(&sliceJobs, outer, sliceJob{y, x, size, inner, start, n, step})
}

type sliceJob struct {
	y, x                        []float32
	size, inner, start, n, step int
}

var sliceJobs pool

func (j *sliceJob) run(lo, hi int) {
	sliceRows(j.y, j.x, j.size, j.inner, j.start, j.n, j.step, lo, hi)
}

// sliceRows does outer indices [lo, hi) of Slice: n blocks of inner elements each.
func sliceRows(y, x []float32, size, inner, start, n, step, lo, hi int) {
	for o := lo; o < hi; o++ {
		if step == 1 {
			copy(y[o*n*inner:(o+1)*n*inner], x[(o*size+start)*inner:(o*size+start+n)*inner])
			continue
		}
		for i := range n {
			src := (o*size + start + i*step) * inner
			copy(y[(o*n+i)*inner:(o*n+i+1)*inner], x[src:src+inner])
		}
	}
}

// Concat joins xs (with shapes shapes, equal except along dim) along dim into y.
func Concat(y []float32, xs [][]float32, shapes [][]int, dim int) {
	if len(xs) == 0 {
		return
	}
	outer, inner := 1, 1
	for _, s := range shapes[0][:dim] {
		outer *= s
	}
	for _, s := range shapes[0][dim+1:] {
		inner *= s
	}
	total := 0
	for _, s := range shapes {
		total += s[dim]
	}
	if serial(outer*total*inner) || outer == 1 {
		concatRows(y, xs, shapes, dim, inner, total, 0, outer)
		return
	}
	runPooled(&concatJobs, outer, concatJob{y, xs, shapes, dim, inner, total})
}

type concatJob struct {
	y                 []float32
	xs                [][]float32
	shapes            [][]int
	dim, inner, total int
}

var concatJobs pool

func (j *concatJob) run(lo, hi int) {
	concatRows(j.y, j.xs, j.shapes, j.dim, j.inner, j.total, lo, hi)
}

// concatRows does outer indices [lo, hi) of Concat.
func concatRows(y []float32, xs [][]float32, shapes [][]int, dim, inner, total, lo, hi int) {
	for o := lo; o < hi; o++ {
		off := o * total * inner
		for i, x := range xs {
			blk := shapes[i][dim] * inner
			copy(y[off:off+blk], x[o*blk:(o+1)*blk])
			off += blk
		}
	}
}

// nearestIndex is PyTorch's 'nearest' source index (not 'nearest-exact'):
// min(floor(dst·(in/out)), in−1), computed in float32 as PyTorch does.
func nearestIndex(dst, in, out int) int {
	switch out {
	case in:
		return dst
	case 2 * in:
		return dst >> 1
	}
	scale := float32(in) / float32(out)
	return min(int(float32(dst)*scale), in-1) // operands are ≥ 0, so truncation is floor
}

// UpsampleNearest resizes x [n, c, h, w] to y [n, c, oh, ow] by PyTorch's 'nearest' rule,
// with the scale in/out that F.interpolate uses when given a size (a scale_factor gives the
// same indices when it is an integer).
func UpsampleNearest(y, x []float32, n, c, h, w, oh, ow int) {
	if serial(n*c*oh*ow) || n*c == 1 {
		upsampleNearestPlanes(y, x, h, w, oh, ow, 0, n*c)
		return
	}
	runPooled(&upsampleJobs, n*c, upsampleJob{y, x, h, w, oh, ow, false, false})
}

// upsampleJob is a parallel UpsampleNearest or (bilinear) UpsampleBilinear.
type upsampleJob struct {
	y, x                   []float32
	h, w, oh, ow           int
	bilinear, alignCorners bool
}

var upsampleJobs pool

func (j *upsampleJob) run(lo, hi int) {
	if j.bilinear {
		upsampleBilinearPlanes(j.y, j.x, j.h, j.w, j.oh, j.ow, j.alignCorners, lo, hi)
	} else {
		upsampleNearestPlanes(j.y, j.x, j.h, j.w, j.oh, j.ow, lo, hi)
	}
}

// upsampleNearestPlanes resizes planes [lo, hi) (image·channel).
func upsampleNearestPlanes(y, x []float32, h, w, oh, ow int, lo, hi int) {
	for p := lo; p < hi; p++ {
		xp, yp := x[p*h*w:(p+1)*h*w], y[p*oh*ow:(p+1)*oh*ow]
		for oy := range oh {
			src := nearestIndex(oy, h, oh)
			yr := yp[oy*ow : (oy+1)*ow]
			if oy > 0 && nearestIndex(oy-1, h, oh) == src {
				copy(yr, yp[(oy-1)*ow:oy*ow]) // the row above read the same input row
				continue
			}
			xr := xp[src*w:][:w]
			switch ow {
			case w:
				copy(yr, xr)
			case 2 * w:
				for ox := dup2Vec(yr, xr); ox < w; ox++ {
					v := xr[ox]
					yr[2*ox], yr[2*ox+1] = v, v
				}
			default:
				for ox := range yr {
					yr[ox] = xr[nearestIndex(ox, w, ow)]
				}
			}
		}
	}
}

// linearSource returns PyTorch's bilinear source indices i0, i1 and weights λ0, λ1 for
// output index dst (upsample_bilinear2d, CPU, float32).
func linearSource(dst, in, out int, alignCorners bool) (int, int, float32, float32) {
	var src float32
	if alignCorners {
		if out > 1 {
			src = float32(in-1) / float32(out-1) * float32(dst)
		}
	} else {
		src = float32(in)/float32(out)*(float32(dst)+0.5) - 0.5
		if src < 0 {
			src = 0
		}
	}
	i0 := min(int(src), in-1)
	l1 := min(max(src-float32(i0), 0), 1)
	i1 := i0
	if i0 < in-1 {
		i1++
	}
	return i0, i1, 1 - l1, l1
}

// UpsampleBilinear resizes x [n, c, h, w] to y [n, c, oh, ow] by bilinear interpolation with
// PyTorch's source-index rules for align_corners true and false (no antialias), scale in/out
// as F.interpolate with a size (or an integer scale_factor).
func UpsampleBilinear(y, x []float32, n, c, h, w, oh, ow int, alignCorners bool) {
	if serial(n*c*oh*ow) || n*c == 1 {
		upsampleBilinearPlanes(y, x, h, w, oh, ow, alignCorners, 0, n*c)
		return
	}
	runPooled(&upsampleJobs, n*c, upsampleJob{y, x, h, w, oh, ow, true, alignCorners})
}

// upsampleBilinearPlanes resizes planes [lo, hi) (image·channel).
func upsampleBilinearPlanes(y, x []float32, h, w, oh, ow int, alignCorners bool, lo, hi int) {
	for p := lo; p < hi; p++ {
		xp, yp := x[p*h*w:(p+1)*h*w], y[p*oh*ow:(p+1)*oh*ow]
		for oy := range oh {
			y0, y1, ly0, ly1 := linearSource(oy, h, oh, alignCorners)
			r0, r1 := xp[y0*w:(y0+1)*w], xp[y1*w:(y1+1)*w]
			yr := yp[oy*ow : (oy+1)*ow]
			for ox := range yr {
				x0, x1, lx0, lx1 := linearSource(ox, w, ow, alignCorners)
				yr[ox] = ly0*(lx0*r0[x0]+lx1*r0[x1]) + ly1*(lx0*r1[x0]+lx1*r1[x1])
			}
		}
	}
}

// PadMode is how Pad fills the border.
type PadMode uint8

const (
	PadConstant  PadMode = iota // a constant value
	PadReflect                  // mirror without repeating the edge: … x2 x1 | x0 x1 x2 …
	PadReplicate                // repeat the edge value
)

// String gives PyTorch's name of the mode.
func (m PadMode) String() string {
	switch m {
	case PadConstant:
		return "constant"
	case PadReflect:
		return "reflect"
	case PadReplicate:
		return "replicate"
	}
	return "PadMode(?)"
}

// padSource maps output index o of a dimension of size n padded by lo before to a source
// index, or −1 for a constant-filled position. Reflect needs lo, hi < n (PyTorch checks).
func padSource(o, lo, n int, mode PadMode) int {
	i := o - lo
	if i >= 0 && i < n {
		return i
	}
	switch mode {
	case PadReflect:
		if i < 0 {
			return -i
		}
		return 2*(n-1) - i
	case PadReplicate:
		return min(max(i, 0), n-1)
	}
	return -1
}

// Pad pads x of shape shape into y. pads lists (before, after) amounts from the last
// dimension backwards, as torch.nn.functional.pad: (last_lo, last_hi, prev_lo, prev_hi, …);
// negative amounts crop. y has shape shape[d] + lo_d + hi_d. value fills PadConstant borders.
func Pad(y, x []float32, shape []int, pads []int, mode PadMode, value float32) {
	nd := len(shape)
	if nd == 0 {
		copy(y, x[:1])
		return
	}
	rows, ow := 1, 0
	for d := range nd {
		lo, hi := padOf(pads, nd, d)
		size := shape[d] + lo + hi
		if d < nd-1 {
			rows *= size
		} else {
			ow = size
		}
	}
	if ow <= 0 || rows <= 0 {
		return
	}
	if serial(rows*ow) || rows == 1 {
		padRows(y, x, shape, pads, mode, value, 0, rows)
		return
	}
	j, ok := padJobs.Get().(*padJob)
	if !ok {
		j = new(padJob)
	}
	j.y, j.x, j.mode, j.value = y, x, mode, value
	// Copies, so that the caller's shape and pads stay where they are (on its stack).
	j.shape = append(j.shapeBuf[:0], shape...)
	j.pads = append(j.padsBuf[:0], pads...)
	parallelRun(rows, j)
	j.y, j.x, j.shape, j.pads = nil, nil, nil, nil
	padJobs.Put(j)
}

type padJob struct {
	y, x        []float32
	shape, pads []int
	mode        PadMode
	value       float32
	shapeBuf    [maxStackDims]int
	padsBuf     [2 * maxStackDims]int
}

var padJobs pool

func (j *padJob) run(lo, hi int) { padRows(j.y, j.x, j.shape, j.pads, j.mode, j.value, lo, hi) }

// padOf returns the (before, after) padding of dimension d of an nd-dimensional tensor.
func padOf(pads []int, nd, d int) (int, int) {
	k := nd - 1 - d
	if 2*k+1 < len(pads) {
		return pads[2*k], pads[2*k+1]
	}
	return 0, 0
}

// padRows writes output rows [rlo, rhi) of Pad (a row runs along the last dimension).
func padRows(y, x []float32, shape, pads []int, mode PadMode, value float32, rlo, rhi int) {
	nd := len(shape)
	w := shape[nd-1]
	lastLo, lastHi := padOf(pads, nd, nd-1)
	ow := w + lastLo + lastHi
	for r := rlo; r < rhi; r++ {
		yr := y[r*ow : (r+1)*ow]
		// Source row: map each leading output index, innermost first.
		src, stride, inside := 0, w, true
		rem := r
		for d := nd - 2; d >= 0; d-- {
			lo, hi := padOf(pads, nd, d)
			size := shape[d] + lo + hi
			o := rem % size
			rem /= size
			i := padSource(o, lo, shape[d], mode)
			if i < 0 {
				inside = false
				break
			}
			src += i * stride
			stride *= shape[d]
		}
		if !inside {
			for i := range yr {
				yr[i] = value
			}
			continue
		}
		xr := x[src : src+w]
		// The part of the row that maps straight through, then the borders.
		a, b := min(max(0, lastLo), ow), max(0, min(ow, lastLo+w))
		if a < b {
			copy(yr[a:b], xr[a-lastLo:b-lastLo])
		} else {
			a, b = ow, ow
		}
		for o := range yr[:a] {
			yr[o] = padValue(xr, o, lastLo, mode, value)
		}
		for o := b; o < ow; o++ {
			yr[o] = padValue(xr, o, lastLo, mode, value)
		}
	}
}

// padValue is output position o of a padded row xr.
func padValue(xr []float32, o, lo int, mode PadMode, value float32) float32 {
	if i := padSource(o, lo, len(xr), mode); i >= 0 {
		return xr[i]
	}
	return value
}

// PixelUnshuffle moves f×f spatial blocks into channels, as F.pixel_unshuffle: x is
// [n, c, h, w], y is [n, c·f·f, h/f, w/f] with y[:, ch·f²+i·f+j, oy, ox] = x[:, ch, oy·f+i, ox·f+j].
func PixelUnshuffle(y, x []float32, n, c, h, w, f int) {
	if serial(n*c*h*w) || n*c == 1 {
		pixelUnshufflePlanes(y, x, h, w, f, 0, n*c)
		return
	}
	runPooled(&pixelShuffleJobs, n*c, pixelShuffleJob{y, x, h, w, f, true})
}

// pixelShuffleJob is a parallel PixelShuffle or (unshuffle) PixelUnshuffle.
type pixelShuffleJob struct {
	y, x      []float32
	h, w, f   int
	unshuffle bool
}

var pixelShuffleJobs pool

func (j *pixelShuffleJob) run(lo, hi int) {
	if j.unshuffle {
		pixelUnshufflePlanes(j.y, j.x, j.h, j.w, j.f, lo, hi)
	} else {
		pixelShufflePlanes(j.y, j.x, j.h, j.w, j.f, lo, hi)
	}
}

// pixelUnshufflePlanes does input planes [lo, hi) of PixelUnshuffle.
func pixelUnshufflePlanes(y, x []float32, h, w, f int, lo, hi int) {
	oh, ow := h/f, w/f
	for p := lo; p < hi; p++ {
		xp := x[p*h*w : (p+1)*h*w]
		for i := range f {
			for j := range f {
				yp := y[(p*f*f+i*f+j)*oh*ow : (p*f*f+i*f+j+1)*oh*ow]
				for oy := range oh {
					xr := xp[(oy*f+i)*w:]
					yr := yp[oy*ow : (oy+1)*ow]
					for ox := range yr {
						yr[ox] = xr[ox*f+j]
					}
				}
			}
		}
	}
}

// PixelShuffle moves channels into f×f spatial blocks, as F.pixel_shuffle: x is [n, c, h, w]
// with c divisible by f², y is [n, c/f², h·f, w·f] with
// y[:, o, oy·f+i, ox·f+j] = x[:, o·f²+i·f+j, oy, ox].
func PixelShuffle(y, x []float32, n, c, h, w, f int) {
	oc := c / (f * f)
	if serial(n*c*h*w) || n*oc == 1 {
		pixelShufflePlanes(y, x, h, w, f, 0, n*oc)
		return
	}
	runPooled(&pixelShuffleJobs, n*oc, pixelShuffleJob{y, x, h, w, f, false})
}

// pixelShufflePlanes does output planes [lo, hi) of PixelShuffle.
func pixelShufflePlanes(y, x []float32, h, w, f int, lo, hi int) {
	oh, ow := h*f, w*f
	for p := lo; p < hi; p++ {
		yp := y[p*oh*ow : (p+1)*oh*ow]
		for iy := range h {
			for i := range f {
				yr := yp[(iy*f+i)*ow : (iy*f+i+1)*ow]
				for j := range f {
					xr := x[((p*f*f+i*f+j)*h+iy)*w:][:w]
					for ix, v := range xr {
						yr[ix*f+j] = v
					}
				}
			}
		}
	}
}

// Embedding gathers rows of the table w [vocab, dim] (vocab = len(w)/dim): y[i] = w[idx[i]],
// y is [len(idx), dim]. An index outside [0, vocab) is an error (y is then unspecified).
func Embedding(y []float32, idx []int64, w []float32, dim int) error {
	vocab := 0
	if dim > 0 {
		vocab = len(w) / dim
	}
	for i, t := range idx {
		if t < 0 || t >= int64(vocab) {
			return fmt.Errorf("kernels.Embedding: index %d at position %d is out of range [0, %d)", t, i, vocab)
		}
	}
	if serial(len(idx)*dim) || len(idx) == 1 {
		embeddingRows(y, idx, w, dim, 0, len(idx))
		return nil
	}
	runPooled(&embeddingJobs, len(idx), embeddingJob{y, idx, w, dim})
	return nil
}

type embeddingJob struct {
	y   []float32
	idx []int64
	w   []float32
	dim int
}

var embeddingJobs pool

func (j *embeddingJob) run(lo, hi int) { embeddingRows(j.y, j.idx, j.w, j.dim, lo, hi) }

// embeddingRows gathers rows [lo, hi) of Embedding.
func embeddingRows(y []float32, idx []int64, w []float32, dim int, lo, hi int) {
	for i := lo; i < hi; i++ {
		t := int(idx[i])
		copy(y[i*dim:(i+1)*dim], w[t*dim:(t+1)*dim])
	}
}

// GLU is Refiners' GLU(activation): x [outer, dim, inner] splits along its middle axis into
// halves a (first) and g (second), and y [outer, dim/2, inner] = a · act(g). act is an
// element-wise kernel such as Sigmoid or func(y, x []float32) { GeLU(y, x, GeLUExact) }
// and is required (Refiners' GLU has no default). y must not overlap x.
func GLU(y, x []float32, outer, dim, inner int, act func(y, x []float32)) {
	half := dim / 2 * inner
	if serial(outer*2*half) || outer == 1 {
		gluRows(y, x, half, act, 0, outer)
		return
	}
	runPooled(&gluJobs, outer, gluJob{y, x, half, act})
}

type gluJob struct {
	y, x []float32
	half int
	act  func(y, x []float32)
}

var gluJobs pool

func (j *gluJob) run(lo, hi int) { gluRows(j.y, j.x, j.half, j.act, lo, hi) }

// gluRows does outer indices [lo, hi) of GLU.
func gluRows(y, x []float32, half int, act func(y, x []float32), lo, hi int) {
	for o := lo; o < hi; o++ {
		a, g := x[o*2*half:o*2*half+half], x[o*2*half+half:(o+1)*2*half]
		yo := y[o*half : (o+1)*half]
		act(yo, g)
		for i := range yo {
			yo[i] *= a[i]
		}
	}
}

// Sum reduces x [outer, dim, inner] over its middle axis into y [outer, inner], accumulating
// in float64.
func Sum(y, x []float32, outer, dim, inner int) { reduce(y, x, outer, dim, inner, 1) }

// Mean is Sum divided by dim.
func Mean(y, x []float32, outer, dim, inner int) {
	reduce(y, x, outer, dim, inner, 1/float64(dim))
}

func reduce(y, x []float32, outer, dim, inner int, scale float64) {
	if dim == 0 {
		v := float32(0)
		if scale != 1 {
			v = float32(math.NaN()) // torch: the mean of nothing is NaN
		}
		for i := range y[:outer*inner] {
			y[i] = v
		}
		return
	}
	if inner == 1 {
		if serial(outer*dim) || outer == 1 {
			reduceRows(y, x, dim, scale, 0, outer)
			return
		}
		runPooled(&reduceJobs, outer, reduceJob{y, x, dim, inner, scale})
		return
	}
	blocks := (inner + reduceBlock - 1) / reduceBlock
	if serial(outer*dim*inner) || outer*blocks == 1 {
		reduceBlocks(y, x, dim, inner, scale, 0, outer*blocks)
		return
	}
	runPooled(&reduceJobs, outer*blocks, reduceJob{y, x, dim, inner, scale})
}

// reduceJob is a parallel reduction: of contiguous rows when inner is 1, else of blocks.
type reduceJob struct {
	y, x       []float32
	dim, inner int
	scale      float64
}

var reduceJobs pool

func (j *reduceJob) run(lo, hi int) {
	if j.inner == 1 {
		reduceRows(j.y, j.x, j.dim, j.scale, lo, hi)
	} else {
		reduceBlocks(j.y, j.x, j.dim, j.inner, j.scale, lo, hi)
	}
}

// reduceBlock is how many inner positions one task of a strided reduction covers.
const reduceBlock = 512

// reduceBlocks sums blocks [lo, hi) of reduceBlock inner positions.
func reduceBlocks(y, x []float32, dim, inner int, scale float64, lo, hi int) {
	const blk = reduceBlock
	blocks := (inner + blk - 1) / blk
	acc := getScratch64(blk)
	defer putScratch64(acc)
	for t := lo; t < hi; t++ {
		o, i0 := t/blocks, (t%blocks)*blk
		ni := min(blk, inner-i0)
		s := (*acc)[:ni]
		clear(s)
		for d := range dim {
			xr := x[(o*dim+d)*inner+i0:][:ni]
			for i, v := range xr {
				s[i] += float64(v)
			}
		}
		yr := y[o*inner+i0:][:ni]
		for i := range yr {
			yr[i] = float32(s[i] * scale)
		}
	}
}

// reduceRows sums contiguous rows [lo, hi).
func reduceRows(y, x []float32, dim int, scale float64, lo, hi int) {
	for o := lo; o < hi; o++ {
		var s float64
		for _, v := range x[o*dim : (o+1)*dim] {
			s += float64(v)
		}
		y[o] = float32(s * scale)
	}
}
