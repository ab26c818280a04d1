package passes

import (
	"slices"

	"github.com/rfc-project/rfc/ir"
)

// dce removes the ops that no output depends on. Parameters stay even when nothing reads
// them any more: the model's checkpoint keys are its contract with weight files (a file
// written for the model must load, and a key the model lacks is an error), so dropping one
// would make the published checkpoint fail to load. Inputs stay (they are the entry point's
// signature), and so do scopes: they carry the layer names and checkpoint keys.
func dce(m *ir.Module) error {
	live := map[*ir.Value]bool{}
	for _, o := range m.Outputs {
		live[o] = true
	}
	// The body is in topological order, so one backward sweep sees every reader of a value
	// before the value itself.
	for i := len(m.Body) - 1; i >= 0; i-- {
		if v := m.Body[i]; live[v] {
			for _, a := range v.Args {
				live[a] = true
			}
		}
	}
	dead := func(v *ir.Value) bool { return !live[v] }
	m.Body = slices.DeleteFunc(m.Body, dead)
	return nil
}
