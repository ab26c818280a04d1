package dsl

import (
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
)

// A model declares several checkpoint layouts with key clauses; every parameter gets a key
// in each, and the unnamed key (or the Refiners path) stays the default.
func TestLayoutKeys(t *testing.T) {
	src := `
model Block(c: int = 4) key ldm="blk", diffusers="block" {
    GroupNorm(c, 2) key ldm="in_layers.0", diffusers="norm1"
    Conv2d(c, c, 1) key ldm="in_layers.2", diffusers="conv1"
}

model Net key ldm="model.diffusion_model", diffusers="" {
    input x: f32[1, 4, 2, 2]
    Conv2d(4, 4, 1) key "first", ldm="input_blocks.0.0", diffusers="conv_in"
    repeat i in 2 {
        Block(4) key ldm="input_blocks." + str(i + 1) + ".0", diffusers="down_blocks.0.resnets." + str(i)
    }
    Block(4)
    ReLU()
}
`
	m := elaborate(t, src, Options{})
	got := map[string]string{}
	for _, p := range m.Params {
		got[p.Name] = p.Key + " | " + p.LayoutKeys["ldm"] + " | " + p.LayoutKeys["diffusers"]
	}
	for name, want := range map[string]string{
		"Conv2d.weight":            "Conv2d.weight | model.diffusion_model.input_blocks.0.0.weight | conv_in.weight",
		"Block_1.GroupNorm.weight": "Block_1.GroupNorm.weight | model.diffusion_model.input_blocks.1.0.in_layers.0.weight | down_blocks.0.resnets.0.norm1.weight",
		"Block_2.Conv2d.bias":      "Block_2.Conv2d.bias | model.diffusion_model.input_blocks.2.0.in_layers.2.bias | down_blocks.0.resnets.1.conv1.bias",
		"Block_3.GroupNorm.bias":   "Block_3.GroupNorm.bias | model.diffusion_model.blk.in_layers.0.bias | block.norm1.bias",
	} {
		if got[name] != want {
			t.Errorf("%s: got %q\nwant %q", name, got[name], want)
		}
	}
	// The layouts survive the IR text form.
	back, err := ir.Parse(ir.Print(m))
	if err != nil {
		t.Fatal(err)
	}
	if ir.Print(back) != ir.Print(m) || back.Params[0].LayoutKeys["ldm"] != m.Params[0].LayoutKeys["ldm"] {
		t.Error("layout keys do not round-trip through the IR text")
	}
	if got := strings.Join(m.Layouts(), ","); got != "diffusers,ldm" {
		t.Errorf("layouts %s", got)
	}
	// Two layers with one key in a layout are an error naming the layout.
	msg := elaborateErr(t, `
model Net {
    input x: f32[1, 4]
    Linear(4, 4) key ldm="a"
    Linear(4, 4) key ldm="a"
}
`, Options{})
	if !strings.Contains(msg, `test.rfn:5:5: checkpoint key "a.weight" of layout ldm is already used`) {
		t.Errorf("got %s", msg)
	}
}

// A model may specialize a builtin layer, as Refiners' subclasses do: its tensors are its own.
func TestModelSpecializesLayer(t *testing.T) {
	m := elaborate(t, `
model TokenEncoder(vocabulary_size: int = 10, embedding_dim: int = 4) : Embedding(vocabulary_size, embedding_dim) key ldm="token_embedding" {}

model Cat(d: int = 1) : Concatenate(d) {
    Identity()
    Identity()
}

model Net {
    input ids: i64[2, 3]
    TokenEncoder()
    Cat(2)
}
`, Options{})
	if p := m.Params[0]; p.Name != "TokenEncoder.weight" || p.LayoutKeys["ldm"] != "token_embedding.weight" {
		t.Errorf("param %s, ldm key %s", p.Name, p.LayoutKeys["ldm"])
	}
	if got := m.Outputs[0].Type.Shape.String(); got != "[2, 3, 8]" {
		t.Errorf("output %s", got)
	}
	msg := elaborateErr(t, `
model E : Embedding(10, 4) {
    ReLU()
}

model Net {
    input ids: i64[2, 3]
    E()
}
`, Options{})
	if !strings.Contains(msg, "test.rfn:3:5: model E specializes the layer Embedding") {
		t.Errorf("got %s", msg)
	}
}

// A file's model hides the prelude's model of the same name.
func TestShadowPrelude(t *testing.T) {
	m := elaborate(t, `
model SelfAttention(embedding_dim: int = 4) {
    Linear(embedding_dim, embedding_dim) key "to_q"
}

model Net {
    input x: f32[1, 3, 4]
    SelfAttention(4)
}
`, Options{})
	if len(m.Params) != 2 || m.Params[0].Key != "SelfAttention.to_q.weight" {
		t.Errorf("params %v", m.Params)
	}
	msg := elaborateErr(t, "model A {\n    input x: f32[1]\n    ReLU()\n}\n\nmodel A {\n    input x: f32[1]\n    ReLU()\n}\n", Options{})
	if !strings.Contains(msg, "model A is already declared") {
		t.Errorf("got %s", msg)
	}
}

// Interpolate with two inputs takes the second's spatial size (Refiners' Upsample).
func TestInterpolateToReference(t *testing.T) {
	m := elaborate(t, `
model U {
    input x: f32[1, 2, 15, 9]
    SetContext("sampling", "shape")
    Conv2d(2, 2, 3, stride=2, padding=1)
    Parallel {
        Identity()
        UseContext("sampling", "shape")
    }
    Interpolate()
}
`, Options{})
	if got := m.Outputs[0].Type.Shape.String(); got != "[1, 2, 15, 9]" {
		t.Errorf("output %s, want the reference's size", got)
	}
}

// A Parameter's key clause names its tensor itself, as published checkpoints store such a
// tensor (CLIP's class_embedding), while Refiners' paths keep ….Parameter.weight.
func TestParameterKeyNamesTheTensor(t *testing.T) {
	m := elaborate(t, `
model Token(d: int = 4) {
    Parameter(1, d) key "class_embedding"
}

model Net key diffusers="vision_model" {
    input x: f32[2, 3, 4]
    Concatenate(dim=1) key "embeddings" {
        Token(4) key ""
        Identity()
    }
    Parameter(4, 4) key diffusers="latents"
    Parameter(2, 4)
}
`, Options{})
	got := map[string]string{}
	for _, p := range m.Params {
		got[p.Name] = p.Key + " | " + p.LayoutKeys["diffusers"]
	}
	for name, want := range map[string]string{
		"Concatenate.Token.Parameter.weight": "Concatenate.Token.Parameter.weight | vision_model.embeddings.class_embedding",
		"Parameter_1.weight":                 "Parameter_1.weight | vision_model.latents",
		"Parameter_2.weight":                 "Parameter_2.weight | vision_model.Parameter_2.weight",
	} {
		if got[name] != want {
			t.Errorf("%s: got %q\nwant %q", name, got[name], want)
		}
	}
	// Without named layouts the unnamed key is the tensor's.
	m = elaborate(t, `
model Net {
    input x: f32[2, 3]
    Parameter(1, 3) key "cls"
}
`, Options{})
	if k := m.Params[0].Key; k != "cls" {
		t.Errorf("key %q, want cls", k)
	}
	msg := elaborateErr(t, `
model Net {
    input x: f32[2, 3]
    Parameter(1, 3) key ""
}
`, Options{})
	if !strings.Contains(msg, "test.rfn:4:5: a Parameter's key clause names its tensor, but it gives the empty key") {
		t.Errorf("got %s", msg)
	}
}

// GetArg picks one input of several, as Refiners' fl.GetArg.
func TestGetArg(t *testing.T) {
	m := elaborate(t, `
model Net {
    input a: f32[2, 3]
    input b: f32[2, 5]
    Parallel {
        GetArg(1)
        GetArg(0)
    }
}
`, Options{})
	if len(m.Outputs) != 2 || m.Outputs[0] != m.Input("b") || m.Outputs[1] != m.Input("a") {
		t.Errorf("outputs %v", m.Outputs)
	}
	msg := elaborateErr(t, `
model Net {
    input a: f32[2, 3]
    GetArg(1)
}
`, Options{})
	if !strings.Contains(msg, "index 1 is out of range for 1 inputs") {
		t.Errorf("got %s", msg)
	}
}
