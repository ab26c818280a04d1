package parser

import (
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// Token types of the hand-written lexer. Keywords get their own type so that
// `@Ident` never captures a keyword.
const (
	tokIdent lexer.TokenType = -(iota + 2)
	tokKeyword
	tokInt
	tokFloat
	tokString
	tokPunct
	tokSep // "\n", ";", or "" (inserted before a block's '}' and at end of file)
)

var tokenSymbols = map[string]lexer.TokenType{
	"EOF":     lexer.EOF,
	"Ident":   tokIdent,
	"Keyword": tokKeyword,
	"Int":     tokInt,
	"Float":   tokFloat,
	"String":  tokString,
	"Punct":   tokPunct,
	"Sep":     tokSep,
}

var keywords = map[string]bool{
	"model": true, "adapter": true, "input": true, "let": true, "if": true,
	"else": true, "repeat": true, "in": true, "import": true, "key": true,
	"true": true, "false": true, "and": true, "or": true, "not": true,
}

// Limits that keep the recursive-descent parser (and every recursive walk of
// the AST downstream) far from Go's stack limit on hostile input.
const (
	maxNesting     = 100 // open brackets of any kind
	maxPrefixRun   = 100 // consecutive unary '-' / 'not'
	maxPowPerStmt  = 200 // '**' in one statement (right-recursive)
	maxElseIfChain = 500 // 'else if' links in one if statement
	maxExprDepth   = 1000
)

// lexDefinition adapts scan to participle's lexer.Definition. ParseFile lexes
// the whole file itself and hands participle the token slice; Lex exists so
// that the definition is complete.
type lexDefinition struct{}

func (lexDefinition) Symbols() map[string]lexer.TokenType { return tokenSymbols }

func (lexDefinition) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	res := scan(filename, src, false, nil)
	if res.err != nil {
		return nil, res.err
	}
	return &sliceLexer{toks: res.toks}, nil
}

type sliceLexer struct {
	toks []lexer.Token
	i    int
}

func (l *sliceLexer) Next() (lexer.Token, error) {
	if l.i >= len(l.toks) {
		return l.toks[len(l.toks)-1], nil // the EOF token
	}
	t := l.toks[l.i]
	l.i++
	return t, nil
}

type scanResult struct {
	toks     []lexer.Token
	comments []*Comment
	// ambiguous holds the positions of the `//` tokens that were read as
	// floor division although they could have started a comment.
	ambiguous []Pos
	err       *Error
}

type scanner struct {
	filename string
	src      []byte
	off      int
	line     int
	col      int
	legacy   bool         // `//` may start a comment (files from before `#`; see legacy.go)
	forced   map[int]bool // legacy: offsets of `//` that must start a comment

	res       scanResult
	stack     []byte // open brackets
	exprMode  bool   // at statement level, inside an expression (after `=`, key, repeat, in, if)
	prefixRun int
	powCount  int
	elseIfRun [maxNesting + 1]int
}

// scan turns src into tokens. `#` starts a comment and `//` is floor division; with
// legacy set, `//` may also start a comment (legacy.go), and forced lists `//` offsets
// that must be read as comments.
func scan(filename string, src []byte, legacy bool, forced map[int]bool) scanResult {
	s := &scanner{filename: filename, src: src, line: 1, col: 1, legacy: legacy, forced: forced}
	if !utf8.Valid(src) {
		off := 0
		for off < len(src) {
			r, n := utf8.DecodeRune(src[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		s.res.err = &Error{Pos: posAtOffset(filename, src, off), Msg: "invalid UTF-8 encoding"}
		return s.res
	}
	if err := s.run(); err != nil {
		s.res.err = err
	}
	return s.res
}

func (s *scanner) pos() lexer.Position {
	return lexer.Position{Filename: s.filename, Offset: s.off, Line: s.line, Column: s.col}
}

func (s *scanner) errorf(p lexer.Position, format string, args ...any) *Error {
	return &Error{Pos: Pos(p), Msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) peek(i int) byte {
	if s.off+i < len(s.src) {
		return s.src[s.off+i]
	}
	return 0
}

func (s *scanner) advance(n int) {
	s.off += n
	s.col += n
}

func (s *scanner) last() *lexer.Token {
	if len(s.res.toks) == 0 {
		return nil
	}
	return &s.res.toks[len(s.res.toks)-1]
}

func (s *scanner) emit(typ lexer.TokenType, value string, p lexer.Position) {
	s.res.toks = append(s.res.toks, lexer.Token{Type: typ, Value: value, Pos: p})
}

// atStatementLevel reports whether newlines separate statements here.
func (s *scanner) atStatementLevel() bool {
	return len(s.stack) == 0 || s.stack[len(s.stack)-1] == '{'
}

func (s *scanner) endStatement() {
	s.exprMode = false
	s.prefixRun = 0
	s.powCount = 0
	s.elseIfRun[len(s.stack)] = 0
}

func (s *scanner) emitSep(value string, p lexer.Position) {
	s.emit(tokSep, value, p)
	s.endStatement()
}

func isLetter(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

func endsOperand(t *lexer.Token) bool {
	switch t.Type {
	case tokIdent, tokInt, tokFloat, tokString:
		return true
	case tokKeyword:
		return t.Value == "true" || t.Value == "false"
	case tokPunct:
		return t.Value == ")" || t.Value == "]"
	}
	return false
}

func (s *scanner) run() *Error {
	if len(s.src) >= 3 && s.src[0] == 0xEF && s.src[1] == 0xBB && s.src[2] == 0xBF {
		s.advance(3) // byte order mark
	}
	for s.off < len(s.src) {
		c := s.src[s.off]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			s.advance(1)
		case c == '\n':
			if s.atStatementLevel() {
				if t := s.last(); t != nil && t.Type != tokSep {
					s.emitSep("\n", s.pos())
				}
			}
			s.off++
			s.line++
			s.col = 1
		case c == '#':
			s.comment()
		case c == '/' && s.peek(1) == '/' && s.legacy && !s.slashSlashIsOperator():
			s.comment()
		case isLetter(c):
			if err := s.word(); err != nil {
				return err
			}
		case isDigit(c) || c == '.' && isDigit(s.peek(1)):
			if err := s.number(); err != nil {
				return err
			}
		case c == '"':
			if err := s.str(); err != nil {
				return err
			}
		default:
			if err := s.punct(); err != nil {
				return err
			}
		}
	}
	p := s.pos()
	if s.atStatementLevel() {
		if t := s.last(); t != nil && t.Type != tokSep {
			s.emitSep("", p)
		}
	}
	s.emit(lexer.EOF, "", p)
	return nil
}

func (s *scanner) comment() {
	p := s.pos()
	end := s.off
	for end < len(s.src) && s.src[end] != '\n' {
		end++
	}
	text := s.src[s.off:end]
	for len(text) > 0 {
		if c := text[len(text)-1]; c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' {
			text = text[:len(text)-1]
			continue
		}
		break
	}
	endPos := p
	endPos.Offset += len(text)
	endPos.Column += len(text)
	s.res.comments = append(s.res.comments, &Comment{Pos: Pos(p), EndPos: Pos(endPos), Text: string(text)})
	s.advance(end - s.off)
}

func (s *scanner) word() *Error {
	p := s.pos()
	start := s.off
	for s.off < len(s.src) && (isLetter(s.src[s.off]) || isDigit(s.src[s.off])) {
		s.advance(1)
	}
	w := string(s.src[start:s.off])
	if !keywords[w] {
		s.emit(tokIdent, w, p)
		s.prefixRun = 0
		return nil
	}
	prev := s.last()
	afterElse := prev != nil && prev.Type == tokKeyword && prev.Value == "else"
	s.emit(tokKeyword, w, p)
	switch w {
	case "not":
		s.prefixRun++
		if s.prefixRun > maxPrefixRun {
			return s.errorf(p, "too many consecutive unary operators (the limit is %d)", maxPrefixRun)
		}
	default:
		s.prefixRun = 0
	}
	switch w {
	case "key", "repeat", "in", "if":
		if s.atStatementLevel() {
			s.exprMode = true
		}
	}
	if w == "if" && afterElse {
		s.elseIfRun[len(s.stack)]++
		if s.elseIfRun[len(s.stack)] > maxElseIfChain {
			return s.errorf(p, "too many else-if branches (the limit is %d)", maxElseIfChain)
		}
	}
	return nil
}

func (s *scanner) number() *Error {
	p := s.pos()
	start := s.off
	isFloat := false
	for isDigit(s.peek(0)) {
		s.advance(1)
	}
	if s.peek(0) == '.' {
		isFloat = true
		s.advance(1)
		for isDigit(s.peek(0)) {
			s.advance(1)
		}
	}
	if c := s.peek(0); c == 'e' || c == 'E' {
		n := 1
		if c := s.peek(1); c == '+' || c == '-' {
			n = 2
		}
		if isDigit(s.peek(n)) {
			isFloat = true
			s.advance(n)
			for isDigit(s.peek(0)) {
				s.advance(1)
			}
		}
	}
	if c := s.peek(0); isLetter(c) || isDigit(c) || c == '.' {
		end := s.off
		for end < len(s.src) && (isLetter(s.src[end]) || isDigit(s.src[end]) || s.src[end] == '.') {
			end++
		}
		return s.errorf(p, "malformed number %q", s.src[start:end])
	}
	text := string(s.src[start:s.off])
	s.prefixRun = 0
	if isFloat {
		if _, err := strconv.ParseFloat(text, 64); err != nil {
			return s.errorf(p, "float literal %s is out of range", text)
		}
		s.emit(tokFloat, text, p)
		return nil
	}
	if len(text) > 1 && text[0] == '0' {
		return s.errorf(p, "integer literal %s has leading zeros", text)
	}
	if _, err := strconv.ParseInt(text, 10, 64); err != nil {
		return s.errorf(p, "integer literal %s is too large (the limit is %d)", text, int64(1<<63-1))
	}
	s.emit(tokInt, text, p)
	return nil
}

func (s *scanner) str() *Error {
	p := s.pos()
	start := s.off
	s.advance(1)
	for {
		if s.off >= len(s.src) || s.src[s.off] == '\n' {
			return s.errorf(p, "string literal not terminated")
		}
		c := s.src[s.off]
		if c == '"' {
			s.advance(1)
			break
		}
		if c == '\\' {
			if s.off+1 < len(s.src) && s.src[s.off+1] != '\n' {
				s.advance(2)
				continue
			}
			return s.errorf(p, "string literal not terminated")
		}
		s.advance(1)
	}
	raw := string(s.src[start:s.off])
	if _, err := strconv.Unquote(raw); err != nil {
		return s.errorf(p, "invalid escape sequence in string literal %s", raw)
	}
	s.emit(tokString, raw, p)
	s.prefixRun = 0
	return nil
}

func (s *scanner) punct() *Error {
	p := s.pos()
	c := s.src[s.off]
	two := ""
	if s.off+1 < len(s.src) {
		two = string(s.src[s.off : s.off+2])
	}
	switch two {
	case "==", "!=", "<=", ">=", "**", "//":
		s.advance(2)
		s.emit(tokPunct, two, p)
		s.prefixRun = 0
		if two == "**" {
			s.powCount++
			if s.powCount > maxPowPerStmt {
				return s.errorf(p, "too many ** operators in one statement (the limit is %d)", maxPowPerStmt)
			}
		}
		return nil
	}
	switch c {
	case '(', '[', '{':
		if len(s.stack) >= maxNesting {
			return s.errorf(p, "brackets nested too deeply (the limit is %d levels)", maxNesting)
		}
		s.stack = append(s.stack, c)
		s.elseIfRun[len(s.stack)] = 0
		if c == '{' {
			s.endStatement()
		}
		s.prefixRun = 0
	case ')', ']', '}':
		open := map[byte]byte{')': '(', ']': '[', '}': '{'}[c]
		if c == '}' && s.atStatementLevel() {
			if t := s.last(); t != nil && t.Type != tokSep && !(t.Type == tokPunct && t.Value == "{") {
				s.emit(tokSep, "", p)
			}
		}
		if n := len(s.stack); n > 0 && s.stack[n-1] == open {
			s.stack = s.stack[:n-1]
		}
		if c == '}' {
			s.exprMode, s.powCount = false, 0
		}
		s.prefixRun = 0
	case ';':
		s.advance(1)
		s.emitSep(";", p)
		return nil
	case '-':
		if t := s.last(); t == nil || !endsOperand(t) {
			s.prefixRun++
			if s.prefixRun > maxPrefixRun {
				return s.errorf(p, "too many consecutive unary operators (the limit is %d)", maxPrefixRun)
			}
		}
	case '=':
		if s.atStatementLevel() {
			s.exprMode = true
		}
		s.prefixRun = 0
	case ',', ':', '<', '>', '+', '*', '/', '%':
		s.prefixRun = 0
	default:
		r, _ := utf8.DecodeRune(s.src[s.off:])
		if r == '!' {
			return s.errorf(p, "unexpected character '!' (write `not x` or `a != b`)")
		}
		return s.errorf(p, "unexpected character %q", r)
	}
	s.advance(1)
	s.emit(tokPunct, string(c), p)
	return nil
}

// posAtOffset computes line and column (bytes, 1-based) of a byte offset.
func posAtOffset(filename string, src []byte, off int) Pos {
	if off > len(src) {
		off = len(src)
	}
	line, col := 1, 1
	for _, c := range src[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return Pos{Filename: filename, Offset: off, Line: line, Column: col}
}
