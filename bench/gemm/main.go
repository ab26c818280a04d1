// Command gemm times kernels.Sgemm against OpenBLAS's cblas_sgemm on square matrices, both
// on the same number of threads, and prints GFLOP/s, their ratio and the largest difference
// between the two results. Build with -tags openblas to include OpenBLAS (see README.md);
// without it only rfc is timed.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rfc-project/rfc/kernels"
)

func main() {
	sizesFlag := flag.String("sizes", "512,1024,2048,4096", "comma-separated square sizes")
	threads := flag.Int("threads", 2, "threads for both rfc and OpenBLAS")
	reps := flag.Int("reps", 10, "least timed runs per size and library (small sizes get more); the best is reported")
	flag.Parse()

	sizes, err := parseSizes(*sizesFlag)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gemm: -sizes: %v\n", err)
		os.Exit(2)
	}
	if *threads < 1 || *reps < 1 {
		fmt.Fprintln(os.Stderr, "gemm: -threads and -reps must be at least 1")
		os.Exit(2)
	}

	kernels.SetWorkers(*threads)
	fmt.Printf("rfc: kernel %s, %d workers\n", kernels.SgemmKernelName(), kernels.Workers())
	if openblasAvailable {
		openblasSetThreads(*threads)
		core, config := openblasInfo()
		fmt.Printf("OpenBLAS: core %s, %d threads; config: %s\n", core, *threads, config)
		for _, v := range []string{"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} {
			if val, ok := os.LookupEnv(v); ok {
				fmt.Printf("warning: %s=%s is set and overrides OpenBLAS's own detection\n", v, val)
			}
		}
	} else {
		fmt.Println("OpenBLAS: not built in (go run -tags openblas ./bench/gemm)")
	}
	fmt.Printf("best of at least %d runs per library and size\n\n", *reps)
	fmt.Printf("%6s  %12s  %15s  %13s  %10s\n", "size", "rfc GFLOP/s", "OpenBLAS GFLOP/s", "rfc/OpenBLAS", "max |Δ|")

	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range sizes {
		a, b := randomMatrix(r, n), randomMatrix(r, n)
		cRFC, cBLAS := make([]float32, n*n), make([]float32, n*n)
		flops := 2 * float64(n) * float64(n) * float64(n)

		rfc := func() { kernels.MatMul(cRFC, a, b, n, n, n) }
		blas := func() { openblasSgemm(n, n, n, a, b, cBLAS) }
		if !openblasAvailable {
			blas = nil
		}
		tRFC, tBLAS := bestOfEach(*reps, rfc, blas)
		gRFC := flops / tRFC.Seconds() / 1e9
		if !openblasAvailable {
			fmt.Printf("%6d  %12.1f  %15s  %13s  %10s\n", n, gRFC, "-", "-", "-")
			continue
		}
		gBLAS := flops / tBLAS.Seconds() / 1e9
		fmt.Printf("%6d  %12.1f  %15.1f  %13.2f  %10.3g\n", n, gRFC, gBLAS, gRFC/gBLAS, maxAbsDiff(cRFC, cBLAS))
	}
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive size", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

func randomMatrix(r *rand.Rand, n int) []float32 {
	m := make([]float32, n*n)
	for i := range m {
		m[i] = r.Float32()*2 - 1
	}
	return m
}

// bestOfEach times f, then g (g may be nil), each in its own block of runs after one
// warm-up call, and returns each one's fastest run. Small sizes get more runs (about half a
// second's worth) so that the best is a stable figure. The blocks are not interleaved, and
// each starts after a pause: OpenBLAS's idle threads busy-wait for a while after a call,
// and rfc's helpers do too, for a shorter time, so whichever ran last would slow the other.
func bestOfEach(reps int, f, g func()) (bestF, bestG time.Duration) {
	bestF = bestOf(reps, f)
	if g != nil {
		bestG = bestOf(reps, g)
	}
	return bestF, bestG
}

func bestOf(reps int, f func()) time.Duration {
	time.Sleep(300 * time.Millisecond)
	once := timed(f)
	reps = max(reps, min(1000, int(time.Second/2/max(once, time.Microsecond))))
	best := time.Duration(math.MaxInt64)
	for range reps {
		best = min(best, timed(f))
	}
	return best
}

func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func maxAbsDiff(x, y []float32) float64 {
	var d float64
	for i := range x {
		d = max(d, math.Abs(float64(x[i])-float64(y[i])))
	}
	return d
}
