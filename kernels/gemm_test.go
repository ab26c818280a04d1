package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// refSgemm is the naive definition of Sgemm, accumulated in float64. It also returns, per
// element of C, the magnitude |alpha|·Σ|a||b| + |beta|·|c| that bounds the rounding error.
func refSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, mag []float64) {
	want = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
				sa += math.Abs(float64(av) * float64(bv))
			}
			w := float64(alpha) * s
			g := math.Abs(float64(alpha)) * sa
			if beta != 0 {
				cv := float64(c[i*ldc+j])
				w += float64(beta) * cv
				g += math.Abs(float64(beta) * cv)
			}
			want[i*n+j], mag[i*n+j] = w, g
		}
	}
	return want, mag
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int // extra row-stride beyond the stored width
	padC           int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d alpha=%g beta=%g pad=%d/%d/%d",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC)
}

func randFloats(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// checkGemm runs one case through Sgemm and compares with refSgemm. Padding between rows of
// C is filled with a sentinel that must survive, and with beta == 0 C starts as NaN, which
// must not leak into the result.
func checkGemm(t *testing.T, r *rand.Rand, tc gemmCase) {
	t.Helper()
	rowsA, colsA := tc.m, tc.k
	if tc.transA {
		rowsA, colsA = tc.k, tc.m
	}
	rowsB, colsB := tc.k, tc.n
	if tc.transB {
		rowsB, colsB = tc.n, tc.k
	}
	lda, ldb, ldc := max(colsA, 1)+tc.padA, max(colsB, 1)+tc.padB, max(tc.n, 1)+tc.padC
	a := randFloats(r, rowsA*lda)
	b := randFloats(r, rowsB*ldb)
	c := randFloats(r, tc.m*ldc)
	const sentinel = 12345
	for i := 0; i < tc.m; i++ {
		for j := tc.n; j < ldc; j++ {
			c[i*ldc+j] = sentinel
		}
		if tc.beta == 0 {
			for j := 0; j < tc.n; j++ {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	want, mag := refSgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	// Float32 accumulation error grows at most linearly with the number of terms.
	eps := float64(2*tc.k+4) * 0x1p-24
	bad := 0
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if j >= tc.n {
				if got != sentinel {
					t.Fatalf("%v (%s): C[%d][%d] in row padding was overwritten: %g", tc, gemmKernel.name, i, j, got)
				}
				continue
			}
			w := want[i*tc.n+j]
			if d := math.Abs(float64(got) - w); !(d <= eps*mag[i*tc.n+j]+1e-30) {
				if bad++; bad <= 5 {
					t.Errorf("%v (%s): C[%d][%d] = %g, want %g (|Δ| %g, tol %g)", tc, gemmKernel.name, i, j, got, w, d, eps*mag[i*tc.n+j])
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%v (%s): %d wrong elements", tc, gemmKernel.name, bad)
	}
}

// forEachKernel runs f once with each micro-kernel this CPU supports and each worker count.
func forEachKernel(t *testing.T, workers []int, f func(t *testing.T)) {
	defer func(k *microKernel, w int) { gemmKernel = k; SetWorkers(w) }(gemmKernel, Workers())
	for _, k := range gemmKernels() {
		for _, w := range workers {
			gemmKernel = k
			SetWorkers(w)
			t.Run(fmt.Sprintf("%s/w%d", k.name, w), f)
		}
	}
}

func TestSgemmRandomSmallShapes(t *testing.T) {
	forEachKernel(t, []int{1, 2}, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		alphas := []float32{1, -0.5, 2.5}
		betas := []float32{0, 1, 0.75}
		for it := 0; it < 300; it++ {
			checkGemm(t, r, gemmCase{
				transA: r.IntN(2) == 1, transB: r.IntN(2) == 1,
				m: 1 + r.IntN(70), n: 1 + r.IntN(70), k: 1 + r.IntN(70),
				alpha: alphas[r.IntN(len(alphas))], beta: betas[r.IntN(len(betas))],
				padA: r.IntN(3) * r.IntN(5), padB: r.IntN(3) * r.IntN(5), padC: r.IntN(3) * r.IntN(5),
			})
		}
	})
}

func TestSgemmSpecialShapes(t *testing.T) {
	shapes := [][3]int{
		{1, 1, 1}, {1, 1, 0}, {3, 5, 0}, {12, 32, 1}, {6, 16, 7}, {13, 33, 17},
		{1000, 1, 3}, {1, 1000, 500}, {2, 700, 9}, {700, 2, 9}, {1, 1, 1000},
		{97, 65, 300}, // k spans two kc blocks
	}
	forEachKernel(t, []int{1, 2, 3}, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, s := range shapes {
			for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {-2, 0.5}} {
					checkGemm(t, r, gemmCase{transA: tr[0], transB: tr[1], m: s[0], n: s[1], k: s[2],
						alpha: ab[0], beta: ab[1], padA: 3, padB: 1, padC: 2})
				}
			}
		}
	})
}

// TestSgemmBlockBoundaries uses shapes that cross every blocking size of the chosen kernel,
// in both the row-split and the column-split parallel modes.
func TestSgemmBlockBoundaries(t *testing.T) {
	if testing.Short() {
		t.Skip("large shapes")
	}
	forEachKernel(t, []int{1, 2}, func(t *testing.T) {
		kr := gemmKernel
		r := rand.New(rand.NewPCG(5, 6))
		shapes := [][3]int{
			{kr.mc + kr.mr + 1, kr.nr*3 - 1, kr.kc + 3}, // row split, two mc and two kc blocks
			{kr.mr - 1, kr.nc + kr.nr + 5, 2*kr.kc + 1}, // column split, two nc blocks
			{2*kr.mc + 5, kr.nc + 7, 9},                 // row split, two nc blocks
			{3 * kr.mr, 4 * kr.nr, kr.kc - 1},           // exact tiles
		}
		for _, s := range shapes {
			tr := [2]bool{r.IntN(2) == 1, r.IntN(2) == 1}
			checkGemm(t, r, gemmCase{transA: tr[0], transB: tr[1], m: s[0], n: s[1], k: s[2],
				alpha: 0.5, beta: 0.25, padA: 1, padB: 2, padC: 3})
		}
	})
}

func TestSgemmZeroAlphaAndEmpty(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	Sgemm(false, false, 2, 2, 3, 0, []float32{1, 2, 3, 4, 5, 6}, 3, []float32{1, 2, 3, 4, 5, 6}, 2, 2, c, 2)
	if want := []float32{2, 4, 6, 8}; fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("alpha=0: C = %v, want %v", c, want)
	}
	nan := float32(math.NaN())
	c = []float32{nan, nan}
	Sgemm(false, false, 1, 2, 0, 1, nil, 1, nil, 2, 0, c, 2)
	if c[0] != 0 || c[1] != 0 {
		t.Fatalf("k=0, beta=0: C = %v, want zeros", c)
	}
	Sgemm(false, false, 0, 5, 5, 1, nil, 5, nil, 5, 1, nil, 5) // m = 0: nothing to do
}

func TestSgemmShortSlicePanics(t *testing.T) {
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "len(b)") {
			t.Fatalf("panic = %q, want a message about len(b)", msg)
		}
	}()
	Sgemm(false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 3), 2, 0, make([]float32, 4), 2)
}

// TestSgemmConcurrentCalls runs products from several goroutines at once, so that calls
// compete for helpers (and new helpers start), with more workers than Ps as well.
func TestSgemmConcurrentCalls(t *testing.T) {
	defer SetWorkers(Workers())
	for _, procs := range []int{1, runtime.GOMAXPROCS(0)} {
		prev := runtime.GOMAXPROCS(procs)
		SetWorkers(3)
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, 11))
				for it := 0; it < 5; it++ {
					m, n, k := 60+r.IntN(120), 60+r.IntN(120), 60+r.IntN(120)
					a, b, c := randFloats(r, m*k), randFloats(r, k*n), make([]float32, m*n)
					MatMul(c, a, b, m, n, k)
					want, mag := refSgemm(false, false, m, n, k, 1, a, k, b, n, 0, nil, n)
					for i := range c {
						if d := math.Abs(float64(c[i]) - want[i]); d > float64(2*k+4)*0x1p-24*mag[i] {
							errs <- fmt.Sprintf("procs=%d %d×%d×%d: c[%d] = %g, want %g", procs, m, n, k, i, c[i], want[i])
							return
						}
					}
				}
			}(uint64(g))
		}
		wg.Wait()
		runtime.GOMAXPROCS(prev)
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
}

func TestMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	m, n, k := 5, 7, 3
	a, b := randFloats(r, m*k), randFloats(r, k*n)
	c := make([]float32, m*n)
	MatMul(c, a, b, m, n, k)
	want, mag := refSgemm(false, false, m, n, k, 1, a, k, b, n, 0, nil, n)
	for i := range c {
		if math.Abs(float64(c[i])-want[i]) > 1e-6*mag[i] {
			t.Fatalf("MatMul: c[%d] = %g, want %g", i, c[i], want[i])
		}
	}
}

// TestSgemmSteadyStateAllocs checks that packing buffers are reused across calls.
func TestSgemmSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	defer SetWorkers(Workers())
	r := rand.New(rand.NewPCG(9, 10))
	const n = 200
	a, b, c := randFloats(r, n*n), randFloats(r, n*n), make([]float32, n*n)
	for _, w := range []int{1, 2} {
		SetWorkers(w)
		MatMul(c, a, b, n, n, n)
		allocs := testing.AllocsPerRun(20, func() { MatMul(c, a, b, n, n, n) })
		// One job may be dropped from the pool by a GC during the run; buffers are large,
		// so anything above a fraction of a call per run means they are not reused.
		if allocs > 0.5 {
			t.Errorf("workers=%d: %.1f allocations per call, want 0", w, allocs)
		}
	}
}

func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{256, 512, 1024, 2048} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, uint64(n)))
			x, y, z := randFloats(r, n*n), randFloats(r, n*n), make([]float32, n*n)
			MatMul(z, x, y, n, n, n)
			b.ResetTimer()
			for b.Loop() {
				MatMul(z, x, y, n, n, n)
			}
			b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemmMicroKernel times the micro-kernel alone on cache-resident panels, the
// ceiling for Sgemm.
func BenchmarkSgemmMicroKernel(b *testing.B) {
	for _, kr := range gemmKernels() {
		b.Run(kr.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			const k = 256
			ap, bp := randFloats(r, k*kr.mr), randFloats(r, k*kr.nr)
			c := make([]float32, kr.mr*kr.nr)
			for b.Loop() {
				kr.fn(k, ap, bp, c, kr.nr, 1, 1)
			}
			b.ReportMetric(2*k*float64(kr.mr*kr.nr)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemmTranspose times the four transpose combinations, which differ in packing.
func BenchmarkSgemmTranspose(b *testing.B) {
	const n = 1024
	r := rand.New(rand.NewPCG(3, 4))
	x, y, z := randFloats(r, n*n), randFloats(r, n*n), make([]float32, n*n)
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		b.Run(fmt.Sprintf("tA=%v/tB=%v", tr[0], tr[1]), func(b *testing.B) {
			Sgemm(tr[0], tr[1], n, n, n, 1, x, n, y, n, 0, z, n)
			for b.Loop() {
				Sgemm(tr[0], tr[1], n, n, n, 1, x, n, y, n, 0, z, n)
			}
			b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
