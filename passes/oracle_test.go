package passes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// relTol bounds the difference between the outputs of a module before and after passes:
// max |after−before| ≤ relTol · max |before|, per output. Most passes are exact; scale∘scale
// composition rounds once instead of twice.
const relTol = 1e-6

// everyOp stands for a back end that implements every op of the catalogue, as the
// interpreter does: tests give it as Config.Ops so that the fusion passes run.
func everyOp(string) bool { return true }

// sample is one set of random weights (by checkpoint key, so that it fits a module before
// and after passes drop parameters) and inputs (by name).
type sample struct {
	weights map[string]*runtime.Tensor
	inputs  map[string]*runtime.Tensor
}

// newSample draws weights and inputs for m. Weights of rank ≥ 2 are scaled by 1/√fan-in,
// as Kaiming initialisation does, so that deep models neither vanish nor overflow.
func newSample(m *ir.Module, seed uint64) sample {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s := sample{weights: map[string]*runtime.Tensor{}, inputs: map[string]*runtime.Tensor{}}
	uniform := func(shape []int, scale float64) *runtime.Tensor {
		t := runtime.NewTensor(shape...)
		for i := range t.F32 {
			t.F32[i] = float32((2*rng.Float64() - 1) * scale)
		}
		return t
	}
	for _, p := range m.Params {
		shape := p.Type.Shape.Ints()
		scale := 1.0
		if len(shape) >= 2 {
			fanIn := 1
			for _, d := range shape[1:] {
				fanIn *= d
			}
			scale = 1 / math.Sqrt(float64(fanIn))
		}
		s.weights[p.Key] = uniform(shape, scale)
	}
	for _, in := range m.Inputs {
		shape := in.Type.Shape.Ints()
		if in.Type.DType.IsFloat() {
			s.inputs[in.Name] = uniform(shape, 1)
			continue
		}
		// Indices must stay inside every table they look up.
		limit := math.MaxInt
		for _, v := range m.Body {
			if v.Op == "embedding" && v.Args[0] == in {
				limit = min(limit, v.Args[1].Type.Shape[0].N)
			}
		}
		t := runtime.FromI64(make([]int64, (&runtime.Tensor{Shape: shape}).Len()), shape...)
		for i := range t.I64 {
			t.I64[i] = int64(rng.IntN(min(limit, 1000)))
		}
		s.inputs[in.Name] = t
	}
	return s
}

// run executes m under the interpreter with the sample's weights.
func (s sample) run(m *ir.Module) ([]*runtime.Tensor, error) {
	w := interp.Weights{}
	for _, p := range m.Params {
		t, ok := s.weights[p.Key]
		if !ok {
			return nil, fmt.Errorf("no sample weight for key %q", p.Key)
		}
		w[p] = t
	}
	return interp.Run(m, w, s.inputs)
}

// maxRelErr compares outputs and returns the largest max|got−want| / max|want|.
func maxRelErr(want, got []*runtime.Tensor) (float64, error) {
	if len(want) != len(got) {
		return 0, fmt.Errorf("%d outputs, want %d", len(got), len(want))
	}
	worst := 0.0
	for i := range want {
		w, g := want[i], got[i]
		if fmt.Sprint(w.Shape) != fmt.Sprint(g.Shape) || w.DType != g.DType {
			return 0, fmt.Errorf("output %d is %s %v, want %s %v", i, g.DType, g.Shape, w.DType, w.Shape)
		}
		scale, diff := 0.0, 0.0
		for j := range w.F32 {
			a, b := float64(w.F32[j]), float64(g.F32[j])
			if math.IsNaN(a) || math.IsInf(a, 0) {
				return 0, fmt.Errorf("output %d: the unoptimized module gives %g at %d; the sample is useless", i, a, j)
			}
			scale = max(scale, math.Abs(a))
			d := math.Abs(a - b)
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			diff = max(diff, d)
		}
		for j := range w.I64 {
			if w.I64[j] != g.I64[j] {
				diff = math.Inf(1)
			}
		}
		if scale == 0 {
			scale = 1
		}
		worst = max(worst, diff/scale)
	}
	return worst, nil
}

// clone copies a module through its text form, which round-trips exactly.
func clone(t testing.TB, m *ir.Module) *ir.Module {
	t.Helper()
	c, err := ir.Parse(ir.Print(m))
	if err != nil {
		t.Fatalf("module does not parse back: %v", err)
	}
	return c
}

// checkEquivalent runs before and after on the same random sample and fails when their
// outputs differ by more than relTol. It returns the error measured.
func checkEquivalent(t testing.TB, before, after *ir.Module, seed uint64) float64 {
	t.Helper()
	s := newSample(before, seed)
	want, err := s.run(before)
	if err != nil {
		t.Fatalf("before: %v", err)
	}
	got, err := s.run(after)
	if err != nil {
		t.Fatalf("after: %v", err)
	}
	e, err := maxRelErr(want, got)
	if err != nil {
		t.Fatal(err)
	}
	if e > relTol {
		t.Errorf("outputs differ: max relative error %.3g > %g", e, relTol)
	}
	return e
}
