package interp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// Weights maps each parameter of a module to its tensor.
type Weights map[*ir.Value]*runtime.Tensor

// LoadWeights reads every parameter of m by its checkpoint key (Value.Key) from files.
// runtime.LocateWeights checks the whole set before any data is read and reports every
// problem at once, one line each, with the messages generated packages give too; on error it
// returns no weights at all.
func LoadWeights(m *ir.Module, files ...*runtime.SafetensorsFile) (Weights, error) {
	var problems []string
	specs := make([]runtime.WeightSpec, 0, len(m.Params))
	for _, p := range m.Params {
		if !p.Type.Shape.Static() {
			problems = append(problems, fmt.Sprintf("parameter @%s (key %q) has the symbolic shape %s; parameters need static shapes", p.Name, p.Key, p.Type.Shape))
			continue
		}
		specs = append(specs, runtime.WeightSpec{Key: p.Key, Param: p.Name, Shape: p.Type.Shape.Ints(), Layouts: p.LayoutKeys})
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	set, err := runtime.LocateWeights(m.Name, specs, files...)
	if err != nil {
		return nil, err
	}
	w := make(Weights, len(m.Params))
	for i, p := range m.Params {
		t, err := set.ReadTensor(i)
		if err != nil {
			return nil, err
		}
		w[p] = t
	}
	return w, nil
}
