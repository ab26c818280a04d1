package kernels

import "testing"

// Buffers are recycled at their own size, best fit first: alternating lengths, once warm,
// allocate nothing, and a spare buffer of a class up to three above serves a request.
func TestScratchRecycling(t *testing.T) {
	var lists [scratchClasses]freeList[float32]
	sizes := []int{1000, 3000, 1500, 7000, 0, 1}
	bufs := make([]*[]float32, 0, len(sizes))
	round := func() {
		bufs = bufs[:0]
		for _, n := range sizes {
			b := getScratchFrom(&lists, n)
			if len(*b) != n {
				t.Fatalf("getScratch(%d) has length %d", n, len(*b))
			}
			bufs = append(bufs, b)
		}
		for _, b := range bufs {
			putScratchTo(&lists, b)
		}
	}
	round()
	if n := testing.AllocsPerRun(20, round); n != 0 {
		t.Errorf("%g allocations per round once warm", n)
	}
	// Exact sizes: a buffer is not rounded up to a power of two.
	odd := getScratchFrom(&lists, 5<<20+3)
	if cap(*odd) != 5<<20+3 {
		t.Errorf("capacity %d for %d", cap(*odd), 5<<20+3)
	}
	putScratchTo(&lists, odd)
	small := getScratchFrom(&lists, 1<<20)
	if &(*small)[:1][0] != &(*odd)[:1][0] {
		t.Error("a spare buffer 5 times larger was not reused")
	}
	putScratchTo(&lists, small)
	if tiny := getScratchFrom(&lists, 1<<16); &(*tiny)[:1][0] == &(*odd)[:1][0] {
		t.Error("a buffer 80 times larger was taken for a small request")
	}
}
