package passes

import (
	"slices"

	"github.com/rfc-project/rfc/ir"
)

// fuseGEGLU folds a linear into the glu that is its only reader: linear → glu {activation}
// becomes linear_glu {activation} (GEGLU when the activation is gelu). The kernel computes
// the linear a block of rows at a time and halves it at once, so the linear's result, twice
// the size of the output, never takes arena memory. The fused op takes the glu's place,
// result and scope; the linear is removed. Only when the back end implements linear_glu
// (Config.Ops).
func fuseGEGLU(m *ir.Module, c Config) error {
	if !c.supports("linear_glu") {
		return nil
	}
	uses, outputs := liveUses(m)
	gone := map[*ir.Value]bool{}
	for _, v := range m.Body {
		if v.Op != "linear" || outputs[v] || len(uses[v]) != 1 || uses[v][0].Op != "glu" {
			continue
		}
		next := uses[v][0]
		next.Op, next.Args = "linear_glu", slices.Clone(v.Args)
		next.Attrs = []ir.Attr{ir.GLUActivationAttr(next.GLUActivation())}
		gone[v] = true
	}
	dropGone(m, gone)
	return nil
}
