package parser

import (
	"errors"
	"strings"
	"testing"
)

// parseExpr parses src as the value of a let statement.
func parseExpr(t *testing.T, src string) Expr {
	t.Helper()
	f, err := ParseFile("e.rfn", []byte("model M() {\n    let x = "+src+"\n}\n"))
	if err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	return f.Decls[0].Body.Stmts[0].(*LetStmt).Value
}

func TestExpressionShapes(t *testing.T) {
	tests := []struct{ src, want string }{
		{"-2**2", "(- (** 2 2))"},
		{"2**-1", "(** 2 (- 1))"},
		{"2**3**2", "(** 2 (** 3 2))"},
		{"(-2)**2", "(** (paren (- 2)) 2)"},
		{"a // b * c", "(* (// a b) c)"},
		{"a * b // c % d / e", "(/ (% (// (* a b) c) d) e)"},
		{"a - b - c", "(- (- a b) c)"},
		{"a + b * c", "(+ a (* b c))"},
		{"-a * b", "(* (- a) b)"},
		{"--a", "(- (- a))"},
		{"not a == b", "(not (== a b))"},
		{"not not a", "(not (not a))"},
		{"a or b and c", "(or a (and b c))"},
		{"a and b or c and d", "(or (and a b) (and c d))"},
		{"not a and b", "(and (not a) b)"},
		{"a < b + 1", "(< a (+ b 1))"},
		{"a <= b", "(<= a b)"},
		{"a >= b", "(>= a b)"},
		{"a != b", "(!= a b)"},
		{"a > -b", "(> a (- b))"},
		{"1e-5", "1e-05f"},
		{"0.5", "0.5f"},
		{"3.", "3f"},
		{".25", "0.25f"},
		{"2E3", "2000f"},
		{"9223372036854775807", "9223372036854775807"},
		{`"a\tb\"c\u00e9"`, `"a\tb\"cé"`},
		{"true", "true"},
		{"false or x", "(or false x)"},
		{"[1, [2, 3], ]", "[1 [2 3]]"},
		{"[]", "[]"},
		{"min(a, b + 1)", "(call min a (+ b 1))"},
		{"f()", "(call f)"},
		{"f(g(1),)", "(call f (call g 1))"},
		{"(a + b) * c", "(* (paren (+ a b)) c)"},
		{"(\n    a +\n    b\n)", "(paren (+ a b))"},
		{"size // 2 ** 2", "(// size (** 2 2))"},
		{`"x" + str(3)`, `(+ "x" (call str 3))`},
	}
	for _, tt := range tests {
		if got := dump(parseExpr(t, tt.src)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.src, got, tt.want)
		}
	}
}

func TestStatementShapes(t *testing.T) {
	src := `import "a.rfn"
import "dir/b.rfn"

model Block(c: int = 64, eps: float = 1e-5, on: bool = false, name: string = "x", d: int = c * 2) : Residual {
    input x: f32[batch, 3, size // 2]
    input t: i64[]
    let n = c // 2
    ReLU()
    Conv2d(c, c, 3, padding=1, bias=false) key "0"
    Residual {
        ReLU()
    }
    Chain key "conv" {
        Linear(1, 2); GeLU()
    }
    Chain() key "" {}
    repeat 2 { ReLU() }
    repeat i in n + 1 {
        Conv2d(c, c, 3) key i + 3
    }
    if n > 1 {
        ReLU()
    } else if n == 1 {
        GeLU()
    } else {
        SiLU()
    }
    if on { ReLU() }
}

adapter LoRA(target: Linear, rank: int = 4) {
    Linear(rank, rank)
}
`
	f, err := ParseFile("s.rfn", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := `(file (import "a.rfn") (import "dir/b.rfn") ` +
		`(model Block ((c int 64) (eps float 1e-05f) (on bool false) (name string "x") (d int (* c 2))) :Residual ` +
		`{(input x f32 batch 3 (// size 2)) (input t i64) (let n (// c 2)) (layer ReLU ()) ` +
		`(layer Conv2d (c c 3 padding=1 bias=false) key "0") (layer Residual {(layer ReLU ())}) ` +
		`(layer Chain key "conv" {(layer Linear (1 2)) (layer GeLU ())}) (layer Chain key "" {}) ` +
		`(repeat 2 {(layer ReLU ())}) (repeat i in (+ n 1) {(layer Conv2d (c c 3) key (+ i 3))}) ` +
		`(if (> n 1) {(layer ReLU ())} else (if (== n 1) {(layer GeLU ())} else {(layer SiLU ())})) ` +
		`(if on {(layer ReLU ())})}) ` +
		`(adapter LoRA ((target Linear) (rank int 4)) {(layer Linear (rank rank))}))`
	if got := dump(f); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// The else branches keep their concrete types.
	ifs := f.Decls[0].Body.Stmts[10].(*IfStmt)
	elseIf, ok := ifs.Else.(*IfStmt)
	if !ok {
		t.Fatalf("else if: got %T", ifs.Else)
	}
	if _, ok := elseIf.Else.(*Block); !ok {
		t.Fatalf("else: got %T", elseIf.Else)
	}
	if ifs := f.Decls[0].Body.Stmts[11].(*IfStmt); ifs.Else != nil {
		t.Errorf("if without else: Else = %T", ifs.Else)
	}
	if m := f.Decls[1]; !m.IsAdapter || m.Params[0].Default != nil {
		t.Errorf("adapter: IsAdapter=%v target default=%v", m.IsAdapter, m.Params[0].Default)
	}
	if r := f.Decls[0].Body.Stmts[8].(*RepeatStmt); r.Var != "" {
		t.Errorf("repeat without var: Var=%q", r.Var)
	}
}

func TestModelWithoutParens(t *testing.T) {
	f, err := ParseFile("m.rfn", []byte("model M {\n    ReLU()\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(Format(f)); got != "model M() {\n    ReLU()\n}\n" {
		t.Errorf("got %q", got)
	}
}

func TestPositions(t *testing.T) {
	src := "model M(c: int = 4) {\n\tConv2d(c, c * 2) key \"x\"\n    let y = -(c + 1)\n}\n"
	f, err := ParseFile("p.rfn", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m := f.Decls[0]
	layer := m.Body.Stmts[0].(*LayerStmt)
	let := m.Body.Stmts[1].(*LetStmt)
	neg := let.Value.(*UnaryExpr)
	mul := layer.Args[1].Value.(*BinaryExpr)
	check := func(what string, got Pos, line, col int) {
		t.Helper()
		if got.Filename != "p.rfn" || got.Line != line || got.Column != col {
			t.Errorf("%s: got %s, want p.rfn:%d:%d", what, got, line, col)
		}
		if got.Offset != offsetOf(src, line, col) {
			t.Errorf("%s: offset %d does not match %d:%d", what, got.Offset, line, col)
		}
	}
	check("model", m.Pos, 1, 1)
	check("model end", m.EndPos, 4, 2)
	check("model name", m.NamePos, 1, 7)
	check("param", m.Params[0].Pos, 1, 9)
	check("param end", m.Params[0].EndPos, 1, 19)
	check("param type", m.Params[0].TypePos, 1, 12)
	check("lparen", m.Lparen, 1, 8)
	check("rparen", m.Rparen, 1, 19)
	check("body", m.Body.Pos, 1, 21)
	check("layer", layer.Pos, 2, 2)
	check("layer end", layer.EndPos, 2, 26)
	check("layer lparen", layer.Lparen, 2, 8)
	check("layer rparen", layer.Rparen, 2, 17)
	check("key", layer.Key.Start(), 2, 23)
	check("arg", layer.Args[1].Pos, 2, 12)
	check("mul", mul.Pos, 2, 12)
	check("mul op", mul.OpPos, 2, 14)
	check("mul end", mul.EndPos, 2, 17)
	check("let", let.Pos, 3, 5)
	check("neg", neg.Pos, 3, 13)
	check("neg end", neg.EndPos, 3, 21)
	check("paren", neg.X.Start(), 3, 14)
}

func offsetOf(src string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		off += strings.IndexByte(src[off:], '\n') + 1
	}
	return off + col - 1
}

func TestErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"model M() {\n    let x = \n}\n", "e.rfn:2:13: unexpected newline, expected an expression"},
		{"model M() {\n    let x = a b\n}\n", `e.rfn:2:15: unexpected "b", expected a newline or ";" (one statement per line)`},
		{"model M() {\n    Linear(3, 4) ReLU()\n}\n", `e.rfn:2:18: unexpected "ReLU", expected a newline or ";" (one statement per line)`},
		{"model M() {\n    Linear(3 4)\n}\n", `e.rfn:2:14: unexpected number 4, expected "," or ")"`},
		{"model M() {\n    Linear(3, 4\n}\n", `e.rfn:3:1: unexpected "}", expected "," or ")" to close the "(" at 2:11`},
		{"model M() {\n    let x = f(1,\n}\n", `e.rfn:3:1: unexpected "}", expected an expression or ")" to close the "(" at 2:14`},
		{"model M() {\n    let x = (a + b\n}\n", `e.rfn:3:1: unexpected "}", expected ")" to close the "(" at 2:13`},
		{"model M() {\n    ReLU\n}\n", "e.rfn:2:5: layer ReLU needs parentheses: write ReLU() (they may be left out only before a block)"},
		{"model M( {\n}\n", `e.rfn:1:10: unexpected "{", expected a parameter or ")"`},
		{"model M(a int) {\n}\n", `e.rfn:1:11: unexpected "int", expected ":"`},
		{"model M() {\n    input x: f32\n}\n", `e.rfn:2:17: unexpected newline, expected "[" and the input's dimensions`},
		{"model M() {\n    repeat { ReLU() }\n}\n", `e.rfn:2:12: unexpected "{", expected an expression`},
		{"model M() {\n    if a\n    {\n    }\n}\n", `e.rfn:2:9: unexpected newline, expected "{" (a block's "{" goes on the line of its header)`},
		{"model M() {\n    if a { ReLU() }\n    else { ReLU() }\n}\n", `e.rfn:3:5: unexpected "else": write it on the line of the "}" that closes the if block (} else {)`},
		{"model M() {\n    let 3 = 4\n}\n", "e.rfn:2:9: unexpected number 3, expected a name"},
		{"model M() {\n    let model = 4\n}\n", `e.rfn:2:9: unexpected "model", expected a name ("model" is a reserved word)`},
		{"model M() {\n    Linear(a=1, 2)\n}\n", "e.rfn:2:17: positional argument after a keyword argument in Linear(…)"},
		{"model M() {\n    Linear(a + 1=2)\n}\n", "e.rfn:2:12: a keyword argument needs a name before '=', not a + 1 (write == to compare)"},
		{"model M() {\n    Linear(1,,2)\n}\n", `e.rfn:2:14: unexpected ",", expected an argument`},
		{"model M() {\n    repeat 2 + i in 3 { }\n}\n", "e.rfn:2:12: the loop variable of repeat must be a name, not 2 + i"},
		{"model M() {\n    let x = a < b < c\n}\n", "e.rfn:2:19: comparisons cannot be chained: write `a < b and b < c`"},
		{"model M() {\n    ReLU()\n", `e.rfn:3:1: unexpected end of file, expected "}"`},
		{"model M() {\n}\n}\n", `e.rfn:3:1: unexpected "}", expected a model, adapter or import declaration`},
		{"foo()\n", `e.rfn:1:1: unexpected "foo", expected a model, adapter or import declaration`},
		{"model {\n}\n", `e.rfn:1:7: unexpected "{", expected a name`},
		{"import x\n", `e.rfn:1:8: unexpected "x", expected a string`},
		{"model M() : {\n}\n", `e.rfn:1:13: unexpected "{", expected a name`},
		{"model M() {\n    ReLU() key\n}\n", "e.rfn:2:15: unexpected newline, expected a key"},
		{"model M() {\n    let x = \"abc\n}\n", "e.rfn:2:13: string literal not terminated"},
		{"model M() {\n    let x = \"a\\qb\"\n}\n", `e.rfn:2:13: invalid escape sequence in string literal "a\qb"`},
		{"model M() {\n    let x = 3 $ 4\n}\n", "e.rfn:2:15: unexpected character '$'"},
		{"model M() {\n    let x = !a\n}\n", "e.rfn:2:13: unexpected character '!' (write `not x` or `a != b`)"},
		{"model M() {\n    let x = é\n}\n", `e.rfn:2:13: unexpected character 'é'`},
		{"model M() {\n    let x = 007\n}\n", "e.rfn:2:13: integer literal 007 has leading zeros"},
		{"model M() {\n    let x = 3abc\n}\n", `e.rfn:2:13: malformed number "3abc"`},
		{"model M() {\n    let x = 1e999\n}\n", "e.rfn:2:13: float literal 1e999 is out of range"},
		{"model M() {\n    let x = 9223372036854775808\n}\n", "e.rfn:2:13: integer literal 9223372036854775808 is too large (the limit is 9223372036854775807)"},
		{"model M() {\n    let x = a.b\n}\n", "e.rfn:2:14: unexpected character '.'"},
		{"model M() {\n    let x = \xff\n}\n", "e.rfn:2:13: invalid UTF-8 encoding"},
		{"model M() {\n    Linear(1, 2; 3)\n}\n", `e.rfn:2:16: unexpected ";", expected "," or ")"`},
		{"model M() {\n\tlet x = 1 +\n}\n", "e.rfn:2:13: unexpected newline, expected an expression"},
		{"", ""},
		{"# only a comment", ""},
	}
	for _, tt := range tests {
		_, err := ParseFile("e.rfn", []byte(tt.src))
		got := ""
		if err != nil {
			got = err.Error()
			var perr *Error
			if !errors.As(err, &perr) {
				t.Errorf("%q: error is %T, want *Error", tt.src, err)
			}
		}
		if got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestLimits(t *testing.T) {
	tests := []struct{ src, want string }{
		{"model M() {\n    let x = " + strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200) + "\n}\n",
			"brackets nested too deeply (the limit is 100 levels)"},
		{"model M() {\n    let x = " + strings.Repeat("-", 200) + "1\n}\n",
			"too many consecutive unary operators (the limit is 100)"},
		{"model M() {\n    let x = " + strings.Repeat("not ", 200) + "a\n}\n",
			"too many consecutive unary operators (the limit is 100)"},
		{"model M() {\n    let x = 2" + strings.Repeat(" ** 2", 300) + "\n}\n",
			"too many ** operators in one statement (the limit is 200)"},
		{"model M() {\n    let x = 1" + strings.Repeat(" + 1", 2000) + "\n}\n",
			"expression nested too deeply (the limit is 1000 levels)"},
		{"model M() {\n    if a {}" + strings.Repeat(" else if a {}", 600) + "\n}\n",
			"too many else-if branches (the limit is 500)"},
	}
	for _, tt := range tests {
		_, err := ParseFile("l.rfn", []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%.40q…: got %v, want %q", tt.src, err, tt.want)
		}
	}
	// Just under the limits still parses.
	ok := "model M() {\n    let x = " + strings.Repeat("(", 99) + "1" + strings.Repeat(")", 99) +
		" + " + strings.Repeat("-", 100) + "1\n}\n"
	if _, err := ParseFile("l.rfn", []byte(ok)); err != nil {
		t.Errorf("within limits: %v", err)
	}
}

func TestCaret(t *testing.T) {
	src := []byte("model M() {\n\t\tlet x = é + $\n}\n")
	_, err := ParseFile("c.rfn", src)
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("got %v", err)
	}
	want := "\t\tlet x = é + $\n\t\t        ^"
	if got := Caret(src, perr.Pos); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Without an offset the line number is used; a column past the end of
	// the line still gets its caret; the last line may lack a newline.
	if got := Caret([]byte("a\nbc"), Pos{Line: 2, Column: 4, Offset: -1}); got != "bc\n   ^" {
		t.Errorf("got %q", got)
	}
	if got := Caret([]byte("ab\r\ncd\r\n"), Pos{Line: 2, Column: 2, Offset: 5}); got != "cd\n ^" {
		t.Errorf("CRLF: got %q", got)
	}
}

// TestOldSlashComments pins the rule by which ParseOldComments tells floor division from a
// comment in files written before `#` comments, and that it converts the comments.
func TestOldSlashComments(t *testing.T) {
	tests := []struct {
		line     string // a statement inside a model body
		stmt     string // its dump
		comments []string
	}{
		{"let n = size // patch", "(let n (// size patch))", nil},
		{"let n = (a + b) // 2", "(let n (// (paren (+ a b)) 2))", nil},
		{"let n = f(a) // 2", "(let n (// (call f a) 2))", nil},
		{"let n = a // -2", "(let n (// a (- 2)))", nil},
		{"let h = d * 4 // hidden size", "(let h (* d 4))", []string{"// hidden size"}},
		{"let h = d * 4 // see: paper", "(let h (* d 4))", []string{"// see: paper"}},
		{"let h = d * 4 // don't", "(let h (* d 4))", []string{"// don't"}},
		{"let h = d * 4 // the model", "(let h (* d 4))", []string{"// the model"}},
		{"let h = d * 4 // in channels", "(let h (* d 4))", []string{"// in channels"}},
		{"let h = d * 4 // d if odd", "(let h (* d 4))", []string{"// d if odd"}},
		{"let h = d * 4 // d (doubled)", "(let h (* d 4))", []string{"// d (doubled)"}},
		{"let h = d * 4 // not used", "(let h (* d 4))", []string{"// not used"}},
		{"let h = d * 4 // x key", "(let h (* d 4))", []string{"// x key"}},
		{"let h = d * 4 // 3x3", "(let h (* d 4))", []string{"// 3x3"}},
		{"let h = d * 4 // -> out", "(let h (* d 4))", []string{"// -> out"}},
		{"let h = d * 4 // a, b: c", "(let h (* d 4))", []string{"// a, b: c"}},
		{"let h = a // b and c", "(let h (and (// a b) c))", nil},
		{"let h = a // f(b) + [1, 2]", "(let h (+ (// a (call f b)) [1 2]))", nil},
		{"let h = a // f(b) + [1][0]", "(let h a)", []string{"// f(b) + [1][0]"}},
		{"let h = d * 4 //", "(let h (* d 4))", []string{"//"}},
		{"let h = d * 4 //x", "(let h (// (* d 4) x))", nil},
		{"let h = a // 2 // half of it", "(let h (// a 2))", []string{"// half of it"}},
		{`let s = "a" // b`, `(let s "a")`, []string{"// b"}},
		{"let b = true // x", "(let b true)", []string{"// x"}},
		{"Linear(3, 4) // project", "(layer Linear (3 4))", []string{"// project"}},
		{"Linear(3, 4) // x", "(layer Linear (3 4))", []string{"// x"}},
		{"Linear(c // 2, 4)", "(layer Linear ((// c 2) 4))", nil},
		{"Linear(c, 4 // 2)", "(layer Linear (c (// 4 2)))", nil},
		{"Conv2d(c, c, 3) key \"0\" // conv", "(layer Conv2d (c c 3) key \"0\")", []string{"// conv"}},
		{"Conv2d(c) key i // 2", "(layer Conv2d (c) key (// i 2))", nil},
		{"input x: f32[b, s // 2] // image", "(input x f32 b (// s 2))", []string{"// image"}},
		{"repeat n // 2 { ReLU() }", "(repeat (// n 2) {(layer ReLU ())})", nil},
		{"if n // 2 > 1 { ReLU() } // big", "(if (> (// n 2) 1) {(layer ReLU ())})", []string{"// big"}},
		{"Residual { // skip", "", nil}, // a block opener: checked below
	}
	for _, tt := range tests {
		if tt.stmt == "" {
			continue
		}
		src := "model M() {\n    " + tt.line + "\n}\n"
		f, err := ParseOldComments("s.rfn", []byte(src))
		if err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		if got := dump(f.Decls[0].Body.Stmts[0]); got != tt.stmt {
			t.Errorf("%s:\n got %s\nwant %s", tt.line, got, tt.stmt)
		}
		var comments, want []string
		for _, c := range f.Comments {
			comments = append(comments, c.Text)
		}
		for _, c := range tt.comments {
			want = append(want, "#"+strings.TrimPrefix(c, "//"))
		}
		if strings.Join(comments, "|") != strings.Join(want, "|") {
			t.Errorf("%s: comments %q, want %q", tt.line, comments, want)
		}
	}
	// In parameter lists: after a comma `//` is always a comment; before
	// another parameter or `) : Base` it is an operator.
	for _, tt := range []struct{ src, model, comments string }{
		{"model M(\n    a: int = 3, // three\n    b: int = a // 2\n) {\n    ReLU() // x\n}\n",
			"(model M ((a int 3) (b int (// a 2))) {(layer ReLU ())})", "// three\n// x\n"},
		{"model M(a: int = 8 // 2, b: int = 3) {}\n", "(model M ((a int (// 8 2)) (b int 3)) {})", ""},
		{"model M(a: int = 8 // 2) : Residual {}\n", "(model M ((a int (// 8 2))) :Residual {})", ""},
		{"model M(a: int // the width\n) {}\n", "(model M ((a int)) {})", "// the width\n"},
	} {
		f, err := ParseOldComments("s.rfn", []byte(tt.src))
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if got := dump(f.Decls[0]); got != tt.model {
			t.Errorf("%q: got %s, want %s", tt.src, got, tt.model)
		}
		if got := commentTexts(f); got != strings.ReplaceAll(tt.comments, "//", "#") {
			t.Errorf("%q: comments %q, want %q", tt.src, got, tt.comments)
		}
	}
}

// TestSlashIsDivision: `//` is floor division wherever it stands, and an old file's `//`
// comment is an error that says how to convert it.
func TestSlashIsDivision(t *testing.T) {
	for _, tt := range []struct{ line, stmt string }{
		{"let h = d * 4 // x", "(let h (// (* d 4) x))"},
		{"let s = a // b # note", "(let s (// a b))"},
		{"Conv2d(c) key i // 2", "(layer Conv2d (c) key (// i 2))"},
	} {
		f, err := ParseFile("s.rfn", []byte("model M() {\n    "+tt.line+"\n}\n"))
		if err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		if got := dump(f.Decls[0].Body.Stmts[0]); got != tt.stmt {
			t.Errorf("%s: got %s, want %s", tt.line, got, tt.stmt)
		}
	}
	_, err := ParseFile("old.rfn", []byte("// a comment of old\nmodel M() {\n    ReLU()\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "old.rfn:1:1:") || !strings.Contains(err.Error(), "rfc fmt old.rfn") {
		t.Errorf("old comment: got %v, want a positioned error with the rfc fmt hint", err)
	}
	// A file in today's syntax gets no hint.
	_, err = ParseFile("new.rfn", []byte("model M() {\n    ReLU() )\n}\n"))
	if err == nil || strings.Contains(err.Error(), "rfc fmt") {
		t.Errorf("new file: got %v, want an error without the hint", err)
	}
}

func TestComments(t *testing.T) {
	src := "# a\nmodel M() { # b\n    ReLU()   # c  \t\n}\n# d"
	f, err := ParseFile("c.rfn", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range f.Comments {
		got = append(got, c.Text+"@"+c.Pos.String()+"-"+c.EndPos.String())
	}
	want := []string{"# a@c.rfn:1:1-c.rfn:1:4", "# b@c.rfn:2:13-c.rfn:2:16", "# c@c.rfn:3:14-c.rfn:3:17", "# d@c.rfn:5:1-c.rfn:5:4"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestSeparators(t *testing.T) {
	// Semicolons, CRLF line ends, blank lines and a missing final newline.
	src := "import \"a.rfn\"; model M() { ReLU(); GeLU() }\r\n\r\n\r\nmodel N() {\r\n    ReLU()\r\n}"
	f, err := ParseFile("s.rfn", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := `(file (import "a.rfn") (model M () {(layer ReLU ()) (layer GeLU ())}) (model N () {(layer ReLU ())}))`
	if got := dump(f); got != want {
		t.Errorf("got %s", got)
	}
}

func TestConditionalAndIndex(t *testing.T) {
	for _, tt := range []struct{ line, stmt, formatted string }{
		{"let a = x if c else y", "(let a (ifelse x c y))", ""},
		{"let a = x + 1 if c or d else y * 2", "(let a (ifelse (+ x 1) (or c d) (* y 2)))", ""},
		{"let a = x if c else y if d else z", "(let a (ifelse x c (ifelse y d z)))", ""},
		{"let a = (x if c else y) + 1", "(let a (+ (paren (ifelse x c y)) 1))", ""},
		{"let a = not x if c else y", "(let a (ifelse (not x) c y))", ""},
		{"let a = xs[0]", "(let a (index xs 0))", ""},
		{"let a = xs[i - 1] * 2", "(let a (* (index xs (- i 1)) 2))", ""},
		{"let a = xs[1:]", "(let a (index xs 1 _ slice))", ""},
		{"let a = xs[:-1][0]", "(let a (index (index xs _ (- 1) slice) 0))", ""},
		{"let a = xs[:]", "(let a (index xs _ _ slice))", ""},
		{"let a = [1, 2, 3][len(xs)] ** 2", "(let a (** (index [1 2 3] (call len xs)) 2))", ""},
		{"let a = -xs[0]", "(let a (- (index xs 0)))", ""},
		{"let a = xs[ 1 : 2 ]", "(let a (index xs 1 2 slice))", "let a = xs[1:2]"},
		{"Linear(c[0], c[1] if big else 4) key names[i]", "(layer Linear ((index c 0) (ifelse (index c 1) big 4)) key (index names i))", ""},
		{"repeat c in channels[1:] { ReLU() }", "(repeat c in (index channels 1 _ slice) {(layer ReLU ())})", "repeat c in channels[1:] {\n        ReLU()\n    }"},
	} {
		src := "model M() {\n    " + tt.line + "\n}\n"
		f, err := ParseFile("s.rfn", []byte(src))
		if err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		if got := dump(f.Decls[0].Body.Stmts[0]); got != tt.stmt {
			t.Errorf("%s:\n got %s\nwant %s", tt.line, got, tt.stmt)
		}
		want := tt.formatted
		if want == "" {
			want = tt.line
		}
		if got := string(Format(f)); got != "model M() {\n    "+want+"\n}\n" {
			t.Errorf("%s: formatted as\n%s", tt.line, got)
		}
	}
	for _, bad := range []string{"let a = x if c", "let a = xs[]", "let a = xs[1 2]", "let a = x if c else"} {
		if _, err := ParseFile("s.rfn", []byte("model M() {\n    "+bad+"\n}\n")); err == nil {
			t.Errorf("%s: parsed, want an error", bad)
		}
	}
}

func TestListParams(t *testing.T) {
	src := "model M(channels: [int] = [320, 640], eps: [float] = [], n: int = len(channels)) {\n    ReLU()\n}\n"
	f, err := ParseFile("s.rfn", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dump(f.Decls[0]), "(model M ((channels [int] [320 640]) (eps [float] []) (n int (call len channels))) {(layer ReLU ())})"; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if got := string(Format(f)); got != src {
		t.Errorf("formatted as\n%s", got)
	}
}

func TestLayoutKeys(t *testing.T) {
	src := `model M(i: int = 1) : Residual key ldm="model.diffusion_model", diffusers="" {
    Conv2d(4, 4, 3) key "0", ldm="input_blocks." + str(i), diffusers="conv_in" {
    }
    Linear(3, 4) key ldm="emb_layers.1"
    ReLU()
}
`
	src = strings.Replace(src, " {\n    }\n", "\n", 1)
	f, err := ParseFile("k.rfn", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := `(model M ((i int 1)) :Residual key ldm="model.diffusion_model" key diffusers="" {(layer Conv2d (4 4 3) key "0" key ldm=(+ "input_blocks." (call str i)) key diffusers="conv_in") (layer Linear (3 4) key ldm="emb_layers.1") (layer ReLU ())})`
	if got := dump(f.Decls[0]); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := string(Format(f)); got != src {
		t.Errorf("formatted as\n%s", got)
	}
	for _, tt := range []struct{ line, msg string }{
		{`ReLU() key ldm="a", "b"`, "the unnamed key comes first"},
		{`ReLU() key ldm="a", ldm="b"`, "layout ldm has two keys here"},
		{`ReLU() key "a" + "b"="c"`, "a layout key needs a layout name"},
		{`ReLU() key ldm="a",`, "expected"},
	} {
		_, err := ParseFile("k.rfn", []byte("model M {\n    "+tt.line+"\n}\n"))
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: got %v, want %q", tt.line, err, tt.msg)
		}
	}
}

func TestModelBaseArgs(t *testing.T) {
	src := "model TokenEncoder(n: int = 10, d: int = 4) : Embedding(num_embeddings=n, embedding_dim=d) key diffusers=\"token_embedding\" {}\n\nmodel Cat() : Concatenate(1) {\n    ReLU()\n}\n"
	f, err := ParseFile("b.rfn", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := `(model TokenEncoder ((n int 10) (d int 4)) :Embedding(num_embeddings=n embedding_dim=d) key diffusers="token_embedding" {})`
	if got := dump(f.Decls[0]); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := string(Format(f)); got != src {
		t.Errorf("formatted as\n%s", got)
	}
}
