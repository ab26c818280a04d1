package passes

import (
	"slices"

	"github.com/rfc-project/rfc/ir"
)

// fuseNormAct folds an activation into the group_norm or layer_norm whose result it is the
// only reader of: group_norm → relu becomes group_norm_act {act="relu"} (TAEF2's mid-block
// pool), and likewise for layer_norm. The kernel applies the activation to each normalized
// channel or row while it is in cache. The fused op takes the activation's place, result and
// scope; the norm is removed. Only when the back end implements the fused op (Config.Ops).
func fuseNormAct(m *ir.Module, c Config) error {
	uses, outputs := liveUses(m)
	gone := map[*ir.Value]bool{}
	for _, v := range m.Body {
		fused := map[string]string{"group_norm": "group_norm_act", "layer_norm": "layer_norm_act"}[v.Op]
		if fused == "" || !c.supports(fused) || outputs[v] || len(uses[v]) != 1 {
			continue
		}
		next := uses[v][0]
		act, ok := fusedActivation(next)
		if !ok {
			continue
		}
		next.Op, next.Args = fused, slices.Clone(v.Args)
		next.Attrs = append(slices.Clone(v.Attrs), ir.ActAttr(act))
		gone[v] = true
	}
	dropGone(m, gone)
	return nil
}
