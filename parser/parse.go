package parser

import (
	"fmt"
	"strconv"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// ParseFile parses one .rfn file. On failure it returns a nil *File and an
// *Error that points at the first problem.
//
// Comments start with `#`. Files written before `#` used `//` for comments
// too; when such a file fails to parse, the error says how to convert it
// (`rfc fmt`, see ParseOldComments).
func ParseFile(filename string, src []byte) (f *File, err error) {
	defer func() {
		// Last line of defence: a bug must show up as an error, not a crash.
		if r := recover(); r != nil {
			f = nil
			err = &Error{Pos: Pos{Filename: filename, Line: 1, Column: 1},
				Msg: fmt.Sprintf("internal parser error: %v", r)}
		}
	}()
	p, berr := fileParser()
	if berr != nil {
		return nil, fmt.Errorf("building the grammar: %w", berr)
	}
	f, perr, _, _ := parseOnce(p, filename, src, false, nil)
	if perr != nil {
		if old, oerr := parseOld(p, filename, src); oerr == nil && hasSlashComment(old) {
			perr.Msg += " (comments start with #, and // is floor division: `rfc fmt " + filename + "` converts // comments)"
		}
		return nil, perr
	}
	return f, nil
}

// parseOnce lexes and parses src; with legacy set, `//` may start a comment
// and the `//` at the offsets in forced are read as comments. syntaxErr tells a lexer or grammar error (which a different
// reading of an ambiguous `//` may cure) from a later check's.
func parseOnce(p *participle.Parser[gFile], filename string, src []byte, legacy bool, forced map[int]bool) (f *File, perr *Error, syntaxErr bool, ambiguous []Pos) {
	res := scan(filename, src, legacy, forced)
	if res.err != nil {
		return nil, res.err, true, res.ambiguous
	}
	peek, err := lexer.Upgrade(&sliceLexer{toks: res.toks})
	if err != nil {
		return nil, &Error{Pos: Pos{Filename: filename, Line: 1, Column: 1}, Msg: err.Error()}, false, res.ambiguous
	}
	g, err := p.ParseFromLexer(peek)
	if err != nil {
		return nil, translateError(filename, res.toks, err), true, res.ambiguous
	}
	c := &converter{filename: filename}
	f = c.file(g)
	if c.err != nil {
		return nil, c.err, false, res.ambiguous
	}
	f.Name = filename
	f.Src = src
	f.Comments = res.comments
	return f, nil, false, res.ambiguous
}

type converter struct {
	filename string
	err      *Error
	depth    map[Expr]int
}

func (c *converter) fail(p Pos, format string, args ...any) {
	if c.err == nil {
		c.err = &Error{Pos: p, Msg: fmt.Sprintf(format, args...)}
	}
}

// span returns the start and end positions of a token range; End is just
// after the last token.
func span(toks []lexer.Token) (Pos, Pos) {
	if len(toks) == 0 {
		return Pos{}, Pos{}
	}
	first, last := toks[0], toks[len(toks)-1]
	for len(toks) > 1 && last.Type == tokSep && last.Value == "" {
		toks = toks[:len(toks)-1]
		last = toks[len(toks)-1]
	}
	end := Pos(last.Pos)
	end.Offset += len(last.Value)
	end.Column += len(last.Value)
	return Pos(first.Pos), end
}

func tokPos(t lexer.Token) Pos { return Pos(t.Pos) }

func (c *converter) file(g *gFile) *File {
	f := &File{}
	for _, d := range g.Decls {
		switch {
		case d.Import != nil:
			start, end := span(d.Import.Tokens)
			path, err := strconv.Unquote(d.Import.Path)
			if err != nil {
				c.fail(tokPos(d.Import.Tokens[1]), "invalid import path %s", d.Import.Path)
			}
			f.Imports = append(f.Imports, &Import{Pos: start, EndPos: end, Path: path, PathPos: tokPos(d.Import.Tokens[1])})
		case d.Model != nil:
			f.Decls = append(f.Decls, c.model(d.Model))
		}
	}
	return f
}

func (c *converter) model(g *gModel) *Model {
	m := &Model{IsAdapter: g.Kind == "adapter", Name: g.Name, NamePos: tokPos(g.Tokens[1])}
	m.Pos, m.EndPos = span(g.Tokens)
	if g.Params != nil {
		m.Lparen, _ = span(g.Params.Tokens[:1])
		m.Rparen, _ = span(g.Params.Tokens[len(g.Params.Tokens)-1:])
		var params []*gParam
		if g.Params.First != nil {
			params = append(params, g.Params.First)
		}
		for k, t := range g.Params.Rest {
			if t.Param != nil {
				params = append(params, t.Param)
			} else if k+1 < len(g.Params.Rest) {
				c.missingElement(g.Params.Rest[k+1].Tokens[0], "a parameter")
			}
		}
		for _, gp := range params {
			typ := gp.Type.Name
			if gp.Type.List != "" {
				typ = "[" + gp.Type.List + "]"
			}
			p := &Param{Name: gp.Name, Type: typ, TypePos: tokPos(gp.Type.Tokens[0])}
			p.Pos, p.EndPos = span(gp.Tokens)
			if gp.Default != nil {
				p.Default = c.expr(gp.Default)
			}
			m.Params = append(m.Params, p)
		}
	}
	if g.Base != nil {
		m.Base, m.BasePos = g.Base.Name, tokPos(g.Base.Tokens[0])
		if g.Base.Args != nil {
			m.BaseHasParens = true
			m.BaseLparen, _ = span(g.Base.Args.Tokens[:1])
			m.BaseRparen, _ = span(g.Base.Args.Tokens[len(g.Base.Args.Tokens)-1:])
			m.BaseArgs = c.args(g.Base.Args, g.Base.Name)
		}
	}
	m.Key, m.LayoutKeys = c.keyClause(g.Key)
	m.Body = c.block(g.Body.Tokens, g.Body.Stmts)
	return m
}

func (c *converter) block(toks []lexer.Token, stmts []*gStmt) *Block {
	b := &Block{}
	b.Pos, b.EndPos = span(toks)
	for _, s := range stmts {
		if st := c.stmt(s); st != nil {
			b.Stmts = append(b.Stmts, st)
		}
	}
	return b
}

func (c *converter) stmt(g *gStmt) Stmt {
	switch {
	case g.Input != nil:
		s := &InputStmt{Name: g.Input.Name, DType: g.Input.DType.Name, DTypePos: tokPos(g.Input.DType.Tokens[0])}
		s.Pos, s.EndPos = span(g.Input.Tokens)
		dims := g.Input.Dims
		s.Lbrack, _ = span(dims.Tokens[:1])
		s.Rbrack, _ = span(dims.Tokens[len(dims.Tokens)-1:])
		s.Dims = c.exprList(dims.List)
		return s
	case g.Let != nil:
		s := &LetStmt{Name: g.Let.Name, Value: c.expr(g.Let.Value)}
		s.Pos, s.EndPos = span(g.Let.Tokens)
		return s
	case g.Repeat != nil:
		s := &RepeatStmt{}
		s.Pos, s.EndPos = span(g.Repeat.Tokens)
		first := c.expr(g.Repeat.First)
		if g.Repeat.In != nil {
			if id, ok := first.(*Ident); ok {
				s.Var, s.VarPos = id.Name, id.Pos
			} else {
				c.fail(first.Start(), "the loop variable of repeat must be a name, not %s", ExprString(first))
			}
			s.Count = c.expr(g.Repeat.In)
		} else {
			s.Count = first
		}
		s.Body = c.block(g.Repeat.Body.Tokens, g.Repeat.Body.Stmts)
		return s
	case g.If != nil:
		return c.ifStmt(g.If)
	case g.Layer != nil:
		return c.layer(g.Layer)
	}
	return nil
}

func (c *converter) ifStmt(g *gIf) *IfStmt {
	s := &IfStmt{Cond: c.expr(g.Cond), Then: c.block(g.Then.Tokens, g.Then.Stmts)}
	s.Pos, s.EndPos = span(g.Tokens)
	if g.Else != nil {
		switch {
		case g.Else.If != nil:
			s.Else = c.ifStmt(g.Else.If)
		case g.Else.Block != nil:
			s.Else = c.block(g.Else.Block.Tokens, g.Else.Block.Stmts)
		}
	}
	return s
}

func (c *converter) layer(g *gLayer) *LayerStmt {
	s := &LayerStmt{Name: g.Name}
	s.Pos, s.EndPos = span(g.Tokens)
	if g.Args != nil {
		s.HasParens = true
		s.Lparen, _ = span(g.Args.Tokens[:1])
		s.Rparen, _ = span(g.Args.Tokens[len(g.Args.Tokens)-1:])
		s.Args = c.args(g.Args, g.Name)
	}
	s.Key, s.LayoutKeys = c.keyClause(g.Key)
	if g.Body != nil {
		s.Body = c.block(g.Body.Tokens, g.Body.Stmts)
	}
	if !s.HasParens && s.Body == nil {
		c.fail(s.Pos, "layer %s needs parentheses: write %s() (they may be left out only before a block)", g.Name, g.Name)
	}
	return s
}

// keyClause reads `key [EXPR][, layout=EXPR]…`: at most one unnamed key, first, and each
// layout once.
func (c *converter) keyClause(g *gKeyClause) (Expr, []*LayoutKey) {
	if g == nil {
		return nil, nil
	}
	items := []*gKeyItem{g.First}
	for _, t := range g.Rest {
		items = append(items, t.Item)
	}
	var unnamed Expr
	var named []*LayoutKey
	seen := map[string]bool{}
	for i, it := range items {
		x := c.expr(it.X)
		if it.Value == nil {
			if i > 0 {
				c.fail(x.Start(), "the unnamed key comes first: write `key %s, layout=…`", ExprString(x))
			}
			unnamed = x
			continue
		}
		id, ok := x.(*Ident)
		if !ok {
			c.fail(x.Start(), "a layout key needs a layout name before '=', not %s", ExprString(x))
			continue
		}
		if seen[id.Name] {
			c.fail(id.Pos, "layout %s has two keys here", id.Name)
		}
		seen[id.Name] = true
		k := &LayoutKey{Layout: id.Name, Value: c.expr(it.Value)}
		k.Pos, k.EndPos = span(it.Tokens)
		named = append(named, k)
	}
	return unnamed, named
}

func (c *converter) exprList(g *gExprList) []Expr {
	if g == nil {
		return nil
	}
	out := []Expr{c.expr(g.First)}
	for k, t := range g.Rest {
		if t.Elem != nil {
			out = append(out, c.expr(t.Elem))
		} else if k+1 < len(g.Rest) {
			c.missingElement(g.Rest[k+1].Tokens[0], "an expression")
		}
	}
	return out
}

// missingElement reports `a,,b`: the grammar lets each slot after a comma be
// empty so that a trailing comma is allowed.
func (c *converter) missingElement(comma lexer.Token, what string) {
	c.fail(tokPos(comma), "unexpected \",\", expected %s", what)
}

func (c *converter) expr(g *gExpr) Expr {
	x := c.or(g.X)
	if g.Cond == nil {
		return x
	}
	e := &CondExpr{Pos: x.Start(), Then: x, Cond: c.or(g.Cond), Else: c.expr(g.Else)}
	for _, t := range g.Tokens {
		if t.Type == tokKeyword && t.Value == "if" && !e.IfPos.IsValid() && t.Pos.Offset >= x.End().Offset {
			e.IfPos = tokPos(t)
		}
	}
	e.ElsePos = elsePos(g.Tokens, e.Cond.End().Offset)
	e.EndPos = e.Else.End()
	c.checkDepth(e)
	return e
}

// elsePos finds the `else` keyword after offset among a node's tokens.
func elsePos(toks []lexer.Token, after int) Pos {
	for _, t := range toks {
		if t.Type == tokKeyword && t.Value == "else" && t.Pos.Offset >= after {
			return tokPos(t)
		}
	}
	return Pos{}
}

func (c *converter) or(g *gOr) Expr {
	e := c.and(g.X)
	for _, t := range g.Rest {
		e = c.binary("or", t.Tokens[0], e, c.and(t.Y))
	}
	return e
}

func (c *converter) binary(op string, opTok lexer.Token, x, y Expr) Expr {
	b := &BinaryExpr{Op: op, OpPos: tokPos(opTok), X: x, Y: y, Pos: x.Start(), EndPos: y.End()}
	c.checkDepth(b)
	return b
}

// unaryOf is `op x`, spanning the tokens it was read from.
func (c *converter) unaryOf(op string, x Expr, tokens []lexer.Token) Expr {
	u := &UnaryExpr{Op: op, X: x}
	u.Pos, u.EndPos = span(tokens)
	c.checkDepth(u)
	return u
}

func (c *converter) and(g *gAnd) Expr {
	e := c.not(g.X)
	for _, t := range g.Rest {
		e = c.binary("and", t.Tokens[0], e, c.not(t.Y))
	}
	return e
}

func (c *converter) not(g *gNot) Expr {
	if g.Not != nil {
		return c.unaryOf("not", c.not(g.Not), g.Tokens)
	}
	return c.cmp(g.Cmp)
}

func (c *converter) cmp(g *gCmp) Expr {
	e := c.add(g.X)
	for i, t := range g.Rest {
		if i > 0 {
			c.fail(tokPos(t.Tokens[0]), "comparisons cannot be chained: write `a %s b and b %s c`", g.Rest[0].Op, t.Op)
		}
		e = c.binary(t.Op, t.Tokens[0], e, c.add(t.Y))
	}
	return e
}

func (c *converter) add(g *gAdd) Expr {
	e := c.mul(g.X)
	for _, t := range g.Rest {
		e = c.binary(t.Op, t.Tokens[0], e, c.mul(t.Y))
	}
	return e
}

func (c *converter) mul(g *gMul) Expr {
	e := c.unary(g.X)
	for _, t := range g.Rest {
		e = c.binary(t.Op, t.Tokens[0], e, c.unary(t.Y))
	}
	return e
}

func (c *converter) unary(g *gUnary) Expr {
	if g.Neg != nil {
		return c.unaryOf("-", c.unary(g.Neg), g.Tokens)
	}
	return c.pow(g.Pow)
}

func (c *converter) pow(g *gPow) Expr {
	x := c.postfix(g.X)
	if g.Exp == nil {
		return x
	}
	return c.binary("**", g.Exp.Tokens[0], x, c.unary(g.Exp))
}

func (c *converter) postfix(g *gPostfix) Expr {
	x := c.primary(g.X)
	for _, ix := range g.Indexes {
		lb, end := span(ix.Tokens)
		e := &IndexExpr{Pos: x.Start(), EndPos: end, X: x, Lbrack: lb, IsSlice: ix.Colon}
		switch {
		case ix.Colon:
			if ix.Lo != nil {
				e.Lo = c.expr(ix.Lo)
			}
			if ix.Hi != nil {
				e.Hi = c.expr(ix.Hi)
			}
		case ix.Lo == nil:
			c.fail(lb, "an index needs a value: write xs[i] or a slice xs[i:j]")
		default:
			e.Index = c.expr(ix.Lo)
		}
		c.checkDepth(e)
		x = e
	}
	return x
}

func (c *converter) primary(g *gPrimary) Expr {
	start, end := span(g.Tokens)
	switch {
	case g.Float != nil:
		v, err := strconv.ParseFloat(*g.Float, 64)
		if err != nil {
			c.fail(start, "invalid float literal %s", *g.Float)
		}
		return &FloatLit{Pos: start, EndPos: end, Value: v, Text: *g.Float}
	case g.Int != nil:
		v, err := strconv.ParseInt(*g.Int, 10, 64)
		if err != nil {
			c.fail(start, "invalid integer literal %s", *g.Int)
		}
		return &IntLit{Pos: start, EndPos: end, Value: v, Text: *g.Int}
	case g.String != nil:
		v, err := strconv.Unquote(*g.String)
		if err != nil {
			c.fail(start, "invalid string literal %s", *g.String)
		}
		return &StringLit{Pos: start, EndPos: end, Value: v}
	case g.Bool != nil:
		return &BoolLit{Pos: start, EndPos: end, Value: *g.Bool == "true"}
	case g.Name != nil:
		if g.Name.Call == nil {
			return &Ident{Pos: start, EndPos: end, Name: g.Name.Name}
		}
		call := &CallExpr{Pos: start, EndPos: end, Func: g.Name.Name, Args: c.exprList(g.Name.Call.List)}
		call.Lparen, _ = span(g.Name.Call.Tokens[:1])
		call.Rparen, _ = span(g.Name.Call.Tokens[len(g.Name.Call.Tokens)-1:])
		c.checkDepth(call)
		return call
	case g.List != nil:
		l := &ListLit{Pos: start, EndPos: end, Elems: c.exprList(g.List.List)}
		c.checkDepth(l)
		return l
	case g.Paren != nil:
		p := &ParenExpr{Pos: start, EndPos: end, X: c.expr(g.Paren)}
		c.checkDepth(p)
		return p
	}
	c.fail(start, "internal error: empty expression")
	return &Ident{Pos: start, EndPos: end}
}

// checkDepth bounds expression trees, so that recursive walks downstream
// (evaluation, printing) stay shallow whatever the input. Children are
// converted first, so their depths are already in c.depth.
func (c *converter) checkDepth(e Expr) {
	if c.depth == nil {
		c.depth = map[Expr]int{}
	}
	d := 0
	for _, k := range children(e) {
		d = max(d, c.depth[k])
	}
	d++
	c.depth[e] = d
	if d > maxExprDepth {
		c.fail(e.Start(), "expression nested too deeply (the limit is %d levels)", maxExprDepth)
	}
}

func children(e Expr) []Expr {
	switch e := e.(type) {
	case *UnaryExpr:
		return []Expr{e.X}
	case *BinaryExpr:
		return []Expr{e.X, e.Y}
	case *ParenExpr:
		return []Expr{e.X}
	case *CallExpr:
		return e.Args
	case *ListLit:
		return e.Elems
	case *CondExpr:
		return []Expr{e.Then, e.Cond, e.Else}
	case *IndexExpr:
		var out []Expr
		for _, k := range []Expr{e.X, e.Index, e.Lo, e.Hi} {
			if k != nil {
				out = append(out, k)
			}
		}
		return out
	}
	return nil
}

// ParseExpr parses one expression, such as the value of a --set on the command line.
func ParseExpr(filename string, src []byte) (Expr, error) {
	f, err := ParseFile(filename, append(append([]byte("model M(x: int = "), src...), ") {}\n"...))
	if err != nil {
		return nil, err
	}
	if len(f.Decls) != 1 || len(f.Decls[0].Params) != 1 || f.Decls[0].Params[0].Default == nil {
		return nil, &Error{Pos: Pos{Filename: filename, Line: 1, Column: 1}, Msg: "not one expression"}
	}
	return f.Decls[0].Params[0].Default, nil
}

// args converts an argument list: positional arguments first, then keyword ones.
func (c *converter) args(g *gArgList, callee string) []*Arg {
	var args []*gArg
	if g.First != nil {
		args = append(args, g.First)
	}
	for k, t := range g.Rest {
		if t.Arg != nil {
			args = append(args, t.Arg)
		} else if k+1 < len(g.Rest) {
			c.missingElement(g.Rest[k+1].Tokens[0], "an argument")
		}
	}
	var out []*Arg
	seenKeyword := false
	for _, ga := range args {
		a := &Arg{}
		a.Pos, a.EndPos = span(ga.Tokens)
		x := c.expr(ga.X)
		if ga.Value != nil {
			if id, ok := x.(*Ident); ok {
				a.Name = id.Name
			} else {
				c.fail(x.Start(), "a keyword argument needs a name before '=', not %s (write == to compare)", ExprString(x))
			}
			a.Value = c.expr(ga.Value)
			seenKeyword = true
		} else {
			a.Value = x
		}
		if ga.Value == nil && seenKeyword {
			c.fail(a.Pos, "positional argument after a keyword argument in %s(…)", callee)
		}
		out = append(out, a)
	}
	return out
}
