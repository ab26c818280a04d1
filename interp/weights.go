package interp

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// Weights maps each parameter of a module to its tensor.
type Weights map[*ir.Value]*runtime.Tensor

// LoadWeights reads every parameter of m by its checkpoint key (Value.Key) from files. It
// checks the whole set before reading any data and reports every problem at once, one line
// each: a key the model needs that no file has, a key of a file that the model does not have,
// a shape mismatch, a key present in two files, a tensor that is not floating point. On error
// it returns no weights at all.
func LoadWeights(m *ir.Module, files ...*runtime.SafetensorsFile) (Weights, error) {
	type location struct {
		file *runtime.SafetensorsFile
		info runtime.TensorInfo
	}
	wanted := map[string]*ir.Value{}
	for _, p := range m.Params {
		if _, dup := wanted[p.Key]; !dup {
			wanted[p.Key] = p
		}
	}
	var problems []string
	found := map[string]location{}
	for _, f := range files {
		if f == nil {
			problems = append(problems, "a nil safetensors file was passed")
			continue
		}
		names := f.Names()
		slices.Sort(names)
		for _, name := range names {
			info, ok := f.Info(name)
			if !ok {
				continue
			}
			if prev, dup := found[name]; dup {
				problems = append(problems, fmt.Sprintf("key %q is in both %s and %s", name, fileName(prev.file), fileName(f)))
				continue
			}
			found[name] = location{f, info}
			if wanted[name] == nil {
				problems = append(problems, fmt.Sprintf("%s: key %q (%s %s) is not a parameter of module %s", fileName(f), name, info.DType, formatInts(info.Shape), m.Name))
			}
		}
	}
	for _, p := range m.Params {
		if !p.Type.Shape.Static() {
			problems = append(problems, fmt.Sprintf("parameter @%s (key %q) has the symbolic shape %s; parameters need static shapes", p.Name, p.Key, p.Type.Shape))
			continue
		}
		loc, ok := found[p.Key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing weight %q (parameter @%s, expected shape %s)", p.Key, p.Name, p.Type.Shape))
		case !loc.info.DType.IsFloat():
			problems = append(problems, fmt.Sprintf("%s: key %q has dtype %s; parameters need a floating-point dtype", fileName(loc.file), p.Key, loc.info.DType))
		case !slices.Equal(loc.info.Shape, p.Type.Shape.Ints()):
			problems = append(problems, fmt.Sprintf("%s: key %q has shape %s, the model wants %s (parameter @%s)", fileName(loc.file), p.Key, formatInts(loc.info.Shape), p.Type.Shape, p.Name))
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	w := make(Weights, len(m.Params))
	byKey := map[string]*runtime.Tensor{}
	for _, p := range m.Params {
		t, ok := byKey[p.Key]
		if !ok {
			loc := found[p.Key]
			var err error
			if t, err = loc.file.Tensor(p.Key); err != nil {
				return nil, fmt.Errorf("reading weight %q: %w", p.Key, err)
			}
			byKey[p.Key] = t
		}
		w[p] = t
	}
	return w, nil
}

func fileName(f *runtime.SafetensorsFile) string {
	if p := f.Path(); p != "" {
		return p
	}
	return "<safetensors>"
}

func formatInts(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
