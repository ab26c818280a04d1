package kernels

// Hooks for the external tests: shrink tiles so small golden cases cross tile boundaries.

// SetConvScratchFloats sets the per-worker conv scratch bound and returns a function that
// restores the previous one.
func SetConvScratchFloats(n int) (restore func()) {
	old := convScratchFloats
	convScratchFloats = n
	return func() { convScratchFloats = old }
}

// SetAttentionTiles sets the attention query and key tile sizes and returns a function that
// restores the previous ones.
func SetAttentionTiles(queries, keys int) (restore func()) {
	oq, ok, fq, fk := attnQueryTile, attnKeyTile, flashQueryTile, flashKeyTile
	attnQueryTile, attnKeyTile, flashQueryTile, flashKeyTile = queries, keys, queries, keys
	return func() { attnQueryTile, attnKeyTile, flashQueryTile, flashKeyTile = oq, ok, fq, fk }
}

// SetImplicitBlocking sets the implicit convolution's depth step and pixels per task (for
// the grid path, its tile bound in floats) and returns a function that restores the
// previous ones.
func SetImplicitBlocking(kc, pixels int) (restore func()) {
	ok, op, og := implicitKC, implicitBlockPixels, gridTileFloats
	implicitKC, implicitBlockPixels, gridTileFloats = kc, pixels, pixels
	return func() { implicitKC, implicitBlockPixels, gridTileFloats = ok, op, og }
}

// SetGLUBlockFloats sets the size of LinearGLU's row blocks and returns a function that
// restores the previous one.
func SetGLUBlockFloats(n int) (restore func()) {
	old := gluBlockFloats
	gluBlockFloats = n
	return func() { gluBlockFloats = old }
}

// GemmKernelNames lists the GEMM micro-kernels this CPU runs, fastest first.
func GemmKernelNames() []string {
	var names []string
	for _, k := range gemmKernels() {
		names = append(names, k.name)
	}
	return names
}

// UseGemmKernel makes the kernels use the micro-kernel of that name (one of GemmKernelNames)
// and returns a function that restores the previous one.
func UseGemmKernel(name string) (restore func()) {
	old := gemmKernel
	for _, k := range gemmKernels() {
		if k.name == name {
			gemmKernel = k
		}
	}
	return func() { gemmKernel = old }
}

// SetWinogradMinPixels sets the smallest image the Winograd convolution takes (so that small
// golden cases take it) and returns a function that restores the previous one.
func SetWinogradMinPixels(n int) (restore func()) {
	old := winoMinPixels
	winoMinPixels = n
	return func() { winoMinPixels = old }
}
