package kernels

import "sync"

// Linear computes y = x·wᵀ + b, PyTorch's nn.Linear: x is [rows, in], w is [out, in], b is
// [out] or nil, y is [rows, out].
func Linear(y, x []float32, rows, in, out int, w, b []float32) {
	if rows == 0 || out == 0 {
		return
	}
	beta := float32(0)
	if b != nil {
		// Start from the bias and let the GEMM accumulate onto it.
		for r := range rows {
			copy(y[r*out:(r+1)*out], b[:out])
		}
		beta = 1
	}
	Sgemm(false, true, rows, out, in, 1, x, in, w, in, beta, y, out)
}

// LinearFused is Linear followed by the epilogue ep (its residual laid out as y [rows,
// out]). The product comes from Sgemm in one call (splitting it would pack the weights once
// per piece); the epilogue then runs as one element-wise sweep, in parallel spans.
func LinearFused(y, x []float32, rows, in, out int, w, b []float32, ep Epilogue) {
	ep.check(rows * out)
	Linear(y, x, rows, in, out, w, b)
	EpilogueSpan(y[:rows*out], ep)
}

// gluBlockFloats bounds the intermediate of LinearGLU: rows are done in blocks whose linear
// result (before the GLU halves it) stays in L2.
var gluBlockFloats = 1 << 16

// LinearGLU computes GEGLU-style y = a · act(g), where [a, g] = x·wᵀ + b splits the out
// features in halves (Refiners' Linear then GLU): x is [rows, in], w is [out, in], b is
// [out] or nil, y is [rows, out/2]; act is an element-wise kernel as GLU takes. The linear
// result lives only in a pooled block of rows.
func LinearGLU(y, x []float32, rows, in, out int, w, b []float32, act func(y, x []float32)) {
	if rows == 0 || out == 0 {
		return
	}
	half := out / 2
	block := max(1, min(rows, gluBlockFloats/out))
	buf := getScratch(block * out)
	defer putScratch(buf)
	for r0 := 0; r0 < rows; r0 += block {
		n := min(block, rows-r0)
		t := (*buf)[:n*out]
		Linear(t, x[r0*in:(r0+n)*in], n, in, out, w, b)
		for r := range n {
			a, g := t[r*out:r*out+half], t[r*out+half:(r+1)*out]
			yr := y[(r0+r)*half : (r0+r+1)*half]
			act(yr, g)
			for i := range yr {
				yr[i] *= a[i]
			}
		}
	}
}

// BatchedMatMul computes y[i] = a[i]·b[i] for i < batch, where a[i] is the m×k matrix at
// a[i·aBatchStride:], b[i] the k×n matrix at b[i·bBatchStride:], and y[i] the m×n matrix at
// y[i·m·n:]. A stride of 0 uses the same matrix for every batch entry (broadcasting).
func BatchedMatMul(y, a, b []float32, batch, m, k, n int, aBatchStride, bBatchStride int) {
	if batch == 0 || m == 0 || n == 0 {
		return
	}
	if batch == 1 {
		Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, y, n)
		return
	}
	if aBatchStride == 0 && bBatchStride == 0 {
		// Every output is the same product: compute it once.
		Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, y, n)
		for i := 1; i < batch; i++ {
			copy(y[i*m*n:(i+1)*m*n], y[:m*n])
		}
		return
	}
	if bBatchStride == 0 && aBatchStride == m*k {
		// A shared right matrix with contiguous left matrices is one tall GEMM.
		Sgemm(false, false, batch*m, n, k, 1, a, k, b, n, 0, y, n)
		return
	}
	if Workers() == 1 {
		matMuls(y, a, b, m, k, n, aBatchStride, bBatchStride, 0, batch)
		return
	}
	runPooled(&matMulJobs, batch, matMulJob{y, a, b, m, k, n, aBatchStride, bBatchStride})
}

type matMulJob struct {
	y, a, b                    []float32
	m, k, n                    int
	aBatchStride, bBatchStride int
}

var matMulJobs sync.Pool

func (j *matMulJob) run(lo, hi int) {
	matMuls(j.y, j.a, j.b, j.m, j.k, j.n, j.aBatchStride, j.bBatchStride, lo, hi)
}

// matMuls computes batch entries [lo, hi) of BatchedMatMul.
func matMuls(y, a, b []float32, m, k, n, aBatchStride, bBatchStride, lo, hi int) {
	for i := lo; i < hi; i++ {
		Sgemm(false, false, m, n, k, 1, a[i*aBatchStride:], k, b[i*bBatchStride:], n, 0, y[i*m*n:], n)
	}
}
