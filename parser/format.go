package parser

import (
	"bytes"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Format prints f in canonical form: 4-space indentation, one statement per
// line, a blank line around each model, single spaces around binary
// operators, `name=value` keyword arguments, blocks opening on their
// header's line, and empty `()` dropped before a block and added to a
// blockless layer. Parentheses in expressions are the source's (ParenExpr);
// Format adds one only when a hand-built tree needs it. Every comment is
// kept in order: own-line comments stay on their own line, end-of-line
// comments at the end of their line. A list (arguments, parameters,
// dimensions, list literals) that spanned several lines in the source is
// printed one element per line with a trailing comma, its comments beside
// their elements; a comment inside a bracketed expression breaks the line
// after its binary operator, '(' or '=', and only where no line break can go
// (after a unary '-', between a name and its '(' or type) does it move to its
// own line above the statement. At most one blank line is kept where the
// source had blank lines between statements. Format(f) re-parses to the same
// AST and formats to the same bytes.
func Format(f *File) []byte {
	p := newPrinter(f.Comments, f.Src)
	p.file(f)
	return p.buf.Bytes()
}

// ExprString prints e on one line, as Format would.
func ExprString(e Expr) string {
	if e == nil {
		return ""
	}
	p := newPrinter(nil, nil)
	p.oneLine = true
	p.expr(e, 0)
	return p.buf.String()
}

type printer struct {
	buf         bytes.Buffer
	indent      int
	atLineStart bool
	oneLine     bool // never break lists over lines (ExprString)

	comments []*Comment
	used     []bool // shared with sub-printers
	src      []byte
}

func newPrinter(comments []*Comment, src []byte) *printer {
	sorted := append([]*Comment(nil), comments...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Pos.Offset < sorted[j].Pos.Offset })
	return &printer{atLineStart: true, comments: sorted, used: make([]bool, len(sorted)), src: src}
}

// sub returns a printer that renders into its own buffer at the same
// indentation and shares the comment bookkeeping.
func (p *printer) sub() *printer {
	return &printer{indent: p.indent, atLineStart: true, oneLine: p.oneLine, comments: p.comments, used: p.used, src: p.src}
}

func (p *printer) write(s string) {
	if s == "" {
		return
	}
	if p.atLineStart {
		p.buf.WriteString(strings.Repeat("    ", p.indent))
		p.atLineStart = false
	}
	p.buf.WriteString(s)
}

func (p *printer) newline() {
	p.buf.WriteByte('\n')
	p.atLineStart = true
}

func (p *printer) blankLine() { p.newline() }

// pending returns the unused comments with lo <= offset < hi, in order.
func (p *printer) pending(lo, hi int) []int {
	i := sort.Search(len(p.comments), func(i int) bool { return p.comments[i].Pos.Offset >= lo })
	var out []int
	for ; i < len(p.comments) && p.comments[i].Pos.Offset < hi; i++ {
		if !p.used[i] {
			out = append(out, i)
		}
	}
	return out
}

func (p *printer) ownLineComment(i int) {
	if !p.atLineStart {
		p.newline()
	}
	p.write(p.comments[i].Text)
	p.newline()
	p.used[i] = true
}

// trailingComment returns the index of the unused comment that sits on
// line, at or after offset from and before offset limit, or -1.
func (p *printer) trailingComment(line, from, limit int) int {
	for _, i := range p.pending(from, limit) {
		if p.comments[i].Pos.Line == line {
			return i
		}
		break
	}
	return -1
}

const maxOffset = int(^uint(0) >> 1)

type topItem struct {
	imp   *Import
	model *Model
}

func (t topItem) start() Pos {
	if t.imp != nil {
		return t.imp.Pos
	}
	return t.model.Pos
}

func (t topItem) end() Pos {
	if t.imp != nil {
		return t.imp.EndPos
	}
	return t.model.EndPos
}

func (p *printer) file(f *File) {
	var items []topItem
	for _, imp := range f.Imports {
		items = append(items, topItem{imp: imp})
	}
	for _, m := range f.Decls {
		items = append(items, topItem{model: m})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].start().Offset < items[j].start().Offset })

	printedAny := false
	lastLine := 0
	prevWasModel := false
	for k, it := range items {
		start := it.start()
		lead := p.pending(0, start.Offset)
		// The comments right above a model (no blank line in between) go
		// with it; the blank line a model wants comes before them.
		headerStart := len(lead)
		if it.model != nil {
			headerStart = 0
			next := start.Line
			for j := len(lead) - 1; j >= 0; j-- {
				c := p.comments[lead[j]]
				if c.EndPos.Line+1 < next {
					headerStart = j + 1
					break
				}
				next = c.Pos.Line
			}
		}
		for j, i := range lead {
			c := p.comments[i]
			if printedAny && (c.Pos.Line > lastLine+1 || prevWasModel || j == headerStart && it.model != nil) {
				p.blankLine()
			}
			p.ownLineComment(i)
			printedAny, lastLine, prevWasModel = true, c.EndPos.Line, false
		}
		if printedAny && (start.Line > lastLine+1 || prevWasModel || headerStart == len(lead) && it.model != nil) {
			p.blankLine()
		}
		limit := maxOffset
		if k+1 < len(items) {
			limit = items[k+1].start().Offset
		}
		r := p.sub()
		if it.imp != nil {
			r.write("import " + strconv.Quote(it.imp.Path))
		} else {
			r.model(it.model)
		}
		p.flushStmt(r, start, it.end(), limit, false)
		printedAny, lastLine, prevWasModel = true, it.end().Line, it.model != nil
	}
	for _, i := range p.pending(0, maxOffset) {
		c := p.comments[i]
		if printedAny && (c.Pos.Line > lastLine+1 || prevWasModel) {
			p.blankLine()
		}
		p.ownLineComment(i)
		printedAny, lastLine, prevWasModel = true, c.EndPos.Line, false
	}
}

// flushStmt writes a statement rendered by r: first the comments that sat
// inside it but had no place in the output, then the statement, then the
// comment that ended its line in the source. endsWithExpr says the
// statement's last token may be an operand, where a trailing `//` could read
// as floor division; when the source had a ';' between the two
// (`let s = a; // note`), the ';' is kept so that the comment stays one.
func (p *printer) flushStmt(r *printer, start, end Pos, limit int, endsWithExpr bool) {
	for _, i := range p.pending(start.Offset, end.Offset) {
		p.ownLineComment(i)
	}
	trailing := p.trailingComment(end.Line, end.Offset, limit)
	if !p.atLineStart {
		p.newline()
	}
	p.buf.Write(r.buf.Bytes())
	p.atLineStart = r.atLineStart
	if trailing >= 0 {
		if endsWithExpr && !p.directlyAfter(end.Offset, p.comments[trailing].Pos.Offset) {
			p.write(";")
		}
		p.write(" " + p.comments[trailing].Text)
		p.used[trailing] = true
	}
	p.newline()
}

func (p *printer) directlyAfter(from, to int) bool {
	if p.src == nil || from < 0 || to > len(p.src) || from > to {
		return false
	}
	for _, c := range p.src[from:to] {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func (p *printer) model(m *Model) {
	if m.IsAdapter {
		p.write("adapter ")
	} else {
		p.write("model ")
	}
	p.write(m.Name)
	items := make([]listItem, len(m.Params))
	for i, prm := range m.Params {
		items[i] = listItem{prm.Pos, prm.EndPos, func(q *printer) { q.param(prm) }}
	}
	p.list("(", ")", m.Lparen, m.Rparen, items)
	if m.Base != "" {
		p.write(" : " + m.Base)
		if m.BaseHasParens {
			p.list("(", ")", m.BaseLparen, m.BaseRparen, argItems(m.BaseArgs))
		}
	}
	p.keyClause(m.Key, m.LayoutKeys)
	p.write(" ")
	p.block(m.Body)
}

func argItems(args []*Arg) []listItem {
	items := make([]listItem, len(args))
	for i, a := range args {
		items[i] = listItem{a.Pos, a.EndPos, func(q *printer) {
			if a.Name == "" {
				q.expr(a.Value, 0)
				return
			}
			q.write(a.Name + "=")
			if len(q.pendingIn(a.Pos.Offset, a.Value.Start().Offset)) > 0 {
				q.operand(a.Pos.Line, a.Pos.Offset, a.Value, 0)
			} else {
				q.expr(a.Value, 0)
			}
		}}
	}
	return items
}

func (p *printer) keyClause(unnamed Expr, named []*LayoutKey) {
	if unnamed == nil && len(named) == 0 {
		return
	}
	p.write(" key ")
	if unnamed != nil {
		p.expr(unnamed, 0)
		if len(named) > 0 {
			p.write(", ")
		}
	}
	for i, k := range named {
		if i > 0 {
			p.write(", ")
		}
		p.write(k.Layout + "=")
		p.expr(k.Value, 0)
	}
}

func (p *printer) param(prm *Param) {
	p.write(prm.Name + ": " + prm.Type)
	if prm.Default != nil {
		p.write(" =")
		p.operand(prm.Pos.Line, prm.Pos.Offset, prm.Default, 0)
	}
}

// operand prints e after an operator or '=' that is already written, with
// a space, or, when comments lie between the two in the source (lo up to
// e's start), with those comments and a line break, e then going on a
// continuation line. The comments can only be there inside brackets, where
// line breaks are free.
func (p *printer) operand(line, lo int, e Expr, min int) {
	idx := p.pendingIn(lo, e.Start().Offset)
	if len(idx) == 0 {
		p.write(" ")
		p.expr(e, min)
		return
	}
	p.indent++
	for k, i := range idx {
		c := p.comments[i]
		if k == 0 && c.Pos.Line == line {
			// Safe at the end of the line: an operator or '=' precedes it.
			p.write(" " + c.Text)
			p.used[i] = true
			p.newline()
			continue
		}
		p.ownLineComment(i)
	}
	p.expr(e, min)
	p.indent--
}

// pendingIn is pending for positions inside an expression; it finds nothing
// for hand-built nodes and for ExprString.
func (p *printer) pendingIn(lo, hi int) []int {
	if p.oneLine || len(p.comments) == 0 || hi <= lo {
		return nil
	}
	return p.pending(lo, hi)
}

func (p *printer) block(b *Block) {
	if b == nil {
		b = &Block{}
	}
	p.write("{")
	lo, hi := b.Pos.Offset+1, b.EndPos.Offset-1
	if !b.EndPos.IsValid() {
		lo, hi = 0, 0
	}
	first := hi
	if len(b.Stmts) > 0 && b.Stmts[0].Start().IsValid() {
		first = b.Stmts[0].Start().Offset
	}
	braceComment := false
	if i := p.trailingComment(b.Pos.Line, lo, first); i >= 0 && b.Pos.IsValid() {
		p.write(" " + p.comments[i].Text)
		p.used[i] = true
		braceComment = true
	}
	if len(b.Stmts) == 0 && !braceComment && len(p.pending(lo, hi)) == 0 {
		p.write("}")
		return
	}
	p.newline()
	p.indent++
	lastLine := b.Pos.Line
	printed := false
	for k, s := range b.Stmts {
		start := s.Start()
		for _, i := range p.pending(lo, start.Offset) {
			c := p.comments[i]
			if printed && c.Pos.Line > lastLine+1 {
				p.blankLine()
			}
			p.ownLineComment(i)
			printed, lastLine = true, c.EndPos.Line
		}
		if printed && start.Line > lastLine+1 {
			p.blankLine()
		}
		limit := hi
		if k+1 < len(b.Stmts) {
			limit = b.Stmts[k+1].Start().Offset
		}
		r := p.sub()
		endsWithExpr := r.stmt(s)
		p.flushStmt(r, start, s.End(), limit, endsWithExpr)
		printed, lastLine = true, s.End().Line
	}
	for _, i := range p.pending(lo, hi) {
		c := p.comments[i]
		if printed && c.Pos.Line > lastLine+1 {
			p.blankLine()
		}
		p.ownLineComment(i)
		printed, lastLine = true, c.EndPos.Line
	}
	p.indent--
	p.write("}")
}

// stmt prints s and reports whether it ends with an expression.
func (p *printer) stmt(s Stmt) bool {
	switch s := s.(type) {
	case *InputStmt:
		p.write("input " + s.Name + ": " + s.DType)
		p.list("[", "]", s.Lbrack, s.Rbrack, exprItems(s.Dims))
	case *LetStmt:
		p.write("let " + s.Name + " = ")
		p.expr(s.Value, 0)
		return true
	case *LayerStmt:
		p.write(s.Name)
		dropParens := s.Body != nil && len(s.Args) == 0 &&
			(!s.HasParens || len(p.pending(s.Lparen.Offset, s.Rparen.Offset)) == 0)
		if !dropParens {
			p.list("(", ")", s.Lparen, s.Rparen, argItems(s.Args))
		}
		p.keyClause(s.Key, s.LayoutKeys)
		if s.Body != nil {
			p.write(" ")
			p.block(s.Body)
			return false
		}
		return s.Key != nil || len(s.LayoutKeys) > 0
	case *RepeatStmt:
		p.write("repeat ")
		if s.Var != "" {
			p.write(s.Var + " in ")
		}
		p.expr(s.Count, 0)
		p.write(" ")
		p.block(s.Body)
	case *IfStmt:
		p.ifStmt(s)
	case *Block:
		p.block(s)
	}
	return false
}

func (p *printer) ifStmt(s *IfStmt) {
	p.write("if ")
	p.expr(s.Cond, 0)
	p.write(" ")
	p.block(s.Then)
	switch e := s.Else.(type) {
	case *IfStmt:
		p.write(" else ")
		p.ifStmt(e)
	case *Block:
		p.write(" else ")
		p.block(e)
	}
}

type listItem struct {
	start, end Pos
	print      func(*printer)
}

func exprItems(es []Expr) []listItem {
	items := make([]listItem, len(es))
	for i, e := range es {
		items[i] = listItem{e.Start(), e.End(), func(q *printer) { q.expr(e, 0) }}
	}
	return items
}

// list prints a bracketed, comma-separated list: on one line, or one item
// per line when the source list spanned lines.
func (p *printer) list(open, close string, lpos, rpos Pos, items []listItem) {
	multi := !p.oneLine && lpos.IsValid() && rpos.Line > lpos.Line &&
		(len(items) > 0 || len(p.pending(lpos.Offset, rpos.Offset)) > 0)
	p.write(open)
	if !multi {
		for i, it := range items {
			if i > 0 {
				p.write(", ")
			}
			it.print(p)
		}
		p.write(close)
		return
	}
	lo := lpos.Offset + 1
	if i := p.trailingComment(lpos.Line, lo, itemsStart(items, rpos.Offset)); i >= 0 {
		p.write(" " + p.comments[i].Text)
		p.used[i] = true
	}
	p.newline()
	p.indent++
	for k, it := range items {
		for _, i := range p.pending(lo, it.start.Offset) {
			p.ownLineComment(i)
		}
		it.print(p)
		p.write(",")
		limit := rpos.Offset
		if k+1 < len(items) {
			limit = items[k+1].start.Offset
		}
		if i := p.trailingComment(it.end.Line, it.end.Offset, limit); i >= 0 {
			p.write(" " + p.comments[i].Text)
			p.used[i] = true
		}
		p.newline()
	}
	for _, i := range p.pending(lo, rpos.Offset) {
		p.ownLineComment(i)
	}
	p.indent--
	p.write(close)
}

func itemsStart(items []listItem, dflt int) int {
	if len(items) > 0 {
		return items[0].start.Offset
	}
	return dflt
}

// Precedence levels, low to high.
const (
	precCond = iota + 1
	precOr
	precAnd
	precNot
	precCmp
	precAdd
	precMul
	precUnary
	precPow
	precPrimary
)

func binaryPrec(op string) int {
	switch op {
	case "or":
		return precOr
	case "and":
		return precAnd
	case "==", "!=", "<", "<=", ">", ">=":
		return precCmp
	case "+", "-":
		return precAdd
	case "*", "/", "//", "%":
		return precMul
	case "**":
		return precPow
	}
	return precPrimary
}

func exprPrec(e Expr) int {
	switch e := e.(type) {
	case *CondExpr:
		return precCond
	case *BinaryExpr:
		return binaryPrec(e.Op)
	case *UnaryExpr:
		if e.Op == "not" {
			return precNot
		}
		return precUnary
	}
	return precPrimary
}

// expr prints e, in parentheses if its precedence is below min (which only
// happens for hand-built trees: parsed ones carry their ParenExprs).
func (p *printer) expr(e Expr, min int) {
	if e == nil {
		return
	}
	if exprPrec(e) < min {
		p.write("(")
		p.exprInner(e)
		p.write(")")
		return
	}
	p.exprInner(e)
}

func (p *printer) exprInner(e Expr) {
	switch e := e.(type) {
	case *IntLit:
		if e.Text != "" {
			p.write(e.Text)
		} else {
			p.write(strconv.FormatInt(e.Value, 10))
		}
	case *FloatLit:
		p.write(floatText(e))
	case *StringLit:
		p.write(strconv.Quote(e.Value))
	case *BoolLit:
		p.write(strconv.FormatBool(e.Value))
	case *Ident:
		p.write(e.Name)
	case *ListLit:
		p.list("[", "]", e.Pos, lastBytePos(e.EndPos), exprItems(e.Elems))
	case *CallExpr:
		p.write(e.Func)
		p.list("(", ")", e.Lparen, e.Rparen, exprItems(e.Args))
	case *CondExpr:
		// The branches are or-expressions; the else branch may be conditional again.
		p.expr(e.Then, precOr)
		p.write(" if")
		p.operand(e.IfPos.Line, e.Then.End().Offset, e.Cond, precOr)
		p.write(" else")
		p.operand(e.ElsePos.Line, e.Cond.End().Offset, e.Else, precCond)
	case *IndexExpr:
		p.expr(e.X, precPrimary)
		p.write("[")
		if e.IsSlice {
			if e.Lo != nil {
				p.expr(e.Lo, 0)
			}
			p.write(":")
			if e.Hi != nil {
				p.expr(e.Hi, 0)
			}
		} else {
			p.expr(e.Index, 0)
		}
		p.write("]")
	case *ParenExpr:
		p.write("(")
		if e.X == nil {
			p.write(")")
			return
		}
		if len(p.pendingIn(e.Pos.Offset, e.X.Start().Offset)) > 0 {
			p.operand(e.Pos.Line, e.Pos.Offset, e.X, 0)
		} else {
			p.expr(e.X, 0)
		}
		if idx := p.pendingIn(e.X.End().Offset, e.EndPos.Offset-1); len(idx) > 0 {
			// Before the ')': on their own lines, since after an operand
			// `//` might read as floor division.
			p.indent++
			for _, i := range idx {
				p.ownLineComment(i)
			}
			p.indent--
		}
		p.write(")")
	case *UnaryExpr:
		if e.Op == "not" {
			p.write("not ")
			p.expr(e.X, precNot)
		} else {
			p.write(e.Op)
			p.expr(e.X, precUnary)
		}
	case *BinaryExpr:
		prec := binaryPrec(e.Op)
		left, right := prec, prec+1
		switch prec {
		case precCmp:
			left = prec + 1
		case precPow:
			left, right = precPrimary, precUnary
		}
		p.expr(e.X, left)
		p.write(" " + e.Op)
		p.operand(e.OpPos.Line, e.X.End().Offset, e.Y, right)
	}
}

// lastBytePos turns an exclusive end position into the position of the last
// byte, which for a list literal is its ']'.
func lastBytePos(end Pos) Pos {
	if !end.IsValid() {
		return end
	}
	end.Offset--
	end.Column--
	return end
}

func floatText(f *FloatLit) string {
	if f.Text != "" {
		return f.Text
	}
	switch {
	case math.IsInf(f.Value, 1):
		return `float("inf")`
	case math.IsInf(f.Value, -1):
		return `float("-inf")`
	case math.IsNaN(f.Value):
		return `float("nan")`
	}
	s := strconv.FormatFloat(f.Value, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
