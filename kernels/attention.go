package kernels

import (
	"math"
	"sync/atomic"
)

// Attention tile sizes: a task owns attnQueryTile queries of one (batch, head) and sweeps the
// keys attnKeyTile at a time, so only an attnQueryTile×attnKeyTile score block (256 KiB)
// exists at once. Larger tiles amortize Sgemm's packing of each key and value block over
// more queries (64×256 ran 15% slower at L=1024); smaller query tiles waste less of the
// diagonal block under a causal mask.
var (
	attnQueryTile = 128
	attnKeyTile   = 512
)

// Attention computes scaled dot-product attention in Refiners' layout: q [B, Lq, H·Dk],
// k [B, Lk, H·Dk], v [B, Lk, H·Dv], out [B, Lq, H·Dv] (head h uses columns h·D…(h+1)·D),
// softmax(q·kᵀ/√Dk)·v per head. With causal, query i sees keys j ≤ i only: the
// lower-triangular [Lq, Lk] mask aligned at the top left, as torch.ones(Lq, Lk).tril().
//
// It never builds the Lq×Lk score matrix: each task takes a tile of queries, computes scores
// for one tile of keys at a time, and folds them in with an online softmax
// (running maximum and sum per query, rescaling the partial output when the maximum grows).
// Tasks (batch × head × query tile) are handed out dynamically, since causal tiles differ in
// cost. Without a mask the products run on the GEMM micro-kernel on operands packed once
// (attention_flash.go); with one, through Sgemm.
func Attention(out, q, k, v []float32, batch, heads, lq, lk, dk, dv int, causal bool) {
	if batch == 0 || heads == 0 || lq == 0 || dv == 0 {
		return
	}
	if !causal && dk > 0 && lk > 0 {
		attentionFlash(out, q, k, v, batch, heads, lq, lk, dk, dv)
		return
	}
	a := attnProblem{q, k, v, out, batch, heads, lq, lk, dk, dv, causal, attnQueryTile, attnKeyTile}
	tasks := a.tasks()
	if Workers() == 1 || tasks == 1 {
		var next atomic.Int64
		a.work(&next, false)
		return
	}
	j, ok := attnJobs.Get().(*attnJob)
	if !ok {
		j = new(attnJob)
	}
	j.a = a
	j.next.Store(0)
	parallelRun(min(Workers(), tasks), j)
	j.a = attnProblem{} // drop the caller's slices
	attnJobs.Put(j)
}

// attnJob is a pooled Attention call shared by its workers, each of which takes tasks from
// next until none is left (the range it is given only sets how many workers there are).
type attnJob struct {
	a    attnProblem
	next atomic.Int64
}

var attnJobs pool

func (j *attnJob) run(_, _ int) { j.a.work(&j.next, true) }

// attnProblem is one Attention call, with the tile sizes it runs with.
type attnProblem struct {
	q, k, v, out                 []float32
	batch, heads, lq, lk, dk, dv int
	causal                       bool
	queryTile, keyTile           int
}

// tasks is the number of (batch, head, query tile) tasks.
func (a *attnProblem) tasks() int {
	return a.batch * a.heads * ((a.lq + a.queryTile - 1) / a.queryTile)
}

// work takes tasks from next until none is left. nested: it runs on a worker of the parallel
// kernel.
func (a *attnProblem) work(next *atomic.Int64, nested bool) {
	gemm := sgemmFor(nested)
	qt, kt, dk, dv := a.queryTile, a.keyTile, a.dk, a.dv
	qTiles := (a.lq + qt - 1) / qt
	tasks := a.tasks()
	scale := float32(1 / math.Sqrt(float64(dk)))
	ldq, ldv := a.heads*dk, a.heads*dv
	buf := getScratch(qt*kt + qt*dv + 2*qt)
	defer putScratch(buf)
	s := (*buf)[:qt*kt]
	o := (*buf)[qt*kt : qt*kt+qt*dv]
	rowMax := (*buf)[qt*kt+qt*dv : qt*kt+qt*dv+qt]
	rowSum := (*buf)[qt*kt+qt*dv+qt : qt*kt+qt*dv+2*qt]
	for {
		t := int(next.Add(1)) - 1
		if t >= tasks {
			return
		}
		bh, qi := t/qTiles, t%qTiles
		b, h := bh/a.heads, bh%a.heads
		q0 := qi * qt
		nq := min(qt, a.lq-q0)
		qs := a.q[(b*a.lq+q0)*ldq+h*dk:]
		ks := a.k[b*a.lk*ldq+h*dk:]
		vs := a.v[b*a.lk*ldv+h*dv:]
		for i := range nq {
			rowMax[i] = negInf
			rowSum[i] = 0
		}
		clear(o[:nq*dv])
		kEnd := a.lk
		if a.causal {
			kEnd = min(a.lk, q0+nq) // the last query of the tile sees keys up to q0+nq−1
		}
		for k0 := 0; k0 < kEnd; k0 += kt {
			nk := min(kt, kEnd-k0)
			gemm(false, true, nq, nk, dk, scale, qs, ldq, ks[k0*ldq:], ldq, 0, s, nk)
			for i := range nq {
				row := s[i*nk : (i+1)*nk]
				visible := nk
				if a.causal {
					visible = min(nk, q0+i-k0+1)
				}
				if visible <= 0 {
					clear(row)
					continue
				}
				onlineSoftmaxRow(row, visible, &rowMax[i], &rowSum[i], o[i*dv:(i+1)*dv])
			}
			gemm(false, false, nq, dv, nk, 1, s, nk, vs[k0*ldv:], ldv, 1, o, dv)
		}
		for i := range nq {
			inv := 1 / rowSum[i]
			dst := a.out[(b*a.lq+q0+i)*ldv+h*dv : (b*a.lq+q0+i)*ldv+(h+1)*dv]
			src := o[i*dv : (i+1)*dv]
			for d := range dst {
				dst[d] = src[d] * inv
			}
		}
	}
}

// onlineSoftmaxRow turns row[:visible] of scores into e^(score − m') (and the rest into 0),
// where m' is the new running maximum, and rescales the running sum and the partial output
// row by e^(m − m').
func onlineSoftmaxRow(row []float32, visible int, m, sum *float32, o []float32) {
	mx := max(*m, maxOf(row[:visible]))
	part := expShiftSum(row[:visible], mx)
	clear(row[visible:])
	if mx != *m {
		corr := exp32(*m - mx) // 0 on the first tile, where *m is −Inf
		*sum = *sum*corr + part
		for d := range o {
			o[d] *= corr
		}
		*m = mx
	} else {
		*sum += part
	}
}
