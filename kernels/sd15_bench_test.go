package kernels_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rfc-project/rfc/kernels"
	"github.com/rfc-project/rfc/runtime"
)

// The layer shapes of Stable Diffusion 1.5: the UNet at 64×64 latents (batch 1, and batch 2
// for one classifier-free-guided step) and the autoencoder's decoder from 64×64 latents to
// 512×512 pixels. bench/sd15_kernels.py times PyTorch on the same shapes, reading them back
// from the sub-benchmark names, which therefore spell out every parameter:
//
//	BenchmarkSD15/<model>/<op>/<key>=<value>,…/<weights>
//
// op is conv (n, c, h, w, k, r: kernel size, s: stride, p: padding), linear (m rows, i in, o
// out), geglu (Refiners' Linear then GLU with GeLU: o is twice the output width), attn (b
// batch, h heads, q and k tokens, d head width), gn (GroupNorm with g groups over n×c×hw, with
// a: 1 for a SiLU after it), ln (LayerNorm of m rows of c), up (nearest 2× upsampling of
// n×c×h×w) or sgemm (a square MatMul of side m: the peak the others are measured against).
// weights is f32, or f16 for the kernels that take half-precision weights, with a p when they
// are packed ahead (PackWeights). Each reports its rate by wall time (GFLOP/s, or GB/s for the
// memory-bound ops) and by the process's CPU time (GFLOP/cpu-s: steadier on a shared machine,
// exact with one worker), and its fastest iteration (best-ns).

type sdCase struct {
	model, op string
	params    []int // values of the op's keys (sdKeys), in order
}

var sdKeys = map[string][]string{
	"conv":   {"n", "c", "h", "w", "k", "r", "s", "p"},
	"linear": {"m", "i", "o"},
	"geglu":  {"m", "i", "o"},
	"attn":   {"b", "h", "q", "k", "d"},
	"gn":     {"n", "c", "hw", "g", "a"},
	"ln":     {"m", "c"},
	"up":     {"n", "c", "h", "w"},
	"sgemm":  {"m"},
}

func (c sdCase) name() string {
	var kv []string
	for i, k := range sdKeys[c.op] {
		kv = append(kv, fmt.Sprintf("%s=%d", k, c.params[i]))
	}
	return c.model + "/" + c.op + "/" + strings.Join(kv, ",")
}

// sd15Cases lists every distinct layer shape once per batch size.
func sd15Cases() []sdCase {
	var cs []sdCase
	add := func(model, op string, params ...int) { cs = append(cs, sdCase{model, op, params}) }
	conv := func(model string, n, c, h, k, r, s int) { add(model, "conv", n, c, h, h, k, r, s, r/2) }
	for _, n := range []int{1, 2} {
		u := fmt.Sprintf("unet%d", n)
		// 3×3 convolutions: conv_in, the resnets' (the up path's first convs read the
		// concatenation of the skip), the stride-2 downsamplers, the upsamplers, conv_out.
		conv(u, n, 4, 64, 320, 3, 1)
		conv(u, n, 320, 64, 320, 3, 1)
		conv(u, n, 320, 64, 320, 3, 2)
		conv(u, n, 320, 32, 640, 3, 1)
		conv(u, n, 640, 32, 640, 3, 1)
		conv(u, n, 640, 32, 640, 3, 2)
		conv(u, n, 640, 16, 1280, 3, 1)
		conv(u, n, 1280, 16, 1280, 3, 1)
		conv(u, n, 1280, 16, 1280, 3, 2)
		conv(u, n, 1280, 8, 1280, 3, 1)
		conv(u, n, 2560, 8, 1280, 3, 1)
		conv(u, n, 2560, 16, 1280, 3, 1)
		conv(u, n, 1920, 16, 1280, 3, 1)
		conv(u, n, 1280, 32, 1280, 3, 1)
		conv(u, n, 1920, 32, 640, 3, 1)
		conv(u, n, 1280, 32, 640, 3, 1)
		conv(u, n, 960, 32, 640, 3, 1)
		conv(u, n, 640, 64, 640, 3, 1)
		conv(u, n, 960, 64, 320, 3, 1)
		conv(u, n, 640, 64, 320, 3, 1)
		conv(u, n, 320, 64, 4, 3, 1)
		// 1×1: the resnets' skip convolutions and the transformers' proj_in / proj_out.
		for _, s := range [][3]int{{320, 32, 640}, {640, 16, 1280}, {2560, 8, 1280}, {2560, 16, 1280}, {1920, 16, 1280},
			{1920, 32, 640}, {1280, 32, 640}, {960, 32, 640}, {960, 64, 320}, {640, 64, 320},
			{320, 64, 320}, {640, 32, 640}, {1280, 16, 1280}, {1280, 8, 1280}} {
			conv(u, n, s[0], s[1], s[2], 1, 1)
		}
		// Transformer blocks at 64², 32², 16², 8²: attention projections, the feed-forward
		// (GEGLU, then back down), cross-attention keys and values from the 77×768 text.
		for _, l := range [][2]int{{4096, 320}, {1024, 640}, {256, 1280}, {64, 1280}} {
			m, c := n*l[0], l[1]
			add(u, "linear", m, c, c)
			add(u, "geglu", m, c, 8*c)
			add(u, "linear", m, 4*c, c)
			add(u, "ln", m, c)
		}
		for _, c := range []int{320, 640, 1280} {
			add(u, "linear", n*77, 768, c)
		}
		add(u, "linear", n, 1280, 1280) // the time embedding: one row per image
		for _, a := range [][3]int{{4096, 40}, {1024, 80}, {256, 160}, {64, 160}} {
			add(u, "attn", n, 8, a[0], a[0], a[1])
			add(u, "attn", n, 8, a[0], 77, a[1])
		}
		// The resnets' norms (then SiLU), the up path's on the concatenations too.
		for _, g := range [][2]int{{320, 64}, {320, 32}, {640, 32}, {640, 16}, {1280, 16}, {1280, 8}, {960, 64}, {640, 64},
			{1920, 32}, {1280, 32}, {960, 32}, {1920, 16}, {2560, 16}, {2560, 8}} {
			add(u, "gn", n, g[0], g[1]*g[1], 32, 1)
		}
		for _, g := range [][2]int{{320, 64}, {640, 32}, {1280, 16}, {1280, 8}} {
			add(u, "gn", n, g[0], g[1]*g[1], 32, 0) // the transformers' input norms: no SiLU
		}
		for _, s := range [][2]int{{1280, 8}, {1280, 16}, {640, 32}} {
			add(u, "up", n, s[0], s[1], s[1])
		}
	}
	const d = "decoder"
	conv(d, 1, 4, 64, 512, 3, 1)
	conv(d, 1, 512, 64, 512, 3, 1)
	conv(d, 1, 512, 128, 512, 3, 1)
	conv(d, 1, 512, 256, 512, 3, 1)
	conv(d, 1, 512, 256, 256, 3, 1)
	conv(d, 1, 256, 256, 256, 3, 1)
	conv(d, 1, 256, 512, 256, 3, 1)
	conv(d, 1, 256, 512, 128, 3, 1)
	conv(d, 1, 128, 512, 128, 3, 1)
	conv(d, 1, 128, 512, 3, 3, 1)
	conv(d, 1, 512, 256, 256, 1, 1)
	conv(d, 1, 256, 512, 128, 1, 1)
	add(d, "linear", 4096, 512, 512)
	add(d, "attn", 1, 1, 4096, 4096, 512)
	for _, g := range [][2]int{{512, 64}, {512, 128}, {512, 256}, {256, 256}, {256, 512}, {128, 512}} {
		add(d, "gn", 1, g[0], g[1]*g[1], 32, 1)
	}
	add(d, "gn", 1, 512, 64*64, 32, 0) // the attention block's norm
	for _, s := range [][2]int{{512, 64}, {512, 128}, {256, 256}} {
		add(d, "up", 1, s[0], s[1], s[1])
	}
	add("peak", "sgemm", 2048)
	return cs
}

// sdFlops is the floating-point work of a case (multiply-adds count two), or for the
// memory-bound ops the bytes they must at least move, as negative numbers.
func (c sdCase) flops() float64 {
	p := make([]float64, len(c.params))
	for i, v := range c.params {
		p[i] = float64(v)
	}
	switch c.op {
	case "conv":
		n, ch, h, w, k, r, s, pad := p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
		oh, ow := float64(int((h+2*pad-r)/s)+1), float64(int((w+2*pad-r)/s)+1)
		return 2 * n * k * oh * ow * ch * r * r
	case "linear", "geglu":
		return 2 * p[0] * p[1] * p[2]
	case "attn":
		return 4 * p[0] * p[1] * p[2] * p[3] * p[4]
	case "sgemm":
		return 2 * p[0] * p[0] * p[0]
	case "gn":
		return -8 * p[0] * p[1] * p[2] // read and write each element once
	case "ln":
		return -8 * p[0] * p[1]
	case "up":
		return -20 * p[0] * p[1] * p[2] * p[3] // read one, write four
	}
	panic(c.op)
}

// weightFormats are the weight precisions a case is run with.
func (c sdCase) weightFormats() []string {
	switch c.op {
	case "conv", "linear", "geglu":
		return []string{"f32", "f32p", "f16", "f16p"}
	}
	return []string{"f32"}
}

func BenchmarkSD15(b *testing.B) {
	for _, c := range sd15Cases() {
		for _, f := range c.weightFormats() {
			b.Run(c.name()+"/"+f, func(b *testing.B) { benchSD(b, c, f) })
		}
	}
}

// toWeights converts w [out, in] to the weight format f: f32, f16 or bf16 (half-precision
// values rounded from w), packed (PackWeights) when f ends in p.
func toWeights(w []float32, f string, out, in int) kernels.Weights {
	var kw kernels.Weights
	switch strings.TrimSuffix(f, "p") {
	case "f16":
		h := make([]uint16, len(w))
		runtime.F32ToF16Slice(h, w)
		kw = kernels.F16Weights(h)
	case "bf16":
		h := make([]uint16, len(w))
		runtime.F32ToBF16Slice(h, w)
		kw = kernels.BF16Weights(h)
	default:
		kw = kernels.F32Weights(w)
	}
	if strings.HasSuffix(f, "p") {
		kw = kernels.PackWeights(kw, out, in)
	}
	return kw
}

func benchSD(b *testing.B, c sdCase, format string) {
	p := c.params
	var run func()
	switch c.op {
	case "conv":
		cp := kernels.Conv2dParams{N: p[0], C: p[1], H: p[2], W: p[3], K: p[4], KH: p[5], KW: p[5],
			StrideH: p[6], StrideW: p[6], PadH: p[7], PadW: p[7]}
		x := randomSlice(cp.N*cp.C*cp.H*cp.W, 1)
		w := toWeights(randomSlice(cp.K*cp.C*cp.KH*cp.KW, 2), format, cp.K, cp.C*cp.KH*cp.KW)
		bias := randomSlice(cp.K, 3)
		y := make([]float32, cp.N*cp.K*cp.OutH()*cp.OutW())
		run = func() { kernels.Conv2dFusedW(y, x, w, bias, cp, kernels.Epilogue{}) }
	case "linear", "geglu":
		m, in, out := p[0], p[1], p[2]
		x := randomSlice(m*in, 1)
		w := toWeights(randomSlice(out*in, 2), format, out, in)
		bias := randomSlice(out, 3)
		y := make([]float32, m*out)
		if c.op == "linear" {
			run = func() { kernels.LinearW(y, x, m, in, out, w, bias) }
		} else {
			gelu := func(y, x []float32) { kernels.GeLU(y, x, kernels.GeLUExact) }
			run = func() { kernels.LinearGLUW(y, x, m, in, out, w, bias, gelu) }
		}
	case "attn":
		bt, h, lq, lk, d := p[0], p[1], p[2], p[3], p[4]
		q := randomSlice(bt*lq*h*d, 1)
		k := randomSlice(bt*lk*h*d, 2)
		v := randomSlice(bt*lk*h*d, 3)
		out := make([]float32, bt*lq*h*d)
		run = func() { kernels.Attention(out, q, k, v, bt, h, lq, lk, d, d, false) }
	case "gn":
		n, ch, hw, g := p[0], p[1], p[2], p[3]
		act := kernels.ActNone
		if p[4] == 1 {
			act = kernels.ActSiLU
		}
		x := randomSlice(n*ch*hw, 1)
		w, bias := randomSlice(ch, 2), randomSlice(ch, 3)
		y := make([]float32, len(x))
		run = func() { kernels.GroupNormAct(y, x, n, ch, hw, g, w, bias, 1e-5, act) }
	case "ln":
		m, ch := p[0], p[1]
		x := randomSlice(m*ch, 1)
		w, bias := randomSlice(ch, 2), randomSlice(ch, 3)
		y := make([]float32, len(x))
		run = func() { kernels.LayerNorm(y, x, m, ch, w, bias, 1e-5) }
	case "up":
		n, ch, h, w := p[0], p[1], p[2], p[3]
		x := randomSlice(n*ch*h*w, 1)
		y := make([]float32, 4*len(x))
		run = func() { kernels.UpsampleNearest(y, x, n, ch, h, w, 2*h, 2*w) }
	case "sgemm":
		n := p[0]
		x, y, z := randomSlice(n*n, 1), randomSlice(n*n, 2), make([]float32, n*n)
		run = func() { kernels.MatMul(z, x, y, n, n, n) }
	}
	run() // warm the scratch pools
	b.ResetTimer()
	cpu0 := cpuSeconds()
	best := time.Duration(math.MaxInt64)
	for b.Loop() {
		t0 := time.Now()
		run()
		best = min(best, time.Since(t0))
	}
	// On a shared machine wall time counts what other processes take; the process's CPU
	// time does not (with one worker it is the kernel's time; with more it adds the
	// workers' spinning). Both are reported.
	cpu := cpuSeconds() - cpu0
	unit, f := "GFLOP", c.flops()
	if f < 0 {
		unit, f = "GB", -f
	}
	b.ReportMetric(f*float64(b.N)/b.Elapsed().Seconds()/1e9, unit+"/s")
	b.ReportMetric(f*float64(b.N)/cpu/1e9, unit+"/cpu-s")
	b.ReportMetric(float64(best.Nanoseconds()), "best-ns")
}
