package interp

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// BindDims matches the declared shapes of inputs, which may hold symbolic dims such as
// `batch`, against the actual tensors (by input name) and returns the value of each symbol.
// A plain symbol binds to the size it meets first and must then agree everywhere; a compound
// dim (`batch*2`, `len+1`) is checked once its symbols are known, or solved for its only
// unknown symbol. Every problem is reported, one line each: a missing or unexpected input, a
// rank or size mismatch (naming the input, the declared and the actual shape), a symbol
// bound to two sizes.
func BindDims(inputs []*ir.Value, actual map[string]*runtime.Tensor) (map[string]int, error) {
	var problems []string
	declared := map[string]bool{}
	bound := map[string]int{}
	type pending struct {
		in  *ir.Value
		got []int
		dim int
	}
	var compound []pending
	for _, in := range inputs {
		declared[in.Name] = true
		t, ok := actual[in.Name]
		if !ok || t == nil {
			problems = append(problems, fmt.Sprintf("missing input %%%s: %s", in.Name, in.Type))
			continue
		}
		want := in.Type.Shape
		if len(want) != len(t.Shape) {
			problems = append(problems, fmt.Sprintf("input %%%s: declared %s, got shape %s (rank %d, not %d)", in.Name, in.Type, runtime.FormatInts(t.Shape), len(t.Shape), len(want)))
			continue
		}
		for i, d := range want {
			got := t.Shape[i]
			switch {
			case d.Static():
				if d.N != got {
					problems = append(problems, fmt.Sprintf("input %%%s: declared %s, got shape %s (dim %d is %d, not %d)", in.Name, in.Type, runtime.FormatInts(t.Shape), i, got, d.N))
				}
			case isPlainSymbol(d.Sym):
				if prev, ok := bound[d.Sym]; ok && prev != got {
					problems = append(problems, fmt.Sprintf("input %%%s: declared %s, got shape %s: %s is %d here but %d elsewhere", in.Name, in.Type, runtime.FormatInts(t.Shape), d.Sym, got, prev))
				} else if !ok {
					bound[d.Sym] = got
				}
			default:
				compound = append(compound, pending{in, t.Shape, i})
			}
		}
	}
	// Solving one compound dim may bind a symbol another needs: repeat while that helps.
	for progress := true; progress && len(compound) > 0; {
		progress = false
		rest := compound[:0]
		for _, c := range compound {
			d := c.in.Type.Shape[c.dim]
			ok, err := solveDim(d.Sym, c.got[c.dim], bound)
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("input %%%s: declared %s, got shape %s: %v", c.in.Name, c.in.Type, runtime.FormatInts(c.got), err))
				progress = true
			case ok:
				progress = true
			default:
				rest = append(rest, c)
			}
		}
		compound = rest
	}
	for _, c := range compound {
		problems = append(problems, fmt.Sprintf("input %%%s: declared %s: cannot determine the symbols of dim %d (%s) from size %d", c.in.Name, c.in.Type, c.dim, c.in.Type.Shape[c.dim], c.got[c.dim]))
	}
	var extra []string
	for name := range actual {
		if !declared[name] {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	for _, name := range extra {
		problems = append(problems, fmt.Sprintf("unexpected input %q (shape %s): the module has no such input", name, tensorShape(actual[name])))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return bound, nil
}

func isPlainSymbol(s string) bool { return ir.IsIdent(s) }

// solveDim checks the compound dim expr (an expression of symbols, as ir builds them)
// against size. When every symbol is bound it compares the value; when exactly one is not,
// it binds it to the one value ≥ 1 that gives size (found by bisection: the expressions
// rules build do not decrease as a symbol grows), or reports that there is none or more
// than one. With more unknowns it reports false: not determined yet.
func solveDim(expr string, size int, bound map[string]int) (bool, error) {
	d, err := ir.ParseDim(expr)
	if err != nil {
		return false, err
	}
	var unknown []string
	for _, s := range d.Symbols() {
		if _, ok := bound[s]; !ok {
			unknown = append(unknown, s)
		}
	}
	switch len(unknown) {
	case 0:
		v, err := d.Eval(bound)
		if err != nil {
			return false, err
		}
		if v != size {
			return false, fmt.Errorf("dim %s is %d, not %d", expr, v, size)
		}
		return true, nil
	case 1:
	default:
		return false, nil
	}
	x := unknown[0]
	at := func(n int) (int, bool) {
		env := map[string]int{x: n}
		for k, v := range bound {
			env[k] = v
		}
		v, err := d.Eval(env)
		return v, err == nil
	}
	// The least n ≥ 1 with d(n) ≥ size: an upper bound by doubling, then bisection.
	lo, hi := 1, 1
	for {
		if v, ok := at(hi); !ok || v >= size || hi > 1<<60 {
			break
		}
		lo, hi = hi, 2*hi
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if v, ok := at(mid); ok && v >= size {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	v, ok := at(lo)
	if !ok || v != size {
		return false, fmt.Errorf("size %d is not a value of dim %s for any %s ≥ 1", size, expr, x)
	}
	if next, ok := at(lo + 1); ok && next == size {
		return false, fmt.Errorf("size %d of dim %s does not determine %s", size, expr, x)
	}
	bound[x] = lo
	return true, nil
}

func tensorShape(t *runtime.Tensor) string {
	if t == nil {
		return "nil"
	}
	return runtime.FormatInts(t.Shape)
}
