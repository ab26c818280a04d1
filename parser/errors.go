package parser

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Error is a syntax error at a position.
type Error struct {
	Pos Pos
	Msg string
}

// Error returns "file:line:col: message".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// caretWindow is how many characters of a long source line an excerpt shows: a generated
// file can hold an expression of megabytes on one line.
const caretWindow = 120

// Caret returns the source line holding pos followed by a line with a caret
// under pos's column. Tabs in front of the column are repeated, so the caret
// lines up in a terminal whatever its tab width. A line longer than
// caretWindow characters is cut to that many around the column, with "…"
// where text was left out.
func Caret(src []byte, pos Pos) string {
	start := 0
	if pos.Offset >= 0 && pos.Offset <= len(src) && pos.Column >= 1 && pos.Offset-(pos.Column-1) >= 0 {
		start = pos.Offset - (pos.Column - 1)
	} else {
		// No usable offset: find the line by number.
		for line := 1; line < pos.Line && start < len(src); line++ {
			i := bytes.IndexByte(src[start:], '\n')
			if i < 0 {
				start = len(src)
				break
			}
			start += i + 1
		}
	}
	if start > len(src) {
		start = len(src)
	}
	end := start
	for end < len(src) && src[end] != '\n' {
		end++
	}
	line := strings.TrimRight(string(src[start:end]), "\r")
	col := max(pos.Column, 1) - 1 // byte offset of the column in line (may pass its end)
	var prefix, suffix string
	if utf8.RuneCountInString(line) > caretWindow {
		line, col, prefix, suffix = window(line, col)
	}
	var pad strings.Builder
	if prefix != "" {
		pad.WriteByte(' ')
	}
	for i, r := range line {
		if i >= col {
			break
		}
		if r == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
	}
	if n := col - len(line); n > 0 {
		pad.WriteString(strings.Repeat(" ", n))
	}
	return prefix + line + suffix + "\n" + pad.String() + "^"
}

// window cuts line to caretWindow runes around the byte offset col and returns the part, the
// column's offset in it, and "…" for each side that was cut.
func window(line string, col int) (part string, partCol int, prefix, suffix string) {
	var starts []int // byte offset of each rune
	at := -1         // index of the rune at col
	for i := range line {
		if i >= col && at < 0 {
			at = len(starts)
		}
		starts = append(starts, i)
	}
	n := len(starts)
	starts = append(starts, len(line))
	if at < 0 {
		at = n
	}
	lo := max(0, min(at-caretWindow/2, n-caretWindow))
	hi := lo + caretWindow
	if lo > 0 {
		prefix = "…"
	}
	if hi < n {
		suffix = "…"
	}
	return line[starts[lo]:starts[hi]], col - starts[lo], prefix, suffix
}

// translateError turns participle's error into an *Error whose message says
// what was found and, in words, what the grammar wanted there.
func translateError(filename string, toks []lexer.Token, err error) *Error {
	var perr participle.Error
	if !errors.As(err, &perr) {
		return &Error{Pos: Pos{Filename: filename, Line: 1, Column: 1}, Msg: err.Error()}
	}
	pos := Pos(perr.Position())
	var unexpected *participle.UnexpectedTokenError
	if !errors.As(err, &unexpected) {
		return &Error{Pos: pos, Msg: perr.Message()}
	}
	tok := unexpected.Unexpected
	expected := ""
	msg := perr.Message()
	if i := strings.Index(msg, " (expected "); i >= 0 && strings.HasSuffix(msg, ")") {
		expected = msg[i+len(" (expected ") : len(msg)-1]
	}
	found := describeToken(toks, tok)
	if tok.Type == tokKeyword && tok.Value == "else" {
		return &Error{Pos: Pos(tok.Pos), Msg: `unexpected "else": write it on the line of the "}" that closes the if block (} else {)`}
	}
	if expected == "" {
		// Only the top level stops without saying what it wanted.
		return &Error{Pos: Pos(tok.Pos), Msg: "unexpected " + found + `, expected a model, adapter or import declaration`}
	}
	want := describeExpected(expected, tok)
	if expected == `")"` || expected == `"]"` {
		want = describeCloser(toks, tok, want)
	}
	msg = "unexpected " + found + ", expected " + want
	switch {
	case tok.Type == tokKeyword && tok.Value != "true" && tok.Value != "false" && tok.Value != "not" &&
		(strings.Contains(want, "a name") || strings.Contains(want, "an expression") || strings.Contains(want, "an argument")):
		msg += fmt.Sprintf(" (%q is a reserved word)", tok.Value)
	case tok.Type == tokSep && tok.Value == "\n" && strings.HasPrefix(want, `"{"`):
		msg += ` (a block's "{" goes on the line of its header)`
	}
	return &Error{Pos: Pos(tok.Pos), Msg: msg}
}

// describeCloser improves `expected ")"` inside a list, where a comma or
// (after a comma) another element would do as well.
func describeCloser(toks []lexer.Token, at lexer.Token, want string) (closes string) {
	i := 0
	for i < len(toks) && toks[i].Pos.Offset < at.Pos.Offset {
		i++
	}
	// Find the unclosed bracket that the wanted closer would close.
	depth := 0
	open := -1
	for j := i - 1; j >= 0; j-- {
		if toks[j].Type != tokPunct {
			continue
		}
		switch toks[j].Value {
		case ")", "]", "}":
			depth++
		case "(", "[", "{":
			if depth == 0 {
				open = j
			}
			depth--
		}
		if open >= 0 {
			break
		}
	}
	if open < 0 || i == 0 {
		return want
	}
	if o := toks[open]; o.Pos.Line != at.Pos.Line {
		defer func() {
			closes = fmt.Sprintf("%s to close the %q at %d:%d", closes, o.Value, o.Pos.Line, o.Pos.Column)
		}()
	}
	elem := "an expression"
	switch {
	case toks[open].Value == "[":
	case open > 0 && toks[open-1].Type == tokIdent:
		switch {
		case open > 1 && toks[open-2].Type == tokKeyword && (toks[open-2].Value == "model" || toks[open-2].Value == "adapter"):
			elem = "a parameter"
		case open == 1 || toks[open-2].Type == tokSep || toks[open-2].Value == "{":
			elem = "an argument"
		}
	default:
		return want // a parenthesised expression: only the closer fits
	}
	if prev := toks[i-1]; prev.Type == tokPunct && (prev.Value == "," || prev.Value == toks[open].Value) {
		return elem + " or " + want
	}
	return `"," or ` + want
}

// describeExpected puts participle's EBNF for "what may come next" into
// words. It reads the leading elements of the sequence, as far as they are
// optional, and names each.
func describeExpected(ebnf string, found lexer.Token) string {
	var words []string
	seen := map[string]bool{}
	rest := strings.TrimSpace(ebnf)
	for rest != "" {
		elem, tail := firstElement(rest)
		rest = strings.TrimSpace(tail)
		optional := strings.HasSuffix(elem, "?") || strings.HasSuffix(elem, "*")
		elem = strings.TrimRight(elem, "?*+")
		for _, w := range nameElement(elem, found) {
			if !seen[w] {
				seen[w] = true
				words = append(words, w)
			}
		}
		if !optional {
			break
		}
	}
	switch len(words) {
	case 0:
		return "something else"
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// firstElement splits an EBNF sequence after its first element (a token,
// a production name or a parenthesised group, with its suffix).
func firstElement(s string) (string, string) {
	if s[0] == '(' {
		depth := 0
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					j := i + 1
					for j < len(s) && strings.ContainsRune("?*+!", rune(s[j])) {
						j++
					}
					return s[:j], s[j:]
				}
			case '"':
				for i++; i < len(s) && s[i] != '"'; i++ {
					if s[i] == '\\' {
						i++
					}
				}
			}
		}
		return s, ""
	}
	if s[0] == '"' {
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
				continue
			}
			if s[i] == '"' {
				j := i + 1
				for j < len(s) && strings.ContainsRune("?*+!", rune(s[j])) {
					j++
				}
				return s[:j], s[j:]
			}
		}
		return s, ""
	}
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

func nameElement(elem string, found lexer.Token) []string {
	if strings.HasPrefix(elem, "(") {
		inner := strings.TrimSuffix(strings.TrimPrefix(elem, "("), ")")
		var out []string
		for _, alt := range strings.Split(inner, " | ") {
			first, _ := firstElement(strings.TrimSpace(alt))
			out = append(out, nameElement(strings.TrimRight(first, "?*+"), found)...)
		}
		return out
	}
	switch elem {
	case "<sep>":
		return []string{`a newline or ";" (one statement per line)`}
	case "<ident>":
		return []string{"a name"}
	case "<string>":
		return []string{"a string"}
	case "<int>", "<float>":
		return []string{"a number"}
	case "GExpr", "GOr", "GAnd", "GNot", "GCmp", "GAdd", "GMul", "GUnary", "GPow", "GPostfix", "GPrimary", "GExprList":
		return []string{"an expression"}
	case "GKeyItem", "GKeyClause":
		return []string{"a key"}
	case "GTypeName":
		return []string{"a type"}
	case "GIndex":
		return []string{"an index"}
	case "GName", "GNameRef", "GBase":
		return []string{"a name"}
	case "GBlock", "GModelBlock":
		return []string{`"{"`}
	case "GDimList":
		return []string{`"[" and the input's dimensions`}
	case "GParamList":
		return []string{`"("`}
	case "GParam":
		return []string{"a parameter"}
	case "GArg":
		return []string{"an argument"}
	case "GElse":
		return []string{`"else"`}
	case `"}"`:
		if found.Type == lexer.EOF {
			return []string{`"}"`}
		}
		return []string{`a statement (a layer, let, input, repeat or if)`, `"}"`}
	}
	return []string{elem}
}

// describeToken names a token the way a user sees it.
func describeToken(toks []lexer.Token, t lexer.Token) string {
	switch t.Type {
	case lexer.EOF:
		return "end of file"
	case tokSep:
		switch t.Value {
		case "\n":
			return "newline"
		case ";":
			return `";"`
		}
		// An inserted separator stands just before '}' or the end of file.
		for _, u := range toks {
			if u.Pos.Offset == t.Pos.Offset && u.Type != tokSep {
				return describeToken(toks, u)
			}
		}
		return "end of file"
	case tokInt, tokFloat:
		return "number " + t.Value
	case tokString:
		return "string " + t.Value
	}
	return fmt.Sprintf("%q", t.Value)
}
