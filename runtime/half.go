package runtime

import (
	"fmt"
	"math"
)

// F16ToF32 widens IEEE binary16 bits to a float32, exactly: subnormals become normal
// float32 values, infinities stay infinite, and a NaN keeps its sign and payload.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: shift the leading 1 up to the implicit bit, lowering the exponent as we go.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 narrows a float32 to IEEE binary16 bits, rounding to nearest with ties to
// even; values too large become ±Inf, values too small ±0 or a subnormal. A NaN stays a
// NaN with its sign and the top of its payload, and is made quiet.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7c00 | 0x200 | uint16(mant>>13)
	}
	e := exp - 127 + 15 // biased f16 exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal f16 (or zero): the implicit bit becomes explicit and everything shifts
		// right by one more place per step below the normal range.
		if e < -10 {
			return sign // below half the smallest subnormal: rounds to zero
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		return sign | uint16(roundShiftEven(m, shift))
	}
	// The carry of rounding may run into the exponent, up to infinity, which is right.
	h := uint32(e)<<10 | mant>>13
	rest := mant & 0x1fff
	if rest > 0x1000 || rest == 0x1000 && h&1 == 1 {
		h++
	}
	return sign | uint16(h)
}

// roundShiftEven is m >> shift rounded to nearest, ties to even.
func roundShiftEven(m, shift uint32) uint32 {
	q := m >> shift
	rest := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rest > half || rest == half && q&1 == 1 {
		q++
	}
	return q
}

// BF16ToF32 widens bfloat16 bits to a float32, exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 narrows a float32 to bfloat16 bits, rounding to nearest with ties to even
// (overflow gives ±Inf). A NaN stays a NaN with its sign and the top of its payload, and is
// made quiet.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// F8E4M3ToF32 widens float8 e4m3fn bits (bias 7, no infinities, S.1111.111 is NaN).
func F8E4M3ToF32(v uint8) float32 {
	sign := uint32(v&0x80) << 24
	exp := uint32(v>>3) & 0xf
	mant := uint32(v & 7)
	switch {
	case exp == 0xf && mant == 7:
		return math.Float32frombits(sign | 0x7fc00000)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-7)<<23 | mant<<20)
	}
	// Subnormal: mant × 2⁻⁹, exact in float32.
	f := float32(mant) / 512
	if sign != 0 {
		f = -f
	}
	return f
}

// F8E5M2ToF32 widens float8 e5m2 bits, which are the top byte of an f16.
func F8E5M2ToF32(v uint8) float32 { return F16ToF32(uint16(v) << 8) }

func checkLens(op string, dst, src int) {
	if dst != src {
		panic(fmt.Sprintf("runtime: %s: destination has %d elements, source %d", op, dst, src))
	}
}

// F16ToF32Slice converts src into dst, which must have the same length.
func F16ToF32Slice(dst []float32, src []uint16) {
	checkLens("F16ToF32Slice", len(dst), len(src))
	for i, h := range src {
		dst[i] = F16ToF32(h)
	}
}

// F32ToF16Slice converts src into dst, which must have the same length.
func F32ToF16Slice(dst []uint16, src []float32) {
	checkLens("F32ToF16Slice", len(dst), len(src))
	for i, f := range src {
		dst[i] = F32ToF16(f)
	}
}

// BF16ToF32Slice converts src into dst, which must have the same length.
func BF16ToF32Slice(dst []float32, src []uint16) {
	checkLens("BF16ToF32Slice", len(dst), len(src))
	for i, h := range src {
		dst[i] = BF16ToF32(h)
	}
}

// F32ToBF16Slice converts src into dst, which must have the same length.
func F32ToBF16Slice(dst []uint16, src []float32) {
	checkLens("F32ToBF16Slice", len(dst), len(src))
	for i, f := range src {
		dst[i] = F32ToBF16(f)
	}
}
