package kernels_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rfc-project/rfc/kernels"
)

func randomSlice(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// reportFlops adds a GFLOP/s metric for flops floating-point operations per iteration.
func reportFlops(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func benchConv(b *testing.B, p kernels.Conv2dParams) {
	x := randomSlice(p.N*p.C*p.H*p.W, 1)
	w := randomSlice(p.K*p.C/max(p.Groups, 1)*p.KH*p.KW, 2)
	bias := randomSlice(p.K, 3)
	y := make([]float32, p.N*p.K*p.OutH()*p.OutW())
	flops := 2 * float64(p.N*p.K*p.OutH()*p.OutW()) * float64(p.C/max(p.Groups, 1)*p.KH*p.KW)
	kernels.Conv2d(y, x, w, bias, p) // warm the scratch pools
	b.ResetTimer()
	for b.Loop() {
		kernels.Conv2d(y, x, w, bias, p)
	}
	reportFlops(b, flops)
}

// BenchmarkConv2d: 64→64 channels on a 128×128 image, batch 1.
func BenchmarkConv2d(b *testing.B) {
	base := kernels.Conv2dParams{N: 1, C: 64, H: 128, W: 128, K: 64, Groups: 1}
	b.Run("3x3", func(b *testing.B) {
		p := base
		p.KH, p.KW, p.PadH, p.PadW = 3, 3, 1, 1
		benchConv(b, p)
	})
	b.Run("1x1", func(b *testing.B) {
		p := base
		p.KH, p.KW = 1, 1
		benchConv(b, p)
	})
	b.Run("3x3-depthwise", func(b *testing.B) {
		p := base
		p.KH, p.KW, p.PadH, p.PadW, p.Groups = 3, 3, 1, 1, 64
		benchConv(b, p)
	})
}

// BenchmarkAttention: B=1, H=8, D=64, self-attention of length L.
func BenchmarkAttention(b *testing.B) {
	const batch, heads, d = 1, 8, 64
	for _, l := range []int{1024, 4096} {
		for _, causal := range []bool{false, true} {
			b.Run(fmt.Sprintf("L=%d/causal=%v", l, causal), func(b *testing.B) {
				q := randomSlice(batch*l*heads*d, 1)
				k := randomSlice(batch*l*heads*d, 2)
				v := randomSlice(batch*l*heads*d, 3)
				out := make([]float32, batch*l*heads*d)
				flops := 4 * float64(batch*heads) * float64(l) * float64(l) * d // QKᵀ and PV
				if causal {
					flops /= 2
				}
				kernels.Attention(out, q, k, v, batch, heads, l, l, d, d, causal)
				b.ResetTimer()
				for b.Loop() {
					kernels.Attention(out, q, k, v, batch, heads, l, l, d, d, causal)
				}
				reportFlops(b, flops)
			})
		}
	}
}

// BenchmarkGroupNorm: a Stable Diffusion UNet shape, 320 channels at 64×64, 32 groups.
func BenchmarkGroupNorm(b *testing.B) {
	const n, c, hw, groups = 1, 320, 64 * 64, 32
	x := randomSlice(n*c*hw, 1)
	w, bias := randomSlice(c, 2), randomSlice(c, 3)
	y := make([]float32, len(x))
	for b.Loop() {
		kernels.GroupNorm(y, x, n, c, hw, groups, w, bias, 1e-5)
	}
	// Counted per element: sum (1), squared deviation (3), normalize and affine (3).
	reportFlops(b, 7*float64(len(x)))
	b.ReportMetric(8*float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

// BenchmarkActivation: 1M elements (a 320-channel 64×64 feature map is 1.3M).
func BenchmarkActivation(b *testing.B) {
	x := randomSlice(1<<20, 1)
	y := make([]float32, len(x))
	for _, c := range []struct {
		name string
		fn   func(y, x []float32)
	}{
		{"SiLU", kernels.SiLU},
		{"GeLU", gelu(kernels.GeLUExact)},
		{"GeLUTanh", gelu(kernels.GeLUTanh)},
		{"Tanh", kernels.Tanh},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.fn(y, x)
			}
			b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}

// BenchmarkLayerNorm: 4096 tokens of 320 channels.
func BenchmarkLayerNorm(b *testing.B) {
	const rows, cols = 4096, 320
	x := randomSlice(rows*cols, 1)
	w, bias := randomSlice(cols, 2), randomSlice(cols, 3)
	y := make([]float32, len(x))
	for b.Loop() {
		kernels.LayerNorm(y, x, rows, cols, w, bias, 1e-5)
	}
	b.ReportMetric(8*float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

// BenchmarkSoftmax: 1024 rows of 1024 logits.
func BenchmarkSoftmax(b *testing.B) {
	const rows, cols = 1024, 1024
	x := randomSlice(rows*cols, 1)
	y := make([]float32, len(x))
	for b.Loop() {
		kernels.Softmax(y, x, rows, cols, 1)
	}
	b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}
