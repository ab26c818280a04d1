package passes

import (
	"slices"

	"github.com/rfc-project/rfc/ir"
)

// fuseEpilogue folds into each conv2d and linear the element-wise ops that follow it, so
// that the kernel applies them to each tile of its result while the tile is in cache and
// the intermediate results are never stored:
//
//	conv2d/linear → [scale] → [add r] → [activation]   becomes   conv2d_fused/linear_fused
//
// in that order, each step optional (at least one present). A step is taken only when the
// value so far has no other reader and is not an output, the add's other operand r has
// exactly the result's type (a residual, not a broadcast bias), and the activation is one
// a fused op knows (relu, silu, sigmoid, tanh, gelu). TAESD's Sum{conv chain, identity} +
// ReLU is conv2d → add → relu; a transformer's Residual{…, Linear} is linear → add.
//
// The fused op takes the place, the result and the scope of the last op of the chain (as
// fold does for the chains it combines), so its readers need no change; the ops before it
// are removed. It only fuses into ops the back end implements (Config.Ops).
func fuseEpilogue(m *ir.Module, c Config) error {
	uses, outputs := liveUses(m)
	gone := map[*ir.Value]bool{}
	for _, v := range m.Body {
		fused := map[string]string{"conv2d": "conv2d_fused", "linear": "linear_fused"}[v.Op]
		if fused == "" || gone[v] || !c.supports(fused) {
			continue
		}
		e := epilogue{scale: 1}
		chain := []*ir.Value{v}
		cur := v
		for {
			if outputs[cur] || len(uses[cur]) != 1 {
				break
			}
			next := uses[cur][0]
			if !e.absorb(next, cur) {
				break
			}
			chain = append(chain, next)
			cur = next
		}
		if len(chain) == 1 {
			continue
		}
		last := chain[len(chain)-1]
		args := slices.Clone(v.Args)
		if e.residual != nil {
			args = append(args, e.residual)
		}
		if e.act == 0 {
			e.act = ir.ActNone
		}
		attrs := append(slices.Clone(v.Attrs), ir.EpilogueAttrs(ir.EpilogueParams{Scale: e.scale, Shift: e.shift, Residual: e.residual != nil, Act: e.act})...)
		last.Op, last.Args, last.Attrs = fused, args, attrs
		for _, a := range chain[:len(chain)-1] {
			gone[a] = true
		}
		// The removed ops' operands are read by the fused op instead.
		for _, a := range args {
			for i, u := range uses[a] {
				if gone[u] {
					uses[a][i] = last
				}
			}
		}
	}
	dropGone(m, gone)
	return nil
}

// epilogue is what a chain has absorbed so far.
type epilogue struct {
	scale, shift float64
	scaled       bool
	residual     *ir.Value
	act          ir.Activation // 0 while none
}

// absorb takes op next, the only reader of cur, into the epilogue when it is the next step
// in the order scale → add → activation, and reports whether it did.
func (e *epilogue) absorb(next, cur *ir.Value) bool {
	if e.act != 0 {
		return false
	}
	if act, ok := fusedActivation(next); ok {
		e.act = act
		return true
	}
	switch next.Op {
	case "scale":
		if e.scaled || e.residual != nil {
			return false
		}
		e.scale, e.shift = next.ScaleBias()
		e.scaled = true
		return true
	case "add":
		if e.residual != nil || next.Args[0] == next.Args[1] {
			return false
		}
		r := next.Args[1]
		if r == cur {
			r = next.Args[0]
		}
		if !r.Type.Equal(cur.Type) || !next.Type.Equal(cur.Type) {
			return false
		}
		e.residual = r
		return true
	}
	return false
}

// fusedActivation is the act attribute that stands for the activation op v: false when v
// is no activation op, or one fused ops cannot apply.
func fusedActivation(v *ir.Value) (ir.Activation, bool) {
	a, ok := v.ActivationOp()
	return a, ok && a.Fusable()
}
