package kernels

import "sync"

// scratchPool recycles float32 work buffers (im2col columns, attention tiles, statistics)
// so that kernels do not allocate per call once warm.
var scratchPool sync.Pool

// getScratch returns a buffer of length n from the pool; its contents are undefined.
func getScratch(n int) *[]float32 {
	if v, ok := scratchPool.Get().(*[]float32); ok {
		if cap(*v) >= n {
			*v = (*v)[:n]
			return v
		}
		// Too small for this caller: let it go rather than keep growing one size class.
	}
	s := make([]float32, n)
	return &s
}

func putScratch(s *[]float32) { scratchPool.Put(s) }

var scratch64Pool sync.Pool

// getScratch64 is getScratch for float64 accumulators.
func getScratch64(n int) *[]float64 {
	if v, ok := scratch64Pool.Get().(*[]float64); ok {
		if cap(*v) >= n {
			*v = (*v)[:n]
			return v
		}
	}
	s := make([]float64, n)
	return &s
}

func putScratch64(s *[]float64) { scratch64Pool.Put(s) }
