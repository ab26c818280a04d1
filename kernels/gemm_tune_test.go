package kernels

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func envInts(name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// bestGFLOPS runs MatMul n³ reps times (after a warm-up) and returns the best rate.
func bestGFLOPS(n, reps int, x, y, z []float32) float64 {
	MatMul(z, x, y, n, n, n)
	best := time.Hour
	for i := 0; i < reps; i++ {
		s := time.Now()
		MatMul(z, x, y, n, n, n)
		best = min(best, time.Since(s))
	}
	return 2 * float64(n) * float64(n) * float64(n) / best.Seconds() / 1e9
}

func TestTuneBlocking(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip()
	}
	n := envInts("N", []int{2048})[0]
	reps := envInts("REPS", []int{6})[0]
	r := rand.New(rand.NewPCG(1, 2))
	x, y, z := randFloats(r, n*n), randFloats(r, n*n), make([]float32, n*n)
	SetWorkers(envInts("W", []int{2})[0])
	kr := gemmKernel
	orig := *kr
	defer func() { *kr = orig }()
	for _, nc := range envInts("NC", []int{kr.nc}) {
		for _, kc := range envInts("KC", []int{kr.kc}) {
			for _, mc := range envInts("MC", []int{kr.mc}) {
				kr.kc, kr.mc, kr.nc = kc, mc, nc
				fmt.Printf("n=%d nc=%d kc=%d mc=%d %.1f GFLOP/s\n", n, nc, kc, mc, bestGFLOPS(n, reps, x, y, z))
			}
		}
	}
}

var packMat []float32

func benchPack(b *testing.B, which string, tr bool) {
	n := 4096
	if packMat == nil {
		r := rand.New(rand.NewPCG(1, 2))
		packMat = randFloats(r, n*n)
	}
	x := packMat
	g := &gemmJob{kern: gemmKernel, a: x, lda: n, b: x, ldb: n, transA: tr, transB: tr, m: n, n: n, k: n}
	kc, mc := gemmKernel.kc, gemmKernel.mc
	g.kcap = kc
	ap := make([]float32, kc*mc)
	bp := make([]float32, kc*4096)
	for b.Loop() {
		for pc := 0; pc < n; pc += kc {
			if which == "A" {
				for ic := 0; ic < n; ic += mc {
					g.packA(ap, ic, min(mc, n-ic), pc, kc)
				}
			} else {
				g.packB(bp, pc, kc, 0, n, 0, n/gemmKernel.nr)
			}
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(n*n), "ns/elt")
}

func BenchmarkPack(b *testing.B) {
	for _, tr := range []bool{false, true} {
		for _, w := range []string{"A", "B"} {
			b.Run(fmt.Sprintf("%s/tr=%v", w, tr), func(b *testing.B) { benchPack(b, w, tr) })
		}
	}
}

func TestTunePackGroup(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip()
	}
	for _, gsz := range []int{1, 2, 4, 8} {
		packRowGroup = gsz
		for _, tr := range []bool{false, true} {
			for _, w := range []string{"A", "B"} {
				r := testing.Benchmark(func(b *testing.B) { benchPack(b, w, tr) })
				fmt.Printf("group=%d %s tr=%v %.3f ns/elt\n", gsz, w, tr, r.Extra["ns/elt"])
			}
		}
	}
}
