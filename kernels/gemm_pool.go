package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// GEMM workers hand off and rendezvous by spinning briefly before they sleep. Waking a
// sleeping thread costs tens of microseconds (more when the hypervisor has halted the idle
// vCPU), which is a large share of a 512² product; OpenBLAS's threads spin for the same
// reason. Spins are bounded so idle helpers give the CPU back soon.
const (
	helperIdleSpin = 200 * time.Microsecond // an idle helper polls this long for the next task
	rendezvousSpin = 100 * time.Microsecond // a barrier or completion wait spins this long
)

// gemmTask is worker w's share of job g.
type gemmTask struct {
	g *gemmJob
	w int
}

// gemmHelper is a persistent goroutine that runs one worker share at a time. Helpers persist
// so that steady-state calls start no goroutines (a go statement allocates).
type gemmHelper struct {
	state atomic.Int32
	task  gemmTask
	wake  chan struct{} // a claimer of a parked helper sends here
}

const (
	helperSpinning int32 = iota // idle and polling state
	helperParked                // idle and blocked on wake
	helperClaimed               // a caller owns it and is writing task
	helperReady                 // task is written; the helper runs it
)

var (
	helpersMu sync.Mutex                    // serialises adding helpers
	helpers   atomic.Pointer[[]*gemmHelper] // copied on write, so claimers read it lock-free
)

// startTask hands t to an idle helper, starting a new helper when none is idle. It never
// waits for a busy helper: that could deadlock concurrent calls on each other's barriers.
func startTask(t gemmTask) {
	if list := helpers.Load(); list != nil {
		for _, h := range *list {
			if h.state.CompareAndSwap(helperSpinning, helperClaimed) {
				h.task = t
				h.state.Store(helperReady)
				return
			}
			if h.state.CompareAndSwap(helperParked, helperClaimed) {
				h.task = t
				h.state.Store(helperReady)
				h.wake <- struct{}{}
				return
			}
		}
	}
	h := &gemmHelper{wake: make(chan struct{}, 1)}
	h.task = t
	h.state.Store(helperReady)
	helpersMu.Lock()
	var list []*gemmHelper
	if old := helpers.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, h)
	helpers.Store(&list)
	helpersMu.Unlock()
	go h.loop()
}

func (h *gemmHelper) loop() {
	for {
		start := time.Now()
		for spins := 0; h.state.Load() != helperReady; spins++ {
			if !keepSpinning(spins, start, helperIdleSpin) && h.state.CompareAndSwap(helperSpinning, helperParked) {
				<-h.wake // the claimer marks the task ready before sending
			}
		}
		t := h.task
		h.task = gemmTask{}
		t.g.work(t.w)
		h.state.Store(helperSpinning)
		t.g.finishShare()
	}
}

// keepSpinning reports whether a wait that began at start and has polled spins times should keep
// spinning. It yields now and then so that, with fewer Ps than workers, the goroutine being
// waited for gets to run.
func keepSpinning(spins int, start time.Time, budget time.Duration) bool {
	if spins%64 == 63 {
		runtime.Gosched()
		return time.Since(start) < budget
	}
	return true
}

// gemmBarrier is a reusable rendezvous for the workers of one gemmJob.
type gemmBarrier struct {
	n     int32
	count atomic.Int32
	gen   atomic.Uint32
	mu    sync.Mutex
	cond  sync.Cond // L is mu; sleepers wait here once the spin budget is spent
}

func (b *gemmBarrier) wait() {
	gen := b.gen.Load()
	if b.count.Add(1) == b.n {
		b.count.Store(0)
		b.mu.Lock()
		b.gen.Add(1)
		b.cond.Broadcast()
		b.mu.Unlock()
		return
	}
	start := time.Now()
	for spins := 0; b.gen.Load() == gen; spins++ {
		if !keepSpinning(spins, start, rendezvousSpin) {
			b.mu.Lock()
			for b.gen.Load() == gen {
				b.cond.Wait()
			}
			b.mu.Unlock()
			return
		}
	}
}

// runShares runs worker shares 1..nw-1 on helpers and share 0 on the caller, and returns
// when all are done.
func (g *gemmJob) runShares(nw int) {
	g.bar.n = int32(nw)
	g.pending.Store(int32(nw - 1))
	for w := 1; w < nw; w++ {
		startTask(gemmTask{g, w})
	}
	g.work(0)
	start := time.Now()
	for spins := 0; g.pending.Load() != 0 && keepSpinning(spins, start, rendezvousSpin); spins++ {
	}
	<-g.done // sent once, by the helper that finishes last
}

// finishShare records that a helper's share is done; the last one signals the caller.
func (g *gemmJob) finishShare() {
	if g.pending.Add(-1) == 0 {
		g.done <- struct{}{}
	}
}
