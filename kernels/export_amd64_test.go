package kernels

// SetVectorKernels turns the AVX2 paths of the non-GEMM kernels (and of GEMM packing) on or
// off, so tests can run the portable code on this machine; it returns a restore function.
func SetVectorKernels(on bool) (restore func()) {
	old := cpu.avx2FMA
	cpu.avx2FMA = on && old
	return func() { cpu.avx2FMA = old }
}
