package kernels

import (
	"math/bits"
	"sync"
)

// Scratch buffers (im2col columns, packed panels, attention tiles, statistics) are recycled
// so that kernels do not allocate per call once warm. They are kept by size class, capacity
// 2^c for class c, in free lists that live as long as the process: with a single list, a
// caller that drew a buffer too small for it dropped it and allocated, which happened over
// and over when kernels with different needs alternate; with sync.Pools, a buffer put back
// by a worker on one P was now and then out of reach of the worker that wanted it on another
// (a P's private slot is not shared), and a collection emptied them, so that warm kernels
// still allocated. A free list holds at most as many buffers of a class as were ever in use
// at once.
const scratchClasses = bits.UintSize

// freeList is the spare buffers of one size class.
type freeList[T any] struct {
	mu   sync.Mutex
	free []*[]T
}

func (l *freeList[T]) get() *[]T {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := len(l.free)
	if k == 0 {
		return nil
	}
	v := l.free[k-1]
	l.free[k-1] = nil
	l.free = l.free[:k-1]
	return v
}

func (l *freeList[T]) put(s *[]T) {
	l.mu.Lock()
	l.free = append(l.free, s)
	l.mu.Unlock()
}

var (
	scratchLists   [scratchClasses]freeList[float32]
	scratch64Lists [scratchClasses]freeList[float64]
)

// scratchClass is the smallest c with 2^c ≥ n.
func scratchClass(n int) int { return bits.Len(uint(max(n, 1) - 1)) }

// getScratch returns a buffer of length n; its contents are undefined. Give it back with
// putScratch.
func getScratch(n int) *[]float32 {
	c := scratchClass(n)
	if v := scratchLists[c].get(); v != nil {
		*v = (*v)[:n]
		return v
	}
	s := make([]float32, n, 1<<c)
	return &s
}

func putScratch(s *[]float32) { scratchLists[scratchClass(cap(*s))].put(s) }

// getScratch64 is getScratch for float64 accumulators.
func getScratch64(n int) *[]float64 {
	c := scratchClass(n)
	if v := scratch64Lists[c].get(); v != nil {
		*v = (*v)[:n]
		return v
	}
	s := make([]float64, n, 1<<c)
	return &s
}

func putScratch64(s *[]float64) { scratch64Lists[scratchClass(cap(*s))].put(s) }
