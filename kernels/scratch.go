package kernels

import (
	"math/bits"
	"sync"
)

// Scratch buffers (im2col columns, attention tiles, statistics) are recycled so that kernels
// do not allocate per call once warm. They are pooled by size class, capacity 2^c for class
// c: with a single pool, a caller that drew a buffer too small for it dropped it and
// allocated, which happened over and over when kernels with different needs alternate.
const scratchClasses = bits.UintSize

var (
	scratchPools   [scratchClasses]sync.Pool // of *[]float32
	scratch64Pools [scratchClasses]sync.Pool // of *[]float64
)

// scratchClass is the smallest c with 2^c ≥ n.
func scratchClass(n int) int { return bits.Len(uint(max(n, 1) - 1)) }

// getScratch returns a buffer of length n from the pool; its contents are undefined.
func getScratch(n int) *[]float32 {
	c := scratchClass(n)
	if v, ok := scratchPools[c].Get().(*[]float32); ok {
		*v = (*v)[:n]
		return v
	}
	s := make([]float32, n, 1<<c)
	return &s
}

func putScratch(s *[]float32) { scratchPools[scratchClass(cap(*s))].Put(s) }

// getScratch64 is getScratch for float64 accumulators.
func getScratch64(n int) *[]float64 {
	c := scratchClass(n)
	if v, ok := scratch64Pools[c].Get().(*[]float64); ok {
		*v = (*v)[:n]
		return v
	}
	s := make([]float64, n, 1<<c)
	return &s
}

func putScratch64(s *[]float64) { scratch64Pools[scratchClass(cap(*s))].Put(s) }
