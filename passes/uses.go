package passes

import "github.com/rfc-project/rfc/ir"

// liveUses maps each value to the live ops that read it, and marks the outputs. Readers
// no output depends on do not count: an earlier pass (fold, say) may leave them for dce,
// and a fusion that waited for them to go would need a second run of the pipeline. A pass
// that removes a value such readers read removes them with it (dropGone).
func liveUses(m *ir.Module) (uses map[*ir.Value][]*ir.Value, outputs map[*ir.Value]bool) {
	outputs = map[*ir.Value]bool{}
	live := map[*ir.Value]bool{}
	for _, o := range m.Outputs {
		outputs[o] = true
		live[o] = true
	}
	for i := len(m.Body) - 1; i >= 0; i-- {
		if v := m.Body[i]; live[v] {
			for _, a := range v.Args {
				live[a] = true
			}
		}
	}
	uses = map[*ir.Value][]*ir.Value{}
	for _, v := range m.Body {
		if !live[v] {
			continue
		}
		for _, a := range v.Args {
			uses[a] = append(uses[a], v)
		}
	}
	return uses, outputs
}

// dropGone removes the ops marked gone from the body, and with them the ops that read a
// removed value (transitively): those can only be dead ones, since liveUses did not count
// them, and left in place they would read a value that no longer exists.
func dropGone(m *ir.Module, gone map[*ir.Value]bool) {
	if len(gone) == 0 {
		return
	}
	body := m.Body[:0]
	for _, v := range m.Body {
		if !gone[v] {
			for _, a := range v.Args {
				if gone[a] {
					gone[v] = true
					break
				}
			}
		}
		if !gone[v] {
			body = append(body, v)
		}
	}
	clear(m.Body[len(body):])
	m.Body = body
}
