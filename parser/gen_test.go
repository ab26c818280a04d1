package parser

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// gen writes random but well-formed .rfn text with random layout: blank
// lines, lists broken over lines, semicolons, and comments wherever the
// syntax lets a line end (some of them holding `//`, which is division
// outside a comment).
type gen struct {
	r     *rand.Rand
	b     strings.Builder
	depth int
}

var genComments = []string{
	"# note", "# x", "# 2", "# the model", "# hidden size", "# see: paper",
	"# a // b", "#", "# (b, c)", "# -1", "# key", "# é ünïcode", "#x+y", "## twice", "#// old",
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) w(s string) { g.b.WriteString(s) }

func (g *gen) comment() string { return genComments[g.r.IntN(len(genComments))] }

// eol ends a line, sometimes with a comment, sometimes with blank lines.
func (g *gen) eol() {
	if g.chance(0.3) {
		g.w(g.pick(" ", "   ", "\t") + g.comment())
	}
	g.w(g.pick("\n", "\n", "\n", "\r\n", "\n\n", "\n\n\n"))
	if g.chance(0.15) {
		g.w(strings.Repeat("  ", g.r.IntN(4)) + g.comment() + "\n")
	}
}

func (g *gen) name() string {
	return g.pick("a", "b", "size", "dim", "c_in", "x1", "_k")
}

func (g *gen) expr(d int) string {
	if d > 3 || g.chance(0.3) {
		switch g.r.IntN(7) {
		case 0:
			return g.pick("0", "1", "64", "9223372036854775807")
		case 1:
			return g.pick("1e-5", "0.5", "3.", ".25", "2E3")
		case 2:
			return g.pick(`"x"`, `"a\tb"`, `""`, `"é"`)
		case 3:
			return g.pick("true", "false")
		default:
			return g.name()
		}
	}
	switch g.r.IntN(11) {
	case 9:
		// A conditional binds loosest: parenthesised as an operand.
		return "(" + g.expr(d+1) + " if " + g.expr(d+1) + " else " + g.expr(d+1) + ")"
	case 10:
		return g.name() + g.pick("["+g.expr(d+1)+"]", "["+g.expr(d+1)+":]", "[:"+g.expr(d+1)+"]", "[:]", "[0][1]")
	case 0:
		return "-" + g.expr(d+1)
	case 1:
		// `not` binds loosely: an operand of another operator needs parens.
		return "(not " + g.expr(d+1) + ")"
	case 2:
		switch g.r.IntN(10) {
		case 0: // comments inside a parenthesised expression
			return "(" + g.expr(d+1) + " +" + g.pick(" ", "\n") + g.comment() + "\n" + g.expr(d+1) + ")"
		case 1:
			return "(" + g.pick(" ", "\n") + g.comment() + "\n" + g.expr(d+1) + ")"
		case 2:
			return "(" + g.expr(d+1) + "\n" + g.comment() + "\n)"
		}
		return "(" + g.expr(d+1) + ")"
	case 3:
		return g.pick("min", "max", "int", "f") + g.list("(", ")", func() string { return g.expr(d + 1) })
	case 4:
		return g.list("[", "]", func() string { return g.expr(d + 1) })
	case 5:
		// Comparisons do not chain: give them operands of higher precedence.
		return "(" + g.expr(d+1) + ")" + g.pick(" == ", " != ", "<", " <= ", " > ", ">=") + "(" + g.expr(d+1) + ")"
	case 6:
		return g.pick(g.name(), "7", "(a + 1)") + g.pick(" // ", "//") + g.pick(g.name(), "2", "-3", "(b)", "f(c)")
	default:
		return g.expr(d+1) + g.pick(" + ", "-", " * ", " / ", "%", " ** ", " and ", " or ") + g.expr(d+1)
	}
}

// list writes a bracketed list, sometimes broken over lines with comments
// after commas and on their own lines.
func (g *gen) list(open, close string, item func() string) string {
	n := g.r.IntN(4)
	if !g.chance(0.3) {
		var parts []string
		for range n {
			parts = append(parts, item())
		}
		s := open + strings.Join(parts, g.pick(", ", ",")) + close
		if n > 0 && g.chance(0.1) {
			s = open + strings.Join(parts, ", ") + "," + close
		}
		return s
	}
	var b strings.Builder
	b.WriteString(open)
	if g.chance(0.3) {
		b.WriteString(" " + g.comment())
	}
	b.WriteString("\n")
	for i := range n {
		if g.chance(0.2) {
			b.WriteString(g.comment() + "\n")
		}
		b.WriteString("  " + item())
		if i < n-1 || g.chance(0.5) {
			b.WriteString(",")
			if g.chance(0.3) {
				b.WriteString(" " + g.comment())
			}
		}
		b.WriteString("\n")
	}
	if g.chance(0.2) {
		b.WriteString(g.comment() + "\n")
	}
	b.WriteString(close)
	return b.String()
}

func (g *gen) block() {
	g.w(" {")
	g.depth++
	if g.chance(0.2) {
		g.w(" " + g.comment())
	}
	g.w("\n")
	n := g.r.IntN(4)
	if g.depth > 3 {
		n = g.r.IntN(2)
	}
	for range n {
		g.stmt()
	}
	g.depth--
	g.w("}")
}

func (g *gen) stmt() {
	g.w(strings.Repeat("    ", g.depth))
	switch g.r.IntN(8) {
	case 0:
		g.w("input " + g.name() + ": " + g.pick("f32", "i64") + g.list("[", "]", func() string { return g.expr(1) }))
	case 1:
		g.w("let " + g.name() + " = " + g.expr(0))
	case 2:
		g.w("repeat ")
		if g.chance(0.5) {
			g.w(g.name() + " in ")
		}
		g.w(g.expr(1))
		g.block()
	case 3:
		g.w("if " + g.expr(1))
		g.block()
		for g.chance(0.3) {
			g.w(" else if " + g.expr(1))
			g.block()
		}
		if g.chance(0.4) {
			g.w(" else")
			g.block()
		}
	default:
		g.w(g.pick("Linear", "ReLU", "Chain", "Residual", "Conv2d"))
		hasBlock := g.depth < 4 && g.chance(0.3)
		if !hasBlock || g.chance(0.5) {
			named := false
			g.w(g.list("(", ")", func() string {
				if named || g.chance(0.3) {
					named = true
					return g.name() + g.pick("=", " = ", "= "+g.comment()+"\n") + g.expr(1)
				}
				return g.expr(1)
			}))
		}
		if g.chance(0.3) {
			g.w(" key " + g.expr(1))
		}
		if hasBlock {
			g.block()
		}
	}
	if g.chance(0.1) {
		g.w(";")
		if g.chance(0.5) {
			g.w(" ")
			g.stmtInline()
		}
	}
	g.eol()
}

// stmtInline writes a simple statement after a ';'.
func (g *gen) stmtInline() {
	if g.chance(0.5) {
		g.w("ReLU()")
	} else {
		g.w("let z = " + g.expr(2))
	}
}

func (g *gen) file() string {
	if g.chance(0.3) {
		g.w(g.comment() + "\n")
	}
	if g.chance(0.3) {
		g.w(`import "a.rfn"`)
		g.eol()
	}
	for range 1 + g.r.IntN(3) {
		g.w(g.pick("model ", "adapter ") + g.pick("M", "Block", "LoRA"))
		g.w(g.list("(", ")", func() string {
			s := g.name() + ": " + g.pick("int", "float", "Linear")
			if g.chance(0.8) {
				s += " = " + g.expr(1)
			}
			return s
		}))
		if g.chance(0.2) {
			g.w(" : Residual")
		}
		g.block()
		g.eol()
	}
	return g.b.String()
}

func TestGeneratedRoundTrip(t *testing.T) {
	parsed := 0
	const n = 400
	for seed := range uint64(n) {
		g := &gen{r: rand.New(rand.NewPCG(seed, 7))}
		src := g.file()
		f, err := ParseFile("g.rfn", []byte(src))
		if err != nil {
			// The generator can nest an expression too deeply or chain
			// comparisons; anything else is a parser bug.
			if !strings.Contains(err.Error(), "the limit is") && !strings.Contains(err.Error(), "cannot be chained") {
				t.Fatalf("seed %d: %v\nsource:\n%s", seed, err, src)
			}
			continue
		}
		parsed++
		if msg := checkRoundTrip("g.rfn", []byte(src)); msg != "" {
			t.Fatalf("seed %d: %s\nsource:\n%s", seed, msg, src)
		}
		// Every `//` of the text is an operator or inside a comment.
		inComments := 0
		for _, c := range f.Comments {
			inComments += strings.Count(c.Text, "//")
		}
		if got, want := inComments+countSlashOps(f), strings.Count(src, "//"); got != want {
			t.Fatalf("seed %d: %d `//` accounted for, want %d\nsource:\n%s", seed, got, want, src)
		}
	}
	if parsed < n*9/10 {
		t.Errorf("only %d of %d generated files parsed", parsed, n)
	}
}

// countSlashOps counts the floor divisions in f.
func countSlashOps(f *File) int {
	n := 0
	var expr func(Expr)
	expr = func(e Expr) {
		for _, c := range children(e) {
			expr(c)
		}
		if b, ok := e.(*BinaryExpr); ok && b.Op == "//" {
			n++
		}
	}
	var block func(*Block)
	stmt := func(s Stmt) {
		switch s := s.(type) {
		case *InputStmt:
			for _, d := range s.Dims {
				expr(d)
			}
		case *LetStmt:
			expr(s.Value)
		case *LayerStmt:
			for _, a := range s.Args {
				expr(a.Value)
			}
			if s.Key != nil {
				expr(s.Key)
			}
			if s.Body != nil {
				block(s.Body)
			}
		case *RepeatStmt:
			expr(s.Count)
			block(s.Body)
		case *IfStmt:
			for s != nil {
				expr(s.Cond)
				block(s.Then)
				switch e := s.Else.(type) {
				case *Block:
					block(e)
					s = nil
				case *IfStmt:
					s = e
				default:
					s = nil
				}
			}
		}
	}
	block = func(b *Block) {
		for _, s := range b.Stmts {
			stmt(s)
		}
	}
	for _, m := range f.Decls {
		for _, p := range m.Params {
			if p.Default != nil {
				expr(p.Default)
			}
		}
		block(m.Body)
	}
	return n
}
