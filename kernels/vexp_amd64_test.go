package kernels

import (
	"math"
	"testing"
)

// TestVectorMatchesPortable runs the exp-based helpers with and without the AVX2 assembly
// and checks that the two agree (the golden tests see whichever this CPU picks).
func TestVectorMatchesPortable(t *testing.T) {
	if !cpu.avx2FMA {
		t.Skip("no AVX2+FMA here: only the portable code runs")
	}
	const n = 1003
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*1.3)) * 30
		if i%5 == 0 {
			x[i] *= 1e-3 // near 0, where tanh switches to its series
		}
	}
	run := func(vector bool) (sig, silu, gtanh, soft, gerf, th, ex []float32, mx float32) {
		defer func(f cpuFeatures) { cpu = f }(cpu)
		cpu.avx2FMA = vector
		sig, silu, gtanh = make([]float32, n), make([]float32, n), make([]float32, n)
		sigmoidGate(sig, x, 1, 0, false)
		sigmoidGate(silu, x, 1, 0, true)
		sigmoidGate(gtanh, x, 1.5957691, 0.044715, true)
		gerf = make([]float32, n)
		geluErf(gerf, x)
		th = make([]float32, n)
		tanh32(th, x)
		scale(th, 0.5)
		soft = append([]float32(nil), x...)
		mx = maxOf(soft)
		expShiftSum(soft, mx)
		ex = make([]float32, n)
		expSpan(ex, x)
		return
	}
	s1, l1, g1, e1, r1, t1, x1, m1 := run(true)
	s2, l2, g2, e2, r2, t2, x2, m2 := run(false)
	if m1 != m2 {
		t.Errorf("maxOf: vector %v, portable %v", m1, m2)
	}
	for name, p := range map[string][2][]float32{"sigmoid": {s1, s2}, "silu": {l1, l2}, "gelu-tanh": {g1, g2}, "exp": {e1, e2}, "gelu-erf": {r1, r2}, "tanh": {t1, t2}, "exp32": {x1, x2}} {
		for i := range p[0] {
			a, b := float64(p[0][i]), float64(p[1][i])
			// FMA versus separate rounding in the argument is amplified by |u| in σ(u).
			if math.Abs(a-b) > 2e-6*max(math.Abs(b), 1e-6) {
				t.Fatalf("%s(x=%v): vector %v, portable %v", name, x[i], a, b)
			}
		}
	}
}

func TestAxpyLengths(t *testing.T) {
	for n := range 41 {
		x, y := make([]float32, n+3), make([]float32, n)
		for i := range x {
			x[i] = float32(i) - 7.5
		}
		for i := range y {
			y[i] = float32(3 * i)
		}
		axpy(y, x, 0.5)
		for i := range y {
			if want := float32(3*i) + 0.5*x[i]; y[i] != want {
				t.Fatalf("n=%d: y[%d] = %v, want %v", n, i, y[i], want)
			}
		}
	}
}

// rampWithSpecials is n values step apart centred on 0, with +Inf, -Inf and NaN among them.
func rampWithSpecials(n int, step float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = (float32(i) - float32(n/2)) * step
	}
	x[5], x[6], x[7] = float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())
	return x
}

// TestGeluErfAVX512MatchesAVX2: the AVX-512 GeLU runs the AVX2 one's operations in the
// same order, so it must give the same bits (the AVX2 one is checked against PyTorch by the
// golden tests).
func TestGeluErfAVX512MatchesAVX2(t *testing.T) {
	if !cpu.avx512 || !cpu.avx2FMA {
		t.Skip("no AVX-512")
	}
	const n = 1 << 14
	x := rampWithSpecials(n, 0.0013)
	want, got := make([]float32, n), make([]float32, n)
	geluErfAVX2(&want[0], &x[0], n)
	geluErfAVX512(&got[0], &x[0], n)
	for i := range x {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
			t.Fatalf("gelu(%v): AVX-512 %v, AVX2 %v", x[i], got[i], want[i])
		}
	}
}

// TestSigmoidGateAVX512MatchesAVX2: as TestGeluErfAVX512MatchesAVX2, for SiLU, the sigmoid
// and the tanh- and sigmoid-approximated GeLUs.
func TestSigmoidGateAVX512MatchesAVX2(t *testing.T) {
	if !cpu.avx512 || !cpu.avx2FMA {
		t.Skip("no AVX-512")
	}
	const n = 1 << 12
	x := rampWithSpecials(n, 0.011)
	for _, c := range []struct {
		alpha, cubic float32
		mulx         bool
	}{{1, 0, true}, {1, 0, false}, {2 * 0.7978845608028654, 0.044715, true}, {1.702, 0, true}} {
		want, got := make([]float32, n), make([]float32, n)
		sigmoidGateAVX2(&want[0], &x[0], n, c.alpha, c.cubic, c.mulx)
		sigmoidGateAVX512(&got[0], &x[0], n, c.alpha, c.cubic, c.mulx)
		for i := range x {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
				t.Fatalf("%+v: f(%v): AVX-512 %v, AVX2 %v", c, x[i], got[i], want[i])
			}
		}
	}
}
