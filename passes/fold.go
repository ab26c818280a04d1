package passes

import (
	"slices"

	"github.com/rfc-project/rfc/ir"
)

// fold simplifies what can be simplified from the graph alone, never from weight or input
// values:
//   - reshape∘reshape becomes one reshape, permute∘permute one permute, scale∘scale one
//     scale (scale c·(a·x+b)+d = (c·a)·x + (c·b+d): one rounding instead of two);
//   - ops that return their operand unchanged disappear: a reshape to the operand's own
//     type, an identity permute, a slice covering its whole dim, scale=1 with bias=0, a
//     concat of one operand.
//
// A combined op keeps the scope of the outer op, the one whose result it computes. The
// inner ops stay for their other readers; dce removes those left without any.
func fold(m *ir.Module) error {
	r := newRewrite(m)
	for _, v := range m.Body {
		r.useSubstitutes(v)
		// Operands come earlier in the body and are folded already, so each combination
		// shortens a chain by one op and the loop ends.
		for {
			if x := identityOperand(v); x != nil {
				r.replace(v, x)
				break
			}
			if !combine(v) {
				break
			}
		}
	}
	r.finish()
	return nil
}

// identityOperand returns the operand that v merely passes on, or nil.
func identityOperand(v *ir.Value) *ir.Value {
	if len(v.Args) == 0 {
		return nil
	}
	x := v.Args[0]
	switch v.Op {
	case "reshape":
		if x.Type.Equal(v.Type) {
			return x
		}
	case "permute":
		if isIdentityPerm(v.Perm()) {
			return x
		}
	case "slice":
		// A slice from 0 that keeps as many elements as the dim has keeps them all.
		if p := v.Slice(); p.Dim >= 0 && p.Dim < len(x.Type.Shape) && p.Start == 0 && x.Type.Equal(v.Type) {
			return x
		}
	case "scale":
		if s, b := v.ScaleBias(); s == 1 && b == 0 {
			return x
		}
	case "concat":
		if len(v.Args) == 1 && x.Type.Equal(v.Type) {
			return x
		}
	}
	return nil
}

func isIdentityPerm(perm []int) bool {
	for i, p := range perm {
		if p != i {
			return false
		}
	}
	return perm != nil
}

// combine merges v with the op producing its operand when both are of a kind that
// composes, rewriting v in place; it reports whether it did.
func combine(v *ir.Value) bool {
	if len(v.Args) != 1 || v.Args[0].Kind != ir.KindOp || v.Args[0].Op != v.Op {
		return false
	}
	inner := v.Args[0]
	switch v.Op {
	case "reshape":
		// Only the element count and order matter to a reshape: the intermediate shape
		// does not.
	case "permute":
		// Result dim i is dim q[i] of the inner result, which is dim p[q[i]] of its operand.
		p, q := inner.Perm(), v.Perm()
		if len(p) != len(q) {
			return false
		}
		composed := make([]int, len(q))
		for i, qi := range q {
			if qi < 0 || qi >= len(p) {
				return false
			}
			composed[i] = p[qi]
		}
		setAttr(v, ir.PermAttr(composed))
	case "scale":
		a, b := inner.ScaleBias()
		c, d := v.ScaleBias()
		setAttr(v, ir.ScaleAttrs(c*a, c*b+d)...)
	default:
		return false
	}
	v.Args = slices.Clone(inner.Args)
	return true
}
