package passes

import (
	"fmt"
	"slices"

	"github.com/rfc-project/rfc/ir"
)

// LoraMerge folds LoRA branches into the weights of the layers they adapt, so that the
// forward pass computes one linear or conv2d where the unmerged graph computes three and an
// add. It finds, for each add, one operand
//
//	t = linear(x, W[, b])            or conv2d(x, W[, b]) (groups 1)
//
// and the other a branch s · up(down(x)) of the same op kind:
//
//	linear(linear(x, D), U)          or conv2d(conv2d(x, D){as t}, U){1×1}
//
// scaled by any chain of scale ops (bias 0) and of muls by scalar inputs that an adapter
// added with a recorded value (ir.Injection.Scalars: the LoRA's scale). The add becomes
//
//	linear(x, W + s·(U @ D)[, b])     (for conv2d, U and D as matrices, the product
//	                                   reshaped to W's shape)
//
// where W + s·(U @ D) is a subgraph of parameters only: the interpreter computes it with the
// rest, a code generator should compute it once when loading the weights. W may itself be
// such a subgraph, so stacked LoRAs merge one after the other. The merged branch's ops go,
// and scalar inputs that nothing reads any more leave the module's inputs: the merged
// module takes the scale as fixed.
//
// Unlike the optimization passes, it depends on the recorded scale values and changes the
// entry point's inputs; it runs only when a merged build is asked for, before fold (which
// would fold the branch's scale chain) and cse/dce.
func LoraMerge(m *ir.Module) error {
	sub := map[*ir.Value]*ir.Value{}
	var body []*ir.Value
	var dropped []*ir.Value
	for _, v := range m.Body {
		for i, a := range v.Args {
			if r, ok := sub[a]; ok {
				v.Args[i] = r
			}
		}
		if v.Op == "add" {
			merged, added, gone, err := mergeLora(m, v)
			if err != nil {
				return err
			}
			if merged != nil {
				body = append(body, added...)
				sub[v] = merged
				dropped = append(dropped, gone...)
				continue
			}
		}
		body = append(body, v)
	}
	for i, o := range m.Outputs {
		if r, ok := sub[o]; ok {
			m.Outputs[i] = r
		}
	}
	m.Body = body
	removeUnread(m, dropped)
	return nil
}

// mergeLora merges the LoRA branch that add adds, if it is one. It returns the value that
// replaces add, the new ops (in order, ending with it) and the ops of the pattern that may
// now be unread.
func mergeLora(m *ir.Module, add *ir.Value) (*ir.Value, []*ir.Value, []*ir.Value, error) {
	for _, side := range [][2]int{{0, 1}, {1, 0}} {
		t, branch := add.Args[side[0]], add.Args[side[1]]
		if t.Op != "linear" && t.Op != "conv2d" {
			continue
		}
		factor, up, chain, ok := branchScale(m, branch)
		if !ok || up.Op != t.Op || len(up.Args) != 2 {
			continue
		}
		down := up.Args[0]
		if down.Op != t.Op || len(down.Args) != 2 || !sameValue(down.Args[0], t.Args[0]) {
			continue
		}
		w, d, u := t.Args[1], down.Args[1], up.Args[1]
		if !loadTime(w) || !loadTime(d) || !loadTime(u) {
			continue
		}
		var ops []*ir.Value
		newOp := func(op string, args []*ir.Value, shape ir.Shape, attrs ...ir.Attr) (*ir.Value, error) {
			v := &ir.Value{Kind: ir.KindOp, Op: op, Args: args, Attrs: attrs, Scope: add.Scope, Type: ir.F32Of(shape)}
			tt, err := ir.Infer(v)
			if err != nil {
				return nil, fmt.Errorf("lora_merge: %s: %v", ir.FormatValue(v), err)
			}
			v.Type = tt
			ops = append(ops, v)
			return v, nil
		}
		ws := w.Type.Shape
		var delta *ir.Value
		var err error
		if t.Op == "linear" {
			// [out, rank] @ [rank, in] is [out, in], W's shape.
			if delta, err = newOp("matmul", []*ir.Value{u, d}, nil); err != nil {
				return nil, nil, nil, err
			}
		} else {
			if !mergeableConv(t, down, up) {
				if g := t.Conv().Groups; g != 1 {
					return nil, nil, nil, fmt.Errorf("lora_merge: %s: a LoRA on a grouped convolution (groups=%d) cannot be merged into its weight; run it unmerged", ir.FormatValue(t), g)
				}
				continue
			}
			ds, us := d.Type.Shape, u.Type.Shape
			rank := ds[0]
			cols := ir.MulDim(ir.MulDim(ds[1], ds[2]), ds[3])
			u2, err := newOp("reshape", []*ir.Value{u}, ir.Shape{us[0], rank})
			if err != nil {
				return nil, nil, nil, err
			}
			d2, err := newOp("reshape", []*ir.Value{d}, ir.Shape{rank, cols})
			if err != nil {
				return nil, nil, nil, err
			}
			prod, err := newOp("matmul", []*ir.Value{u2, d2}, nil)
			if err != nil {
				return nil, nil, nil, err
			}
			if delta, err = newOp("reshape", []*ir.Value{prod}, ws.Clone()); err != nil {
				return nil, nil, nil, err
			}
		}
		if factor != 1 {
			if delta, err = newOp("scale", []*ir.Value{delta}, nil, ir.ScaleAttrs(factor, 0)...); err != nil {
				return nil, nil, nil, err
			}
		}
		if !delta.Type.Equal(w.Type) {
			return nil, nil, nil, fmt.Errorf("lora_merge: %s: the LoRA product is %s, the weight %s", ir.FormatValue(add), delta.Type, w.Type)
		}
		merged, err := newOp("add", []*ir.Value{w, delta}, nil)
		if err != nil {
			return nil, nil, nil, err
		}
		args := append([]*ir.Value{t.Args[0], merged}, t.Args[2:]...)
		nt := &ir.Value{Kind: ir.KindOp, Op: t.Op, Args: args, Attrs: slices.Clone(t.Attrs), Type: t.Type, Scope: t.Scope}
		if tt, err := ir.Infer(nt); err != nil || !tt.Equal(t.Type) {
			return nil, nil, nil, fmt.Errorf("lora_merge: the merged %s does not infer to %s: %v", t.Op, t.Type, err)
		}
		ops = append(ops, nt)
		gone := append([]*ir.Value{t, up, down}, chain...)
		if x := down.Args[0]; x != t.Args[0] {
			gone = append(gone, x) // the down conv's own copy of the target's padding
		}
		return nt, ops, gone, nil
	}
	return nil, nil, nil, nil
}

// branchScale strips the scale ops and the muls by recorded scalar inputs off the top of
// a branch: it returns their product, the op below them and the stripped ops. At least one
// mul by a recorded scalar is required: that is what marks an adapter's branch.
func branchScale(m *ir.Module, v *ir.Value) (float64, *ir.Value, []*ir.Value, bool) {
	factor := 1.0
	var chain []*ir.Value
	scalars := 0
	for {
		switch {
		case v.Op == "scale" && isScale(v):
			s, _ := v.ScaleBias()
			factor *= s
		case v.Op == "mul" && len(v.Args) == 2:
			in, other := v.Args[1], v.Args[0]
			if !isScalarInput(in) {
				in, other = other, in
			}
			s, ok := m.ScalarValue(in.Name)
			if !isScalarInput(in) || !ok || !other.Type.Equal(v.Type) {
				return 0, nil, nil, false
			}
			factor *= s
			scalars++
			chain = append(chain, v)
			v = other
			continue
		default:
			return factor, v, chain, scalars > 0
		}
		chain = append(chain, v)
		v = v.Args[0]
	}
}

// isScale reports whether the scale op v is a pure multiplication (no bias).
func isScale(v *ir.Value) bool {
	_, b := v.ScaleBias()
	return b == 0
}

func isScalarInput(v *ir.Value) bool {
	return v.Kind == ir.KindInput && len(v.Type.Shape) == 0
}

// mergeableConv reports whether conv2d(conv2d(x, D), U) folds into t's weight: the down
// conv sees the input as t does (same stride, padding, dilation, kernel), the up conv is a
// plain 1×1, and nothing is grouped.
func mergeableConv(t, down, up *ir.Value) bool {
	tc, dc, uc := t.Conv(), down.Conv(), up.Conv()
	ws, ds, us := t.Args[1].Type.Shape, down.Args[1].Type.Shape, up.Args[1].Type.Shape
	plain := ir.ConvParams{Stride: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1}
	return tc.Stride == dc.Stride && tc.Padding == dc.Padding && tc.Dilation == dc.Dilation &&
		tc.Groups == 1 && dc.Groups == 1 && uc == plain &&
		ds[2] == ws[2] && ds[3] == ws[3] && us[2] == ir.D(1) && us[3] == ir.D(1)
}

// loadTime reports whether v depends on parameters only.
func loadTime(v *ir.Value) bool {
	switch v.Kind {
	case ir.KindParam:
		return true
	case ir.KindOp:
		for _, a := range v.Args {
			if !loadTime(a) {
				return false
			}
		}
		return true
	}
	return false
}

// sameValue reports whether a and b compute the same thing: the same value, or equal ops
// of equal operands (the pad a reflect-padded conv and its LoRA's down conv each make).
func sameValue(a, b *ir.Value) bool {
	if a == b {
		return true
	}
	if a.Kind != ir.KindOp || b.Kind != ir.KindOp || a.Op != b.Op || len(a.Args) != len(b.Args) || !a.Type.Equal(b.Type) || len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for i := range a.Attrs {
		if a.Attrs[i].Name != b.Attrs[i].Name || ir.FormatAttr(a.Attrs[i].Value) != ir.FormatAttr(b.Attrs[i].Value) {
			return false
		}
	}
	for i := range a.Args {
		if !sameValue(a.Args[i], b.Args[i]) {
			return false
		}
	}
	return true
}

// removeUnread deletes the candidates that nothing reads any more (and, in turn, their
// operands among the candidates), then the recorded scalar inputs nothing reads.
func removeUnread(m *ir.Module, candidates []*ir.Value) {
	cand := map[*ir.Value]bool{}
	for _, v := range candidates {
		cand[v] = true
	}
	out := map[*ir.Value]bool{}
	for _, o := range m.Outputs {
		out[o] = true
	}
	for {
		read := map[*ir.Value]bool{}
		for _, v := range m.Body {
			for _, a := range v.Args {
				read[a] = true
			}
		}
		n := len(m.Body)
		m.Body = slices.DeleteFunc(m.Body, func(v *ir.Value) bool { return cand[v] && !read[v] && !out[v] })
		if len(m.Body) == n {
			m.Inputs = slices.DeleteFunc(m.Inputs, func(v *ir.Value) bool {
				_, recorded := m.ScalarValue(v.Name)
				return recorded && len(v.Type.Shape) == 0 && !read[v] && !out[v]
			})
			return
		}
	}
}
