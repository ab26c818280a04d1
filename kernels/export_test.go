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
	oq, ok := attnQueryTile, attnKeyTile
	attnQueryTile, attnKeyTile = queries, keys
	return func() { attnQueryTile, attnKeyTile = oq, ok }
}
