package kernels

import "sync"

// pool recycles the job structs of the parallel kernels, with sync.Pool's Get/Put/New. A
// sync.Pool is emptied by each garbage collection, so warm kernels allocated a job again now
// and then (a generated Forward counted one allocation per call under load); these lists
// live as long as the process and hold at most as many jobs as were ever out at once.
type pool struct {
	New  func() any
	mu   sync.Mutex
	free []any
}

// Get takes a spare job, or makes one with New (nil without New).
func (p *pool) Get() any {
	p.mu.Lock()
	if k := len(p.free); k > 0 {
		v := p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
		p.mu.Unlock()
		return v
	}
	p.mu.Unlock()
	if p.New != nil {
		return p.New()
	}
	return nil
}

// Put gives a job back.
func (p *pool) Put(v any) {
	p.mu.Lock()
	p.free = append(p.free, v)
	p.mu.Unlock()
}
