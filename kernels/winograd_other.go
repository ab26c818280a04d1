//go:build !amd64

package kernels

// winoRuns reports whether this CPU runs the Winograd transforms: not off amd64.
func winoRuns() bool { return false }

func winoInput(dst, src []float32, nc, plane, rowStride, half, xi int) {
	panic("kernels: no Winograd transforms on this architecture")
}

func winoOutput(y0, y1, m []float32, nk, ohw, ldm, xi int, bias []float32) {
	panic("kernels: no Winograd transforms on this architecture")
}
