package kernels

import "fmt"

//go:noescape
func reluAVX2(y, x *float32, n int)

//go:noescape
func addReluAVX2(y, a, b *float32, n int, relu bool)

// reluVec sets y[i] = max(x[i], 0) for the leading multiple of 8 of x and returns how
// many it did.
func reluVec(y, x []float32) int {
	n8 := len(x) &^ 7
	if !cpu.avx2FMA || n8 == 0 {
		return 0
	}
	_ = y[n8-1]
	reluAVX2(&y[0], &x[0], n8)
	return n8
}

// addReluVec sets y[i] = a[i] + b[i] (then ReLU when relu) for the leading multiple of 8
// of y and returns how many it did.
func addReluVec(y, a, b []float32, relu bool) int {
	n8 := len(y) &^ 7
	if !cpu.avx2FMA || n8 == 0 {
		return 0
	}
	_, _ = a[n8-1], b[n8-1]
	addReluAVX2(&y[0], &a[0], &b[0], n8, relu)
	return n8
}

//go:noescape
func transposeStore8AVX(dst *float32, ldd int, src *float32, lds int, bias, res *float32, n int, relu bool)

// transposeStore8 stores the 8-channel columns of a pixel-major tile channel-major, adding
// the bias and the residual and applying ReLU (see transposeStore8AVX), for the leading
// multiple of 8 of n pixels; it returns how many it did. res is nil or laid out as dst.
func transposeStore8(dst []float32, ldd int, src []float32, lds int, bias *[8]float32, res []float32, n int, relu bool) int {
	n8 := n &^ 7
	if !cpu.avx2FMA || n8 == 0 {
		return 0
	}
	// The assembly trusts its bounds: check them once here.
	_ = dst[7*ldd+n8-1]
	_ = src[(n8-1)*lds+7]
	var r *float32
	if res != nil {
		_ = res[7*ldd+n8-1]
		r = &res[0]
	}
	transposeStore8AVX(&dst[0], ldd, &src[0], lds, &bias[0], r, n8, relu)
	return n8
}

//go:noescape
func packPanel12AVX(dst *float32, src *float32, plane int, offs *int32, taps, nc int)

// packPanelVec packs the micro-panel of one chunk for nc channels from src (see
// packPanel12AVX), leaving the tapGather entries to the caller; it reports false (and does
// nothing) when no vector routine fits mr.
func packPanelVec(dst, src []float32, plane int, offs []int32, nc, mr int) bool {
	taps := len(offs)
	if mr != 12 || !cpu.avx2FMA || nc == 0 || taps == 0 {
		return false
	}
	// The assembly trusts its bounds: check them once here.
	_ = dst[nc*taps*mr-1]
	for _, o := range offs {
		if o >= 0 && (nc-1)*plane+int(o)+mr > len(src) {
			panic(fmt.Sprintf("kernels: packPanelVec offset %d out of range %d", o, len(src)))
		}
	}
	packPanel12AVX(&dst[0], &src[0], plane, &offs[0], taps, nc)
	return true
}

//go:noescape
func dup2AVX2(y, x *float32, n int)

// dup2Vec sets y[2i] = y[2i+1] = x[i] over the leading multiple of 8 of x and returns how
// many of x it did.
func dup2Vec(y, x []float32) int {
	n := len(x) &^ 7
	if !cpu.avx2FMA || n == 0 {
		return 0
	}
	_ = y[2*n-1]
	dup2AVX2(&y[0], &x[0], n)
	return n
}
