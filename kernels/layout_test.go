package kernels_test

import (
	"fmt"
	"testing"

	"github.com/rfc-project/rfc/kernels"
)

func TestPermuteGolden(t *testing.T) {
	g := openGolden(t, "layout")
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "permute") {
			x, want := c.tensor("x"), c.tensor("y")
			y := nanSlice(len(x.F32))
			kernels.Permute(y, x.F32, x.Shape, c.ints("perm"))
			check(t, "layout", c.name+" "+label, y, want)
		}
	})
}

// TestPermuteLarge checks the blocked transpose path (innermost output dimension strided in
// x) on sizes that are not multiples of the block, against direct indexing.
func TestPermuteLarge(t *testing.T) {
	shape := []int{2, 70, 3, 45}
	perm := []int{0, 3, 2, 1} // innermost of y walks x's dim 1 (stride 135)
	x := make([]float32, prod(shape))
	for i := range x {
		x[i] = float32(i)
	}
	withWorkers(t, func(label string) {
		y := nanSlice(len(x))
		kernels.Permute(y, x, shape, perm)
		for a := range 2 {
			for d := range 45 {
				for c := range 3 {
					for b := range 70 {
						want := x[((a*70+b)*3+c)*45+d]
						if got := y[((a*45+d)*3+c)*70+b]; got != want {
							t.Fatalf("%s: y[%d,%d,%d,%d] = %v, want %v", label, a, d, c, b, got, want)
						}
					}
				}
			}
		}
	})
}

func TestSliceGolden(t *testing.T) {
	g := openGolden(t, "layout")
	for _, c := range g.cases(t, "slice") {
		x, want := c.tensor("x"), c.tensor("y")
		y := nanSlice(len(want.F32))
		kernels.Slice(y, x.F32, x.Shape, c.int("dim"), c.int("start"), c.int("end"), c.int("step"))
		check(t, "layout", c.name, y, want)
	}
}

func TestConcatGolden(t *testing.T) {
	g := openGolden(t, "layout")
	for _, c := range g.cases(t, "concat") {
		var xs [][]float32
		var shapes [][]int
		for i := range c.int("count") {
			x := c.tensor(fmt.Sprintf("x%d", i))
			xs = append(xs, x.F32)
			shapes = append(shapes, x.Shape)
		}
		want := c.tensor("y")
		y := nanSlice(len(want.F32))
		kernels.Concat(y, xs, shapes, c.int("dim"))
		check(t, "layout", c.name, y, want)
	}
}

func TestUpsampleGolden(t *testing.T) {
	g := openGolden(t, "layout")
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "upsample_nearest") {
			x, want := c.tensor("x"), c.tensor("y")
			s := x.Shape
			y := nanSlice(len(want.F32))
			kernels.UpsampleNearest(y, x.F32, s[0], s[1], s[2], s[3], want.Shape[2], want.Shape[3])
			check(t, "upsample", c.name+" "+label, y, want)
		}
		for _, c := range g.cases(t, "upsample_bilinear") {
			x, want := c.tensor("x"), c.tensor("y")
			s := x.Shape
			y := nanSlice(len(want.F32))
			ac := c.bool("align_corners")
			kernels.UpsampleBilinear(y, x.F32, s[0], s[1], s[2], s[3], want.Shape[2], want.Shape[3], ac)
			check(t, "upsample", fmt.Sprintf("%s align_corners=%v %s", c.name, ac, label), y, want)
		}
	})
	logWorst(t, "upsample")
}

func TestPadGolden(t *testing.T) {
	g := openGolden(t, "layout")
	modes := map[string]kernels.PadMode{"constant": kernels.PadConstant, "reflect": kernels.PadReflect, "replicate": kernels.PadReplicate}
	withWorkers(t, func(label string) {
		for _, c := range g.cases(t, "pad") {
			mode, ok := modes[c.str("mode")]
			if !ok {
				t.Fatalf("%s: unknown mode %q", c.name, c.str("mode"))
			}
			x, want := c.tensor("x"), c.tensor("y")
			y := nanSlice(len(want.F32))
			kernels.Pad(y, x.F32, x.Shape, c.ints("pads"), mode, float32(c.num("value")))
			check(t, "layout", c.name+" "+c.str("mode")+" "+label, y, want)
		}
	})
}

func TestPixelShuffleGolden(t *testing.T) {
	g := openGolden(t, "layout")
	for _, c := range g.cases(t, "pixel_unshuffle") {
		x, want := c.tensor("x"), c.tensor("y")
		s := x.Shape
		y := nanSlice(len(want.F32))
		kernels.PixelUnshuffle(y, x.F32, s[0], s[1], s[2], s[3], c.int("factor"))
		check(t, "layout", c.name, y, want)
	}
	for _, c := range g.cases(t, "pixel_shuffle") {
		x, want := c.tensor("x"), c.tensor("y")
		s := x.Shape
		y := nanSlice(len(want.F32))
		kernels.PixelShuffle(y, x.F32, s[0], s[1], s[2], s[3], c.int("factor"))
		check(t, "layout", c.name, y, want)
	}
	logWorst(t, "layout")
}
