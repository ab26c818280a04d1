package kernels_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/kernels"
)

func gelu(a kernels.GeLUApprox) func(y, x []float32) {
	return func(y, x []float32) { kernels.GeLU(y, x, a) }
}

func TestUnaryGolden(t *testing.T) {
	g := openGolden(t, "elementwise")
	approx := map[string]kernels.GeLUApprox{
		"none": kernels.GeLUExact, "tanh": kernels.GeLUTanh, "sigmoid": kernels.GeLUSigmoid,
	}
	ops := []struct {
		op string
		fn func(c *goldenCase) func(y, x []float32)
	}{
		{"relu", func(*goldenCase) func(y, x []float32) { return kernels.ReLU }},
		{"silu", func(*goldenCase) func(y, x []float32) { return kernels.SiLU }},
		{"sigmoid", func(*goldenCase) func(y, x []float32) { return kernels.Sigmoid }},
		{"tanh", func(*goldenCase) func(y, x []float32) { return kernels.Tanh }},
		{"sin", func(*goldenCase) func(y, x []float32) { return kernels.Sin }},
		{"cos", func(*goldenCase) func(y, x []float32) { return kernels.Cos }},
		{"exp", func(*goldenCase) func(y, x []float32) { return kernels.Exp }},
		{"gelu", func(c *goldenCase) func(y, x []float32) {
			a, ok := approx[c.str("approximate")]
			if !ok {
				t.Fatalf("%s: unknown approximation %q", c.name, c.str("approximate"))
			}
			return gelu(a)
		}},
		{"clamp", func(c *goldenCase) func(y, x []float32) {
			lo, hi := float32(c.num("lo")), float32(c.num("hi"))
			return func(y, x []float32) { kernels.Clamp(y, x, lo, hi) }
		}},
		{"scalebias", func(c *goldenCase) func(y, x []float32) {
			s, b := float32(c.num("scale")), float32(c.num("bias"))
			return func(y, x []float32) { kernels.ScaleBias(y, x, s, b) }
		}},
	}
	for _, o := range ops {
		for _, c := range g.cases(t, o.op) {
			fn := o.fn(c)
			x, want := c.tensor("x"), c.tensor("y")
			y := nanSlice(len(x.F32))
			fn(y, x.F32)
			check(t, "elementwise", c.name, y, want)
			// In place: y aliases x.
			inPlace := slices.Clone(x.F32)
			fn(inPlace, inPlace)
			check(t, "elementwise", c.name+" in place", inPlace, want)
		}
	}
	logWorst(t, "elementwise")
}

// TestUnaryLarge runs the element-wise kernels over a slice long enough to be split across
// workers and compares with float64 math, away from the golden files' small sizes.
func TestUnaryLarge(t *testing.T) {
	const n = 100003
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37) * 9)
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	cases := []struct {
		name string
		fn   func(y, x []float32)
		ref  func(v float64) float64
	}{
		{"SiLU", kernels.SiLU, func(v float64) float64 { return v * sig(v) }},
		{"Sigmoid", kernels.Sigmoid, sig},
		{"ReLU", kernels.ReLU, func(v float64) float64 { return max(v, 0) }},
		{"Tanh", kernels.Tanh, math.Tanh},
		{"Exp", kernels.Exp, math.Exp},
		{"GeLU", gelu(kernels.GeLUExact), func(v float64) float64 { return v / 2 * (1 + math.Erf(v/math.Sqrt2)) }},
		{"GeLUTanh", gelu(kernels.GeLUTanh), func(v float64) float64 {
			return v / 2 * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		}},
	}
	withWorkers(t, func(label string) {
		for _, c := range cases {
			y := nanSlice(n)
			c.fn(y, x)
			for i, v := range x {
				want := c.ref(float64(v))
				if d := math.Abs(float64(y[i]) - want); !(d <= 1e-6*max(1, math.Abs(want))) {
					t.Fatalf("%s %s: element %d (x=%v): got %v want %v", c.name, label, i, v, y[i], want)
				}
			}
		}
	})
}

func TestBinaryGolden(t *testing.T) {
	g := openGolden(t, "elementwise")
	ops := map[string]kernels.BinaryOp{"add": kernels.OpAdd, "sub": kernels.OpSub, "mul": kernels.OpMul, "div": kernels.OpDiv}
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "binary") {
			op, ok := ops[c.str("op")]
			if !ok {
				t.Fatalf("%s: unknown op %q", c.name, c.str("op"))
			}
			a, b, want := c.tensor("a"), c.tensor("b"), c.tensor("y")
			y := nanSlice(len(want.F32))
			kernels.Binary(op, y, want.Shape, a.F32, a.Shape, b.F32, b.Shape)
			check(t, "binary", c.name+" "+c.str("op")+" "+label, y, want)
		}
		for _, c := range g.cases(t, "add") {
			a, b, want := c.tensor("a"), c.tensor("b"), c.tensor("y")
			y := nanSlice(len(want.F32))
			kernels.Add(y, a.F32, b.F32)
			check(t, "binary", c.name+" "+label, y, want)
		}
	})
	logWorst(t, "binary")
}

// TestBinaryLargeBroadcast crosses the parallel threshold with a broadcast along a middle
// dimension, checked against an index-by-index computation.
func TestBinaryLargeBroadcast(t *testing.T) {
	aShape, bShape, yShape := []int{3, 1, 257, 40}, []int{5, 1, 40}, []int{3, 5, 257, 40}
	a, b := make([]float32, prod(aShape)), make([]float32, prod(bShape))
	for i := range a {
		a[i] = float32(i%97) * 0.25
	}
	for i := range b {
		b[i] = float32(i%13) + 1
	}
	withWorkers(t, func(label string) {
		y := nanSlice(prod(yShape))
		kernels.Binary(kernels.OpDiv, y, yShape, a, aShape, b, bShape)
		for i0 := range 3 {
			for i1 := range 5 {
				for i2 := range 257 {
					for i3 := range 40 {
						want := a[(i0*257+i2)*40+i3] / b[i1*40+i3]
						if got := y[((i0*5+i1)*257+i2)*40+i3]; got != want {
							t.Fatalf("%s: y[%d,%d,%d,%d] = %v, want %v", label, i0, i1, i2, i3, got, want)
						}
					}
				}
			}
		}
	})
}

func TestSoftmaxGolden(t *testing.T) {
	g := openGolden(t, "elementwise")
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "softmax") {
			x, want := c.tensor("x"), c.tensor("y")
			outer, dim, inner := splitAt(x.Shape, c.int("dim"))
			y := nanSlice(len(x.F32))
			kernels.Softmax(y, x.F32, outer, dim, inner)
			check(t, "softmax", c.name+" "+label, y, want)
		}
	})
	logWorst(t, "softmax")
}

func TestReduceGolden(t *testing.T) {
	g := openGolden(t, "elementwise")
	fns := map[string]func(y, x []float32, outer, dim, inner int){"sum": kernels.Sum, "mean": kernels.Mean}
	withWorkers(t, func(label string) {
		for _, op := range []string{"sum", "mean"} {
			for _, c := range g.cases(t, op) {
				x, want := c.tensor("x"), c.tensor("y")
				outer, dim, inner := splitAt(x.Shape, c.int("dim"))
				y := nanSlice(outer * inner)
				fns[op](y, x.F32, outer, dim, inner)
				check(t, "reduce", c.name+" "+label, y, want)
			}
		}
	})
	logWorst(t, "reduce")
}

func TestGLUGolden(t *testing.T) {
	g := openGolden(t, "elementwise")
	acts := map[string]func(y, x []float32){
		"sigmoid": kernels.Sigmoid, "gelu": gelu(kernels.GeLUExact), "silu": kernels.SiLU, "relu": kernels.ReLU,
	}
	for _, c := range g.cases(t, "glu") {
		act, ok := acts[c.str("act")]
		if !ok {
			t.Fatalf("%s: unknown activation %q", c.name, c.str("act"))
		}
		x, want := c.tensor("x"), c.tensor("y")
		outer, dim, inner := splitAt(x.Shape, -1)
		y := nanSlice(len(want.F32))
		kernels.GLU(y, x.F32, outer, dim, inner, act)
		check(t, "glu", c.name+" "+c.str("act"), y, want)
	}
	logWorst(t, "glu")
}

func TestEmbeddingGolden(t *testing.T) {
	g := openGolden(t, "elementwise")
	for _, c := range g.cases(t, "embedding") {
		idx, w, want := c.tensor("idx"), c.tensor("w"), c.tensor("y")
		dim := w.Shape[1]
		y := nanSlice(len(want.F32))
		if err := kernels.Embedding(y, idx.I64, w.F32, dim); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		check(t, "embedding", c.name, y, want)
	}
}

func TestEmbeddingOutOfRange(t *testing.T) {
	w := make([]float32, 4*3)
	y := make([]float32, 3*3)
	for _, bad := range []int64{4, -1} {
		err := kernels.Embedding(y, []int64{0, bad, 1}, w, 3)
		if err == nil {
			t.Fatalf("index %d: no error", bad)
		}
		for _, part := range []string{"position 1", "[0, 4)"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("index %d: error %q does not mention %q", bad, err, part)
			}
		}
	}
}

// TestGoldenPortable reruns the golden tests of the kernels that have assembly paths with
// those paths off, so the portable code is checked against PyTorch too.
func TestGoldenPortable(t *testing.T) {
	defer kernels.SetVectorKernels(false)()
	for name, test := range map[string]func(*testing.T){
		"unary": TestUnaryGolden, "large": TestUnaryLarge, "softmax": TestSoftmaxGolden,
		"glu": TestGLUGolden, "attention": TestAttentionGolden, "conv2d": TestConv2dGolden,
		"conv_transpose2d": TestConvTranspose2dGolden,
	} {
		t.Run(name, test)
	}
}

// TestExpEdges: overflow to +Inf from 88.73 on, underflow to 0, NaN kept, whatever path
// (vector or portable) a span takes: the edges sit among ordinary values, in spans of 8.
func TestExpEdges(t *testing.T) {
	edges := []float32{88, 88.5, 88.72, 88.73, 89, 100, float32(math.Inf(1)), -87, -87.3, -88, -104, -200, float32(math.Inf(-1)), 0, -0.0, float32(math.NaN())}
	for _, e := range edges {
		x := []float32{0.5, -1, 2, 3, -4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, e}
		y := nanSlice(len(x))
		kernels.Exp(y, x)
		for i, v := range x {
			want := float32(math.Exp(float64(v)))
			got := y[i]
			switch {
			case want != want:
				if got == got {
					t.Errorf("exp(%v) = %v, want NaN", v, got)
				}
			case math.IsInf(float64(want), 0) || want == 0:
				if got != want {
					t.Errorf("exp(%v) = %v, want %v", v, got, want)
				}
			case want < 1.2e-38: // subnormal: the vector path may flush it to 0
				if got != 0 && math.Abs(float64(got-want)) > 1e-44 {
					t.Errorf("exp(%v) = %v, want %v or 0", v, got, want)
				}
			default:
				if d := math.Abs(float64(got-want)) / float64(want); d > 3e-7 {
					t.Errorf("exp(%v) = %v, want %v (relative error %g)", v, got, want, d)
				}
			}
		}
	}
}

func TestArangeGolden(t *testing.T) {
	g := openGolden(t, "elementwise")
	for _, c := range g.cases(t, "arange") {
		want := c.tensor("y")
		y := nanSlice(len(want.F32))
		kernels.Arange(y, float64(c.int("start")), float64(c.int("step")))
		// torch's rounding is exact: the values must be equal, not close.
		if !slices.Equal(y, want.F32) {
			t.Errorf("%s: got %v, want %v", c.name, y, want.F32)
		}
	}
	for _, c := range g.cases(t, "arange_int") {
		want := c.tensor("y")
		y := make([]int64, len(want.I64))
		kernels.ArangeInt(y, int64(c.int("start")), int64(c.int("step")))
		if !slices.Equal(y, want.I64) {
			t.Errorf("%s: got %v, want %v", c.name, y, want.I64)
		}
	}
}
