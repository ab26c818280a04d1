package kernels_test

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rfc-project/rfc/kernels"
)

// TestParallelForCoversRange: every index is visited exactly once, for counts below, at and
// above the number of workers.
func TestParallelForCoversRange(t *testing.T) {
	defer kernels.SetWorkers(kernels.Workers())
	for _, w := range []int{1, 2, 3, 8} {
		kernels.SetWorkers(w)
		for _, n := range []int{0, 1, 2, 5, 17, 1000} {
			hits := make([]atomic.Int32, n)
			kernels.ParallelFor(n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					hits[i].Add(1)
				}
			})
			for i := range hits {
				if h := hits[i].Load(); h != 1 {
					t.Fatalf("workers %d, n %d: index %d visited %d times", w, n, i, h)
				}
			}
		}
	}
}

// TestParallelForPanics: a panic in any range reaches the caller with its value, after the
// other ranges are done, and the helpers keep working afterwards.
func TestParallelForPanics(t *testing.T) {
	defer kernels.SetWorkers(kernels.Workers())
	kernels.SetWorkers(4)
	for _, bad := range []int{0, 3} { // the caller's own range, then a helper's
		var done atomic.Int32
		got := func() (r any) {
			defer func() { r = recover() }()
			kernels.ParallelFor(4, func(lo, _ int) {
				if lo == bad {
					panic(bad)
				}
				done.Add(1)
			})
			return nil
		}()
		if got != bad {
			t.Errorf("range %d: recovered %v, want %d", bad, got, bad)
		}
		if d := done.Load(); d != 3 {
			t.Errorf("range %d: %d other ranges had finished when the panic reached the caller, want 3", bad, d)
		}
	}
	var sum atomic.Int64
	kernels.ParallelFor(100, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			sum.Add(int64(i))
		}
	})
	if s := sum.Load(); s != 4950 {
		t.Errorf("after the panics, sum = %d, want 4950", s)
	}
}

// TestParallelForNested: a range that itself runs ParallelFor (GLU's activation does) does not
// wait on busy helpers, so it cannot deadlock.
func TestParallelForNested(t *testing.T) {
	defer kernels.SetWorkers(kernels.Workers())
	kernels.SetWorkers(3)
	var count atomic.Int32
	kernels.ParallelFor(3, func(lo, hi int) {
		for range hi - lo {
			kernels.ParallelFor(3, func(lo, hi int) {
				kernels.ParallelFor(3, func(lo, hi int) { count.Add(int32(hi - lo)) })
			})
		}
	})
	if c := count.Load(); c != 27 {
		t.Errorf("nested calls counted %d, want 27", c)
	}
}

// TestParallelForGoexit: a range that calls runtime.Goexit (as t.FailNow does) ends only its
// helper; the call returns and later calls still run every range.
func TestParallelForGoexit(t *testing.T) {
	defer kernels.SetWorkers(kernels.Workers())
	kernels.SetWorkers(2)
	kernels.ParallelFor(2, func(lo, _ int) {
		if lo == 1 {
			runtime.Goexit()
		}
	})
	done := make(chan int32)
	go func() {
		var count atomic.Int32
		for range 3 {
			kernels.ParallelFor(2, func(lo, hi int) { count.Add(int32(hi - lo)) })
		}
		done <- count.Load()
	}()
	select {
	case c := <-done:
		if c != 6 {
			t.Errorf("after a Goexit, ParallelFor ran %d of 6 indices", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ParallelFor hangs after a range called Goexit")
	}
}
