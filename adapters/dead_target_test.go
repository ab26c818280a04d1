package adapters

import (
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
)

// A layer whose result nothing reads (here inside a Passthrough that stores it in a
// context nobody uses) takes an adapter like any other: a LoRA file that adapts every
// Linear of a network must not be refused because one of them is dead in this entry point.
// Found by the differential fuzzer (internal/fuzzgen, seed 73), which was refused with
// "cannot tell the outputs of layer Passthrough.Linear".
func TestInjectAroundDeadLayer(t *testing.T) {
	src := `
model M {
    input x: f32[batch, 4]
    Passthrough {
        Linear(4, 3)
        SetContext("ctx", "unused")
    }
    Linear(4, 5)
}
`
	prog, err := dsl.LoadSource("dead.rfn", []byte(src))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	if err := AddLibrary(prog); err != nil {
		t.Fatal(err)
	}
	base := elab(t, prog, "M")
	m, err := Inject(base, prog, Spec{Name: "lora", Adapter: "LinearLora", Targets: []Target{{Path: "Passthrough.Linear"}}, Params: map[string]string{"rank": "2"}, Scale: 1})
	if err != nil {
		t.Fatalf("injecting around a dead Linear: %v", err)
	}
	w := pseudoRandom(m)
	if got, want := runWith(t, m, w), runWith(t, base, w); len(got) != len(want) || got[0] != want[0] {
		t.Errorf("the dead adapter changes the output")
	}
	if e, err := Eject(m, "lora"); err != nil || ir.Print(e) != ir.Print(base) {
		t.Errorf("eject: %v", err)
	}
	for _, merge := range []bool{false, true} {
		c := Clone(m)
		cfg := passes.Config{}
		if merge {
			cfg.Enable = []string{"lora_merge"}
		}
		if err := passes.Run(c, cfg); err != nil {
			t.Fatalf("merge %t: %v", merge, err)
		}
		if len(c.Body) != 1 {
			t.Errorf("merge %t: the passes keep %d ops, want the live Linear alone:\n%s", merge, len(c.Body), ir.Print(c))
		}
	}
}
