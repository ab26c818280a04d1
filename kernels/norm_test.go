package kernels_test

import (
	"fmt"
	"testing"

	"github.com/rfc-project/rfc/kernels"
)

func TestLayerNormGolden(t *testing.T) {
	g := openGolden(t, "norm")
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "layernorm") {
			x, want := c.tensor("x"), c.tensor("y")
			cols := prod(c.ints("normalized_shape"))
			y := nanSlice(len(x.F32))
			kernels.LayerNorm(y, x.F32, len(x.F32)/cols, cols, c.f32("w"), c.f32("b"), float32(c.num("eps")))
			check(t, "norm", c.name+" "+label, y, want)
		}
	})
	logWorst(t, "norm")
}

func TestGroupNormGolden(t *testing.T) {
	g := openGolden(t, "norm")
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "groupnorm") {
			x, want := c.tensor("x"), c.tensor("y")
			n, ch, hw := x.Shape[0], x.Shape[1], prod(x.Shape[2:])
			y := nanSlice(len(x.F32))
			kernels.GroupNorm(y, x.F32, n, ch, hw, c.int("groups"), c.f32("w"), c.f32("b"), float32(c.num("eps")))
			check(t, "norm", fmt.Sprintf("%s groups=%d %s", c.name, c.int("groups"), label), y, want)
		}
		for _, c := range g.cases(t, "instancenorm2d") {
			x, want := c.tensor("x"), c.tensor("y")
			n, ch, hw := x.Shape[0], x.Shape[1], prod(x.Shape[2:])
			y := nanSlice(len(x.F32))
			kernels.InstanceNorm2d(y, x.F32, n, ch, hw, c.f32("w"), c.f32("b"), float32(c.num("eps")))
			check(t, "norm", c.name+" "+label, y, want)
		}
		for _, c := range g.cases(t, "layernorm2d") {
			x, want := c.tensor("x"), c.tensor("y")
			n, ch, hw := x.Shape[0], x.Shape[1], prod(x.Shape[2:])
			y := nanSlice(len(x.F32))
			kernels.LayerNorm2d(y, x.F32, n, ch, hw, c.f32("w"), c.f32("b"), float32(c.num("eps")))
			check(t, "norm", c.name+" "+label, y, want)
		}
	})
	logWorst(t, "norm")
}
