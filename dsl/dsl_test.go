package dsl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/parser"
)

func elaborate(t *testing.T, src string, opts Options) *ir.Module {
	t.Helper()
	p, err := LoadSource("test.rfn", []byte(src))
	if err != nil {
		t.Fatal(Detail(err))
	}
	m, err := p.Elaborate(opts)
	if err != nil {
		t.Fatal(Detail(err))
	}
	return m
}

func elaborateErr(t *testing.T, src string, opts Options) string {
	t.Helper()
	p, err := LoadSource("test.rfn", []byte(src))
	if err == nil {
		_, err = p.Elaborate(opts)
	}
	if err == nil {
		t.Fatalf("no error for\n%s", src)
	}
	return err.Error()
}

// Every model of models/ elaborates, verifies, and its IR text round-trips.
func TestModelsRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("../models/*.rfn")
	if len(files) == 0 {
		t.Fatal("no models")
	}
	for _, f := range files {
		p, err := Load(f)
		if err != nil {
			t.Fatal(Detail(err))
		}
		for _, name := range p.ModelNames() {
			if !p.HasInputs(name) {
				continue
			}
			m, err := p.Elaborate(Options{Model: name})
			if err != nil {
				t.Fatalf("%s %s: %s", f, name, Detail(err))
			}
			text := ir.Print(m)
			back, err := ir.Parse(text)
			if err != nil {
				t.Fatalf("%s %s: parse: %v", f, name, err)
			}
			if err := ir.Verify(back); err != nil {
				t.Fatalf("%s %s: verify: %v", f, name, err)
			}
			if again := ir.Print(back); again != text {
				t.Errorf("%s %s: IR text does not round-trip", f, name)
			}
		}
	}
}

// rfc fmt must be idempotent on every model and on the prelude.
func TestFormatIdempotent(t *testing.T) {
	files, _ := filepath.Glob("../models/*.rfn")
	files = append(files, "prelude.rfn", "../adapters/lora.rfn")
	for _, f := range files {
		src, _ := os.ReadFile(f)
		a, err := parser.ParseFile(f, src)
		if err != nil {
			t.Fatal(err)
		}
		once := parser.Format(a)
		b, err := parser.ParseFile(f, once)
		if err != nil {
			t.Fatalf("%s: formatted file does not parse: %v", f, err)
		}
		if twice := parser.Format(b); string(twice) != string(once) {
			t.Errorf("%s: fmt is not idempotent", f)
		}
		if string(once) != string(src) {
			t.Errorf("%s is not in canonical form: run rfc fmt", f)
		}
	}
}

func TestRefinersNamesAndKeys(t *testing.T) {
	m := elaborate(t, `
model Block(c: int = 4) {
    Chain key "conv" {
        Linear(c, c) key "0"
        ReLU()
        Linear(c, c, bias=false) key "2"
    }
}
model M() {
    input x: f32[2, 4]
    Linear(4, 4)
    repeat i in 2 {
        Block() key i + 1
    }
    Residual key "" {
        Linear(4, 4)
    }
    Linear(4, 4)
}`, Options{})
	var got []string
	for _, p := range m.Params {
		got = append(got, p.Name+"="+p.Key)
	}
	want := []string{
		"Linear_1.weight=Linear_1.weight", "Linear_1.bias=Linear_1.bias",
		"Block_1.Chain.Linear_1.weight=1.conv.0.weight", "Block_1.Chain.Linear_1.bias=1.conv.0.bias", "Block_1.Chain.Linear_2.weight=1.conv.2.weight",
		"Block_2.Chain.Linear_1.weight=2.conv.0.weight", "Block_2.Chain.Linear_1.bias=2.conv.0.bias", "Block_2.Chain.Linear_2.weight=2.conv.2.weight",
		"Residual.Linear.weight=Linear.weight", "Residual.Linear.bias=Linear.bias",
		"Linear_2.weight=Linear_2.weight", "Linear_2.bias=Linear_2.bias",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("names and keys:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestContextBecomesInput(t *testing.T) {
	m := elaborate(t, `
model M() {
    input x: f32[1, 3, 8]
    input emb: f32[1, 5, 6]
    Parallel {
        Identity()
        UseContext("cross", "emb")
        UseContext("cross", "emb")
    }
    Attention(8, 2, key_embedding_dim=6, value_embedding_dim=6)
}`, Options{})
	if len(m.Inputs) != 2 || m.Inputs[1].Name != "emb" {
		t.Fatalf("inputs: %v", m.Inputs)
	}
	// Set inside: the key is an edge, not an input.
	m = elaborate(t, `
model M() {
    input x: f32[1, 3, 8]
    Passthrough {
        Linear(8, 4)
        SetContext("ctx", "h")
    }
    Parallel {
        Identity()
        UseContext("ctx", "h")
    }
    Concatenate(dim=-1) {
        Identity()
    }
}`, Options{})
	if len(m.Inputs) != 1 {
		t.Fatalf("inputs: %d", len(m.Inputs))
	}
	if got := m.Outputs[0].Type.String(); got != "f32[1, 3, 12]" {
		t.Errorf("output %s", got)
	}
}

func TestSymbolicDims(t *testing.T) {
	src := `
model M(dim: int = 4) {
    input x: f32[batch, tokens, dim]
    Linear(dim, 2 * dim)
    Flatten(start_dim=1)
}`
	m := elaborate(t, src, Options{})
	if got := m.Outputs[0].Type.String(); got != "f32[batch, tokens*8]" {
		t.Errorf("symbolic: %s", got)
	}
	m = elaborate(t, src, Options{Dims: map[string]int{"batch": 2, "tokens": 3}})
	if got := m.Outputs[0].Type.String(); got != "f32[2, 24]" {
		t.Errorf("bound: %s", got)
	}
	m = elaborate(t, src, Options{Set: map[string]string{"batch": "5", "dim": "2"}})
	if got := m.Outputs[0].Type.String(); got != "f32[5, tokens*4]" {
		t.Errorf("--set batch: %s", got)
	}
}

func TestExpressions(t *testing.T) {
	m := elaborate(t, `
model M(a: int = 7, b: int = -2, f: float = 0.5, s: string = "x") {
    input x: f32[1, 1]
    let q = a // b
    let r = a % b
    let p = 2 ** 3 ** 2
    let ok = q == -4 and r == -1 and p == 512 and -2 ** 2 == -4 and (a / 2) == 3.5 and min(a, 3) == 3 and s + "y" == "xy" and not f > 1
    if ok {
        ReLU()
    } else {
        Sigmoid()
    }
}`, Options{})
	if m.Body[0].Op != "relu" {
		t.Errorf("Python arithmetic differs: got %s", m.Body[0].Op)
	}
}

func TestErrorsArePositioned(t *testing.T) {
	cases := map[string]string{
		"model M() {\n    input x: f32[1, 4]\n    Linear(4, 8)\n    Linear(4, 8)\n}":             "test.rfn:4:5: Linear (Linear_2): linear expects input [..., 4], got [1, 8]",
		"model M() {\n    input x: f32[1, 4]\n    Softmax(dim=2)\n}":                             "test.rfn:3:5: Softmax (Softmax): dim 2 is out of range for [1, 4]",
		"model M() {\n    input x: f32[1, 4]\n    Reshape(3)\n}":                                 "test.rfn:3:5: Reshape (Reshape): cannot reshape [1, 4] (4 elements) to [1, 3] (3 elements)",
		"model M() {\n    input x: f32[1, 4]\n    repeat 2 { Linear(4, 4) key \"same\" }\n}":     "checkpoint key \"same.weight\" is already used",
		"model M() {\n    input x: f32[1, 4]\n    M()\n}":                                        "nest more than 200 deep",
		"model M() {\n    Linear(4, 4)\n}":                                                       "test.rfn:1:1: model M has no input",
		"model M() {\n    input x: f32[1, 4]\n    Residual {\n        Chunk(2, dim=1)\n    }\n}": "Residual adds its first input to one output, but its chain gives 2",
	}
	for src, want := range cases {
		if got := elaborateErr(t, src, Options{}); !strings.Contains(got, want) {
			t.Errorf("error\n%s\nwant it to contain\n%s", got, want)
		}
	}
}

// The reference page must list every builtin layer.
func TestLanguageReferenceListsBuiltins(t *testing.T) {
	doc, err := os.ReadFile("LANGUAGE.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range builtins {
		if !strings.Contains(string(doc), "`"+name) {
			t.Errorf("LANGUAGE.md does not document %s", name)
		}
	}
}

// Huge numbers stop with an error instead of wrapping around or running for ever.
func TestLimits(t *testing.T) {
	cases := map[string]string{
		"model M() {\n    input x: f32[1, 4]\n    repeat 10 ** 9 {\n        ReLU()\n    }\n}":                                    "repeat count 1000000000 is above the limit",
		"model M() {\n    input x: f32[1, 4]\n    let n = 2 ** 64\n    ReLU()\n}":                                                "2 ** 64 overflows",
		"model M() {\n    input x: f32[1, 4]\n    let n = 9223372036854775807 + 1\n    ReLU()\n}":                                "overflows a 64-bit int",
		"model M() {\n    input x: f32[1, 4]\n    repeat 1000 {\n        repeat 1000 {\n            ReLU()\n        }\n    }\n}": "more than 200000 layers",
	}
	for src, want := range cases {
		if got := elaborateErr(t, src, Options{}); !strings.Contains(got, want) {
			t.Errorf("error\n%s\nwant it to contain\n%s", got, want)
		}
	}
	// The largest int is still fine.
	elaborate(t, "model M() {\n    input x: f32[1, 4]\n    let n = 2 ** 62 + (2 ** 62 - 1)\n    ReLU()\n}", Options{})
}
