//go:build !amd64

package kernels

// gemmKernels lists the micro-kernels available off amd64: only the portable one.
func gemmKernels() []*microKernel { return []*microKernel{goKernel} }

// transposeInto writes dst[p*width+r] = src[r*ld+p] for r < rows, p < k.
func transposeInto(dst, src []float32, ld, rows, width, k int) {
	transposeGo(dst, src, ld, rows, width, k)
}

// halfKernelsRun reports whether the CPU runs micro-kernels for half-precision B panels: off
// amd64 there are none.
func halfKernelsRun(f WeightFormat) bool { return false }

// smallKKernel is the small-K convolution's kernel, which no CPU runs off amd64.
func smallKKernel(k int, a, b []float32, offs []int32, c []float32) {
	panic("kernels: no small-K kernel")
}

// smallKRuns reports whether this CPU runs smallKKernel: not off amd64.
func smallKRuns() bool { return false }
