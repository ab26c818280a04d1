package kernels

import (
	"math"
	"sync/atomic"
)

// Attention without a mask, on the GEMM micro-kernel directly. Per (batch, head) K and V are
// packed once, as micro-kernel A panels (mr keys × Dk, and mr value columns × keys); a task
// packs its tile of queries once as B panels (nr queries × Dk) and then, for each tile of
// keys:
//
//	Sᵀ = scale·K·Qᵀ      keys × queries, written by the micro-kernel straight into the layout
//	                     of B panels (nr queries per key row)
//	online softmax       down the columns of Sᵀ (one per query): column maxima, e^(s−max),
//	                     column sums, all vectorized across nr queries
//	Oᵀ += Vᵀ·P           value columns × queries, accumulated by the micro-kernel
//
// No operand is repacked per key tile, the softmax runs on whole vectors, and the head
// width pads only to a multiple of mr (40 → 48 with AVX-512) rather than of nr (40 → 64).
// The Lq×Lk score matrix never exists: a task holds a qTile×kTile block.

// Flash tile sizes, rounded up to the micro-kernel's nr (queries) and mr (keys): the score
// block of a task (flashQueryTile·flashKeyTile floats, 192 KiB) stays in L2, one nr-query
// panel of it (48 KiB) about in L1 for the Vᵀ·P product.
var (
	flashQueryTile = 128
	flashKeyTile   = 384
)

type flashAttn struct {
	q, k, v, out                 []float32
	batch, heads, lq, lk, dk, dv int
	kp, vp                       []float32 // packed K and V of every (batch, head)
	lkPad, dvPad                 int       // keys and value columns rounded up to mr
	qt, kt                       int       // tile sizes
	scale                        float32
	packing                      bool // the job's phase: packing K and V, or computing
	next                         atomic.Int64
}

var flashJobs pool

// attentionFlash is Attention without a causal mask (dk, lk > 0).
func attentionFlash(out, q, k, v []float32, batch, heads, lq, lk, dk, dv int) {
	kr := gemmKernel
	mr, nr := kr.mr, kr.nr
	a, ok := flashJobs.Get().(*flashAttn)
	if !ok {
		a = new(flashAttn)
	}
	*a = flashAttn{q: q, k: k, v: v, out: out, batch: batch, heads: heads, lq: lq, lk: lk, dk: dk, dv: dv}
	a.lkPad = ceilTo(lk, mr)
	a.dvPad = ceilTo(dv, mr)
	a.qt = ceilTo(flashQueryTile, nr)
	a.kt = ceilTo(flashKeyTile, mr)
	a.scale = float32(1 / math.Sqrt(float64(dk)))
	bh := batch * heads
	kbuf := getScratch(bh * a.lkPad * dk)
	vbuf := getScratch(bh * a.dvPad * a.lkPad)
	a.kp, a.vp = *kbuf, *vbuf

	a.packing = true
	parallelRun(bh, a)
	a.packing = false
	tasks := a.tasks()
	if Workers() == 1 || tasks == 1 {
		a.work()
	} else {
		parallelRun(min(Workers(), tasks), a)
	}
	putScratch(kbuf)
	putScratch(vbuf)
	*a = flashAttn{}
	flashJobs.Put(a)
}

func ceilTo(n, m int) int { return (n + m - 1) / m * m }

func (a *flashAttn) tasks() int { return a.batch * a.heads * ((a.lq + a.qt - 1) / a.qt) }

func (a *flashAttn) run(lo, hi int) {
	if a.packing {
		for bh := lo; bh < hi; bh++ {
			a.pack(bh)
		}
		return
	}
	a.work()
}

// pack lays out K and V of (batch, head) bh as A panels of mr rows: K panel i holds keys
// i·mr… (k-major over Dk), V panel i value columns i·mr… (k-major over the keys); both are
// zero-padded.
func (a *flashAttn) pack(bh int) {
	mr := gemmKernel.mr
	b, h := bh/a.heads, bh%a.heads
	ldk, ldv := a.heads*a.dk, a.heads*a.dv
	kp := a.kp[bh*a.lkPad*a.dk : (bh+1)*a.lkPad*a.dk]
	for i := 0; i < a.lk; i += mr {
		panel := kp[i*a.dk : (i+mr)*a.dk]
		packRows(panel, a.k[(b*a.lk+i)*ldk+h*a.dk:], ldk, min(mr, a.lk-i), mr, a.dk)
	}
	vp := a.vp[bh*a.dvPad*a.lkPad : (bh+1)*a.dvPad*a.lkPad]
	packPanels(vp, a.v[b*a.lk*ldv+h*a.dv:], ldv, a.dv, mr, a.lkPad*mr, a.lk)
	for i := range a.dvPad / mr {
		clear(vp[i*a.lkPad*mr+a.lk*mr : (i+1)*a.lkPad*mr])
	}
}

// packRows stores rows r < rows of src (row stride ld) as a width-wide panel of depth k:
// dst[p·width+r] = src[r·ld+p], zero for rows ≤ r < width.
func packRows(dst, src []float32, ld, rows, width, k int) {
	transposeInto(dst, src, ld, rows, width, k)
	if rows < width {
		for p := range k {
			clear(dst[p*width+rows : (p+1)*width])
		}
	}
}

// work takes (batch, head, query tile) tasks until none is left.
func (a *flashAttn) work() {
	kr := gemmKernel
	mr, nr := kr.mr, kr.nr
	qt, kt, dk, dv := a.qt, a.kt, a.dk, a.dv
	qTiles := (a.lq + qt - 1) / qt
	tasks := a.tasks()
	ldq, ldv := a.heads*dk, a.heads*dv
	nqp, nst, not := qt*dk, qt*kt, a.dvPad*qt
	buf := getScratch(nqp + nst + not + 6*nr + 2*qt)
	defer putScratch(buf)
	qp := (*buf)[:nqp]
	s := (*buf)[nqp : nqp+nst]
	ot := (*buf)[nqp+nst : nqp+nst+not]
	rest := (*buf)[nqp+nst+not:]
	mx, corr, colsum, zero := rest[:nr], rest[nr:2*nr], rest[2*nr:3*nr], rest[3*nr:4*nr]
	m, l := rest[6*nr:6*nr+qt], rest[6*nr+qt:6*nr+2*qt]
	clear(zero)
	for {
		t := int(a.next.Add(1)) - 1
		if t >= tasks {
			return
		}
		bh, qi := t/qTiles, t%qTiles
		b, h := bh/a.heads, bh%a.heads
		q0 := qi * qt
		nq := min(qt, a.lq-q0)
		panels := (nq + nr - 1) / nr
		ldo := panels * nr // Oᵀ's row stride: the tile's queries, padded
		for j := range panels {
			packRows(qp[j*dk*nr:(j+1)*dk*nr], a.q[(b*a.lq+q0+j*nr)*ldq+h*dk:], ldq, min(nr, nq-j*nr), nr, dk)
		}
		for i := range ldo {
			m[i], l[i] = negInf, 0
		}
		clear(ot[:a.dvPad*ldo])
		kp := a.kp[bh*a.lkPad*dk : (bh+1)*a.lkPad*dk]
		vp := a.vp[bh*a.dvPad*a.lkPad : (bh+1)*a.dvPad*a.lkPad]
		for k0 := 0; k0 < a.lk; k0 += kt {
			nk := min(kt, a.lk-k0)
			nkPad := ceilTo(nk, mr)
			// Sᵀ: query panel j at s[j·kt·nr:], key row r of it at +r·nr.
			for i := 0; i < nkPad; i += mr {
				ap := kp[(k0+i)*dk : (k0+i+mr)*dk]
				for j := range panels {
					kr.fn(dk, ap, qp[j*dk*nr:(j+1)*dk*nr], s[j*kt*nr+i*nr:], nr, a.scale, 0)
				}
			}
			for j := range panels {
				sp := s[j*kt*nr : j*kt*nr+nkPad*nr]
				mj, lj := m[j*nr:(j+1)*nr], l[j*nr:(j+1)*nr]
				copy(mx, mj)
				maxColumns(sp, nk, nr, mx)
				// corr = e^(m − m'): how much the sums so far shrink under the new maxima
				// (0 on the first tile, where m is −Inf).
				copy(corr, mj)
				expColumns(corr, 1, nr, mx, zero)
				clear(zero)
				clear(colsum)
				expColumns(sp, nk, nr, mx, colsum)
				clear(sp[nk*nr:]) // padding keys weigh nothing
				rescale := false
				for c := range nr {
					lj[c] = lj[c]*corr[c] + colsum[c]
					rescale = rescale || corr[c] != 1
				}
				copy(mj, mx)
				if rescale && k0 > 0 {
					for r := range a.dvPad {
						row := ot[r*ldo+j*nr : r*ldo+(j+1)*nr]
						for c, f := range corr {
							row[c] *= f
						}
					}
				}
			}
			for j := range panels {
				bp := s[j*kt*nr : j*kt*nr+nkPad*nr]
				for i := 0; i < a.dvPad; i += mr {
					ap := vp[i*a.lkPad+k0*mr : i*a.lkPad+(k0+nkPad)*mr]
					kr.fn(nkPad, ap, bp, ot[i*ldo+j*nr:], ldo, 1, 1)
				}
			}
		}
		for c := range nq {
			inv := 1 / l[c]
			dst := a.out[(b*a.lq+q0+c)*ldv+h*dv : (b*a.lq+q0+c)*ldv+(h+1)*dv]
			for r := range dst {
				dst[r] = ot[r*ldo+c] * inv
			}
		}
	}
}

// expColumnsGo is the portable expColumns.
func expColumnsGo(s []float32, rows, width int, shift, sum []float32) {
	for r := range rows {
		row := s[r*width : (r+1)*width]
		for c, v := range row {
			e := exp32(v - shift[c])
			row[c] = e
			sum[c] += e
		}
	}
}

// maxColumnsGo is the portable maxColumns.
func maxColumnsGo(s []float32, rows, width int, m []float32) {
	for r := range rows {
		for c, v := range s[r*width : (r+1)*width] {
			if v > m[c] || v != v {
				m[c] = v
			}
		}
	}
}
