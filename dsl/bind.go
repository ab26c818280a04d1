package dsl

import (
	"fmt"
	"strconv"

	"github.com/rfc-project/rfc/parser"
)

// BindInputs fixes the entry point's sizes from actual inputs: every input dim written as a
// bare name, a parameter (image_size), a size parameter (height) or a symbolic dim
// (batch), takes the size of the tensor given for that input. It returns opts with Set and Dims completed for Elaborate. A name
// bound to two different sizes, or contradicting an explicit --set, is an error; inputs
// that are missing or of the wrong rank are left for Elaborate's callers to report.
func (p *Program) BindInputs(opts Options, shapes map[string][]int) (Options, error) {
	name := opts.Model
	if name == "" {
		name = p.DefaultModel()
	}
	decl, ok := p.models[name]
	if !ok {
		return opts, fmt.Errorf("%s has no model %s", p.Main, name)
	}
	// Parameters named in input lines take the tensors' sizes as settings; size
	// parameters, like symbolic dims, as dims (they stay sizes of the inputs).
	params := map[string]bool{}
	for _, prm := range decl.Params {
		params[prm.Name] = prm.Type != "size"
	}
	out := Options{Model: opts.Model, Set: map[string]string{}, Dims: map[string]int{}}
	for k, v := range opts.Set {
		out.Set[k] = v
	}
	for k, v := range opts.Dims {
		out.Dims[k] = v
	}
	from := map[string]string{}
	for _, s := range decl.Body.Stmts {
		in, ok := s.(*parser.InputStmt)
		if !ok {
			continue
		}
		shape, ok := shapes[in.Name]
		if !ok || len(shape) != len(in.Dims) {
			continue
		}
		for j, d := range in.Dims {
			id, ok := d.(*parser.Ident)
			if !ok {
				continue
			}
			n := shape[j]
			where := fmt.Sprintf("dim %d of input %s %v", j, in.Name, shape)
			if prev, seen := from[id.Name]; seen {
				if got := out.Dims[id.Name]; got != n {
					return opts, fmt.Errorf("%s is %d by %s but %d by %s", id.Name, got, prev, n, where)
				}
				continue
			}
			if set, given := opts.Set[id.Name]; given && set != strconv.Itoa(n) {
				return opts, fmt.Errorf("--set %s=%s, but %s is %d", id.Name, set, where, n)
			}
			from[id.Name] = where
			out.Dims[id.Name] = n
			if params[id.Name] {
				out.Set[id.Name] = strconv.Itoa(n)
			}
		}
	}
	return out, nil
}
