package passes

import (
	"fmt"

	"github.com/rfc-project/rfc/ir"
)

// packQKV merges the query, key and value projections of a self-attention into one linear:
// when the three operands of an sdpa are linears of the same input, each read by the sdpa
// alone, with biases on all three or on none, they become
//
//	w = concat(wq, wk, wv) {dim=0}    (b likewise)    weight-only: computed once at load time
//	qkv = linear(x, w, b)
//	q, k, v = slice(qkv) along the last dim
//
// which packs x for the GEMM once instead of three times, at the price of copying q, k and v
// out of qkv and of a second copy of the projection weights. On the CPU it does not pay
// (the ViT of models/vit.rfn, 576 tokens of 512, runs no faster), so the pass is off unless
// enabled. The new ops take the scope of the projections' parent (Refiners' Distribute).
func packQKV(m *ir.Module, _ Config) error {
	uses, outputs := liveUses(m)
	gone := map[*ir.Value]bool{}
	before := map[*ir.Value][]*ir.Value{} // ops to insert before a value of the body
	for _, v := range m.Body {
		if v.Op != "sdpa" || !packable(v, uses, outputs) {
			continue
		}
		proj := v.Args
		x := proj[0].Args[0]
		scope := proj[0].Scope
		if scope.Parent != nil {
			scope = scope.Parent
		}
		var added []*ir.Value
		newOp := func(op string, args []*ir.Value, attrs ...ir.Attr) (*ir.Value, error) {
			u := &ir.Value{Kind: ir.KindOp, Op: op, Args: args, Attrs: attrs, Scope: scope}
			t, err := ir.Infer(u)
			if err != nil {
				return nil, fmt.Errorf("pack_qkv: %s: %v", ir.FormatValue(v), err)
			}
			u.Type = t
			added = append(added, u)
			return u, nil
		}
		w, err := newOp("concat", []*ir.Value{proj[0].Args[1], proj[1].Args[1], proj[2].Args[1]}, ir.Attr{Name: "dim", Value: 0})
		if err != nil {
			return err
		}
		args := []*ir.Value{x, w}
		if len(proj[0].Args) == 3 {
			b, err := newOp("concat", []*ir.Value{proj[0].Args[2], proj[1].Args[2], proj[2].Args[2]}, ir.Attr{Name: "dim", Value: 0})
			if err != nil {
				return err
			}
			args = append(args, b)
		}
		qkv, err := newOp("linear", args)
		if err != nil {
			return err
		}
		last := len(qkv.Type.Shape) - 1
		start := 0
		for i, p := range proj {
			n := p.Type.Shape[last].N
			s, err := newOp("slice", []*ir.Value{qkv}, ir.Attr{Name: "dim", Value: last}, ir.Attr{Name: "start", Value: start},
				ir.Attr{Name: "end", Value: start + n}, ir.Attr{Name: "step", Value: 1})
			if err != nil {
				return err
			}
			start += n
			gone[p] = true
			if i == 0 {
				v.Args = append([]*ir.Value(nil), v.Args...)
			}
			v.Args[i] = s
		}
		before[v] = added
	}
	if len(gone) == 0 {
		return nil
	}
	body := make([]*ir.Value, 0, len(m.Body))
	for _, v := range m.Body {
		body = append(body, before[v]...)
		body = append(body, v)
	}
	m.Body = body
	dropGone(m, gone)
	return nil
}

// packable reports whether the operands of sdpa v are three distinct linears of one input
// with the same depth, each read by v alone, all with a bias or none.
func packable(v *ir.Value, uses map[*ir.Value][]*ir.Value, outputs map[*ir.Value]bool) bool {
	p := v.Args
	if p[0] == p[1] || p[1] == p[2] || p[0] == p[2] {
		return false
	}
	for _, a := range p {
		if a.Kind != ir.KindOp || a.Op != "linear" || outputs[a] || len(uses[a]) != 1 ||
			a.Args[0] != p[0].Args[0] || len(a.Args) != len(p[0].Args) ||
			!a.Args[1].Type.Shape[1].Static() || a.Args[1].Type.Shape[1] != p[0].Args[1].Type.Shape[1] ||
			!a.Type.Shape[len(a.Type.Shape)-1].Static() {
			return false
		}
	}
	return true
}
