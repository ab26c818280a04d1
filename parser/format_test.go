package parser

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the format golden files")

func TestFormatGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/format/*.in")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		src, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseFile(in, src)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		got := Format(f)
		golden := strings.TrimSuffix(in, ".in") + ".golden"
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: got\n%s\nwant\n%s", in, got, want)
		}
	}
}

// rfnFiles returns every .rfn file of the repository's model zoo and
// language folder (there may be none yet) and of this package's testdata.
func rfnFiles(t *testing.T) []string {
	var files []string
	for _, root := range []string{"../models", "../dsl", "testdata"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return filepath.SkipDir
				}
				return err
			}
			if d.IsDir() && d.Name() == "fuzz" {
				return filepath.SkipDir
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".rfn") || strings.HasSuffix(path, ".in") || strings.HasSuffix(path, ".golden")) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func TestFormatIdempotent(t *testing.T) {
	files := rfnFiles(t)
	if len(files) < 5 {
		t.Fatalf("found only %d .rfn files", len(files))
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkRoundTrip(path, src); err != "" {
			t.Errorf("%s: %s", path, err)
		}
	}
}

// checkRoundTrip formats src and checks that the result parses to the same
// AST with the same comments, and formats to itself.
func checkRoundTrip(name string, src []byte) string {
	f1, err := ParseFile(name, src)
	if err != nil {
		return "parse: " + err.Error()
	}
	out1 := Format(f1)
	f2, err := ParseFile(name, out1)
	if err != nil {
		return "formatted text does not parse: " + err.Error() + "\n" + string(out1)
	}
	if d1, d2 := dump(f1), dump(f2); d1 != d2 {
		return "formatting changed the AST:\n" + d1 + "\n" + d2 + "\n" + string(out1)
	}
	if c1, c2 := commentTexts(f1), commentTexts(f2); c1 != c2 {
		return "formatting changed the comments:\n" + c1 + "\n" + c2 + "\n" + string(out1)
	}
	if out2 := Format(f2); string(out2) != string(out1) {
		return "not idempotent:\n" + string(out1) + "\n---\n" + string(out2)
	}
	return ""
}

func commentTexts(f *File) string {
	var b strings.Builder
	for _, c := range f.Comments {
		b.WriteString(c.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestExprString(t *testing.T) {
	id := func(s string) Expr { return &Ident{Name: s} }
	bin := func(op string, x, y Expr) Expr { return &BinaryExpr{Op: op, X: x, Y: y} }
	neg := func(x Expr) Expr { return &UnaryExpr{Op: "-", X: x} }
	not := func(x Expr) Expr { return &UnaryExpr{Op: "not", X: x} }
	tests := []struct {
		e    Expr
		want string
	}{
		// Hand-built trees get the parentheses their shape needs.
		{bin("*", bin("+", id("a"), id("b")), id("c")), "(a + b) * c"},
		{bin("-", id("a"), bin("-", id("b"), id("c"))), "a - (b - c)"},
		{bin("-", bin("-", id("a"), id("b")), id("c")), "a - b - c"},
		{bin("**", bin("**", id("a"), id("b")), id("c")), "(a ** b) ** c"},
		{bin("**", id("a"), bin("**", id("b"), id("c"))), "a ** b ** c"},
		{bin("**", neg(id("a")), id("b")), "(-a) ** b"},
		{neg(bin("**", id("a"), id("b"))), "-a ** b"},
		{bin("**", id("a"), neg(id("b"))), "a ** -b"},
		{neg(bin("+", id("a"), id("b"))), "-(a + b)"},
		{bin("==", not(id("a")), id("b")), "(not a) == b"},
		{not(bin("==", id("a"), id("b"))), "not a == b"},
		{bin("<", bin("<", id("a"), id("b")), id("c")), "(a < b) < c"},
		{bin("and", bin("or", id("a"), id("b")), id("c")), "(a or b) and c"},
		{neg(neg(id("a"))), "--a"},
		{&FloatLit{Value: 3}, "3.0"},
		{&FloatLit{Value: 1e-5}, "1e-05"},
		{&FloatLit{Value: 0.5, Text: ".5"}, ".5"},
		{&IntLit{Value: -3}, "-3"},
		{&StringLit{Value: "a\"b\n"}, `"a\"b\n"`},
		{&CallExpr{Func: "max", Args: []Expr{id("a"), &ListLit{Elems: []Expr{&IntLit{Value: 1}, &BoolLit{Value: true}}}}}, "max(a, [1, true])"},
		{&ParenExpr{X: id("a")}, "(a)"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := ExprString(tt.e); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
	// Parsed expressions print as written, modulo spacing, on one line.
	for _, tt := range []struct{ src, want string }{
		{"-2**2", "-2 ** 2"},
		{"(a+b)//c", "(a + b) // c"},
		{"not(a==b)", "not (a == b)"},
		{"f(\n    1,\n    [2,\n    3],\n)", "f(1, [2, 3])"},
	} {
		if got := ExprString(parseExpr(t, tt.src)); got != tt.want {
			t.Errorf("%q: got %s, want %s", tt.src, got, tt.want)
		}
	}
}

func TestFormatHandBuilt(t *testing.T) {
	// An AST without positions or comments, as a program may build it.
	f := &File{
		Imports: []*Import{{Path: "x.rfn"}},
		Decls: []*Model{{
			Name:   "M",
			Params: []*Param{{Name: "c", Type: "int", Default: &IntLit{Value: 3}}, {Name: "t", Type: "Linear"}},
			Body: &Block{Stmts: []Stmt{
				&InputStmt{Name: "x", DType: "f32", Dims: []Expr{&Ident{Name: "b"}, &IntLit{Value: 3}}},
				&LayerStmt{Name: "ReLU"},
				&LayerStmt{Name: "Chain", Key: &StringLit{Value: "k"}, Body: &Block{Stmts: []Stmt{
					&LetStmt{Name: "y", Value: &IntLit{Value: 1}},
				}}},
				&IfStmt{Cond: &BoolLit{Value: true}, Then: &Block{}, Else: &Block{}},
				&RepeatStmt{Var: "i", Count: &IntLit{Value: 2}, Body: &Block{}},
			}},
		}},
	}
	want := `import "x.rfn"

model M(c: int = 3, t: Linear) {
    input x: f32[b, 3]
    ReLU()
    Chain key "k" {
        let y = 1
    }
    if true {} else {}
    repeat i in 2 {}
}
`
	got := string(Format(f))
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if err := checkRoundTrip("h.rfn", []byte(got)); err != "" {
		t.Error(err)
	}
}
