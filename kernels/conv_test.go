package kernels_test

import (
	"fmt"
	"testing"

	"github.com/rfc-project/rfc/kernels"
	"github.com/rfc-project/rfc/runtime"
)

func TestLinearGolden(t *testing.T) {
	g := openGolden(t, "linalg")
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "linear") {
			x, w, want := c.tensor("x"), c.tensor("w"), c.tensor("y")
			rows, in, out := x.Shape[0], x.Shape[1], w.Shape[0]
			y := nanSlice(rows * out)
			kernels.Linear(y, x.F32, rows, in, out, w.F32, c.f32("b"))
			check(t, "linalg", c.name+" "+label, y, want)
		}
		for _, c := range g.cases(t, "bmm") {
			a, b, want := c.tensor("a"), c.tensor("b"), c.tensor("y")
			batch, m, k, n := c.int("batch"), a.Shape[1], a.Shape[2], b.Shape[2]
			as, bs := m*k, k*n
			if a.Shape[0] == 1 {
				as = 0
			}
			if b.Shape[0] == 1 {
				bs = 0
			}
			y := nanSlice(batch * m * n)
			kernels.BatchedMatMul(y, a.F32, b.F32, batch, m, k, n, as, bs)
			check(t, "linalg", c.name+" "+label, y, want)
		}
	})
	logWorst(t, "linalg")
}

// pair reads a two-element attribute.
func pair(c *goldenCase, key string) (int, int) {
	v := c.ints(key)
	if len(v) != 2 {
		c.t.Fatalf("%s: %s = %v, want two values", c.name, key, v)
	}
	return v[0], v[1]
}

// conv2dParams are a golden case's convolution of input x by weight w.
func conv2dParams(c *goldenCase, x, w *runtime.Tensor) kernels.Conv2dParams {
	p := kernels.Conv2dParams{
		N: x.Shape[0], C: x.Shape[1], H: x.Shape[2], W: x.Shape[3],
		K: w.Shape[0], KH: w.Shape[2], KW: w.Shape[3], Groups: c.int("groups"),
	}
	p.StrideH, p.StrideW = pair(c, "stride")
	p.PadH, p.PadW = pair(c, "padding")
	p.DilH, p.DilW = pair(c, "dilation")
	return p
}

// scratchSizes are the conv scratch bounds tried: the default and one so small that every
// image is cut into many pixel tiles, several inside one output row.
var scratchSizes = []int{0, 200}

func withScratch(t *testing.T, fn func(label string)) {
	for _, s := range scratchSizes {
		restore := func() {}
		if s > 0 {
			restore = kernels.SetConvScratchFloats(s)
		}
		withWorkers(t, func(label string) { fn(fmt.Sprintf("%s scratch=%d", label, s)) })
		restore()
	}
}

func TestConv2dGolden(t *testing.T) {
	g := openGolden(t, "conv")
	withScratch(t, func(label string) {
		for _, c := range g.cases(t, "conv2d") {
			x, w, want := c.tensor("x"), c.tensor("w"), c.tensor("y")
			p := conv2dParams(c, x, w)
			if p.OutH() != want.Shape[2] || p.OutW() != want.Shape[3] {
				t.Fatalf("%s: OutH×OutW = %d×%d, torch %d×%d", c.name, p.OutH(), p.OutW(), want.Shape[2], want.Shape[3])
			}
			y := nanSlice(len(want.F32))
			kernels.Conv2d(y, x.F32, w.F32, c.f32("b"), p)
			check(t, "conv2d", fmt.Sprintf("%s %+v %s", c.name, p, label), y, want)
		}
	})
	logWorst(t, "conv2d")
}

func TestConvTranspose2dGolden(t *testing.T) {
	g := openGolden(t, "conv")
	withScratch(t, func(label string) {
		for _, c := range g.cases(t, "conv_transpose2d") {
			x, w, want := c.tensor("x"), c.tensor("w"), c.tensor("y")
			groups := c.int("groups")
			p := kernels.ConvTranspose2dParams{
				N: x.Shape[0], C: x.Shape[1], H: x.Shape[2], W: x.Shape[3],
				K: w.Shape[1] * groups, KH: w.Shape[2], KW: w.Shape[3], Groups: groups,
			}
			p.StrideH, p.StrideW = pair(c, "stride")
			p.PadH, p.PadW = pair(c, "padding")
			p.OutPadH, p.OutPadW = pair(c, "output_padding")
			p.DilH, p.DilW = pair(c, "dilation")
			if p.OutH() != want.Shape[2] || p.OutW() != want.Shape[3] {
				t.Fatalf("%s: OutH×OutW = %d×%d, torch %d×%d", c.name, p.OutH(), p.OutW(), want.Shape[2], want.Shape[3])
			}
			y := nanSlice(len(want.F32))
			kernels.ConvTranspose2d(y, x.F32, w.F32, c.f32("b"), p)
			check(t, "conv_transpose2d", fmt.Sprintf("%s %+v %s", c.name, p, label), y, want)
		}
	})
	logWorst(t, "conv_transpose2d")
}
