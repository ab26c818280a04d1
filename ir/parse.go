package ir

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseError locates a problem in IR text.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("ir:%d: %s", e.Line, e.Msg) }

// Parse reads the text form that Print writes. Every operand must be defined before use and
// every scope path must exist; types are taken as written (run Verify to check them).
func Parse(text string) (*Module, error) {
	p := &irParser{m: &Module{}, scopes: map[string]*Scope{}, values: map[string]*Value{}}
	lines := strings.Split(text, "\n")
	for p.line = 1; p.line <= len(lines); p.line++ {
		line := strings.TrimSpace(lines[p.line-1])
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		if err := p.parseLine(line); err != nil {
			return nil, err
		}
	}
	if len(p.open) > 0 {
		return nil, p.errorf("scope %q is not closed", p.open[len(p.open)-1].Path())
	}
	if p.m.Name == "" {
		return nil, &ParseError{Line: 1, Msg: "missing module line"}
	}
	if !p.sawOutput {
		return nil, p.errorf("missing output line")
	}
	return p.m, nil
}

type irParser struct {
	m         *Module
	line      int
	toks      []string
	pos       int
	open      []*Scope
	scopes    map[string]*Scope
	values    map[string]*Value
	sawOutput bool
}

func (p *irParser) errorf(format string, args ...any) error {
	return &ParseError{Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

func (p *irParser) parseLine(line string) error {
	toks, err := tokenize(line)
	if err != nil {
		return p.errorf("%v", err)
	}
	p.toks, p.pos = toks, 0
	head := p.next()
	switch {
	case head == "module":
		if p.m.Name = p.next(); !IsIdent(p.m.Name) {
			return p.errorf("module name %q is not an identifier", p.m.Name)
		}
	case head == "source":
		s, err := p.str()
		if err != nil {
			return err
		}
		p.m.Source = s
	case head == "set":
		name := p.next()
		if err := p.expect("="); err != nil {
			return err
		}
		v, err := p.str()
		if err != nil {
			return err
		}
		p.m.Settings = append(p.m.Settings, Setting{Name: name, Value: v})
	case head == "scope":
		return p.parseScope()
	case head == "}":
		if len(p.open) == 0 {
			return p.errorf("unbalanced }")
		}
		p.open = p.open[:len(p.open)-1]
	case head == "input":
		return p.parseInput()
	case head == "param":
		return p.parseParam()
	case head == "output":
		for {
			v, err := p.operand()
			if err != nil {
				return err
			}
			p.m.Outputs = append(p.m.Outputs, v)
			if p.peek() != "," {
				break
			}
			p.next()
		}
		p.sawOutput = true
	case head == "%":
		return p.parseOp()
	default:
		return p.errorf("unexpected %q at the start of a line", head)
	}
	if p.pos < len(p.toks) {
		return p.errorf("unexpected %q at the end of the line", p.toks[p.pos])
	}
	return nil
}

func (p *irParser) next() string {
	if p.pos >= len(p.toks) {
		return ""
	}
	t := p.toks[p.pos]
	p.pos++
	return t
}

func (p *irParser) peek() string {
	if p.pos >= len(p.toks) {
		return ""
	}
	return p.toks[p.pos]
}

func (p *irParser) expect(t string) error {
	if got := p.next(); got != t {
		return p.errorf("expected %q, got %q", t, got)
	}
	return nil
}

func (p *irParser) str() (string, error) {
	t := p.next()
	if !strings.HasPrefix(t, `"`) {
		return "", p.errorf("expected a quoted string, got %q", t)
	}
	return strconv.Unquote(t)
}

func (p *irParser) scopeRef() (*Scope, error) {
	if err := p.expect("in"); err != nil {
		return nil, err
	}
	path, err := p.str()
	if err != nil {
		return nil, err
	}
	s, ok := p.scopes[path]
	if !ok {
		return nil, p.errorf("unknown scope %q", path)
	}
	return s, nil
}

func (p *irParser) parseScope() error {
	name, err := p.str()
	if err != nil {
		return err
	}
	s := &Scope{Name: name, Class: p.next()}
	if !IsIdent(s.Class) {
		return p.errorf("scope class %q is not an identifier", s.Class)
	}
	if (name == "") != (len(p.open) == 0) || (name != "" && !IsIdent(name)) {
		return p.errorf("scope name %q: the root's name is empty, every other is an identifier", name)
	}
	for p.pos < len(p.toks) {
		switch t := p.next(); t {
		case "args":
			if s.Args, err = p.str(); err != nil {
				return err
			}
		case "key":
			if s.Key, err = p.str(); err != nil {
				return err
			}
		case "layout":
			if s.LayoutKeys, err = p.layoutKey(s.LayoutKeys); err != nil {
				return err
			}
		case "adapter":
			if s.Adapter, err = p.str(); err != nil {
				return err
			}
		case "->":
			for {
				ty, err := p.typ()
				if err != nil {
					return err
				}
				s.Outs = append(s.Outs, ty)
				if p.peek() != "," {
					break
				}
				p.next()
			}
		case "{":
			defer func() { p.open = append(p.open, s) }()
		default:
			return p.errorf("unexpected %q in scope line", t)
		}
	}
	if len(p.open) == 0 {
		if p.m.Root != nil {
			return p.errorf("second root scope %q", name)
		}
		p.m.Root = s
	} else {
		p.open[len(p.open)-1].AddChild(s)
	}
	path := s.Path()
	if _, dup := p.scopes[path]; dup {
		return p.errorf("duplicate scope %q", path)
	}
	p.scopes[path] = s
	return nil
}

func (p *irParser) typ() (Type, error) {
	dt, ok := ParseDType(p.next())
	if !ok {
		return Type{}, p.errorf("expected a dtype, got %q", p.toks[p.pos-1])
	}
	if err := p.expect("["); err != nil {
		return Type{}, err
	}
	shape := Shape{}
	for p.peek() != "]" {
		t := p.next()
		if t == "" {
			return Type{}, p.errorf("unterminated shape")
		}
		if n, err := strconv.Atoi(t); err == nil {
			shape = append(shape, D(n))
		} else if d, err := ParseDim(t); err == nil && !d.Static() {
			shape = append(shape, d)
		} else {
			return Type{}, p.errorf("bad dim %q", t)
		}
		if p.peek() == "," {
			p.next()
		}
	}
	p.next()
	return Type{DType: dt, Shape: shape}, nil
}

// IsIdent reports whether t is an identifier of the language and the IR: a letter or _,
// then letters, digits and _.
func IsIdent(t string) bool {
	if t == "" || (t[0] >= '0' && t[0] <= '9') {
		return false
	}
	for _, c := range t {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func (p *irParser) parseInput() error {
	if err := p.expect("%"); err != nil {
		return err
	}
	name := p.next()
	if !IsIdent(name) {
		return p.errorf("input name %q is not an identifier", name)
	}
	if err := p.expect(":"); err != nil {
		return err
	}
	ty, err := p.typ()
	if err != nil {
		return err
	}
	v := &Value{Kind: KindInput, Name: name, Type: ty}
	return p.define("%"+name, v, &p.m.Inputs)
}

func (p *irParser) parseParam() error {
	if err := p.expect("@"); err != nil {
		return err
	}
	name := p.next()
	for _, part := range strings.Split(name, ".") {
		if !IsIdent(part) {
			return p.errorf("param name %q is not a dotted path of identifiers", name)
		}
	}
	if err := p.expect(":"); err != nil {
		return err
	}
	ty, err := p.typ()
	if err != nil {
		return err
	}
	if err := p.expect("key"); err != nil {
		return err
	}
	key, err := p.str()
	if err != nil {
		return err
	}
	var layouts map[string]string
	for p.peek() == "layout" {
		p.next()
		if layouts, err = p.layoutKey(layouts); err != nil {
			return err
		}
	}
	scope, err := p.scopeRef()
	if err != nil {
		return err
	}
	v := &Value{Kind: KindParam, Name: name, Key: key, LayoutKeys: layouts, Type: ty, Scope: scope}
	return p.define("@"+name, v, &p.m.Params)
}

// layoutKey reads `NAME "KEY"` after the word layout into keys.
func (p *irParser) layoutKey(keys map[string]string) (map[string]string, error) {
	name := p.next()
	if !IsIdent(name) {
		return nil, p.errorf("layout name %q is not an identifier", name)
	}
	key, err := p.str()
	if err != nil {
		return nil, err
	}
	if _, dup := keys[name]; dup {
		return nil, p.errorf("layout %s is given twice", name)
	}
	if keys == nil {
		keys = map[string]string{}
	}
	keys[name] = key
	return keys, nil
}

func (p *irParser) define(ref string, v *Value, list *[]*Value) error {
	if _, dup := p.values[ref]; dup {
		return p.errorf("%s is defined twice", ref)
	}
	p.values[ref] = v
	*list = append(*list, v)
	return nil
}

func (p *irParser) operand() (*Value, error) {
	sigil := p.next()
	if sigil != "%" && sigil != "@" {
		return nil, p.errorf("expected an operand, got %q", sigil)
	}
	ref := sigil + p.next()
	v, ok := p.values[ref]
	if !ok {
		return nil, p.errorf("%s is used before it is defined", ref)
	}
	return v, nil
}

func (p *irParser) parseOp() error {
	id := p.next()
	n, err := strconv.Atoi(id)
	if err != nil {
		return p.errorf("op results are numbered, got %%%s", id)
	}
	if err := p.expect(":"); err != nil {
		return err
	}
	ty, err := p.typ()
	if err != nil {
		return err
	}
	if err := p.expect("="); err != nil {
		return err
	}
	v := &Value{Kind: KindOp, ID: n, Type: ty, Op: p.next()}
	if !IsIdent(v.Op) {
		return p.errorf("op name %q is not an identifier", v.Op)
	}
	if err := p.expect("("); err != nil {
		return err
	}
	for p.peek() != ")" {
		a, err := p.operand()
		if err != nil {
			return err
		}
		v.Args = append(v.Args, a)
		if p.peek() == "," {
			p.next()
		}
	}
	p.next()
	if p.peek() == "{" {
		p.next()
		for p.peek() != "}" {
			name := p.next()
			if err := p.expect("="); err != nil {
				return err
			}
			val, err := p.attrValue()
			if err != nil {
				return err
			}
			v.Attrs = append(v.Attrs, Attr{Name: name, Value: val})
			if p.peek() == "," {
				p.next()
			}
		}
		p.next()
	}
	if p.peek() == "in" {
		if v.Scope, err = p.scopeRef(); err != nil {
			return err
		}
	}
	return p.define("%"+id, v, &p.m.Body)
}

func (p *irParser) attrValue() (any, error) {
	t := p.next()
	switch {
	case t == "":
		return nil, p.errorf("missing attribute value")
	case t == "[":
		list := []int{}
		for p.peek() != "]" {
			n, err := strconv.Atoi(p.next())
			if err != nil {
				return nil, p.errorf("attribute lists hold ints, got %q", p.toks[p.pos-1])
			}
			list = append(list, n)
			if p.peek() == "," {
				p.next()
			}
			if p.peek() == "" {
				return nil, p.errorf("unterminated list")
			}
		}
		p.next()
		return list, nil
	case strings.HasPrefix(t, `"`):
		return strconv.Unquote(t)
	case t == "true" || t == "false":
		return t == "true", nil
	case t == "nan" || t == "inf" || t == "-inf" || strings.ContainsAny(t, ".e"):
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, p.errorf("bad float %q", t)
		}
		return f, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return nil, p.errorf("bad attribute value %q", t)
	}
	return n, nil
}

// tokenize splits a line into quoted strings, the punctuation % @ : [ ] ( ) { } , = -> and
// bare words (names, numbers, dims such as batch*2). Inside brackets, parentheses belong to
// the words: a dim such as (h+1)//2 is one word.
func tokenize(line string) ([]string, error) {
	var toks []string
	brackets := 0
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == '[' || c == ']':
			if c == '[' {
				brackets++
			} else if brackets > 0 {
				brackets--
			}
			toks = append(toks, string(c))
			i++
		case c == ' ' || c == '\t':
			i++
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' {
					j++
				}
			}
			if j >= len(line) {
				return nil, fmt.Errorf("unterminated string")
			}
			toks = append(toks, line[i:j+1])
			i = j + 1
		case strings.HasPrefix(line[i:], "->"):
			toks = append(toks, "->")
			i += 2
		case strings.IndexByte("%@:(){},=", c) >= 0 && !(brackets > 0 && (c == '(' || c == ')')):
			toks = append(toks, string(c))
			i++
		default:
			stop := " \t\"%@:[](){},="
			if brackets > 0 {
				stop = " \t\"%@:[]{},="
			}
			j := i
			for j < len(line) && strings.IndexByte(stop, line[j]) < 0 {
				j++
			}
			toks = append(toks, line[i:j])
			i = j
		}
	}
	return toks, nil
}
