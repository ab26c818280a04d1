package kernels

import (
	"runtime"
	"sync"
)

// Workers is the number of goroutines a parallel kernel splits its work into. It follows
// GOMAXPROCS at start-up; SetWorkers changes it (tests and benchmarks pin it).
var workers = runtime.GOMAXPROCS(0)

// SetWorkers sets how many goroutines parallel kernels use; n < 1 means 1.
func SetWorkers(n int) {
	if n < 1 {
		n = 1
	}
	workers = n
}

// Workers reports how many goroutines parallel kernels use.
func Workers() int { return workers }

// ParallelFor splits [0, n) into at most Workers() contiguous ranges and runs fn on each,
// the first range on the calling goroutine. It returns when all are done.
func ParallelFor(n int, fn func(lo, hi int)) {
	w := workers
	if w > n {
		w = n
	}
	if w <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	var once sync.Once
	var crash any
	chunk := (n + w - 1) / w
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			// A panic on a worker would kill the process past any recover of the caller:
			// carry it back and re-raise it on the calling goroutine.
			defer func() {
				if r := recover(); r != nil {
					once.Do(func() { crash = r })
				}
			}()
			fn(lo, hi)
		}(lo, hi)
	}
	fn(0, min(chunk, n))
	wg.Wait()
	if crash != nil {
		panic(crash)
	}
}
