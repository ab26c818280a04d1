package adapters

import (
	"path/filepath"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// A model whose key clauses name layouts, as models/sd15.rfn's do, and an adapter whose
// body holds levels with `key ""` (a ControlNet's copy of the UNet's blocks).
const layoutSrc = `
model Block(d: int = 4) {
    Chain key "" {
        Linear(d, d) key a="first", b="one"
    }
    Chain key "" {
        Linear(d, d) key a="second", b="two"
    }
}

model L(d: int = 4) key a="model" {
    input x: f32[batch, 3, d]
    Block(d) key a="blocks.0", b="block_0"
    Linear(d, d) key a="out", b="proj"
}

adapter Beside(target: Linear, in_features: int, name: string = "s") : Sum {
    target()
    Block(in_features) key a="copy", b=""
}
`

// In a program that names layouts, an adapter's layers get keys in each layout (NAME before
// the target's key, then the body's segments) and Refiners' paths as unnamed keys, so that
// levels made transparent by key "" do not collide; a LoRA still finds its tensors.
func TestAdapterKeysInLayouts(t *testing.T) {
	prog, err := dsl.LoadSource("layouts.rfn", []byte(layoutSrc))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	base, err := prog.Elaborate(dsl.Options{Model: "L", Dims: map[string]int{"batch": 2}})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	m, err := Inject(base, prog, Spec{Name: "s", Adapter: "Beside", Pattern: "Linear"})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	want := map[string][3]string{ // unnamed, a, b
		"Beside.Block.Chain_1.Linear.weight": {"s.Linear.Block.Chain_1.Linear.weight", "s.model.out.copy.first.weight", "s.proj.one.weight"},
		"Beside.Block.Chain_2.Linear.weight": {"s.Linear.Block.Chain_2.Linear.weight", "s.model.out.copy.second.weight", "s.proj.two.weight"},
		"Beside.Linear.weight":               {"Linear.weight", "model.out.weight", "proj.weight"},
	}
	for _, p := range m.Params {
		w, ok := want[p.Name]
		if !ok {
			continue
		}
		if got := [3]string{p.Key, p.LayoutKeys["a"], p.LayoutKeys["b"]}; got != w {
			t.Errorf("%s: keys %q, want %q", p.Name, got, w)
		}
		delete(want, p.Name)
	}
	if len(want) > 0 {
		t.Errorf("parameters missing: %v\n%s", want, ir.Print(m))
	}
	// A LoRA (PEFT naming, by the target's key) on the same model.
	lora := map[string]*runtime.Tensor{
		"base_model.model.Linear.lora_A.weight": runtime.NewTensor(2, 4),
		"base_model.model.Linear.lora_B.weight": runtime.NewTensor(4, 2),
	}
	lora["base_model.model.Linear.lora_A.weight"].F32[0] = 1
	path := filepath.Join(t.TempDir(), "lora.safetensors")
	if err := runtime.WriteSafetensors(path, lora, nil); err != nil {
		t.Fatal(err)
	}
	if err := AddLibrary(prog); err != nil {
		t.Fatal(err)
	}
	lf, err := OpenLora(path)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	lm, tensors, err := InjectLora(base, prog, lf, LoraOptions{Name: "l", Scale: 1})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	own := OwnParams(lm, "l", "Linear", "Linear")
	if len(own) != 2 || len(tensors) != 2 || tensors[own[0].Key] == nil || tensors[own[0].Key].F32[0] != 1 || tensors[own[1].Key] == nil {
		t.Errorf("the LoRA's tensors %v do not land on its down and up weights %v", tensors, own)
	}
}
