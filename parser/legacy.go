package parser

// Files written before `#` comments used `//` both for comments and for floor division,
// told apart by a heuristic. The language now has `#` for comments and `//` only for
// division; this file keeps the old reading for one job: `rfc fmt` converting such files.
// ParseFile never uses it except to add a hint to an error.

import (
	"strings"

	"github.com/alecthomas/participle/v2"
)

// maxRereads bounds the reparses of the old reading: each `//` re-read as a comment costs a
// parse of the whole file.
const maxRereads = 100

// ParseOldComments parses a file in which `//` may also start a comment, the way files
// were written before `#`: `//` is floor division when it follows an operand on the same
// line inside an expression and the rest of the line reads like code; otherwise, or when
// the file then fails to parse on that line, it starts a comment. The comments of the
// result are converted to `#` comments, so Format writes the file in today's syntax.
func ParseOldComments(filename string, src []byte) (*File, error) {
	p, err := fileParser()
	if err != nil {
		return nil, err
	}
	f, perr := parseOld(p, filename, src)
	if perr != nil {
		return nil, perr
	}
	for _, c := range f.Comments {
		if rest, ok := strings.CutPrefix(c.Text, "//"); ok {
			c.Text = "#" + rest
		}
	}
	return f, nil
}

// hasSlashComment reports whether f, read the old way, has `//` comments.
func hasSlashComment(f *File) bool {
	for _, c := range f.Comments {
		if strings.HasPrefix(c.Text, "//") {
			return true
		}
	}
	return false
}

func parseOld(p *participle.Parser[gFile], filename string, src []byte) (f *File, perr *Error) {
	defer func() {
		if r := recover(); r != nil {
			f, perr = nil, &Error{Pos: Pos{Filename: filename, Line: 1, Column: 1}, Msg: "internal parser error"}
		}
	}()
	forced := map[int]bool{}
	for retries := 0; ; retries++ {
		f, perr, syntaxErr, ambiguous := parseOnce(p, filename, src, true, forced)
		if perr == nil {
			return f, nil
		}
		flip := -1
		for _, a := range ambiguous {
			if a.Line == perr.Pos.Line && a.Offset < perr.Pos.Offset {
				flip = a.Offset
			}
		}
		if !syntaxErr || flip < 0 || retries >= maxRereads || closesEarlierBracket(src, flip+2) {
			return nil, perr
		}
		forced[flip] = true
	}
}

// closesEarlierBracket reports whether the rest of the line from off closes
// a bracket opened before off: read as a comment, it would leave that
// bracket open, and the error it then causes would only confuse.
func closesEarlierBracket(src []byte, off int) bool {
	depth := 0
	for i := off; i < len(src) && src[i] != '\n'; i++ {
		switch src[i] {
		case '"':
			for i++; i < len(src) && src[i] != '"' && src[i] != '\n'; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case '(', '[':
			depth++
		case ')', ']':
			depth--
			if depth < 0 {
				return true
			}
		}
	}
	return false
}

// slashSlashIsOperator decides whether the `//` at the cursor is floor
// division or starts a comment (see the grammar.go header for the rule).
func (s *scanner) slashSlashIsOperator() bool {
	if s.forced[s.off] {
		return false
	}
	prev := s.last()
	if prev == nil || prev.Pos.Line != s.line || prev.Type == tokString || !endsOperand(prev) ||
		prev.Type == tokKeyword {
		return false
	}
	inExpr := s.exprMode || !s.atStatementLevel()
	if !inExpr {
		return false
	}
	end := s.off + 2
	for end < len(s.src) && s.src[end] != '\n' {
		end++
	}
	if !restCanContinueExpression(s.src[s.off+2 : end]) {
		return false
	}
	p := s.pos()
	s.res.ambiguous = append(s.res.ambiguous, Pos(p))
	return true
}

// restCanContinueExpression reports whether the text after an ambiguous `//`
// (up to the end of the line, the next `//`, ';' or '{') could be the right
// operand of floor division and what follows it. It must start with an
// operand and must not read like prose: no two operands in a row, no
// statement keyword, no character the lexer rejects, no unterminated string.
func restCanContinueExpression(rest []byte) bool {
	const (
		other   = iota
		operand // a name, number or string: an operand ends here
		name    // a name: '(' may follow (a call)
		closer  // ')' or ']': an operand ends here and `key` or ':' may follow
		comma
		param // a name right after ',': ':' may follow (a parameter)
	)
	prev := other
	first := true
	spaced := false // blanks before the current character
	for i := 0; i < len(rest); {
		c := rest[i]
		cur := other
		if c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' {
			i++
			spaced = true
			continue
		}
		wasSpaced := spaced
		spaced = false
		switch {
		case c == '/' && i+1 < len(rest) && rest[i+1] == '/', c == ';', c == '{':
			return !first // what follows is another decision or another statement
		case isLetter(c):
			j := i
			for j < len(rest) && (isLetter(rest[j]) || isDigit(rest[j])) {
				j++
			}
			w := string(rest[i:j])
			i = j
			ends := prev == operand || prev == name || prev == closer || prev == param
			switch {
			case w == "true" || w == "false" || !keywords[w]:
				if ends {
					return false
				}
				cur = operand
				if !keywords[w] {
					cur = name
					if prev == comma {
						cur = param
					}
				}
			case w == "and" || w == "or" || w == "in":
				if !ends {
					return false
				}
			case w == "not":
				if ends || first {
					return false
				}
			case w == "key":
				if prev != closer {
					return false
				}
			default:
				return false // model, let, input, if, else, …: prose
			}
		case isDigit(c) || c == '.':
			if prev != other && prev != comma {
				return false
			}
			for i < len(rest) && (isLetter(rest[i]) || isDigit(rest[i]) || rest[i] == '.' ||
				(rest[i] == '+' || rest[i] == '-') && (rest[i-1] == 'e' || rest[i-1] == 'E')) {
				i++
			}
			cur = operand
		case c == '"':
			if prev != other && prev != comma {
				return false
			}
			j := i + 1
			for j < len(rest) && rest[j] != '"' {
				if rest[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(rest) {
				return false
			}
			i = j + 1
			cur = operand
		case c == '(' || c == '[':
			// A call has its '(' right after the name: `d (doubled)` is prose.
			if prev != other && prev != comma && !(c == '(' && (prev == name || prev == param) && !wasSpaced) {
				return false
			}
			i++
		case c == ')' || c == ']':
			if first {
				return false
			}
			cur = closer
			i++
		case c == '!':
			if first || i+1 >= len(rest) || rest[i+1] != '=' {
				return false
			}
			i += 2
		case c == '-':
			i++
		case c == ':':
			if prev != param && prev != closer {
				return false
			}
			i++
		case c == ',':
			if first {
				return false
			}
			cur = comma
			i++
		case strings.IndexByte("+*/%<>=}", c) >= 0:
			if first {
				return false
			}
			i++
		default:
			return false
		}
		first = false
		prev = cur
	}
	return !first
}

// ParseUpgrading is ParseFile for `rfc fmt`: a file written with `//` comments is read the
// old way (ParseOldComments) so that formatting converts it; upgraded tells it was. A file
// is taken as old when it has no `#` comment and the old reading finds `//` comments.
func ParseUpgrading(filename string, src []byte) (f *File, upgraded bool, err error) {
	f, err = ParseFile(filename, src)
	if err == nil && len(f.Comments) > 0 {
		return f, false, nil
	}
	old, oerr := ParseOldComments(filename, src)
	if oerr != nil || !hasHashComment(old) {
		return f, false, err
	}
	return old, true, nil
}

// hasHashComment reports whether a file read by ParseOldComments had comments (all of them
// converted to `#` by then).
func hasHashComment(f *File) bool { return len(f.Comments) > 0 }
