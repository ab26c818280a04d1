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

// rangeJob is work over the index range [0, n) that can be split: run does [lo, hi).
// Kernels implement it on pooled structs (see runPooled), so that handing a job to the
// helpers allocates nothing, where a closure capturing the arguments would escape.
type rangeJob interface{ run(lo, hi int) }

// funcJob adapts a func to rangeJob.
type funcJob func(lo, hi int)

func (f funcJob) run(lo, hi int) { f(lo, hi) }

// ParallelFor splits [0, n) into at most Workers() contiguous ranges and runs fn on each,
// the first range on the calling goroutine. It returns when all are done; a panic in any
// range is re-raised on the caller. fn escapes, so a closure that captures variables is
// allocated per call: kernels use runPooled instead.
func ParallelFor(n int, fn func(lo, hi int)) { parallelRun(n, funcJob(fn)) }

// parallelRun is ParallelFor for a rangeJob. Ranges other than the first go to persistent
// helper goroutines, since a go statement allocates.
func parallelRun(n int, j rangeJob) {
	w := min(workers, n)
	if w <= 1 {
		if n > 0 {
			j.run(0, n)
		}
		return
	}
	g := getGroup()
	chunk := (n + w - 1) / w
	for lo := chunk; lo < n; lo += chunk {
		g.wg.Add(1)
		startRange(rangeTask{j, lo, min(lo+chunk, n), g})
	}
	// Wait even when the first range panics: the helpers must be done with the job before
	// the caller unwinds (and may reuse the job's buffers).
	func() {
		defer g.wg.Wait()
		j.run(0, min(chunk, n))
	}()
	crash := g.crash
	g.crash = nil
	rangeGroups.Put(g)
	if crash != nil {
		panic(crash)
	}
}

// rangeGroup tracks the ranges of one parallelRun call.
type rangeGroup struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	crash any // the first panic of a helper's range
}

var rangeGroups pool

func getGroup() *rangeGroup {
	if g, ok := rangeGroups.Get().(*rangeGroup); ok {
		return g
	}
	return new(rangeGroup)
}

// rangeTask is one range of a job, run by a helper.
type rangeTask struct {
	job    rangeJob
	lo, hi int
	group  *rangeGroup
}

// rangeHelper is a persistent goroutine that runs one task at a time.
type rangeHelper struct {
	tasks chan rangeTask // buffered (1), so a claimer never blocks
}

var (
	idleHelpersMu sync.Mutex
	idleHelpers   []*rangeHelper // helpers waiting for a task, most recently used last
)

// startRange hands t to an idle helper, starting one when none is idle. It never waits for a
// busy helper, so that nested or concurrent parallel calls cannot deadlock.
func startRange(t rangeTask) {
	var h *rangeHelper
	idleHelpersMu.Lock()
	if n := len(idleHelpers); n > 0 {
		h = idleHelpers[n-1]
		idleHelpers[n-1] = nil
		idleHelpers = idleHelpers[:n-1]
	}
	idleHelpersMu.Unlock()
	if h == nil {
		h = &rangeHelper{tasks: make(chan rangeTask, 1)}
		go h.loop()
	}
	h.tasks <- t
}

func (h *rangeHelper) loop() {
	for t := range h.tasks {
		h.do(t)
	}
}

// do runs t, carrying a panic back to the caller (on a helper it would kill the process past
// any recover of the caller). The helper goes back on the idle list before it reports the
// task done, so that a caller's next parallel call finds it instead of starting another;
// unless the task called runtime.Goexit, which ends the helper.
func (h *rangeHelper) do(t rangeTask) {
	returned := false
	defer func() {
		if r := recover(); r != nil {
			t.group.mu.Lock()
			if t.group.crash == nil {
				t.group.crash = r
			}
			t.group.mu.Unlock()
			returned = true
		}
		if returned {
			idleHelpersMu.Lock()
			idleHelpers = append(idleHelpers, h)
			idleHelpersMu.Unlock()
		}
		t.group.wg.Done()
	}()
	t.job.run(t.lo, t.hi)
	returned = true
}

// runPooled runs job (a kernel's arguments, by value) over [0, n) with parallelRun, from a
// struct recycled through jobs: the struct escapes to the helpers, so a fresh one would be
// a heap allocation per call.
func runPooled[J any, P interface {
	*J
	rangeJob
}](jobs *pool, n int, job J) {
	j, ok := jobs.Get().(P)
	if !ok {
		j = new(J)
	}
	*j = job
	parallelRun(n, j)
	var zero J
	*j = zero // drop the caller's slices, so the pool does not keep them alive
	jobs.Put(j)
}
