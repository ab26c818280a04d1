// Package ir is rfc's intermediate representation: a flat SSA dataflow graph whose every
// value remembers the layer it came from (its Scope), plus the scope tree itself, which
// carries Refiners-style names, checkpoint keys and output types. Containers of the language
// (Chain, Residual, Parallel, …) and context edges are already resolved here: only
// computations remain, which is what passes, the interpreter and code generators want.
//
// The text form (Print / Parse) round-trips exactly and is what golden tests compare.
//
// Dims are static sizes or sizes known only at run time, kept as canonical expressions of
// their names (dimexpr.go); shape rules decide what they can at compile time and list the
// rest as checks (InferChecks) that generated code tests when it meets the sizes.
//
// The op catalogue (ops.go) and the typed attribute accessors (attrs.go) are the one place
// that knows each op: back ends read attributes through the accessors only. Adding an op is
// described in docs/ADDING_AN_OP.md.
package ir

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DType is the element type of a value.
type DType uint8

const (
	F32 DType = iota + 1
	F16
	BF16
	I32
	I64
)

var dtypeNames = map[DType]string{F32: "f32", F16: "f16", BF16: "bf16", I32: "i32", I64: "i64"}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// IsFloat reports whether d holds floating-point numbers.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 }

// ParseDType reads the names String gives.
func ParseDType(s string) (DType, bool) {
	for d, n := range dtypeNames {
		if n == s {
			return d, true
		}
	}
	return 0, false
}

// Dim is one dimension of a shape: a static size, or a symbolic one (Sym != "") such as
// `batch` or `(height+1)//2`, known only when the model runs. Sym is the canonical text of
// the expression (dimexpr.go), so equal expressions compare equal with ==.
type Dim struct {
	N   int
	Sym string
}

// D is a static dim.
func D(n int) Dim { return Dim{N: n} }

// S is a symbolic dim: a name, or an expression as ParseDim reads it (made canonical).
func S(name string) Dim {
	if IsIdent(name) {
		return Dim{Sym: name}
	}
	d, err := ParseDim(name)
	if err != nil {
		return Dim{Sym: name} // refused by every rule that reads it
	}
	return d
}

// Static reports whether the size is known.
func (d Dim) Static() bool { return d.Sym == "" }

func (d Dim) String() string {
	if d.Sym != "" {
		return d.Sym
	}
	return strconv.Itoa(d.N)
}

// badDim stands for a symbolic result that cannot be formed (its coefficients overflow):
// no rule accepts it, so it ends as an error, never as a wrong size.
var badDim = Dim{Sym: "?overflow"}

// MulDim multiplies two dims; a static 1 is the identity. Static products are not checked
// for overflow: use MulDimChecked on sizes from users.
func MulDim(a, b Dim) Dim {
	switch {
	case a.Static() && b.Static():
		return D(a.N * b.N)
	case a.Static() && a.N == 1:
		return b
	case b.Static() && b.N == 1:
		return a
	}
	d, err := dimOp(dimMul, a, b)
	if err != nil {
		return badDim
	}
	return d
}

// AddDim adds two dims; a static 0 is the identity.
func AddDim(a, b Dim) Dim {
	switch {
	case a.Static() && b.Static():
		return D(a.N + b.N)
	case a.Static() && a.N == 0:
		return b
	case b.Static() && b.N == 0:
		return a
	}
	d, err := dimOp(dimAdd, a, b)
	if err != nil {
		return badDim
	}
	return d
}

// Shape is a list of dims, outermost first.
type Shape []Dim

// StaticShape builds a shape of static dims.
func StaticShape(dims ...int) Shape {
	s := make(Shape, len(dims))
	for i, n := range dims {
		s[i] = D(n)
	}
	return s
}

// Static reports whether every dim is known.
func (s Shape) Static() bool {
	for _, d := range s {
		if !d.Static() {
			return false
		}
	}
	return true
}

// Ints returns the sizes of a static shape; symbolic dims give -1.
func (s Shape) Ints() []int {
	out := make([]int, len(s))
	for i, d := range s {
		if d.Static() {
			out[i] = d.N
		} else {
			out[i] = -1
		}
	}
	return out
}

// NumElements is the product of the dims (symbolic when any dim is).
func (s Shape) NumElements() Dim {
	n := D(1)
	for _, d := range s {
		n = MulDim(n, d)
	}
	return n
}

// NumElementsDim is NumElements with an error when the product overflows.
func (s Shape) NumElementsDim() (Dim, error) {
	n := D(1)
	for _, d := range s {
		var err error
		if n, err = MulDimChecked(n, d); err != nil {
			return Dim{}, fmt.Errorf("shape %s: %v", s, err)
		}
	}
	return n, nil
}

// Equal compares dim by dim.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Clone copies the shape.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// Type is a dtype with a shape.
type Type struct {
	DType DType
	Shape Shape
}

// F32Of is shorthand for an f32 type.
func F32Of(shape Shape) Type { return Type{DType: F32, Shape: shape} }

func (t Type) String() string { return t.DType.String() + t.Shape.String() }

// Equal compares dtype and shape.
func (t Type) Equal(u Type) bool { return t.DType == u.DType && t.Shape.Equal(u.Shape) }

// Kind says what a Value is.
type Kind uint8

const (
	KindInput Kind = iota + 1 // an input of the entry point
	KindParam                 // a weight, loaded by checkpoint key
	KindOp                    // the result of an operation
)

// Value is one SSA value: an input, a parameter, or the result of an op.
type Value struct {
	Kind  Kind
	ID    int // position among op results, set by Module.Renumber
	Op    string
	Args  []*Value
	Attrs []Attr
	Type  Type
	Name  string // input name, or parameter name (its Refiners path, e.g. "Chain_1.Linear.weight")
	Key   string // checkpoint key of a parameter
	// LayoutKeys are the parameter's checkpoint keys in the named layouts the model
	// declares (`key ldm="…"`): one model, several published key sets.
	LayoutKeys map[string]string
	Scope      *Scope // the layer this value belongs to
}

// Ref is how the value is written as an operand: %name for inputs, @name for parameters,
// %N for op results.
func (v *Value) Ref() string {
	switch v.Kind {
	case KindInput:
		return "%" + v.Name
	case KindParam:
		return "@" + v.Name
	}
	return "%" + strconv.Itoa(v.ID)
}

// Attr reads an attribute by name.
func (v *Value) Attr(name string) (any, bool) {
	for _, a := range v.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return nil, false
}

// Int reads an int attribute, or def when absent.
func (v *Value) Int(name string, def int) int {
	if a, ok := v.Attr(name); ok {
		if n, ok := a.(int); ok {
			return n
		}
	}
	return def
}

// Float reads a float attribute, or def when absent.
func (v *Value) Float(name string, def float64) float64 {
	if a, ok := v.Attr(name); ok {
		switch n := a.(type) {
		case float64:
			return n
		case int:
			return float64(n)
		}
	}
	return def
}

// Bool reads a bool attribute, or def when absent.
func (v *Value) Bool(name string, def bool) bool {
	if a, ok := v.Attr(name); ok {
		if b, ok := a.(bool); ok {
			return b
		}
	}
	return def
}

// Str reads a string attribute, or def when absent.
func (v *Value) Str(name string, def string) string {
	if a, ok := v.Attr(name); ok {
		if s, ok := a.(string); ok {
			return s
		}
	}
	return def
}

// Ints reads an []int attribute, or nil when absent.
func (v *Value) Ints(name string) []int {
	if a, ok := v.Attr(name); ok {
		if s, ok := a.([]int); ok {
			return s
		}
	}
	return nil
}

// Attr is a named attribute of an op. Value is an int, float64, bool, string or []int.
type Attr struct {
	Name  string
	Value any
}

// Scope is one node of the layer tree: a builtin layer, a container or a model used as a
// layer. Values point at the scope they belong to; the tree keeps names, keys and the output
// types that `rfc tree` shows.
type Scope struct {
	Name  string // Refiners name among its siblings: "Linear_2"
	Class string // "Linear", "Chain", a model's name…
	Args  string // key arguments for display: "in_features=64, out_features=256"
	Key   string // checkpoint key prefix of the scope's tensors ("" at the root)
	// LayoutKeys is Key in each named layout.
	LayoutKeys map[string]string
	Adapter    string // name of the adapter that injected this scope, if any
	Outs       []Type
	Parent     *Scope
	Children   []*Scope
}

// Path is the dot-joined Refiners path from the root (the root's path is "").
func (s *Scope) Path() string {
	if s == nil || s.Parent == nil {
		return ""
	}
	if p := s.Parent.Path(); p != "" {
		return p + "." + s.Name
	}
	return s.Name
}

// AddChild appends a child scope.
func (s *Scope) AddChild(c *Scope) {
	c.Parent = s
	s.Children = append(s.Children, c)
}

// Walk visits s and its descendants depth-first, parents first.
func (s *Scope) Walk(fn func(*Scope)) {
	fn(s)
	for _, c := range s.Children {
		c.Walk(fn)
	}
}

// Setting is a model parameter value the module was built with.
type Setting struct {
	Name, Value string
}

// Module is one compiled entry point.
type Module struct {
	Name     string
	Source   string
	Settings []Setting
	Root     *Scope
	Inputs   []*Value
	Params   []*Value
	Body     []*Value // ops in a topological order
	Outputs  []*Value
	// Injections are the adapters injected into the module, oldest first (adapters.go).
	// They are not part of the text form.
	Injections []*Injection
	// Context records what the elaboration stored with SetContext, so that an adapter
	// injected later reads the context as it was at its target. Not part of the text form.
	Context *ContextLog
}

// ContextLog is the context of an elaboration: every SetContext in order, and the order in
// which layers began, so that the context visible to a layer can be replayed.
type ContextLog struct {
	Writes []ContextWrite
	Order  map[*Scope]int // when each layer began: writes with a smaller At precede it
	Dims   map[string]int // the symbolic dims the elaboration bound (--set batch=1, input sizes)
}

// ContextWrite is one SetContext: its values under context/key, made before layer At.
type ContextWrite struct {
	Context, Key string
	Values       []*Value
	At           int
}

// Visible returns the context as a layer saw it: for each context and key, the values of the
// last write before it began. A scope without a recorded order (one an adapter added) sees
// what its nearest recorded ancestor saw. Writes are ordered by when their layer began, then
// by the order they were logged in: an adapter's writes, logged after the model's, take
// effect when its target runs, so the model's later layers still override them.
func (l *ContextLog) Visible(s *Scope) map[[2]string][]*Value {
	out := map[[2]string][]*Value{}
	if l == nil {
		return out
	}
	at, ok := 0, false
	for c := s; c != nil && !ok; c = c.Parent {
		at, ok = l.Order[c]
	}
	if !ok {
		return out
	}
	when := map[[2]string]int{}
	for _, w := range l.Writes {
		k := [2]string{w.Context, w.Key}
		if prev, seen := when[k]; w.At < at && (!seen || w.At >= prev) {
			out[k], when[k] = w.Values, w.At
		}
	}
	return out
}

// Renumber gives op results consecutive IDs in body order.
func (m *Module) Renumber() {
	for i, v := range m.Body {
		v.ID = i
	}
}

// Param finds a parameter by name.
func (m *Module) Param(name string) *Value {
	for _, p := range m.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Input finds an input by name.
func (m *Module) Input(name string) *Value {
	for _, p := range m.Inputs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ParamCount is the number of weight elements; symbolic parameter shapes count as 0.
func (m *Module) ParamCount() int {
	n := 0
	for _, p := range m.Params {
		if c := p.Type.Shape.NumElements(); c.Static() {
			n += c.N
		}
	}
	return n
}

// Uses maps each value to the ops that read it (outputs are not counted).
func (m *Module) Uses() map[*Value][]*Value {
	uses := map[*Value][]*Value{}
	for _, v := range m.Body {
		for _, a := range v.Args {
			uses[a] = append(uses[a], v)
		}
	}
	return uses
}

// Layouts lists the names of the layouts keys maps, sorted.
func Layouts(keys map[string]string) []string {
	out := make([]string, 0, len(keys))
	for l := range keys {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// Layouts lists the named key layouts of a module's parameters, sorted.
func (m *Module) Layouts() []string {
	seen := map[string]bool{}
	for _, p := range m.Params {
		for l := range p.LayoutKeys {
			seen[l] = true
		}
	}
	return Layouts(boolKeys(seen))
}

func boolKeys(m map[string]bool) map[string]string {
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = ""
	}
	return out
}
