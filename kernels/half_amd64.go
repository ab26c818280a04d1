package kernels

//go:noescape
func widenF16AVX(dst *float32, src *uint16, n int)

//go:noescape
func widenBF16AVX(dst *float32, src *uint16, n int)

// widenHalf sets dst[i] to the float32 value of the half-precision src[i] (format f) for
// i < len(src); dst must be at least as long.
func widenHalf(dst []float32, src []uint16, f WeightFormat) {
	n32 := len(src) &^ 31
	if n32 > 0 && cpu.avx2FMA && (f == WeightBF16 || cpu.f16c) {
		_ = dst[n32-1] // the assembly trusts its bounds
		if f == WeightF16 {
			widenF16AVX(&dst[0], &src[0], n32)
		} else {
			widenBF16AVX(&dst[0], &src[0], n32)
		}
	} else {
		n32 = 0
	}
	widenHalfGo(dst[n32:], src[n32:], f)
}
