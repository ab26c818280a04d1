package kernels

import (
	"fmt"
	"math"
)

// WeightFormat is the element type a weight operand is stored in.
type WeightFormat uint8

const (
	WeightF32  WeightFormat = iota // float32
	WeightF16                      // IEEE 754 binary16 bits
	WeightBF16                     // bfloat16 bits: the top 16 bits of a float32
)

var weightFormatNames = [...]string{"f32", "f16", "bf16"}

func (f WeightFormat) String() string {
	if int(f) < len(weightFormatNames) {
		return weightFormatNames[f]
	}
	return fmt.Sprintf("WeightFormat(%d)", uint8(f))
}

// Weights is the weight operand of LinearW, LinearFusedW, LinearGLUW, Conv2dW,
// Conv2dFusedW and ConvTranspose2dW: the row-major matrix the float32 kernels take ([out, in]
// for a linear layer, [K, C/Groups·KH·KW] for a convolution, [C, K/Groups·KH·KW] for a
// transposed one), stored as float32 or as half-precision bits. Kernels widen half-precision
// values to float32 as they pack them (or, for packed weights, as the micro-kernel loads
// them): every f16 and bf16 value is exactly a float32, and the products run in the same
// order, so the results equal bit for bit those of the float32 kernels on the widened
// weights, while the weights stay resident at half the size.
//
// Make one with F32Weights, F16Weights or BF16Weights (which keep the slice, not a copy) and
// optionally PackWeights. The zero Weights is an empty float32 operand.
type Weights struct {
	format WeightFormat
	f32    []float32
	half   []uint16
	packed *packedWeights
}

// F32Weights is a float32 weight operand.
func F32Weights(w []float32) Weights { return Weights{format: WeightF32, f32: w} }

// F16Weights is an IEEE half-precision weight operand (binary16 bits, as a float16
// safetensors tensor stores them).
func F16Weights(bits []uint16) Weights { return Weights{format: WeightF16, half: bits} }

// BF16Weights is a bfloat16 weight operand.
func BF16Weights(bits []uint16) Weights { return Weights{format: WeightBF16, half: bits} }

// Format is the precision the weights are stored in.
func (w Weights) Format() WeightFormat { return w.format }

// Packed reports whether the weights are laid out by PackWeights.
func (w Weights) Packed() bool { return w.packed != nil }

// Len is the number of weights (for packed weights, out·in).
func (w Weights) Len() int {
	switch {
	case w.packed != nil:
		return w.packed.out * w.packed.in
	case w.format == WeightF32:
		return len(w.f32)
	}
	return len(w.half)
}

// packedWeights is a matrix W [out, in] stored as the B operand of the GEMM micro-kernel
// (op(B) = Wᵀ): ⌈out/nr⌉ panels of nr output rows, panel q holding, for each of the in
// columns k, the nr values W[q·nr+j, k] (zero past out) at q·in·nr + k·nr + j. Every depth
// block of a panel is then one contiguous run, whatever depth blocking a kernel uses.
type packedWeights struct {
	format  WeightFormat
	out, in int
	nr      int // the panel width: the micro-kernel's nr when packed
	f32     []float32
	half    []uint16
	buf     *[]float32 // the scratch f32 lives in, for panels packed per call
}

func (p *packedWeights) panels() int { return (p.out + p.nr - 1) / p.nr }

// PackWeights lays out w, a row-major [out, in] matrix (for a convolution out = K and in =
// C·KH·KW; it must have one group), in the panels of this CPU's GEMM micro-kernel, keeping
// w's precision, and returns Weights that hold only the panels: about w's size (each panel
// of out is padded to the micro-kernel's width, 32 rows with AVX-512). Kernels then skip
// packing the weights on every call (the 1×1 and 3×3 convolutions of the implicit-GEMM path
// and the linear layers read them as they are), and the caller may drop w's slices. Paths
// that need the row-major matrix (depthwise and direct convolutions, a micro-kernel switched
// after packing) rebuild it in scratch on each call. It panics if w does not hold out·in
// values.
func PackWeights(w Weights, out, in int) Weights {
	if w.packed != nil {
		if w.packed.out != out || w.packed.in != in {
			panic(fmt.Sprintf("kernels.PackWeights: weights packed as [%d, %d], not [%d, %d]", w.packed.out, w.packed.in, out, in))
		}
		return w
	}
	if n := w.Len(); n != out*in {
		panic(fmt.Sprintf("kernels.PackWeights: %d weights, want %d×%d", n, out, in))
	}
	p := &packedWeights{format: w.format, out: out, in: in, nr: gemmKernel.nr}
	size := p.panels() * in * p.nr
	if w.format == WeightF32 {
		p.f32 = make([]float32, size)
	} else {
		p.half = make([]uint16, size)
	}
	ParallelFor(p.panels(), func(lo, hi int) {
		for q := lo; q < hi; q++ {
			rows := min(p.nr, out-q*p.nr)
			if w.format == WeightF32 {
				packPanelF32(p.f32[q*in*p.nr:(q+1)*in*p.nr], w.f32[q*p.nr*in:], rows, in, p.nr)
			} else {
				packPanelHalf(p.half[q*in*p.nr:(q+1)*in*p.nr], w.half[q*p.nr*in:], rows, in, p.nr)
			}
		}
	})
	return Weights{format: w.format, packed: p}
}

// packPanelF32 stores rows r < rows of src (row stride in) as the panel dst: dst[k·nr+r] =
// src[r·in+k], zero for rows ≤ r < nr.
func packPanelF32(dst, src []float32, rows, in, nr int) {
	transposeInto(dst, src, in, rows, nr, in)
	if rows < nr {
		for k := range in {
			clear(dst[k*nr+rows : k*nr+nr])
		}
	}
}

// packPanelHalf is packPanelF32 for half-precision bits, which stay as they are. Four rows
// go at a time, each row read as a run, a block of columns at a time so that the writes of a
// block stay in a few KiB.
func packPanelHalf(dst, src []uint16, rows, in, nr int) {
	const block = 128
	r4 := rows &^ 3
	for k0 := 0; k0 < in; k0 += block {
		k1 := min(k0+block, in)
		for r := 0; r < r4; r += 4 {
			s0 := src[r*in+k0 : r*in+k1]
			s1 := src[(r+1)*in+k0 : (r+1)*in+k1]
			s2 := src[(r+2)*in+k0 : (r+2)*in+k1]
			s3 := src[(r+3)*in+k0 : (r+3)*in+k1]
			s1, s2, s3 = s1[:len(s0)], s2[:len(s0)], s3[:len(s0)]
			d := dst[k0*nr+r:]
			for k := range s0 {
				q := d[k*nr : k*nr+4 : k*nr+4]
				q[0], q[1], q[2], q[3] = s0[k], s1[k], s2[k], s3[k]
			}
		}
		for r := r4; r < rows; r++ {
			for k, v := range src[r*in+k0 : r*in+k1] {
				dst[(k0+k)*nr+r] = v
			}
		}
	}
	if rows < nr {
		for k := range in {
			clear(dst[k*nr+rows : k*nr+nr])
		}
	}
}

// packWidenedPanel is packPanelF32 from half-precision rows: widened a block of columns at a
// time into tmp (at least nr·widenBlock floats), then transposed.
func packWidenedPanel(dst []float32, src []uint16, f WeightFormat, rows, ld, depth, nr int, tmp []float32) {
	for k0 := 0; k0 < depth; k0 += widenBlock {
		kb := min(widenBlock, depth-k0)
		for r := range rows {
			widenHalf(tmp[r*widenBlock:r*widenBlock+kb], src[r*ld+k0:r*ld+k0+kb], f)
		}
		transposeInto(dst[k0*nr:], tmp, widenBlock, rows, nr, kb)
	}
	if rows < nr {
		for k := range depth {
			clear(dst[k*nr+rows : k*nr+nr])
		}
	}
}

// widenBlock is how many columns packWidenedPanel widens per row before transposing them.
const widenBlock = 256

// matrix returns w's [out, in] row-major matrix as float32 values: w's own slice when it is
// one, else a widened (or unpacked) copy in scratch, returned as buf for the caller to give
// back with putScratch.
func (w Weights) matrix(out, in int) (vals []float32, buf *[]float32) {
	n := out * in
	if w.packed == nil && w.format == WeightF32 {
		return w.f32[:n], nil
	}
	buf = getScratch(n)
	vals = *buf
	if p := w.packed; p != nil {
		if p.out != out || p.in != in {
			panic(fmt.Sprintf("kernels: weights packed as [%d, %d] used as [%d, %d]", p.out, p.in, out, in))
		}
		unpackPanels(vals, p)
		return vals, buf
	}
	widenParallel(vals, w.half[:n], w.format)
	return vals, buf
}

// unpackPanels rebuilds the row-major float32 matrix of p.
func unpackPanels(dst []float32, p *packedWeights) {
	nr := p.nr
	for q := range p.panels() {
		rows := min(nr, p.out-q*nr)
		for r := range rows {
			row := dst[(q*nr+r)*p.in : (q*nr+r+1)*p.in]
			base := q * p.in * nr
			if p.format == WeightF32 {
				for k := range row {
					row[k] = p.f32[base+k*nr+r]
				}
				continue
			}
			for k := range row {
				row[k] = widen1(p.half[base+k*nr+r], p.format)
			}
		}
	}
}

// panelsFor returns w's packed panels when they suit a [out, in] operand of micro-kernel kr.
func (w Weights) panelsFor(kr *microKernel, out, in int) *packedWeights {
	if p := w.packed; p != nil && p.nr == kr.nr && p.out == out && p.in == in {
		return p
	}
	return nil
}

// kernelPanels returns w as [out, in] panels kr reads: as packed, when they are and kr reads
// their precision, else packed here as float32 into scratch (scratch is true: the caller gives
// them back with releasePacked).
func (w Weights) kernelPanels(kr *microKernel, out, in int) (wp *packedWeights, scratch bool) {
	if wp = w.panelsFor(kr, out, in); wp != nil && (wp.format == WeightF32 || kr.halfFn(wp.format) != nil) {
		return wp, false
	}
	return packScratch(w, out, in), true
}

// f16ToF32 widens IEEE binary16 bits to float32, exactly (subnormals become normal float32
// values; a NaN keeps its sign and payload).
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
	v := float32(mant) * 0x1p-24 // a subnormal (or zero): mant·2⁻²⁴, exact in float32
	if sign != 0 {
		v = -v
	}
	return v
}

// widen1 widens one half-precision value of format f.
func widen1(h uint16, f WeightFormat) float32 {
	if f == WeightBF16 {
		return math.Float32frombits(uint32(h) << 16)
	}
	return f16ToF32(h)
}

// widenHalfGo is the portable widenHalf.
func widenHalfGo(dst []float32, src []uint16, f WeightFormat) {
	dst = dst[:len(src)]
	if f == WeightBF16 {
		for i, h := range src {
			dst[i] = math.Float32frombits(uint32(h) << 16)
		}
		return
	}
	for i, h := range src {
		dst[i] = f16ToF32(h)
	}
}

// widenParallel is widenHalf split across the workers.
func widenParallel(dst []float32, src []uint16, f WeightFormat) {
	if serial(len(src)) {
		widenHalf(dst, src, f)
		return
	}
	runPooled(&widenJobs, (len(src)+elemGrain-1)/elemGrain, widenJob{dst, src, f})
}

type widenJob struct {
	dst []float32
	src []uint16
	f   WeightFormat
}

var widenJobs pool

func (j *widenJob) run(lo, hi int) {
	lo, hi = lo*elemGrain, min(hi*elemGrain, len(j.src))
	widenHalf(j.dst[lo:hi], j.src[lo:hi], j.f)
}

// WidenWeights writes the float32 values of w's [out, in] matrix (row-major) into dst: for
// loaders and tests that want the float32 operand the half-precision kernels compute with.
func WidenWeights(dst []float32, w Weights, out, in int) {
	vals, buf := w.matrix(out, in)
	copy(dst[:out*in], vals)
	if buf != nil {
		putScratch(buf)
	}
}
