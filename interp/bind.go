package interp

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
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
			problems = append(problems, fmt.Sprintf("input %%%s: declared %s, got shape %s (rank %d, not %d)", in.Name, in.Type, formatInts(t.Shape), len(t.Shape), len(want)))
			continue
		}
		for i, d := range want {
			got := t.Shape[i]
			switch {
			case d.Static():
				if d.N != got {
					problems = append(problems, fmt.Sprintf("input %%%s: declared %s, got shape %s (dim %d is %d, not %d)", in.Name, in.Type, formatInts(t.Shape), i, got, d.N))
				}
			case isPlainSymbol(d.Sym):
				if prev, ok := bound[d.Sym]; ok && prev != got {
					problems = append(problems, fmt.Sprintf("input %%%s: declared %s, got shape %s: %s is %d here but %d elsewhere", in.Name, in.Type, formatInts(t.Shape), d.Sym, got, prev))
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
				problems = append(problems, fmt.Sprintf("input %%%s: declared %s, got shape %s: %v", c.in.Name, c.in.Type, formatInts(c.got), err))
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

func isPlainSymbol(s string) bool { return !strings.ContainsAny(s, "*+") }

// solveDim checks the compound dim expr (a product or a sum of symbols and integers, as
// ir.MulDim and ir.AddDim build them) against size. It binds the one unknown symbol when
// there is exactly one and its value is determined; it reports false when more are unknown.
// Mixed expressions are refused: ir prints them without parentheses, so they are ambiguous.
func solveDim(expr string, size int, bound map[string]int) (bool, error) {
	mul, add := strings.Contains(expr, "*"), strings.Contains(expr, "+")
	if mul && add {
		return false, fmt.Errorf("dim %s mixes * and + and cannot be read unambiguously", expr)
	}
	sep := "+"
	acc := 0
	if mul {
		sep, acc = "*", 1
	}
	unknown := ""
	for _, term := range strings.Split(expr, sep) {
		n, err := strconv.Atoi(term)
		if err != nil {
			var ok bool
			if n, ok = bound[term]; !ok {
				if unknown != "" {
					return false, nil // two unknowns (or one repeated): not determined yet
				}
				unknown = term
				continue
			}
		}
		if mul {
			acc *= n
		} else {
			acc += n
		}
	}
	if unknown == "" {
		if acc != size {
			return false, fmt.Errorf("dim %s is %d, not %d", expr, acc, size)
		}
		return true, nil
	}
	var val int
	if mul {
		if acc == 0 || size%acc != 0 {
			return false, fmt.Errorf("size %d is not a multiple of %d, as dim %s needs", size, acc, expr)
		}
		val = size / acc
	} else {
		val = size - acc
		if val < 0 {
			return false, fmt.Errorf("size %d is smaller than %d, as dim %s needs", size, acc, expr)
		}
	}
	bound[unknown] = val
	return true, nil
}

func tensorShape(t *runtime.Tensor) string {
	if t == nil {
		return "nil"
	}
	return formatInts(t.Shape)
}
