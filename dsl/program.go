// Package dsl is the language: the builtin layer catalogue, name resolution, evaluation of
// parameters, let, if and repeat, and the elaboration of a model into IR. The language
// reference is LANGUAGE.md beside this file.
package dsl

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rfc-project/rfc/parser"
)

//go:embed prelude.rfn
var preludeSrc []byte

// prelude is the prelude's AST, parsed once: programs only read their ASTs, and parsing
// it took as long as parsing a model file, for every program (every rfc command, every
// input of FuzzElaborate, every model of the differential fuzzer).
var prelude struct {
	once sync.Once
	f    *parser.File
	err  error
}

func parsedPrelude() (*parser.File, error) {
	prelude.once.Do(func() { prelude.f, prelude.err = parser.ParseFile(PreludeName, preludeSrc) })
	return prelude.f, prelude.err
}

// PreludeName is the file name the prelude's positions carry.
const PreludeName = "<prelude>"

// Error is a positioned compile error. Error() is one line; Detail() adds the source line
// and a caret under the column.
type Error struct {
	Pos  parser.Pos
	Msg  string
	Line string // the source line, when known
	// CalledFrom lists, innermost first, the layer statements that used the model the
	// error is in, up to the first one in the main file, when the error is in the prelude
	// or an imported file: the user's own line that led there.
	CalledFrom []Frame
}

// Frame is one place in a chain of model uses.
type Frame struct {
	Pos  parser.Pos
	Line string // the source line with a caret, when known
}

func (e *Error) Error() string {
	msg := e.Msg
	if len(e.CalledFrom) > 0 {
		at := make([]string, len(e.CalledFrom))
		for i, f := range e.CalledFrom {
			at[i] = f.Pos.String()
		}
		msg += " (called from " + strings.Join(at, ", called from ") + ")"
	}
	if e.Pos.Filename == "" && e.Pos.Line == 0 {
		return msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Pos.Filename, e.Pos.Line, e.Pos.Column, msg)
}

// Detail is the message, then the source line with a caret, then each place it was called
// from with its line.
func (e *Error) Detail() string {
	if e.Line == "" {
		return e.Error()
	}
	out := e.Error() + "\n" + e.Line
	for _, f := range e.CalledFrom {
		if f.Line != "" {
			out += "\ncalled from " + f.Pos.String() + ":\n" + f.Line
		}
	}
	return out
}

// ErrorList collects every error of a compilation.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Detail renders every error with its source line.
func (l ErrorList) Detail() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Detail()
	}
	return strings.Join(msgs, "\n")
}

// Detail renders any error from this package with source lines, others as they are.
func Detail(err error) string {
	switch e := err.(type) {
	case ErrorList:
		return e.Detail()
	case *Error:
		return e.Detail()
	}
	return err.Error()
}

// Program is a parsed main file with its imports and the prelude.
type Program struct {
	Main   string
	files  map[string]*parser.File
	models map[string]*parser.Model
	order  []string // models of the main file, in order
}

// Load parses a file, its imports (relative to the importing file) and the prelude.
func Load(path string) (*Program, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, ErrorList{&Error{Msg: err.Error()}}
	}
	return LoadSource(path, src)
}

// LoadSource is Load for source already in memory; imports are still read from disk.
func LoadSource(path string, src []byte) (*Program, error) {
	p := &Program{Main: path, files: map[string]*parser.File{}, models: map[string]*parser.Model{}}
	var errs ErrorList
	if _, err := p.add(PreludeName, preludeSrc, false, &errs); err != nil {
		return nil, err
	}
	f, err := p.add(path, src, true, &errs)
	if err != nil {
		return nil, err
	}
	for _, m := range f.Decls {
		p.order = append(p.order, m.Name)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

func (p *Program) add(path string, src []byte, main bool, errs *ErrorList) (*parser.File, error) {
	if f, ok := p.files[path]; ok {
		return f, nil
	}
	var f *parser.File
	var err error
	if path == PreludeName {
		f, err = parsedPrelude()
	} else {
		f, err = parser.ParseFile(path, src)
	}
	if err != nil {
		return nil, p.parseError(err, src)
	}
	p.files[path] = f
	for _, m := range f.Decls {
		if prev, dup := p.models[m.Name]; dup && prev.Pos.Filename == PreludeName && path != PreludeName {
			// A file's own model hides the prelude's of the same name, as a local
			// declaration hides a universe one: sd15.rfn's SelfAttention carries the
			// checkpoint keys of its layouts.
			p.models[m.Name] = m
			continue
		} else if dup {
			*errs = append(*errs, p.newError(m.Pos, "", fmt.Sprintf("model %s is already declared at %s:%d:%d", m.Name, prev.Pos.Filename, prev.Pos.Line, prev.Pos.Column)))
			continue
		}
		// A model may hide a builtin layer (Refiners' UNet Upsample is a Chain, not
		// torch's Upsample), but not a container or a context layer, whose meaning the
		// elaborator gives.
		if b, isBuiltin := builtins[m.Name]; isBuiltin && (b.Container || m.Name == "SetContext" || m.Name == "UseContext") {
			*errs = append(*errs, p.newError(m.Pos, "", fmt.Sprintf("model %s has the name of a builtin container or context layer", m.Name)))
			continue
		}
		p.models[m.Name] = m
	}
	for _, imp := range f.Imports {
		target := imp.Path
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		isrc, err := os.ReadFile(target)
		if err != nil {
			*errs = append(*errs, p.newError(imp.Pos, "", fmt.Sprintf("cannot import %q: %v", imp.Path, err)))
			continue
		}
		if _, err := p.add(target, isrc, false, errs); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (p *Program) parseError(err error, src []byte) error {
	var out ErrorList
	add := func(e *parser.Error) {
		out = append(out, &Error{Pos: e.Pos, Msg: e.Msg, Line: parser.Caret(src, e.Pos)})
	}
	switch e := err.(type) {
	case *parser.Error:
		add(e)
	default:
		out = append(out, &Error{Msg: err.Error()})
	}
	return out
}

func (p *Program) newError(pos parser.Pos, _ string, msg string) *Error {
	e := &Error{Pos: pos, Msg: msg}
	if f, ok := p.files[pos.Filename]; ok {
		e.Line = parser.Caret(f.Src, pos)
	}
	return e
}

// DefaultModel is the last model of the main file.
func (p *Program) DefaultModel() string {
	for i := len(p.order) - 1; i >= 0; i-- {
		if !p.models[p.order[i]].IsAdapter {
			return p.order[i]
		}
	}
	return ""
}

// ModelNames lists the models of the main file in order.
func (p *Program) ModelNames() []string {
	var out []string
	for _, n := range p.order {
		if !p.models[n].IsAdapter {
			out = append(out, n)
		}
	}
	return out
}

// HasInputs reports whether a model declares inputs (and so can be an entry point alone).
func (p *Program) HasInputs(name string) bool {
	m, ok := p.models[name]
	if !ok {
		return false
	}
	for _, s := range m.Body.Stmts {
		if _, ok := s.(*parser.InputStmt); ok {
			return true
		}
	}
	return false
}

// contextKeys lists every key that some UseContext reads, so that inputs of those names
// feed the context instead of the first layer.
func (p *Program) contextKeys() map[string]bool {
	keys := map[string]bool{}
	var walk func(b *parser.Block)
	walk = func(b *parser.Block) {
		if b == nil {
			return
		}
		for _, s := range b.Stmts {
			switch s := s.(type) {
			case *parser.LayerStmt:
				if s.Name == "UseContext" {
					for i, a := range s.Args {
						if lit, ok := a.Value.(*parser.StringLit); ok && (a.Name == "key" || (a.Name == "" && i == 1)) {
							keys[lit.Value] = true
						}
					}
				}
				walk(s.Body)
			case *parser.RepeatStmt:
				walk(s.Body)
			case *parser.IfStmt:
				for cur := parser.Stmt(s); cur != nil; {
					switch c := cur.(type) {
					case *parser.IfStmt:
						walk(c.Then)
						cur = c.Else
					case *parser.Block:
						walk(c)
						cur = nil
					default:
						cur = nil
					}
				}
			case *parser.Block:
				walk(s)
			}
		}
	}
	names := make([]string, 0, len(p.models))
	for n := range p.models {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		walk(p.models[n].Body)
	}
	return keys
}
