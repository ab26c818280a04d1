package kernels_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/rfc-project/rfc/kernels"
)

// Golden cases from scripts/golden/fused.py: the fused kernels against PyTorch.

// epilogueOf reads a case's epilogue attributes and residual.
func epilogueOf(t *testing.T, c *goldenCase) kernels.Epilogue {
	act, ok := kernels.ParseActivation(c.str("act"))
	if !ok {
		t.Fatalf("%s: unknown activation %q", c.name, c.str("act"))
	}
	ep := kernels.Epilogue{Act: act, Residual: c.f32("r")}
	if s, sh := c.num("scale"), c.num("shift"); s != 1 || sh != 0 {
		ep.Affine, ep.Scale, ep.Shift = true, float32(s), float32(sh)
	}
	return ep
}

// implicitSizes are the implicit convolution's (depth step, pixels per task) tried: the
// defaults, and blocks so small that tasks split rows and depth steps split channels.
var implicitSizes = [][2]int{{0, 0}, {7, 13}}

// TestConv2dFusedGolden runs the cases with every micro-kernel the CPU has (their panel
// sizes change which convolutions take the implicit path and how it packs), with and
// without the vector helpers, and at two blockings.
func TestConv2dFusedGolden(t *testing.T) {
	for _, name := range kernels.GemmKernelNames() {
		for _, vec := range []bool{true, false} {
			restore := kernels.UseGemmKernel(name)
			restoreVec := kernels.SetVectorKernels(vec)
			t.Run(fmt.Sprintf("%s/vector=%v", name, vec), testConv2dFusedGolden)
			restoreVec()
			restore()
		}
	}
	// Every image size on the Winograd path (where the CPU runs it), not only large ones.
	restore := kernels.SetWinogradMinPixels(1)
	t.Run("winograd", testConv2dFusedGolden)
	restore()
}

func testConv2dFusedGolden(t *testing.T) {
	g := openGolden(t, "fused")
	for _, sz := range implicitSizes {
		restore := func() {}
		if sz[0] > 0 {
			restore = kernels.SetImplicitBlocking(sz[0], sz[1])
		}
		withScratch(t, func(label string) {
			for _, c := range g.cases(t, "conv2d_fused") {
				x, w, want := c.tensor("x"), c.tensor("w"), c.tensor("y")
				p := conv2dParams(c, x, w)
				ep := epilogueOf(t, c)
				label := fmt.Sprintf("%s %+v %s blocking %v", c.name, p, label, sz)
				y := nanSlice(len(want.F32))
				kernels.Conv2dFused(y, x.F32, w.F32, c.f32("b"), p, ep)
				check(t, "conv2d_fused", label, y, want)
				if ep.Residual == nil {
					continue
				}
				// The epilogue's own order is the unfused chain's: conv, then add, then act.
				plain := nanSlice(len(want.F32))
				kernels.Conv2d(plain, x.F32, w.F32, c.f32("b"), p)
				if ep.Affine {
					kernels.ScaleBias(plain, plain, ep.Scale, ep.Shift)
				}
				kernels.Add(plain, plain, ep.Residual)
				ep.Act.Apply(plain, plain)
				if d, _ := maxAbsDiff(y, plain); d > 1e-6 {
					t.Errorf("%s: fused and unfused differ by %g", label, d)
				}
			}
		})
		restore()
	}
	logWorst(t, "conv2d_fused")
}

func TestLinearFusedGolden(t *testing.T) {
	g := openGolden(t, "fused")
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "linear_fused") {
			x, w, want := c.tensor("x"), c.tensor("w"), c.tensor("y")
			rows, in, out := x.Shape[0], x.Shape[1], w.Shape[0]
			y := nanSlice(rows * out)
			kernels.LinearFused(y, x.F32, rows, in, out, w.F32, c.f32("b"), epilogueOf(t, c))
			check(t, "linear_fused", c.name+" "+label, y, want)
		}
	})
	logWorst(t, "linear_fused")
}

func TestNormActGolden(t *testing.T) {
	g := openGolden(t, "fused")
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "groupnorm_act") {
			x, want := c.tensor("x"), c.tensor("y")
			act, _ := kernels.ParseActivation(c.str("act"))
			y := nanSlice(len(x.F32))
			kernels.GroupNormAct(y, x.F32, x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3], c.int("groups"), c.f32("w"), c.f32("b"), float32(c.num("eps")), act)
			check(t, "norm_act", c.name+" "+label, y, want)
		}
		for _, c := range g.cases(t, "layernorm_act") {
			x, want := c.tensor("x"), c.tensor("y")
			act, _ := kernels.ParseActivation(c.str("act"))
			cols := c.int("cols")
			y := nanSlice(len(x.F32))
			kernels.LayerNormAct(y, x.F32, len(x.F32)/cols, cols, c.f32("w"), c.f32("b"), float32(c.num("eps")), act)
			check(t, "norm_act", c.name+" "+label, y, want)
		}
	})
	logWorst(t, "norm_act")
}

func TestLinearGLUGolden(t *testing.T) {
	g := openGolden(t, "fused")
	acts := map[string]func(y, x []float32){"gelu": gelu(kernels.GeLUExact), "sigmoid": kernels.Sigmoid}
	for _, block := range []int{0, 40} {
		restore := func() {}
		if block > 0 {
			restore = kernels.SetGLUBlockFloats(block)
		}
		withWorkers(t, func(label string) {
			for _, c := range g.cases(t, "linear_glu") {
				x, w, want := c.tensor("x"), c.tensor("w"), c.tensor("y")
				rows, in, out := x.Shape[0], x.Shape[1], w.Shape[0]
				y := nanSlice(rows * out / 2)
				kernels.LinearGLU(y, x.F32, rows, in, out, w.F32, c.f32("b"), acts[c.str("act")])
				check(t, "linear_glu", fmt.Sprintf("%s %s block %d", c.name, label, block), y, want)
			}
		})
		restore()
	}
	logWorst(t, "linear_glu")
}

// TestActivationNames: the names round-trip, and Apply is the element-wise kernel.
func TestActivationNames(t *testing.T) {
	x := randomSlice(1000, 9)
	kernelOf := map[kernels.Activation]func(y, x []float32){
		kernels.ActReLU: kernels.ReLU, kernels.ActSiLU: kernels.SiLU, kernels.ActSigmoid: kernels.Sigmoid,
		kernels.ActTanh: kernels.Tanh, kernels.ActGeLU: gelu(kernels.GeLUExact), kernels.ActGeLUTanh: gelu(kernels.GeLUTanh),
		kernels.ActGeLUSigmoid: gelu(kernels.GeLUSigmoid), kernels.ActNone: func(y, x []float32) { copy(y, x) },
	}
	for a := kernels.ActNone; a <= kernels.ActGeLUSigmoid; a++ {
		if b, ok := kernels.ParseActivation(a.String()); !ok || b != a {
			t.Errorf("%v does not parse back (%v, %v)", a, b, ok)
		}
		want, got := make([]float32, len(x)), make([]float32, len(x))
		kernelOf[a](want, x)
		a.Apply(got, x)
		if !slices.Equal(got, want) {
			t.Errorf("%v.Apply differs from its kernel", a)
		}
	}
	if _, ok := kernels.ParseActivation("swish"); ok {
		t.Error("an unknown name parses")
	}
}
