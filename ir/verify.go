package ir

import (
	"errors"
	"fmt"
)

// Verify checks the module's invariants: every operand is an input, a parameter or an
// earlier op of the body; every op is known, has the attributes it needs and the result type
// its rule gives; names and checkpoint keys are unique; every value's scope is in the tree;
// every size (element count, bytes) fits an int, the static dims of symbolic shapes too.
// Passes run it between each other; it reports every problem it finds.
func Verify(m *Module) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.Root == nil {
		fail("module %s has no root scope", m.Name)
		return errors.Join(errs...)
	}
	inTree := map[*Scope]bool{}
	m.Root.Walk(func(s *Scope) { inTree[s] = true })
	defined := map[*Value]bool{}
	names := map[string]bool{}
	keys := map[string]string{}
	for _, v := range m.Inputs {
		if v.Kind != KindInput {
			fail("input %s is not of kind input", v.Ref())
		}
		if names["%"+v.Name] {
			fail("input %s is declared twice", v.Ref())
		}
		names["%"+v.Name] = true
		if err := CheckSize("input "+v.Ref(), v.Type); err != nil {
			errs = append(errs, err)
		}
		defined[v] = true
	}
	for _, v := range m.Params {
		if v.Kind != KindParam {
			fail("param %s is not of kind param", v.Ref())
		}
		if names["@"+v.Name] {
			fail("param %s is declared twice", v.Ref())
		}
		names["@"+v.Name] = true
		if other, dup := keys[v.Key]; dup {
			fail("params %s and @%s share the checkpoint key %q", v.Ref(), other, v.Key)
		}
		keys[v.Key] = v.Name
		for _, l := range Layouts(v.LayoutKeys) {
			lk := "layout " + l + ": " + v.LayoutKeys[l]
			if other, dup := keys[lk]; dup {
				fail("params %s and @%s share the checkpoint key %q in layout %s", v.Ref(), other, v.LayoutKeys[l], l)
			}
			keys[lk] = v.Name
		}
		if err := CheckSize(fmt.Sprintf("param %s (key %q)", v.Ref(), v.Key), v.Type); err != nil {
			errs = append(errs, err)
		}
		if !inTree[v.Scope] {
			fail("param %s belongs to a scope outside the tree", v.Ref())
		}
		defined[v] = true
	}
	m.Renumber()
	for _, v := range m.Body {
		if v.Kind != KindOp {
			fail("%s in the body is not an op", v.Ref())
			continue
		}
		ok := true
		for i, a := range v.Args {
			if a == nil || !defined[a] {
				fail("%s: operand %d is not defined before use", FormatValue(v), i)
				ok = false
			}
		}
		if v.Scope != nil && !inTree[v.Scope] {
			fail("%s belongs to a scope outside the tree", v.Ref())
		}
		if ok {
			t, err := Infer(v)
			switch {
			case err != nil:
				fail("%s: %v", FormatValue(v), err)
			case !t.Equal(v.Type):
				fail("%s: the rule of %s gives %s", FormatValue(v), v.Op, t)
			}
		}
		defined[v] = true
	}
	if len(m.Outputs) == 0 {
		fail("module %s has no output", m.Name)
	}
	for _, v := range m.Outputs {
		if !defined[v] {
			fail("output %s is not defined", v.Ref())
		}
	}
	return errors.Join(errs...)
}
