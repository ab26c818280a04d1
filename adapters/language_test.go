package adapters

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

const adapterSrc = `
model M(d: int = 5) {
    input x: f32[batch, 3, d]
    Linear(d, 7)
    ReLU()
    Linear(7, d)
}

# M with Pre(factor=2) around its second Linear, written by hand.
model MRef(d: int = 5) {
    input x: f32[batch, 3, d]
    Linear(d, 7) key "Linear_1"
    ReLU()
    Chain key "" {
        Multiply(2.0)
        Linear(7, d) key "Linear_2"
    }
}

model N(d: int = 5) {
    input x: f32[batch, 3, d]
    Chain {
        Linear(d, d)
        ReLU()
        Linear(d, d)
    }
    LayerNorm(d)
}

# N with Gate around its Chain, written by hand.
model NRef(d: int = 5) {
    input x: f32[batch, 3, d]
    Residual key "" {
        Chain {
            Linear(d, d)
            ReLU()
            Linear(d, d)
        }
        Multiply(0.5)
    }
    LayerNorm(d)
}

# The target receives what the body gives it: here a scaled input.
adapter Pre(target: Linear, in_features: int, factor: float = 1.0) {
    Multiply(factor)
    target()
}

# Any layer: x + factor·target(x).
adapter Gate(target: Layer, factor: float = 0.5) : Residual {
    target()
    Multiply(factor)
}

model C() {
    input x: f32[batch, 4, 7, 7]
    Conv2d(4, 6, 3, padding=1, padding_mode="reflect")
    Conv2d(6, 6, 3, stride=2, padding=1, groups=2)
}

adapter NoTarget(target: Linear) {
    ReLU()
}

adapter Twice(target: Linear) : Sum {
    target()
    target()
}

adapter NeedsR(target: Linear, r: int) {
    target()
}

adapter Narrow(target: Linear, out_features: int) {
    target()
    Linear(out_features, 3)
}
`

func adapterProgram(t *testing.T) *dsl.Program {
	t.Helper()
	prog, err := dsl.LoadSource("adapters.rfn", []byte(adapterSrc))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	return prog
}

// mustInject is Inject, failing the test with the error's details.
func mustInject(t *testing.T, m *ir.Module, prog *dsl.Program, spec Spec) *ir.Module {
	t.Helper()
	out, err := Inject(m, prog, spec)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	return out
}

func elab(t *testing.T, prog *dsl.Program, model string) *ir.Module {
	t.Helper()
	m, err := prog.Elaborate(dsl.Options{Model: model, Dims: map[string]int{"batch": 2}})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	return m
}

// pseudoRandom fills every parameter by key with deterministic values, so two modules with
// the same keys get the same weights.
func pseudoRandom(ms ...*ir.Module) map[string]*runtime.Tensor {
	out := map[string]*runtime.Tensor{}
	seed := uint32(12345)
	next := func() float32 {
		seed = seed*1664525 + 1013904223
		return float32(seed>>8)/float32(1<<24) - 0.5
	}
	for _, m := range ms {
		for _, p := range m.Params {
			if _, ok := out[p.Key]; ok {
				continue
			}
			t := runtime.NewTensor(p.Type.Shape.Ints()...)
			for i := range t.F32 {
				t.F32[i] = next()
			}
			out[p.Key] = t
		}
	}
	return out
}

func runWith(t *testing.T, m *ir.Module, weights map[string]*runtime.Tensor) []float32 {
	t.Helper()
	w := interp.Weights{}
	for _, p := range m.Params {
		w[p] = weights[p.Key]
	}
	x := runtime.NewTensor(m.Input("x").Type.Shape.Ints()...)
	for i := range x.F32 {
		x.F32[i] = float32(i%7) - 3
	}
	outs, err := interp.Run(m, w, ScalarInputs(m, map[string]*runtime.Tensor{"x": x}))
	if err != nil {
		t.Fatal(err)
	}
	return outs[0].F32
}

// An adapter written in the language computes what the same structure written by hand
// computes: one that feeds its target a new input, and one around a multi-op layer.
func TestAdapterLanguageEquivalence(t *testing.T) {
	prog := adapterProgram(t)
	cases := []struct {
		model, ref string
		spec       Spec
	}{
		{"M", "MRef", Spec{Name: "pre", Adapter: "Pre", Pattern: "Linear_2", Params: map[string]string{"factor": "2"}}},
		{"N", "NRef", Spec{Name: "gate", Adapter: "Gate", Class: "Chain", Pattern: "Chain"}},
	}
	for _, c := range cases {
		t.Run(c.spec.Adapter, func(t *testing.T) {
			base, ref := elab(t, prog, c.model), elab(t, prog, c.ref)
			m, err := Inject(base, prog, c.spec)
			if err != nil {
				t.Fatal(dsl.Detail(err))
			}
			w := pseudoRandom(ref)
			got, want := runWith(t, m, w), runWith(t, ref, w)
			if len(got) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("output %d: %g, want %g\n%s", i, got[i], want[i], ir.Print(m))
				}
			}
			if e, err := Eject(m, c.spec.Name); err != nil || ir.Print(e) != ir.Print(base) {
				t.Errorf("eject: %v", err)
			}
		})
	}
}

func TestAdapterLanguageErrors(t *testing.T) {
	prog := adapterProgram(t)
	m := elab(t, prog, "M")
	cases := []struct {
		spec Spec
		want string
	}{
		{Spec{Name: "x", Adapter: "NoTarget"}, "adapter NoTarget never runs its target: call target() in its body"},
		{Spec{Name: "x", Adapter: "Twice"}, "target() appears twice"},
		{Spec{Name: "x", Adapter: "NeedsR"}, "parameter r has no value"},
		{Spec{Name: "x", Adapter: "Pre", Params: map[string]string{"factr": "2"}}, "adapter Pre has no parameter factr (parameters: in_features, factor)"},
		{Spec{Name: "x", Adapter: "Pre", Params: map[string]string{"factor": "two"}}, `factor=two: "two" is not a float`},
		{Spec{Name: "x", Adapter: "Pre", Class: "ReLU"}, "adapter Pre adapts a Linear, but ReLU is a ReLU"},
		{Spec{Name: "x", Adapter: "Narrow"}, "output 0 is f32[2, 3, 3] where its target Linear_1 gives f32[2, 3, 7]"},
		{Spec{Name: "x", Adapter: "Nope"}, "no adapter Nope (adapters: Gate, Narrow, NeedsR, NoTarget, Pre, Twice)"},
		{Spec{Name: "x-y", Adapter: "Pre"}, `adapter name "x-y" is not an identifier`},
	}
	before := ir.Print(m)
	for _, c := range cases {
		_, err := Inject(m, prog, c.spec)
		if err == nil || !strings.Contains(dsl.Detail(err), c.want) {
			t.Errorf("%s: want %q, got:\n%v", c.spec.Adapter, c.want, err)
		}
	}
	if ir.Print(m) != before {
		t.Error("failed injections changed the module")
	}
	if _, err := Inject(elab(t, prog, "N"), prog, Spec{Name: "x", Adapter: "Gate", Class: "*", Pattern: "**"}); err == nil || !strings.Contains(err.Error(), "targets overlap: Chain contains Chain.Linear_1") {
		t.Errorf("nested targets: %v", err)
	}
	once := mustInject(t, m, prog, Spec{Name: "p", Adapter: "Pre"})
	if _, err := Inject(once, prog, Spec{Name: "p", Adapter: "Pre"}); err == nil || !strings.Contains(err.Error(), "already has an adapter named p") {
		t.Errorf("same name twice: %v", err)
	}
	// The adapter's own layers are never targets: a second Pre wraps the original Linears
	// only (2), not the adapter's scopes.
	twice := mustInject(t, once, prog, Spec{Name: "q", Adapter: "Pre"})
	if got := strings.Count(ir.FormatTree(twice), "[adapter q]"); got != 2 {
		t.Errorf("second adapter injected %d times, want 2:\n%s", got, ir.FormatTree(twice))
	}
}

// Conv2dLora follows its target's padding mode, stride and padding; merged it gives the
// unmerged numbers, except on a grouped convolution, which it refuses to merge.
func TestConvLoraMerge(t *testing.T) {
	prog := adapterProgram(t)
	if err := AddLibrary(prog); err != nil {
		t.Fatal(err)
	}
	base := elab(t, prog, "C")
	m := mustInject(t, base, prog, Spec{Name: "r", Adapter: "Conv2dLora", Pattern: "Conv2d_1", Params: map[string]string{"rank": "2", "alpha": "3"}, Scale: 0.7})
	if !strings.Contains(ir.FormatTree(m), `Conv2d_1: Conv2d(in_channels=4, out_channels=2, kernel_size=3, padding=1, use_bias=false, padding_mode="reflect")`) {
		t.Errorf("the down conv does not follow the target:\n%s", ir.FormatTree(m))
	}
	w := pseudoRandom(m)
	unmerged := runWith(t, m, w)
	mm := merged(t, m)
	if inputOps(mm) != inputOps(base) {
		t.Errorf("merged forward computes %d ops, the base %d:\n%s", inputOps(mm), inputOps(base), ir.Print(mm))
	}
	got := runWith(t, mm, w)
	diff := 0.0
	for i := range got {
		diff = max(diff, math.Abs(float64(got[i]-unmerged[i])))
	}
	if diff > 1e-5 {
		t.Errorf("merged and unmerged differ by %g", diff)
	}
	if base := runWith(t, base, w); slices.Equal(base, unmerged) {
		t.Error("the LoRA changes nothing: the test could not fail")
	}
	g := mustInject(t, base, prog, Spec{Name: "g", Adapter: "Conv2dLora", Pattern: "Conv2d_2", Params: map[string]string{"rank": "2"}, Scale: 1})
	if err := passes.LoraMerge(Clone(g)); err == nil || !strings.Contains(err.Error(), "grouped convolution (groups=2) cannot be merged") {
		t.Errorf("merging into a grouped conv: %v", err)
	}
}
