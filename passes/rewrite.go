package passes

import (
	"slices"

	"github.com/rfc-project/rfc/ir"
)

// rewrite is the bookkeeping of a pass that replaces values during one forward sweep over
// the body: each replaced op maps to its substitute, later operands are redirected as the
// sweep reaches them, and finish drops the replaced ops and redirects the outputs.
type rewrite struct {
	m     *ir.Module
	subst map[*ir.Value]*ir.Value
}

func newRewrite(m *ir.Module) *rewrite {
	return &rewrite{m: m, subst: map[*ir.Value]*ir.Value{}}
}

// resolve follows substitutions to the value that stands for v now.
func (r *rewrite) resolve(v *ir.Value) *ir.Value {
	for {
		s, ok := r.subst[v]
		if !ok {
			return v
		}
		v = s
	}
}

// useSubstitutes points v's operands at the substitutes of replaced values. The operand
// slice is copied before it changes: the elaborator may share one slice between ops.
func (r *rewrite) useSubstitutes(v *ir.Value) {
	var args []*ir.Value
	for i, a := range v.Args {
		if s := r.resolve(a); s != a {
			if args == nil {
				args = slices.Clone(v.Args)
			}
			args[i] = s
		}
	}
	if args != nil {
		v.Args = args
	}
}

// replace records that every use of v is to read by instead, and reports whether it did.
// An output is only replaced by an op result that is not an output already: an output
// that is an input or a parameter, or two outputs that are one value, would make the
// caller's buffers alias each other.
func (r *rewrite) replace(v, by *ir.Value) bool {
	if r.isOutput(v) && (by.Kind != ir.KindOp || r.isOutput(by)) {
		return false
	}
	r.subst[v] = by
	return true
}

func (r *rewrite) isOutput(v *ir.Value) bool {
	for _, o := range r.m.Outputs {
		if r.resolve(o) == v {
			return true
		}
	}
	return false
}

// finish removes the replaced ops from the body and redirects the outputs.
func (r *rewrite) finish() {
	if len(r.subst) == 0 {
		return
	}
	r.m.Body = slices.DeleteFunc(r.m.Body, func(v *ir.Value) bool {
		_, gone := r.subst[v]
		return gone
	})
	outs := make([]*ir.Value, len(r.m.Outputs))
	for i, o := range r.m.Outputs {
		outs[i] = r.resolve(o)
	}
	r.m.Outputs = outs
}

// setAttr returns v's attributes with name set to value; the slice is copied, as operand
// slices are, since values may share it.
func setAttr(v *ir.Value, set ...ir.Attr) {
	attrs := slices.Clone(v.Attrs)
next:
	for _, a := range set {
		for i := range attrs {
			if attrs[i].Name == a.Name {
				attrs[i].Value = a.Value
				continue next
			}
		}
		attrs = append(attrs, a)
	}
	v.Attrs = attrs
}
