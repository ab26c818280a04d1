package codegen

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/rfc-project/rfc/adapters"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

// regression is a model that the differential fuzzer (internal/fuzzgen) found miscompiled,
// shrunk: its source, the LoRA to inject, and the passes to run.
type regression struct {
	name   string
	src    string
	set    map[string]string
	lora   *adapters.Spec
	enable []string
}

var regressions = []regression{
	{
		// Fuzzer seed 57: pack_qkv concatenates a merged LoRA weight, which Load computes;
		// the concatenation's operand list was built before Load had computed it, and
		// prepare panicked ("slice bounds out of range [:3] with capacity 0").
		name: "concat_of_merged_weight",
		src: `
model M {
    input x: f32[batch, 2, 3]
    SelfAttention(3)
}
`,
		set:    map[string]string{"batch": "2"},
		lora:   &adapters.Spec{Name: "lora1", Adapter: "LinearLora", Targets: []adapters.Target{{Path: "SelfAttention.Distribute.Linear_1"}}, Params: map[string]string{"rank": "2"}, Scale: 0.5},
		enable: []string{"lora_merge", "pack_qkv"},
	},
	{
		// The same mistake in Forward: a concatenation of the input and a constant that
		// Load computes.
		name: "concat_of_constant",
		src: `
model M {
    input x: f32[batch, 3]
    Concatenate(dim=1) {
        Identity()
        Chain {
            Arange(4, dtype="f32")
            Unsqueeze(0)
        }
    }
}
`,
		set: map[string]string{"batch": "1"},
	},
}

// TestRegressions compiles each regression model after its passes, runs the package on
// random inputs and compares it with the interpreter.
func TestRegressions(t *testing.T) {
	needGoBuild(t)
	var cases []*compiledCase
	wants := map[string][]*runtime.Tensor{}
	for _, r := range regressions {
		prog, err := dsl.LoadSource(r.name+".rfn", []byte(r.src))
		if err != nil {
			t.Fatal(dsl.Detail(err))
		}
		m, err := prog.Elaborate(dsl.Options{Set: r.set})
		if err != nil {
			t.Fatal(dsl.Detail(err))
		}
		if r.lora != nil {
			if err := adapters.AddLibrary(prog); err != nil {
				t.Fatal(err)
			}
			if m, err = adapters.Inject(m, prog, *r.lora); err != nil {
				t.Fatal(err)
			}
		}
		rng := rand.New(rand.NewPCG(uint64(len(cases)), 7))
		c := &compiledCase{pkg: "regress" + strconv.Itoa(len(cases)), what: r.name, weights: map[string]*runtime.Tensor{}}
		for _, p := range m.Params {
			c.weights[p.Key] = randomTensor(rng, p.Type, 0.5, 0)
		}
		in := map[string]*runtime.Tensor{}
		for _, v := range m.Inputs {
			if _, ok := m.ScalarValue(v.Name); !ok {
				in[v.Name] = randomTensor(rng, v.Type, 1, 2)
			}
		}
		// The reference: the module before the passes (a merge fixes the LoRA's scale at
		// its recorded value, which the unmerged module takes as an input).
		want, err := interp.Run(m, weightsOf(m, c.weights), adapters.ScalarInputs(m, in))
		if err != nil {
			t.Fatal(err)
		}
		c.module = adapters.Clone(m)
		if err := passes.Run(c.module, passes.Config{Enable: r.enable, Ops: Supported}); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		set := map[string]*runtime.Tensor{}
		for _, v := range c.module.Inputs {
			set[v.Name] = in[v.Name]
		}
		c.inputs = []map[string]*runtime.Tensor{set}
		wants[c.pkg] = want
		cases = append(cases, c)
	}
	mod := tempModule(t)
	buildAndRun(t, mod, driverSource(t, cases, writeCases(t, mod, cases)))
	// A merge adds the LoRA's product to the weight: one rounding more.
	merged := func(got, want *runtime.Tensor) (float64, error) { return 0, testutil.WithinTolerance(got, want, 1e-5) }
	for _, c := range cases {
		if _, ok := checkOutputs(t, mod, c, 0, "after the passes", wants[c.pkg], merged); !ok {
			t.Logf("%s after the passes:\n%s", c.what, ir.Print(c.module))
		}
	}
}
