package kernels

//go:noescape
func winoInputAVX512(dst, src *float32, nc, plane, rowStride, half, xi int)

//go:noescape
func winoOutputAVX512(y0, y1, m *float32, nk, ohw, ldm, xi int, bias *float32)

// winoRuns reports whether this CPU runs the Winograd transforms.
func winoRuns() bool { return cpu.avx512 && cpu.avx2FMA }

// winoInput is winoInputAVX512 with its reach checked.
func winoInput(dst, src []float32, nc, plane, rowStride, half, xi int) {
	_ = dst[15*xi+(nc-1)*32+15]
	_ = src[(nc-1)*plane+3*rowStride+half+16]
	winoInputAVX512(&dst[0], &src[0], nc, plane, rowStride, half, xi)
}

// winoOutput is winoOutputAVX512 with its reach checked.
func winoOutput(y0, y1, m []float32, nk, ohw, ldm, xi int, bias []float32) {
	_, _ = y0[(nk-1)*ohw+31], y1[(nk-1)*ohw+31]
	_ = m[15*xi+(nk-1)*ldm+15]
	_ = bias[nk-1]
	winoOutputAVX512(&y0[0], &y1[0], &m[0], nk, ohw, ldm, xi, &bias[0])
}
