package testutil

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// OpCase is one case of the op goldens that scripts/golden/interp_ops.py writes: a module
// (its IR text is in the file's metadata under the case's name) with the tensors
// <case>.in.<input>, <case>.param.<key> and <case>.out[.<i>] (PyTorch's outputs).
type OpCase struct {
	Name    string
	Module  *ir.Module
	Inputs  map[string]*runtime.Tensor // by input name
	Params  map[string]*runtime.Tensor // by checkpoint key
	Outputs []*runtime.Tensor
}

// OpCases reads the op cases of the golden files, sorted by name. A module that does not
// parse or verify, a tensor of no case or of no known role, or an output without its
// tensor fails the test.
func OpCases(t testing.TB, paths ...string) []*OpCase {
	t.Helper()
	var cases []*OpCase
	for _, path := range paths {
		file, err := opCasesOf(path)
		if err != nil {
			t.Fatalf("%v (regenerate with /usr/bin/python3 scripts/golden/interp_ops.py)", err)
		}
		cases = append(cases, file...)
	}
	slices.SortFunc(cases, func(a, b *OpCase) int { return strings.Compare(a.Name, b.Name) })
	return cases
}

func opCasesOf(path string) ([]*OpCase, error) {
	f, err := runtime.OpenSafetensors(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	byName := map[string]*OpCase{}
	var cases []*OpCase
	for name, text := range f.Metadata() {
		m, err := ir.Parse(text)
		if err != nil {
			return nil, fmt.Errorf("%s: case %s: %v", path, name, err)
		}
		if err := ir.Verify(m); err != nil {
			return nil, fmt.Errorf("%s: case %s: the golden IR does not verify: %v", path, name, err)
		}
		c := &OpCase{Name: name, Module: m, Inputs: map[string]*runtime.Tensor{}, Params: map[string]*runtime.Tensor{}, Outputs: make([]*runtime.Tensor, len(m.Outputs))}
		byName[name] = c
		cases = append(cases, c)
	}
	for _, key := range f.Names() {
		name, role, _ := strings.Cut(key, ".")
		c := byName[name]
		if c == nil {
			return nil, fmt.Errorf("%s: tensor %q belongs to no case", path, key)
		}
		tensor, err := f.Tensor(key)
		if err != nil {
			return nil, err
		}
		if in, ok := strings.CutPrefix(role, "in."); ok {
			c.Inputs[in] = tensor
			continue
		}
		if param, ok := strings.CutPrefix(role, "param."); ok {
			c.Params[param] = tensor
			continue
		}
		i := 0
		if role != "out" {
			if _, err := fmt.Sscanf(role, "out.%d", &i); err != nil || i < 1 || i >= len(c.Outputs) {
				return nil, fmt.Errorf("%s: tensor %q: unknown role or output index", path, key)
			}
		}
		c.Outputs[i] = tensor
	}
	for _, c := range cases {
		for i, o := range c.Outputs {
			if o == nil {
				return nil, fmt.Errorf("%s: case %s: no expected tensor for output %d", path, c.Name, i)
			}
		}
	}
	return cases, nil
}
