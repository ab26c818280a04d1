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

// freeList is the spare buffers of one size class: those whose capacity c satisfies
// 2^class ≤ c < 2^(class+1). Buffers are made at the length asked for, not rounded up to a
// power of two: the decoder's convolutions at 512×512 ask for 135 and 270 MB, which rounding
// made 256 and 512.
type freeList[T any] struct {
	mu   sync.Mutex
	free []*[]T
}

// take removes and returns the spare buffer of the smallest capacity that holds n, or nil.
func (l *freeList[T]) take(n int) *[]T {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := -1
	for i, v := range l.free {
		if c := cap(*v); c >= n && (best < 0 || c < cap(*l.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	v := l.free[best]
	last := len(l.free) - 1
	l.free[best] = l.free[last]
	l.free[last] = nil
	l.free = l.free[:last]
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

// scratchReach is how many classes above n's own getScratch looks in for a spare buffer
// (one up to 16 times larger serves), so that the decoder's convolutions at 64², 128², 256²
// and 512² share the largest one's buffer instead of keeping one each.
const scratchReach = 3

// getScratchFrom returns a buffer of length n from lists, recycled or new; its contents are
// undefined.
func getScratchFrom[T any](lists *[scratchClasses]freeList[T], n int) *[]T {
	c := bits.Len(uint(max(n, 1))) - 1 // the class of a buffer of capacity n
	for d := 0; d <= scratchReach && c+d < scratchClasses; d++ {
		if v := lists[c+d].take(n); v != nil {
			*v = (*v)[:n]
			return v
		}
	}
	s := make([]T, n, max(n, 1))
	return &s
}

func putScratchTo[T any](lists *[scratchClasses]freeList[T], s *[]T) {
	lists[bits.Len(uint(max(cap(*s), 1)))-1].put(s)
}

// getScratch returns a buffer of length n; its contents are undefined. Give it back with
// putScratch.
func getScratch(n int) *[]float32 { return getScratchFrom(&scratchLists, n) }

func putScratch(s *[]float32) { putScratchTo(&scratchLists, s) }

// getScratch64 is getScratch for float64 accumulators.
func getScratch64(n int) *[]float64 { return getScratchFrom(&scratch64Lists, n) }

func putScratch64(s *[]float64) { putScratchTo(&scratch64Lists, s) }
