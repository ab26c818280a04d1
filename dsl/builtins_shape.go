package dsl

import (
	"fmt"
	"math"

	"github.com/rfc-project/rfc/ir"
)

func defShapeLayers() {
	def(&builtin{Name: "Reshape", Inputs: 1, Args: []argSpec{{"shape", kVarSizes, required}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			x := ins[0].Type.Shape
			if len(x) == 0 {
				return nil, fmt.Errorf("Reshape keeps the batch dimension, but the input is a scalar")
			}
			target, err := inferMinusOne(x[1:], a.sizes("shape"))
			if err != nil {
				return nil, err
			}
			v, err := c.reshape(ins[0], append(ir.Shape{x[0]}, target...))
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Flatten", Inputs: 1, Args: []argSpec{{"start_dim", kInt, 0}, {"end_dim", kInt, -1}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			x := ins[0].Type.Shape
			s, err := c.axis(a.int("start_dim"), ins[0])
			if err != nil {
				return nil, err
			}
			e, err := c.axis(a.int("end_dim"), ins[0])
			if err != nil {
				return nil, err
			}
			if s > e {
				return nil, fmt.Errorf("start_dim %d is after end_dim %d", s, e)
			}
			out := append(ir.Shape{}, x[:s]...)
			out = append(out, ir.Shape(x[s:e+1]).NumElements())
			out = append(out, x[e+1:]...)
			v, err := c.reshape(ins[0], out)
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Unflatten", Inputs: -1, Args: []argSpec{{"dim", kInt, required}, {"sizes", kSizes, none}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			if len(ins) != 1 && len(ins) != 2 {
				return nil, fmt.Errorf("Unflatten takes an input, or an input and a tensor whose sizes it takes, got %d inputs", len(ins))
			}
			x := ins[0].Type.Shape
			d, err := c.axis(a.int("dim"), ins[0])
			if err != nil {
				return nil, err
			}
			var sizes ir.Shape
			switch {
			case len(ins) == 2:
				// Refiners' CLIPLCrossAttention: (x, the map before StatefulFlatten): its
				// dims from dim on.
				if !a.isNone("sizes") {
					return nil, fmt.Errorf("Unflatten with two inputs takes the second's sizes: give no sizes")
				}
				ref := ins[1].Type.Shape
				if d >= len(ref) {
					return nil, fmt.Errorf("the size tensor %s has no dims from %d on", ref, d)
				}
				sizes = append(ir.Shape{}, ref[d:]...)
			case a.isNone("sizes"):
				return nil, fmt.Errorf("Unflatten needs sizes, or a second input to take them from")
			default:
				if sizes, err = inferMinusOne(ir.Shape{x[d]}, a.sizes("sizes")); err != nil {
					return nil, err
				}
			}
			out := append(append(append(ir.Shape{}, x[:d]...), sizes...), x[d+1:]...)
			v, err := c.reshape(ins[0], out)
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Transpose", Inputs: 1, Args: []argSpec{{"dim0", kInt, required}, {"dim1", kInt, required}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			d0, err := c.axis(a.int("dim0"), ins[0])
			if err != nil {
				return nil, err
			}
			d1, err := c.axis(a.int("dim1"), ins[0])
			if err != nil {
				return nil, err
			}
			perm := make([]int, len(ins[0].Type.Shape))
			for i := range perm {
				perm[i] = i
			}
			perm[d0], perm[d1] = d1, d0
			v, err := c.op("permute", ins, ir.Attr{Name: "perm", Value: perm})
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Permute", Inputs: 1, Args: []argSpec{{"dims", kVarInts, required}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			perm := append([]int{}, a.ints("dims")...)
			for i := range perm {
				d, err := c.axis(perm[i], ins[0])
				if err != nil {
					return nil, err
				}
				perm[i] = d
			}
			v, err := c.op("permute", ins, ir.Attr{Name: "perm", Value: perm})
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Squeeze", Inputs: 1, Args: []argSpec{{"dim", kInt, required}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			x := ins[0].Type.Shape
			d, err := c.axis(a.int("dim"), ins[0])
			if err != nil {
				return nil, err
			}
			if x[d] != ir.D(1) {
				return []*ir.Value{ins[0]}, nil // torch leaves a dim of size ≠ 1 alone
			}
			v, err := c.reshape(ins[0], append(append(ir.Shape{}, x[:d]...), x[d+1:]...))
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Unsqueeze", Inputs: 1, Args: []argSpec{{"dim", kInt, required}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			x := ins[0].Type.Shape
			d := a.int("dim")
			if d < 0 {
				d += len(x) + 1
			}
			if d < 0 || d > len(x) {
				return nil, fmt.Errorf("dim %d is out of range for unsqueezing %s", a.int("dim"), x)
			}
			v, err := c.reshape(ins[0], append(append(append(ir.Shape{}, x[:d]...), ir.D(1)), x[d:]...))
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Slicing", Inputs: 1, Args: []argSpec{{"dim", kInt, 0}, {"start", kInt, 0}, {"end", kInt, none}, {"step", kInt, 1}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			d, err := c.axis(a.int("dim"), ins[0])
			if err != nil {
				return nil, err
			}
			size := ins[0].Type.Shape[d]
			if !size.Static() {
				return nil, fmt.Errorf("cannot slice symbolic dim %s", size)
			}
			start, end := a.int("start"), size.N
			if !a.isNone("end") {
				end = a.int("end")
			}
			start, end = clampIndex(start, size.N), clampIndex(end, size.N)
			v, err := c.op("slice", ins, ir.Attr{Name: "dim", Value: d}, ir.Attr{Name: "start", Value: start}, ir.Attr{Name: "end", Value: end}, ir.Attr{Name: "step", Value: a.int("step")})
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Chunk", Inputs: 1, Args: []argSpec{{"chunks", kInt, required}, {"dim", kInt, 0}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			d, err := c.axis(a.int("dim"), ins[0])
			if err != nil {
				return nil, err
			}
			size, n := ins[0].Type.Shape[d], a.int("chunks")
			if !size.Static() || n < 1 {
				return nil, fmt.Errorf("cannot chunk dim %s into %d", size, n)
			}
			step := (size.N + n - 1) / n // torch.chunk: equal chunks, the last may be smaller
			var outs []*ir.Value
			for lo := 0; lo < size.N; lo += step {
				v, err := c.op("slice", ins, ir.Attr{Name: "dim", Value: d}, ir.Attr{Name: "start", Value: lo}, ir.Attr{Name: "end", Value: min(lo+step, size.N)}, ir.Attr{Name: "step", Value: 1})
				if err != nil {
					return nil, err
				}
				outs = append(outs, v)
			}
			return outs, nil
		}})
	for _, name := range []string{"Upsample", "Interpolate"} {
		def(&builtin{Name: name, Inputs: -1, Args: []argSpec{{"scale_factor", kFloat, none}, {"mode", kString, "nearest"}, {"size", kPair, none}, {"align_corners", kBool, false}},
			build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
				if len(ins) != 1 && len(ins) != 2 {
					return nil, fmt.Errorf("%s takes an input, or an input and a tensor whose size it takes, got %d inputs", name, len(ins))
				}
				x := ins[0].Type.Shape
				if len(x) != 4 {
					return nil, fmt.Errorf("%s needs a [N, C, H, W] input, got %s", name, x)
				}
				var out [2]ir.Dim
				switch {
				case len(ins) == 2:
					// Refiners' Upsample: (x, the size saved by the matching Downsample).
					ref := ins[1].Type.Shape
					if len(ref) != 4 {
						return nil, fmt.Errorf("%s takes its size from a [N, C, H, W] tensor, got %s", name, ref)
					}
					if !a.isNone("size") || !a.isNone("scale_factor") {
						return nil, fmt.Errorf("%s with two inputs takes the second's size: give no size or scale_factor", name)
					}
					out = [2]ir.Dim{ref[2], ref[3]}
				case !a.isNone("size"):
					p := a.pair("size")
					out = [2]ir.Dim{ir.D(p[0]), ir.D(p[1])}
				case !a.isNone("scale_factor"):
					f := a.float("scale_factor")
					for i, d := range x[2:] {
						var err error
						if out[i], err = scaledSize(d, f); err != nil {
							return nil, fmt.Errorf("%s: %v", name, err)
						}
					}
				default:
					return nil, fmt.Errorf("%s needs scale_factor or size", name)
				}
				attrs := []ir.Attr{{Name: "mode", Value: a.str("mode")}}
				if out[0].Static() && out[1].Static() {
					attrs = append(attrs, ir.Attr{Name: "size", Value: []int{out[0].N, out[1].N}})
					v, err := c.op("upsample", ins[:1], append(attrs, ir.Attr{Name: "align_corners", Value: a.bool("align_corners")})...)
					return []*ir.Value{v}, err
				}
				// Sizes known only at run time: the op takes its size from its declared type.
				attrs = append(attrs, ir.Attr{Name: "align_corners", Value: a.bool("align_corners")})
				v, err := c.declared("upsample", ins[:1], ir.F32Of(ir.Shape{x[0], x[1], out[0], out[1]}), attrs...)
				return []*ir.Value{v}, err
			}})
	}
	def(&builtin{Name: "Pad", Inputs: 1, Args: []argSpec{{"pad", kInts, required}, {"mode", kString, "constant"}, {"value", kFloat, 0.0}},
		build: one("pad", func(a args) []ir.Attr {
			return []ir.Attr{{Name: "pads", Value: a.ints("pad")}, {Name: "mode", Value: a.str("mode")}, {Name: "value", Value: a.float("value")}}
		})})
	def(&builtin{Name: "ReflectionPad2d", Inputs: 1, Args: []argSpec{{"padding", kInts, required}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			p := a.ints("padding")
			switch len(p) {
			case 1:
				p = []int{p[0], p[0], p[0], p[0]}
			case 4:
			default:
				return nil, fmt.Errorf("padding takes 1 or 4 values, got %v", p)
			}
			v, err := c.op("pad", ins, ir.Attr{Name: "pads", Value: p}, ir.Attr{Name: "mode", Value: "reflect"}, ir.Attr{Name: "value", Value: 0.0})
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "PixelUnshuffle", Inputs: 1, Args: []argSpec{{"downscale_factor", kInt, required}}, build: one("pixel_unshuffle", func(a args) []ir.Attr {
		return []ir.Attr{{Name: "factor", Value: a.int("downscale_factor")}}
	})})
	def(&builtin{Name: "PixelShuffle", Inputs: 1, Args: []argSpec{{"upscale_factor", kInt, required}}, build: one("pixel_shuffle", func(a args) []ir.Attr {
		return []ir.Attr{{Name: "factor", Value: a.int("upscale_factor")}}
	})})
}

// inferMinusOne resolves one -1 in a target shape against the dims it replaces. Sizes
// known only at run time are allowed; the -1 is then the quotient of the element counts,
// which must divide exactly (the reshape's rule checks the counts, at run time if need be).
func inferMinusOne(from ir.Shape, target []ir.Dim) (ir.Shape, error) {
	out := make(ir.Shape, len(target))
	hole := -1
	known := ir.D(1)
	for i, n := range target {
		switch {
		case n == ir.D(-1) && hole < 0:
			hole = i
		case n.Static() && n.N < 1:
			return nil, fmt.Errorf("bad size %d in %s", n.N, ir.Shape(target))
		default:
			out[i] = n
			var err error
			if known, err = ir.MulDimChecked(known, n); err != nil {
				return nil, err
			}
		}
	}
	if hole >= 0 {
		total, err := from.NumElementsDim()
		if err != nil {
			return nil, err
		}
		switch {
		case total.Static() && known.Static():
			if total.N%known.N != 0 {
				return nil, fmt.Errorf("cannot infer -1 in %s from %s", ir.Shape(target), from)
			}
			out[hole] = ir.D(total.N / known.N)
		case known.Static():
			if out[hole], err = ir.FloorDivDim(total, known.N); err != nil {
				return nil, err
			}
		default:
			if q, ok := ir.DivExact(total, known); ok {
				out[hole] = q
				break
			}
			return nil, fmt.Errorf("cannot infer -1 in %s from %s: the other sizes are known only at run time", ir.Shape(target), from)
		}
	}
	return out, nil
}

// scaledSize is torch's output size of an upsampling by f: floor(d·f). A size known only
// at run time takes an integer factor, or the inverse of one.
func scaledSize(d ir.Dim, f float64) (ir.Dim, error) {
	if d.Static() {
		return ir.D(int(float64(d.N) * f)), nil
	}
	switch {
	case f >= 1 && f == math.Trunc(f) && f <= 1<<20:
		return ir.MulDimChecked(d, ir.D(int(f)))
	case f > 0 && f < 1 && 1/f == math.Trunc(1/f) && 1/f <= 1<<20:
		return ir.FloorDivDim(d, int(1/f))
	}
	return ir.Dim{}, fmt.Errorf("scale_factor %g of the size %s, known only at run time, needs an integer factor or its inverse (or fix the size with --set)", f, d)
}

func clampIndex(i, n int) int {
	if i < 0 {
		i += n
	}
	return max(0, min(i, n))
}
