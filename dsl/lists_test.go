package dsl

import (
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/parser"
)

// A model written with lists, `repeat c in list`, indexing, slicing, len and conditional
// expressions elaborates to the layers those values describe.
func TestListsAndConditionals(t *testing.T) {
	src := `
model Stack(widths: [int] = [4, 8, 16], last_act: string = "relu", scales: [float] = [1, 0.5]) {
    input x: f32[batch, widths[0]]
    repeat i in len(widths) - 1 {
        Linear(widths[i], widths[i + 1], bias=i % 2 == 0)
        GeLU(approximation="tanh" if i == 0 else "none")
    }
    repeat s in scales {
        Multiply(s)
    }
    repeat w in reversed(widths[1:]) {
        Linear(widths[-1] if w == widths[-1] else w * 2, w)
    }
    if last_act == "relu" {
        ReLU()
    }
}
`
	m := elaborate(t, src, Options{})
	tree := ir.FormatTree(m)
	for _, want := range []string{
		"Linear_1: Linear(in_features=4, out_features=8)",
		"Linear_2: Linear(in_features=8, out_features=16, bias=false)",
		`GeLU_1: GeLU(approximation="tanh")`,
		"GeLU_2: GeLU",
		"Multiply_1: Multiply",
		"Multiply_2: Multiply(scale=0.5)",
		"Linear_3: Linear(in_features=16, out_features=16)",
		"Linear_4: Linear(in_features=16, out_features=8)",
		"ReLU",
	} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
	// --set gives a list parameter a new value; the input's dim follows it.
	m = elaborate(t, src, Options{Set: map[string]string{"widths": "[2, 3]", "last_act": "none"}})
	if got := m.Inputs[0].Type.Shape.String(); got != "[batch, 2]" {
		t.Errorf("input shape %s with --set widths=[2, 3]", got)
	}
	if got := m.Outputs[0].Type.Shape.String(); got != "[batch, 3]" {
		t.Errorf("output shape %s with --set widths=[2, 3]", got)
	}
}

func TestProductContainer(t *testing.T) {
	m := elaborate(t, `
model P {
    input x: f32[batch, 1, 4]
    Product {
        Identity()
        Parameter(3, 4)
        Chain {
            Sigmoid()
        }
    }
}
`, Options{})
	var muls int
	for _, v := range m.Body {
		if v.Op == "mul" {
			muls++
		}
	}
	if muls != 2 || m.Outputs[0].Type.Shape.String() != "[batch, 3, 4]" {
		t.Errorf("%d muls, output %s; want 2 and [batch, 3, 4] (broadcast)", muls, m.Outputs[0].Type.Shape)
	}
	msg := elaborateErr(t, `
model P {
    input x: f32[batch, 5]
    Product {
        Identity()
        Parameter(3)
    }
}
`, Options{})
	if !strings.Contains(msg, "test.rfn:4:5: Product") {
		t.Errorf("got %s", msg)
	}
}

func TestListAndConditionalErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"model M(w: [int] = [1, 2]) {\n    input x: f32[1, w[2]]\n    ReLU()\n}\n", "test.rfn:2:23: index 2 is out of range for [1, 2] of length 2"},
		{"model M(w: [int] = [1, 2]) {\n    input x: f32[1, w[-3]]\n    ReLU()\n}\n", "index -3 is out of range"},
		{"model M(w: [int] = [1, 2.5]) {\n    input x: f32[1, 2]\n    ReLU()\n}\n", "default of w is a list, not [int]"},
		{"model M(w: int = 3) {\n    input x: f32[1, w[0]]\n    ReLU()\n}\n", "cannot index a int (3)"},
		{"model M(w: int = 3) {\n    input x: f32[1, 2 if w else 3]\n    ReLU()\n}\n", "test.rfn:2:26: the condition of `if … else` must be a bool, got int 3"},
		{"model M(w: [int] = [1] * 10000000) {\n    input x: f32[1, 2]\n    ReLU()\n}\n", "above the limit"},
		{"model M(w: [foo] = []) {\n    input x: f32[1, 2]\n    ReLU()\n}\n", "test.rfn:1:12: parameter w has unknown type [foo]"},
		{"model M(w: [int] = [1, \"a\"][1:]) {\n    input x: f32[1, 2]\n    ReLU()\n}\n", "default of w is a list, not [int]"},
		{"model M {\n    input x: f32[batch, 4294967296, 4294967296]\n    ReLU()\n}\n", "test.rfn:2:5: input x: f32[batch, 4294967296, 4294967296] is too large"},
		{"model M {\n    input x: f32[1, len(3)]\n    ReLU()\n}\n", "len takes a list or a string"},
		{"model M {\n    input x: f32[1, sum(range(0, 10, 0))]\n    ReLU()\n}\n", "range step must not be zero"},
	} {
		if got := elaborateErr(t, tt.src, Options{}); !strings.Contains(got, tt.want) {
			t.Errorf("got %s\nwant %s", got, tt.want)
		}
	}
	for _, set := range []string{"[1, x]", "3", "[1.5]", "[1,"} {
		got := elaborateErr(t, "model M(w: [int] = [1]) {\n    input x: f32[1, 2]\n    ReLU()\n}\n", Options{Set: map[string]string{"w": set}})
		if !strings.Contains(got, "--set w="+set) {
			t.Errorf("--set w=%s: got %s", set, got)
		}
	}
}

func TestExpressionFunctions(t *testing.T) {
	for _, tt := range []struct{ expr, want string }{
		{"len([1, 2, 3])", "3"},
		{`len("abc")`, "3"},
		{"sum([1, 2, 3])", "6"},
		{"sum([1, 2.5])", "3.5"},
		{"max([3, 9, 2])", "9"},
		{"range(3)", "[0, 1, 2]"},
		{"range(1, 7, 2)", "[1, 3, 5]"},
		{"range(5, 0, -2)", "[5, 3, 1]"},
		{"reversed([1, 2, 3])", "[3, 2, 1]"},
		{"[1, 2] + [3]", "[1, 2, 3]"},
		{"[0] * 3", "[0, 0, 0]"},
		{"2 * [1, 2]", "[1, 2, 1, 2]"},
		{"[1, 2] == [1, 2]", "true"},
		{"[1, 2] != [1, 2.0]", "false"},
		{"[1, 2, 3, 4][1:-1]", "[2, 3]"},
		{"[1, 2, 3][5:]", "[]"},
		{`"abcdef"[2:4]`, `"cd"`},
		{"1 if true else 2", "1"},
		{"1 if false else 2 if false else 3", "3"},
		{"[10, 20][0 if 1 > 2 else 1]", "20"},
		{"log(1)", "0.0"},
		{"exp(0)", "1.0"},
		{"sqrt(16)", "4.0"},
	} {
		el := &elab{prog: &Program{}}
		x, err := parserExpr(tt.expr)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		v, err := el.eval(x, newEnv(nil))
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		if got := formatConst(v); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
		}
	}
}

// An error inside the prelude names the user's line that led there.
func TestPreludeErrorNamesCaller(t *testing.T) {
	src := "model M {\n    input x: f32[1, 10, 12]\n    SelfAttention(12, num_heads=5)\n}\n"
	p, err := LoadSource("user.rfn", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Elaborate(Options{})
	if err == nil {
		t.Fatal("no error")
	}
	if got := err.Error(); !strings.HasPrefix(got, PreludeName) || !strings.Contains(got, "(called from user.rfn:3:5)") {
		t.Errorf("got %s", got)
	}
	if got := Detail(err); !strings.Contains(got, "called from user.rfn:3:5:\n    SelfAttention(12, num_heads=5)\n    ^") {
		t.Errorf("detail:\n%s", got)
	}
}

func parserExpr(s string) (parser.Expr, error) { return parser.ParseExpr("e", []byte(s)) }
