//go:build !amd64

package kernels

// widenHalf sets dst[i] to the float32 value of the half-precision src[i] (format f) for
// i < len(src); dst must be at least as long.
func widenHalf(dst []float32, src []uint16, f WeightFormat) { widenHalfGo(dst, src, f) }
