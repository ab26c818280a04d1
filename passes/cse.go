package passes

import (
	"slices"
	"strings"

	"github.com/rfc-project/rfc/ir"
)

// cse merges ops that compute the same thing: same op, same operands (after earlier
// merges), same attributes and the same result type (reshapes of one value to different
// shapes differ only there). The first op stays, with its scope; later ones are replaced by
// it. Every op of the catalogue is pure, so equal ops give equal results.
func cse(m *ir.Module) error {
	m.Renumber() // operands are keyed by Ref, which needs distinct op IDs
	r := newRewrite(m)
	first := map[string]*ir.Value{}
	for _, v := range m.Body {
		r.useSubstitutes(v)
		k := cseKey(v)
		if f, ok := first[k]; ok {
			r.replace(v, f)
			continue
		}
		first[k] = v
	}
	r.finish()
	return nil
}

// commutative ops give bit-equal results with their operands swapped (IEEE addition and
// multiplication commute), so their operands are keyed in a canonical order.
var commutative = map[string]bool{"add": true, "mul": true}

func cseKey(v *ir.Value) string {
	args := make([]string, len(v.Args))
	for i, a := range v.Args {
		args[i] = a.Ref()
	}
	if commutative[v.Op] {
		slices.Sort(args)
	}
	attrs := make([]string, len(v.Attrs))
	for i, a := range v.Attrs {
		attrs[i] = a.Name + "=" + ir.FormatAttr(a.Value)
	}
	slices.Sort(attrs)
	return v.Op + "\x00" + v.Type.String() + "\x00" + strings.Join(args, ",") + "\x00" + strings.Join(attrs, ",")
}
