package kernels_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rfc-project/rfc/kernels"
	"github.com/rfc-project/rfc/runtime"
)

// Half-precision weights must give exactly what the float32 kernels give on the widened
// weights. The widening itself is checked against runtime's converters, which are checked
// against numpy (runtime/half_test.go).

// sameBits reports whether got and want are the same float32 values, bit for bit (any NaN
// matching any NaN: hardware conversion quiets signaling NaNs).
func sameBits(got, want float32) bool {
	if want != want {
		return got != got
	}
	return math.Float32bits(got) == math.Float32bits(want)
}

func TestWidenWeightsAllBitPatterns(t *testing.T) {
	bits := make([]uint16, 1<<16)
	for i := range bits {
		bits[i] = uint16(i)
	}
	for _, vec := range []bool{true, false} {
		restore := kernels.SetVectorKernels(vec)
		for _, f := range []kernels.WeightFormat{kernels.WeightF16, kernels.WeightBF16} {
			w := kernels.F16Weights(bits)
			widen := runtime.F16ToF32
			if f == kernels.WeightBF16 {
				w, widen = kernels.BF16Weights(bits), runtime.BF16ToF32
			}
			got := make([]float32, len(bits))
			kernels.WidenWeights(got, w, 256, 256)
			for i, h := range bits {
				if want := widen(h); !sameBits(got[i], want) {
					t.Fatalf("vector=%v %v: %#04x widened to %g (%#08x), want %g (%#08x)", vec, f, h, got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
				}
			}
		}
		restore()
	}
}

// halfWeights returns n random weights rounded to format f, as Weights and as the float32
// values they widen to. f32 weights are returned as they are.
func halfWeights(r *rand.Rand, n int, f kernels.WeightFormat) (kernels.Weights, []float32) {
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(r.NormFloat64())
		if i%97 == 5 {
			w[i] *= 1e-6 // f16 subnormals
		}
	}
	h := make([]uint16, n)
	switch f {
	case kernels.WeightF16:
		runtime.F32ToF16Slice(h, w)
		runtime.F16ToF32Slice(w, h)
		return kernels.F16Weights(h), w
	case kernels.WeightBF16:
		runtime.F32ToBF16Slice(h, w)
		runtime.BF16ToF32Slice(w, h)
		return kernels.BF16Weights(h), w
	}
	return kernels.F32Weights(w), w
}

// weightVariants yields the ways to hand the same weights [out, in] to a kernel: raw and
// packed, in f32, f16 and bf16, with the float32 values they stand for.
func weightVariants(r *rand.Rand, out, in int, yield func(name string, w kernels.Weights, wide []float32)) {
	for _, f := range []kernels.WeightFormat{kernels.WeightF32, kernels.WeightF16, kernels.WeightBF16} {
		w, wide := halfWeights(r, out*in, f)
		if f != kernels.WeightF32 {
			yield(f.String(), w, wide)
		}
		yield(f.String()+"/packed", kernels.PackWeights(w, out, in), wide)
	}
}

func checkSameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if !sameBits(got[i], want[i]) {
			t.Fatalf("%s: element %d = %g, want %g bit for bit (float32 kernel on the widened weights)", what, i, got[i], want[i])
		}
	}
}

// forEachGemmKernel runs f with each micro-kernel this CPU runs and one and two workers.
func forEachGemmKernel(t *testing.T, f func(t *testing.T)) {
	defer kernels.SetWorkers(kernels.Workers())
	for _, k := range kernels.GemmKernelNames() {
		for _, w := range []int{1, 2} {
			restore := kernels.UseGemmKernel(k)
			kernels.SetWorkers(w)
			t.Run(fmt.Sprintf("%s/w%d", k, w), f)
			restore()
		}
	}
}

func TestLinearWMatchesFloat32(t *testing.T) {
	forEachGemmKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, s := range [][3]int{{1, 1, 1}, {7, 33, 5}, {25, 40, 77}, {77, 300, 40}, {130, 70, 100}, {3, 1100, 64}} {
			rows, in, out := s[0], s[1], s[2]
			x := randomSlice(rows*in, uint64(rows))
			b := randomSlice(out, 9)
			weightVariants(r, out, in, func(name string, w kernels.Weights, wide []float32) {
				what := fmt.Sprintf("%s rows=%d in=%d out=%d", name, rows, in, out)
				want, got := make([]float32, rows*out), make([]float32, rows*out)
				kernels.Linear(want, x, rows, in, out, wide, b)
				kernels.LinearW(got, x, rows, in, out, w, b)
				checkSameBits(t, "LinearW "+what, got, want)

				ep := kernels.Epilogue{Act: kernels.ActGeLU, Residual: randomSlice(rows*out, 3)}
				kernels.LinearFused(want, x, rows, in, out, wide, nil, ep)
				kernels.LinearFusedW(got, x, rows, in, out, w, nil, ep)
				checkSameBits(t, "LinearFusedW "+what, got, want)

				if out%2 == 0 {
					half := out / 2
					restore := kernels.SetGLUBlockFloats(3 * out) // several blocks of rows
					kernels.LinearGLU(want[:rows*half], x, rows, in, out, wide, b, kernels.SiLU)
					kernels.LinearGLUW(got[:rows*half], x, rows, in, out, w, b, kernels.SiLU)
					restore()
					checkSameBits(t, "LinearGLUW "+what, got[:rows*half], want[:rows*half])
				}
			})
		}
	})
}

func TestConv2dWMatchesFloat32(t *testing.T) {
	cases := []kernels.Conv2dParams{
		{N: 2, C: 5, H: 9, W: 14, K: 64, KH: 3, KW: 3, PadH: 1, PadW: 1},                           // implicit
		{N: 1, C: 16, H: 11, W: 10, K: 40, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}, // implicit, strided
		{N: 1, C: 24, H: 8, W: 8, K: 96, KH: 1, KW: 1},                                             // implicit 1×1
		{N: 2, C: 24, H: 7, W: 9, K: 12, KH: 1, KW: 1},                                             // pointwise
		{N: 1, C: 16, H: 10, W: 10, K: 3, KH: 3, KW: 3, PadH: 1, PadW: 1},                          // direct
		{N: 1, C: 8, H: 10, W: 10, K: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 8},                // depthwise
		{N: 1, C: 8, H: 10, W: 10, K: 20, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 2},               // im2col
		{N: 2, C: 16, H: 4, W: 32, K: 32, KH: 3, KW: 3, PadH: 1, PadW: 1},                          // Winograd (AVX-512)
	}
	defer kernels.SetWinogradMinPixels(1)()
	forEachGemmKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, p := range cases {
			groups := max(p.Groups, 1)
			depth := p.C / groups * p.KH * p.KW
			x := randomSlice(p.N*p.C*p.H*p.W, 5)
			b := randomSlice(p.K, 6)
			n := p.N * p.K * p.OutH() * p.OutW()
			ep := kernels.Epilogue{Act: kernels.ActSiLU, Residual: randomSlice(n, 7)}
			weightVariants(r, p.K, depth, func(name string, w kernels.Weights, wide []float32) {
				if groups > 1 && w.Packed() {
					return // packing is for one-group weights
				}
				want, got := make([]float32, n), make([]float32, n)
				kernels.Conv2dFused(want, x, wide, b, p, ep)
				kernels.Conv2dFusedW(got, x, w, b, p, ep)
				checkSameBits(t, fmt.Sprintf("Conv2dFusedW %s %+v", name, p), got, want)
			})
		}
	})
}

func TestConvTranspose2dWMatchesFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	p := kernels.ConvTranspose2dParams{N: 1, C: 6, H: 5, W: 7, K: 4, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	x := randomSlice(p.N*p.C*p.H*p.W, 1)
	n := p.N * p.K * p.OutH() * p.OutW()
	for _, f := range []kernels.WeightFormat{kernels.WeightF16, kernels.WeightBF16} {
		w, wide := halfWeights(r, p.C*p.K*p.KH*p.KW, f)
		want, got := make([]float32, n), make([]float32, n)
		kernels.ConvTranspose2d(want, x, wide, nil, p)
		kernels.ConvTranspose2dW(got, x, w, nil, p)
		checkSameBits(t, "ConvTranspose2dW "+f.String(), got, want)
	}
}

// TestPackedWeightsOnAnotherKernel: weights packed for one micro-kernel still compute the
// same when the kernels switch to another (they are unpacked into scratch).
func TestPackedWeightsOnAnotherKernel(t *testing.T) {
	names := kernels.GemmKernelNames()
	if len(names) < 2 {
		t.Skip("one micro-kernel on this CPU")
	}
	r := rand.New(rand.NewPCG(9, 10))
	const rows, in, out = 20, 50, 70
	x := randomSlice(rows*in, 1)
	w, wide := halfWeights(r, out*in, kernels.WeightF16)
	packed := kernels.PackWeights(w, out, in) // for the fastest kernel
	restore := kernels.UseGemmKernel(names[len(names)-1])
	defer restore()
	want, got := make([]float32, rows*out), make([]float32, rows*out)
	kernels.Linear(want, x, rows, in, out, wide, nil)
	kernels.LinearW(got, x, rows, in, out, packed, nil)
	checkSameBits(t, "LinearW on "+names[len(names)-1], got, want)
	back := make([]float32, out*in)
	kernels.WidenWeights(back, packed, out, in)
	checkSameBits(t, "WidenWeights of packed weights", back, wide)
}

func TestPackWeightsRejectsWrongShape(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("PackWeights of 6 weights as 4×2 did not panic")
		}
	}()
	kernels.PackWeights(kernels.F32Weights(make([]float32, 6)), 4, 2)
}
