package adapters

import (
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

const contextSrc = `
model C(d: int = 4) {
    input x: f32[batch, 3, d]
    SetContext("ctx", "h")
    Linear(d, d)
    ReLU()
    SetContext("ctx", "h")
    Linear(d, d)
}

# An adapter that reads the model's context and brings an input of its own.
adapter ReadCtx(target: Linear, out_features: int, name: string = "r") : Sum {
    input extra: f32[batch, 3, out_features]
    target()
    UseContext("ctx", "h")
    UseContext("adapter", "extra")
}

# C with ReadCtx around its second Linear, written by hand: the context it reads is the
# second SetContext's (the ReLU's output), the one visible at the target.
model CRef(d: int = 4) {
    input x: f32[batch, 3, d]
    input extra: f32[batch, 3, d]
    SetContext("ctx", "h")
    Linear(d, d) key "Linear_1"
    ReLU()
    SetContext("ctx", "h")
    Sum key "" {
        Linear(d, d) key "Linear_2"
        UseContext("ctx", "h")
        UseContext("adapter", "extra")
    }
}
`

func runInputs(t *testing.T, m *ir.Module, weights map[string]*runtime.Tensor) []float32 {
	t.Helper()
	w := interp.Weights{}
	for _, p := range m.Params {
		w[p] = weights[p.Key]
	}
	ins := map[string]*runtime.Tensor{}
	for k, in := range m.Inputs {
		x := runtime.NewTensor(in.Type.Shape.Ints()...)
		for i := range x.F32 {
			x.F32[i] = float32((i+3*k)%7) - 3
		}
		ins[in.Name] = x
	}
	outs, err := interp.Run(m, w, ins)
	if err != nil {
		t.Fatal(err)
	}
	return outs[0].F32
}

// An adapter body reads the model's context as its target saw it and adds an input to the
// entry point; several injections share that input; eject gives the module back exactly.
func TestAdapterReadsContextAndAddsInputs(t *testing.T) {
	prog, err := dsl.LoadSource("context.rfn", []byte(contextSrc))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	base, ref := elab(t, prog, "C"), elab(t, prog, "CRef")
	m := mustInject(t, base, prog, Spec{Name: "r", Adapter: "ReadCtx", Pattern: "Linear_2"})
	if in := m.Input("r_extra"); in == nil || in.Type.String() != "f32[2, 3, 4]" {
		t.Fatalf("the adapter's input is missing or mistyped: %v", m.Inputs)
	}
	sameOutputs(t, m, ref)
	// The targets of one injection share its input; another injection brings its own.
	both := mustInject(t, base, prog, Spec{Name: "b", Adapter: "ReadCtx", Pattern: "Linear_?"})
	if len(both.Inputs) != 2 || both.Input("b_extra") == nil {
		t.Errorf("two targets of one injection: inputs %v, want x and b_extra", both.Inputs)
	}
	m2 := mustInject(t, m, prog, Spec{Name: "s", Adapter: "ReadCtx", Pattern: "Linear"})
	if len(m2.Inputs) != 3 || m2.Input("s_extra") == nil {
		t.Errorf("two injections: inputs %v, want x, r_extra and s_extra", m2.Inputs)
	}
	for _, name := range []string{"s", "r"} {
		e, err := Eject(m2, name)
		if err != nil {
			t.Fatal(err)
		}
		m2 = e
	}
	if ir.Print(m2) != ir.Print(base) || m2.Input("r_extra") != nil {
		t.Error("ejecting both adapters does not give the module back")
	}
	// Reading a context key the model never set is an error naming it.
	bad := strings.Replace(contextSrc, `UseContext("ctx", "h")
    UseContext("adapter", "extra")
}`, `UseContext("ctx", "nothing")
}`, 1)
	prog, err = dsl.LoadSource("context.rfn", []byte(bad))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	if _, err := Inject(elab(t, prog, "C"), prog, Spec{Name: "r", Adapter: "ReadCtx", Pattern: "Linear_2"}); err == nil || !strings.Contains(err.Error(), `context key "nothing"`) {
		t.Errorf("got %v", err)
	}
}

// What an adapter stores in the context is seen by the layers after its target, and by
// adapters injected on them later: a ControlNet computes its residuals beside the UNet's
// first layer, and adapters on the skip connections add them.
func TestAdapterContextFlowsToLaterAdapters(t *testing.T) {
	src := `
model P(d: int = 4) {
    input x: f32[batch, 3, d]
    Linear(d, d)
    ReLU()
    Linear(d, d)
}

adapter Store(target: Linear, out_features: int, name: string = "s") {
    target()
    SetContext("store", "h")
}

adapter Add(target: Linear, name: string = "a") : Sum {
    target()
    UseContext("store", "h")
}

model PRef(d: int = 4) {
    input x: f32[batch, 3, d]
    Linear(d, d) key "Linear_1"
    SetContext("store", "h")
    ReLU()
    Sum key "" {
        Linear(d, d) key "Linear_2"
        UseContext("store", "h")
    }
}
`
	prog, err := dsl.LoadSource("flow.rfn", []byte(src))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	base, ref := elab(t, prog, "P"), elab(t, prog, "PRef")
	m := mustInject(t, base, prog, Spec{Name: "s", Adapter: "Store", Pattern: "Linear_1"})
	m = mustInject(t, m, prog, Spec{Name: "a", Adapter: "Add", Pattern: "Linear"})
	sameOutputs(t, m, ref)
}

// A key an adapter stores beside a layer and the model stores again later: layers after
// the model's store see the model's value, as they would running the graph in order.
func TestAdapterContextOrder(t *testing.T) {
	src := `
model P(d: int = 4) {
    input x: f32[batch, 3, d]
    Linear(d, d)
    ReLU()
    SetContext("store", "h")
    Linear(d, d)
    Linear(d, d)
}

adapter Store(target: Linear, out_features: int, name: string = "s") {
    target()
    Multiply(3.0)
    SetContext("store", "h")
}

adapter Add(target: Linear, name: string = "a") : Sum {
    target()
    UseContext("store", "h")
}

model PRef(d: int = 4) {
    input x: f32[batch, 3, d]
    Linear(d, d) key "Linear_1"
    Multiply(3.0)
    ReLU()
    SetContext("store", "h")
    Linear(d, d) key "Linear_2"
    Sum key "" {
        Linear(d, d) key "Linear_3"
        UseContext("store", "h")
    }
}
`
	prog, err := dsl.LoadSource("order.rfn", []byte(src))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	base, ref := elab(t, prog, "P"), elab(t, prog, "PRef")
	// Store multiplies Linear_1's output by 3 (the ReLU reads that) and stores it; the
	// model's SetContext after the ReLU stores again, and that is what Add reads.
	m := mustInject(t, base, prog, Spec{Name: "s", Adapter: "Store", Pattern: "Linear_1"})
	// (Store's injection renamed the Linears after it: the model's third is Linear_2.)
	m = mustInject(t, m, prog, Spec{Name: "a", Adapter: "Add", Pattern: "Linear_2"})
	sameOutputs(t, m, ref)
}

// A key clause on an adapter declaration keys its tensors as a published file does, from
// its parameters and the target's index among the injection's targets (IP-Adapter's
// ip_adapter.N); two injections that would give one key are refused.
func TestAdapterKeyClauseAndIndex(t *testing.T) {
	src := `
model P(d: int = 4) {
    input x: f32[batch, 3, d]
    Linear(d, d)
    ReLU()
    Linear(d, d)
}

adapter Numbered(target: Linear, out_features: int, index: int = 0, name: string = "n") : Sum key "proc." + str([7, 3][index]) {
    target()
    Linear(out_features, out_features, bias=false) key "extra"
}

adapter Keyed(target: Linear, out_features: int, name: string = "k") : Sum key ldm="x" {
    target()
}
`
	prog, err := dsl.LoadSource("numbered.rfn", []byte(src))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	base := elab(t, prog, "P")
	m := mustInject(t, base, prog, Spec{Name: "n", Adapter: "Numbered", Pattern: "Linear_?"})
	var keys []string
	for _, p := range m.Params {
		keys = append(keys, p.Key)
	}
	want := []string{"Linear_1.weight", "Linear_1.bias", "Linear_2.weight", "Linear_2.bias", "proc.7.extra.weight", "proc.3.extra.weight"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v\nwant %v", keys, want)
	}
	if e, err := Eject(m, "n"); err != nil || ir.Print(e) != ir.Print(base) {
		t.Errorf("eject: %v", err)
	}
	if _, err := Inject(m, prog, Spec{Name: "o", Adapter: "Numbered", Pattern: "Numbered_1.Linear"}); err == nil || !strings.Contains(dsl.Detail(err), `checkpoint key "proc.7.extra.weight" is already used`) {
		t.Errorf("second injection: %v", err)
	}
	if _, err := Inject(base, prog, Spec{Name: "k", Adapter: "Keyed", Pattern: "Linear_1"}); err == nil || !strings.Contains(dsl.Detail(err), "an adapter's key clause gives one key for every layout") {
		t.Errorf("layout key: %v", err)
	}
}

// sameOutputs runs m and ref on the same pseudo-random weights and inputs and wants
// bit-identical outputs.
func sameOutputs(t *testing.T, m, ref *ir.Module) {
	t.Helper()
	w := pseudoRandom(ref)
	got, want := runInputs(t, m, w), runInputs(t, ref, w)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("output %d: %g, want %g\n%s", i, got[i], want[i], ir.Print(m))
		}
	}
}
