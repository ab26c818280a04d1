package dsl

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/internal/editdist"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/parser"
)

// Options select and configure the entry point.
type Options struct {
	// Model is the entry point; "" means the last model of the main file.
	Model string
	// Set overrides parameters of the entry point (the command line's --set k=v). A name
	// that is not a parameter but a symbolic dim of an input (batch) binds that dim.
	Set map[string]string
	// Dims binds symbolic dims of the inputs (from the shapes of actual inputs).
	Dims map[string]int
}

// item is one child of a container after let, if and repeat have been expanded.
type item struct {
	stmt *parser.LayerStmt
	env  *env
}

type elab struct {
	prog     *Program
	errs     ErrorList
	mod      *ir.Module
	inputs   map[string]*ir.Value // declared inputs of the entry point
	ctxKeys  map[string]bool      // keys read by some UseContext: such inputs feed the context
	context  map[string][]*ir.Value
	keys     map[string]parser.Pos // checkpoint keys given out so far
	depth    int
	dims     map[string]int
	entryPos parser.Pos
	adapter  *adapterSite // set while an adapter body is elaborated (adapter.go)
	layers   int          // layers expanded so far, against maxLayers
	calls    []parser.Pos // the layer statements of the models being elaborated, outermost first
	layouts  []string     // the named key layouts of the program
	// adapterOrder is, while an adapter is injected, when its target began (ContextLog).
	adapterOrder int
}

// maxLayers bounds the layers one elaboration may expand: far above any real model (SDXL's
// UNet has a few thousand), low enough that a mistaken `repeat 10 ** 9` stops with an error
// instead of exhausting memory. A variable so that FuzzElaborate can lower it.
var maxLayers = 200000

// errAt builds a positioned error. An error outside the main file also names the
// statements that led there from it.
func (el *elab) errAt(pos parser.Pos, format string, args ...any) *Error {
	e := el.prog.newError(pos, "", fmt.Sprintf(format, args...))
	if pos.Filename != el.prog.Main {
		for i := len(el.calls) - 1; i >= 0; i-- {
			call := el.calls[i]
			e.CalledFrom = append(e.CalledFrom, Frame{Pos: call, Line: el.prog.newError(call, "", "").Line})
			if call.Filename == el.prog.Main {
				break
			}
		}
	}
	return e
}

// Elaborate builds the IR of one entry point.
func (p *Program) Elaborate(opts Options) (*ir.Module, error) {
	name := opts.Model
	if name == "" {
		name = p.DefaultModel()
	}
	decl, ok := p.models[name]
	if !ok || decl.IsAdapter {
		return nil, ErrorList{&Error{Msg: fmt.Sprintf("%s has no model %s (models: %s)", p.Main, name, strings.Join(p.ModelNames(), ", "))}}
	}
	el := &elab{prog: p, context: map[string][]*ir.Value{}, inputs: map[string]*ir.Value{}, keys: map[string]parser.Pos{}, ctxKeys: p.contextKeys(), dims: map[string]int{}}
	for k, v := range opts.Dims {
		el.dims[k] = v
	}
	root := &ir.Scope{Class: decl.Name}
	el.mod = &ir.Module{Name: decl.Name, Source: p.Main, Root: root, Context: &ir.ContextLog{Order: map[*ir.Scope]int{}, Dims: el.dims}}
	el.layouts = p.programLayouts()
	menv, err := el.bindModelParams(decl, nil, opts.Set)
	if err != nil {
		return nil, err
	}
	// The entry point's own key clause is the prefix of every key.
	if !el.setKeys(root, "", decl.Key, decl.LayoutKeys, menv) {
		return nil, el.errs
	}
	for _, prm := range decl.Params {
		v, bound := menv.lookup(prm.Name)
		if !bound {
			continue // a size known only at run time
		}
		el.mod.Settings = append(el.mod.Settings, ir.Setting{Name: prm.Name, Value: formatConst(v)})
	}
	outs := el.modelBody(decl, menv, root, nil, true)
	if len(el.errs) > 0 {
		return nil, el.errs
	}
	el.mod.Outputs = outs
	root.Outs = types(outs)
	if err := ir.Verify(el.mod); err != nil {
		// A verifier failure here is a compiler bug, but report it rather than panic.
		return nil, ErrorList{&Error{Pos: decl.Pos, Msg: "internal error: IR does not verify: " + err.Error()}}
	}
	return el.mod, nil
}

func types(vs []*ir.Value) []ir.Type {
	out := make([]ir.Type, len(vs))
	for i, v := range vs {
		out[i] = v.Type
	}
	return out
}

// bindModelParams evaluates a model's parameters: call arguments (when the model is used as
// a layer), --set strings (entry point), then defaults, in declaration order.
func (el *elab) bindModelParams(decl *parser.Model, call *item, set map[string]string) (*env, error) {
	e := newEnv(nil)
	given := map[string]any{}
	if call != nil {
		specs := make([]argSpec, len(decl.Params))
		for i, p := range decl.Params {
			specs[i] = argSpec{Name: p.Name, Kind: paramKind(p.Type), Default: none}
		}
		vals, err := el.matchArgs(decl.Name, specs, call)
		if err != nil {
			return nil, err
		}
		given = vals
	}
	known := map[string]bool{}
	for _, p := range decl.Params {
		known[p.Name] = true
	}
	for k, raw := range set {
		if !known[k] && !el.isInputDim(decl, k) {
			names := make([]string, len(decl.Params))
			for i, p := range decl.Params {
				names[i] = p.Name
			}
			return nil, ErrorList{el.errAt(decl.Pos, "--set %s=%s: model %s has no parameter %s (parameters: %s)", k, raw, decl.Name, k, strings.Join(names, ", "))}
		}
		if !known[k] {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 {
				return nil, ErrorList{el.errAt(decl.Pos, "--set %s=%s: the input dim %s needs a positive int", k, raw, k)}
			}
			el.dims[k] = n
		}
	}
	for _, p := range decl.Params {
		if _, ok := paramKinds[p.Type]; !ok && !decl.IsAdapter {
			return nil, ErrorList{el.errAt(p.TypePos, "parameter %s has unknown type %s (int, float, bool, string, or a list: [int], [float], [bool], [string])", p.Name, p.Type)}
		}
		var v any
		if g, ok := given[p.Name]; ok && g != none {
			v = g
		} else if raw, ok := set[p.Name]; ok {
			parsed, err := parseSetting(raw, p.Type)
			if err != nil {
				return nil, ErrorList{el.errAt(p.Pos, "--set %s=%s: %v (parameter %s: %s)", p.Name, raw, err, p.Name, p.Type)}
			}
			v = parsed
		} else if p.Type == "size" {
			// A size not given stays unbound: the input lines bind it, to the size
			// received (a model used as a layer) or to a size known only at run time
			// (the entry point).
			if p.Default != nil {
				return nil, ErrorList{el.errAt(p.Default.Start(), "parameter %s is a size: it takes its value from the inputs or --set, not from a default", p.Name)}
			}
			continue
		} else if p.Default != nil {
			d, err := el.eval(p.Default, e)
			if err != nil {
				return nil, ErrorList{err.(*Error)}
			}
			c, ok := coerce(d, paramKind(p.Type))
			if !ok {
				return nil, ErrorList{el.errAt(p.Default.Start(), "default of %s is a %s, not %s", p.Name, typeName(d), p.Type)}
			}
			v = c
		} else {
			return nil, ErrorList{el.errAt(p.Pos, "parameter %s of %s has no value", p.Name, decl.Name)}
		}
		e = e.with(p.Name, v)
	}
	return e, nil
}

// paramKinds are the value types a model parameter may have.
var paramKinds = map[string]argKind{
	"int": kInt, "float": kFloat, "bool": kBool, "string": kString, "size": kSize,
	"[int]": kIntList, "[float]": kFloatList, "[bool]": kBoolList, "[string]": kStringList,
}

func paramKind(t string) argKind {
	if k, ok := paramKinds[t]; ok {
		return k
	}
	return kString
}

// parseSetting reads a --set value as a parameter of type typ: an int, float or bool as
// Go writes them, a string as it is, a list as an expression (`[320, 640]`).
func parseSetting(raw, typ string) (any, error) {
	switch typ {
	case "int":
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("%q is not an int", raw)
		}
		return n, nil
	case "float":
		f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a float", raw)
		}
		return f, nil
	case "bool":
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("%q is not a bool", raw)
		}
		return b, nil
	case "size":
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive int", raw)
		}
		return n, nil
	}
	k := paramKind(typ)
	if _, isList := k.elemKind(); !isList {
		return raw, nil
	}
	x, err := parser.ParseExpr("--set", []byte(raw))
	if err != nil {
		return nil, fmt.Errorf("%q is not a list such as [1, 2]", raw)
	}
	el := &elab{prog: &Program{files: map[string]*parser.File{}}}
	v, err := el.eval(x, newEnv(nil))
	if err != nil {
		return nil, fmt.Errorf("%q: %v", raw, err.(*Error).Msg)
	}
	c, ok := coerce(v, k)
	if !ok {
		return nil, fmt.Errorf("%s is not a %s", formatConst(v), typ)
	}
	return c, nil
}

// isInputDim reports whether name is used as a bare dim of one of the model's inputs.
func (el *elab) isInputDim(decl *parser.Model, name string) bool {
	for _, s := range decl.Body.Stmts {
		if in, ok := s.(*parser.InputStmt); ok {
			for _, d := range in.Dims {
				if id, ok := d.(*parser.Ident); ok && id.Name == name {
					return true
				}
			}
		}
	}
	return false
}

// modelBody elaborates a model's body as its base container. For the entry point the
// inputs come from its input lines; for a model used as a layer, from its caller.
func (el *elab) modelBody(decl *parser.Model, e *env, scope *ir.Scope, ins []*ir.Value, entry bool) []*ir.Value {
	if !entry && !decl.IsAdapter {
		// A model used as a layer binds the symbolic dims of its input lines to the sizes
		// it receives, so its body can use them (SelfAttention2d's h and w). An adapter's
		// input lines declare inputs it adds to the entry point (InjectAdapter).
		var lines []*parser.InputStmt
		for _, s := range decl.Body.Stmts {
			if in, ok := s.(*parser.InputStmt); ok {
				lines = append(lines, in)
			}
		}
		if len(lines) > 0 {
			var err *Error
			if e, err = el.bindDeclaredInputs(decl, lines, e, ins); err != nil {
				el.errs = append(el.errs, err)
				return nil
			}
		}
	}
	if entry {
		// The names of the entry point's input dims are sizes its body may compute with:
		// the --set value, or a size known only at run time.
		for _, s := range decl.Body.Stmts {
			in, ok := s.(*parser.InputStmt)
			if !ok {
				continue
			}
			for _, d := range in.Dims {
				id, ok := d.(*parser.Ident)
				if !ok {
					continue
				}
				if _, bound := e.lookup(id.Name); bound {
					continue
				}
				if n, ok := el.dims[id.Name]; ok {
					e = e.with(id.Name, n)
				} else {
					e = e.with(id.Name, ir.S(id.Name))
				}
			}
		}
	}
	var items []item
	var declared []*parser.InputStmt
	if !el.expand(decl.Body, e, &items, &declared) {
		return nil
	}
	if entry {
		for _, in := range declared {
			v := el.declareInput(in, e)
			if v == nil {
				return nil
			}
			if !el.ctxKeys[in.Name] {
				ins = append(ins, v)
			}
		}
		if len(ins) == 0 {
			el.errs = append(el.errs, el.errAt(decl.Pos, "model %s has no input: declare one with `input x: f32[…]`", decl.Name))
			return nil
		}
	}
	base := decl.Base
	if base == "" {
		base = "Chain"
	}
	b, ok := builtins[base]
	if !ok {
		el.errs = append(el.errs, el.errAt(decl.BasePos, "model %s: %s is not a builtin layer or container%s", decl.Name, base, el.suggest(base)))
		return nil
	}
	stmt := &parser.LayerStmt{Name: base, Pos: decl.BasePos, Args: decl.BaseArgs, HasParens: decl.BaseHasParens}
	a, err := el.matchArgs(base, b.Args, &item{stmt: stmt, env: e})
	if err != nil {
		el.errs = append(el.errs, err.(ErrorList)...)
		return nil
	}
	if b.Container {
		return el.container(base, a, items, scope, ins, decl.Pos)
	}
	// A model that specializes a layer, as Refiners' TokenEncoder(fl.Embedding) does: the
	// layer's tensors belong to the model's own scope.
	if len(items) > 0 {
		el.errs = append(el.errs, el.errAt(items[0].stmt.Pos, "model %s specializes the layer %s: its body may hold only input and let lines", decl.Name, base))
		return nil
	}
	return el.leaf(b, a, stmt, scope, ins)
}

// inputType evaluates the type an input line declares.
func (el *elab) inputType(in *parser.InputStmt, e *env) (ir.Type, *Error) {
	dt, ok := ir.ParseDType(in.DType)
	if !ok {
		return ir.Type{}, el.errAt(in.Pos, "unknown dtype %s (f32, f16, bf16, i32, i64)", in.DType)
	}
	shape := ir.Shape{}
	for _, d := range in.Dims {
		dim, err := el.evalDim(d, e)
		if err != nil {
			return ir.Type{}, err
		}
		shape = append(shape, dim)
	}
	if dt == ir.F16 || dt == ir.BF16 {
		dt = ir.F32
	}
	return ir.Type{DType: dt, Shape: shape}, nil
}

func (el *elab) declareInput(in *parser.InputStmt, e *env) *ir.Value {
	dt, ok := ir.ParseDType(in.DType)
	if !ok {
		el.errs = append(el.errs, el.errAt(in.Pos, "unknown dtype %s (f32, f16, bf16, i32, i64)", in.DType))
		return nil
	}
	if _, dup := el.inputs[in.Name]; dup {
		el.errs = append(el.errs, el.errAt(in.Pos, "input %s is declared twice", in.Name))
		return nil
	}
	shape := ir.Shape{}
	for _, d := range in.Dims {
		dim, err := el.evalDim(d, e)
		if err != nil {
			el.errs = append(el.errs, err)
			return nil
		}
		shape = append(shape, dim)
	}
	// Sizes are counted in int64 bytes everywhere downstream: refuse an input whose known
	// dims alone overflow that, here where the user's line is known.
	bytes := int64(8)
	for _, d := range shape {
		if !d.Static() || d.N == 0 {
			continue
		}
		hi, lo := bits.Mul64(uint64(bytes), uint64(d.N))
		if hi != 0 || lo > math.MaxInt64 {
			el.errs = append(el.errs, el.errAt(in.Pos, "input %s: %s%s is too large: its size overflows a 64-bit byte count", in.Name, in.DType, shape))
			return nil
		}
		bytes = int64(lo)
	}
	if dt == ir.F16 || dt == ir.BF16 {
		dt = ir.F32 // half inputs are widened on entry: kernels compute in f32
	}
	v := &ir.Value{Kind: ir.KindInput, Name: in.Name, Type: ir.Type{DType: dt, Shape: shape}}
	el.inputs[in.Name] = v
	el.mod.Inputs = append(el.mod.Inputs, v)
	return v
}

func (el *elab) evalDim(d parser.Expr, e *env) (ir.Dim, *Error) {
	if id, ok := d.(*parser.Ident); ok {
		if _, bound := e.lookup(id.Name); !bound {
			if n, ok := el.dims[id.Name]; ok {
				return ir.D(n), nil
			}
			return ir.S(id.Name), nil
		}
	}
	v, err := el.eval(d, e)
	if err != nil {
		return ir.Dim{}, err.(*Error)
	}
	if sym, ok := v.(ir.Dim); ok {
		return sym, nil
	}
	n, ok := v.(int)
	if !ok || n < 0 {
		return ir.Dim{}, el.errAt(d.Start(), "dim %s is %s, not a size", parser.ExprString(d), formatConst(v))
	}
	return ir.D(n), nil
}

func (el *elab) bindDeclaredInputs(decl *parser.Model, declared []*parser.InputStmt, e *env, ins []*ir.Value) (*env, *Error) {
	if len(declared) != len(ins) {
		return nil, el.errAt(decl.Pos, "model %s declares %d inputs but receives %d (%s)", decl.Name, len(declared), len(ins), shapesOf(ins))
	}
	for i, in := range declared {
		got := ins[i].Type.Shape
		if len(in.Dims) != len(got) {
			return nil, el.errAt(in.Pos, "input %s of %s must have rank %d, got %s", in.Name, decl.Name, len(in.Dims), got)
		}
		for j, d := range in.Dims {
			if id, ok := d.(*parser.Ident); ok {
				if _, bound := e.lookup(id.Name); !bound {
					// A size known only at run time is bound as such: the body computes
					// with it (Unflatten(2, [h, w])).
					if got[j].Static() {
						e = e.with(id.Name, got[j].N)
					} else {
						e = e.with(id.Name, got[j])
					}
					continue
				}
			}
			want, err := el.evalDim(d, e)
			if err != nil {
				return nil, err
			}
			if want != got[j] {
				return nil, el.errAt(d.Start(), "input %s of %s: dim %d must be %s, got shape %s", in.Name, decl.Name, j, want, got)
			}
		}
	}
	return e, nil
}

// expand flattens a block's statements into container items, evaluating let, if and
// repeat. It reports whether it succeeded.
func (el *elab) expand(b *parser.Block, e *env, out *[]item, inputs *[]*parser.InputStmt) bool {
	ok := true
	for _, s := range b.Stmts {
		switch s := s.(type) {
		case *parser.LetStmt:
			v, err := el.eval(s.Value, e)
			if err != nil {
				el.errs = append(el.errs, err.(*Error))
				return false
			}
			e = e.with(s.Name, v)
		case *parser.InputStmt:
			if inputs == nil {
				el.errs = append(el.errs, el.errAt(s.Pos, "input lines belong at the top level of a model"))
				ok = false
				continue
			}
			*inputs = append(*inputs, s)
		case *parser.LayerStmt:
			if el.layers++; el.layers > maxLayers {
				el.errs = append(el.errs, el.errAt(s.Pos, "more than %d layers: is a repeat count too large?", maxLayers))
				return false
			}
			*out = append(*out, item{stmt: s, env: e})
		case *parser.IfStmt:
			for {
				c, err := el.eval(s.Cond, e)
				if err != nil {
					el.errs = append(el.errs, err.(*Error))
					return false
				}
				cb, isBool := c.(bool)
				if !isBool {
					el.errs = append(el.errs, el.errAt(s.Cond.Start(), "if needs a bool, got %s (%s)", typeName(c), formatConst(c)))
					return false
				}
				if cb {
					ok = el.expand(s.Then, newEnv(e), out, nil) && ok
					break
				}
				if s.Else == nil {
					break
				}
				if next, isIf := s.Else.(*parser.IfStmt); isIf {
					s = next
					continue
				}
				ok = el.expand(elseBlock(s.Else), newEnv(e), out, nil) && ok
				break
			}
		case *parser.RepeatStmt:
			c, err := el.eval(s.Count, e)
			if err != nil {
				el.errs = append(el.errs, err.(*Error))
				return false
			}
			// `repeat c in list` runs once per element, with c bound to it.
			elems, isList := c.([]any)
			n, isInt := c.(int)
			if isList {
				n, isInt = len(elems), true
			}
			if !isInt || n < 0 {
				el.errs = append(el.errs, el.errAt(s.Count.Start(), "repeat needs a count ≥ 0 or a list, got %s", formatConst(c)))
				return false
			}
			if n > maxLayers {
				el.errs = append(el.errs, el.errAt(s.Count.Start(), "repeat count %d is above the limit of %d layers", n, maxLayers))
				return false
			}
			for i := 0; i < n; i++ {
				ie := newEnv(e)
				if s.Var != "" && isList {
					ie = e.with(s.Var, elems[i])
				} else if s.Var != "" {
					ie = e.with(s.Var, i)
				}
				if !el.expand(s.Body, ie, out, nil) {
					return false
				}
			}
		default:
			el.errs = append(el.errs, el.errAt(s.Start(), "unexpected statement"))
			return false
		}
	}
	return ok
}

// classOf is the Refiners class name of a layer statement.
func (el *elab) classOf(s *parser.LayerStmt) string {
	if c, ok := el.adapterClass(s); ok {
		return c
	}
	return s.Name
}

// container runs items with the semantics of kind and returns its outputs.
func (el *elab) container(kind string, a args, items []item, scope *ir.Scope, ins []*ir.Value, pos parser.Pos) []*ir.Value {
	classes := make([]string, len(items))
	count := map[string]int{}
	for i, it := range items {
		classes[i] = el.classOf(it.stmt)
		count[classes[i]]++
	}
	seen := map[string]int{}
	children := make([]*ir.Scope, len(items))
	for i, it := range items {
		name := classes[i]
		if count[name] > 1 {
			seen[name]++
			name = fmt.Sprintf("%s_%d", name, seen[name])
		}
		child := &ir.Scope{Name: name, Class: classes[i]}
		scope.AddChild(child)
		if !el.setKeys(child, name, it.stmt.Key, it.stmt.LayoutKeys, it.env) {
			return nil
		}
		children[i] = child
	}
	run := func(i int, in []*ir.Value) []*ir.Value {
		return el.layer(items[i], children[i], in)
	}
	var outs []*ir.Value
	switch kind {
	case "Chain", "Residual", "Passthrough":
		x := ins
		for i := range items {
			if x = run(i, x); x == nil {
				return nil
			}
		}
		switch kind {
		case "Chain":
			outs = x
		case "Passthrough":
			outs = ins
		case "Residual":
			if len(x) != 1 || len(ins) == 0 {
				el.errs = append(el.errs, el.errAt(pos, "Residual adds its first input to one output, but its chain gives %d", len(x)))
				return nil
			}
			sum, err := el.newOp(scope, pos, "add", []*ir.Value{x[0], ins[0]})
			if err != nil {
				el.errs = append(el.errs, el.errAt(pos, "Residual (%s): %v", scope.Path(), err))
				return nil
			}
			outs = []*ir.Value{sum}
		}
	case "Parallel", "Sum", "Product", "Concatenate":
		var parts []*ir.Value
		for i := range items {
			o := run(i, ins)
			if o == nil {
				return nil
			}
			parts = append(parts, o...)
		}
		switch kind {
		case "Parallel":
			outs = parts
		case "Sum", "Product":
			if len(parts) == 0 {
				el.errs = append(el.errs, el.errAt(pos, "%s needs at least one child", kind))
				return nil
			}
			op := map[string]string{"Sum": "add", "Product": "mul"}[kind]
			acc := parts[0]
			for _, p := range parts[1:] {
				var err error
				if acc, err = el.newOp(scope, pos, op, []*ir.Value{acc, p}); err != nil {
					el.errs = append(el.errs, el.errAt(pos, "%s (%s): %v", kind, scope.Path(), err))
					return nil
				}
			}
			outs = []*ir.Value{acc}
		case "Concatenate":
			if len(parts) == 0 {
				el.errs = append(el.errs, el.errAt(pos, "Concatenate needs at least one child"))
				return nil
			}
			d := a.int("dim")
			if d < 0 {
				d += len(parts[0].Type.Shape)
			}
			v, err := el.newOp(scope, pos, "concat", parts, ir.Attr{Name: "dim", Value: d})
			if err != nil {
				el.errs = append(el.errs, el.errAt(pos, "Concatenate (%s): %v", scope.Path(), err))
				return nil
			}
			outs = []*ir.Value{v}
		}
	case "Distribute":
		if len(ins) != len(items) {
			el.errs = append(el.errs, el.errAt(pos, "Distribute (%s) has %d children but receives %d inputs", scope.Path(), len(items), len(ins)))
			return nil
		}
		for i := range items {
			o := run(i, ins[i:i+1])
			if o == nil {
				return nil
			}
			outs = append(outs, o...)
		}
	default:
		el.errs = append(el.errs, el.errAt(pos, "%s is not a container", kind))
		return nil
	}
	scope.Outs = types(outs)
	return outs
}

// setKeys gives a scope its checkpoint key in the unnamed layout and in every named layout
// of the program: its parent's key joined with its segment, which is the key clause's
// value for that layout, else its unnamed value, else dflt (the Refiners name). When the
// program names layouts, the unnamed layout's segment is always dflt.
func (el *elab) setKeys(s *ir.Scope, dflt string, unnamed parser.Expr, named []*parser.LayoutKey, e *env) bool {
	parentKey := func(l string) string {
		if s.Parent == nil {
			return ""
		}
		if l == "" {
			return s.Parent.Key
		}
		return s.Parent.LayoutKeys[l]
	}
	seg := dflt
	if unnamed != nil {
		k, ok := el.keySegment(unnamed, e)
		if !ok {
			return false
		}
		seg = k
	}
	if len(el.layouts) == 0 {
		s.Key = joinKey(parentKey(""), seg)
		return true
	}
	// In a program that names layouts, the unnamed key is the segment they share and the
	// default keys are the Refiners paths, unique by construction.
	s.Key = joinKey(parentKey(""), dflt)
	s.LayoutKeys = make(map[string]string, len(el.layouts))
	for _, l := range el.layouts {
		s.LayoutKeys[l] = joinKey(parentKey(l), seg)
	}
	for _, lk := range named {
		k, ok := el.keySegment(lk.Value, e)
		if !ok {
			return false
		}
		s.LayoutKeys[lk.Layout] = joinKey(parentKey(lk.Layout), k)
	}
	return true
}

// keySegment evaluates a key expression: a string, or an int written in decimal.
func (el *elab) keySegment(x parser.Expr, e *env) (string, bool) {
	k, err := el.eval(x, e)
	if err != nil {
		el.errs = append(el.errs, err.(*Error))
		return "", false
	}
	switch k := k.(type) {
	case string:
		return k, true
	case int:
		return strconv.Itoa(k), true
	}
	el.errs = append(el.errs, el.errAt(x.Start(), "key must be a string or an int, got %s", typeName(k)))
	return "", false
}

// applyModelKeys gives a model used as a layer the key clause of its declaration, for
// each layout its caller's statement set no key for.
func (el *elab) applyModelKeys(decl *parser.Model, s *parser.LayerStmt, scope *ir.Scope, e *env) bool {
	if decl.Key == nil && len(decl.LayoutKeys) == 0 || s.Key != nil {
		return true
	}
	given := map[string]bool{}
	for _, lk := range s.LayoutKeys {
		given[lk.Layout] = true
	}
	tmp := &ir.Scope{Parent: scope.Parent}
	if !el.setKeys(tmp, scope.Name, decl.Key, decl.LayoutKeys, e) {
		return false
	}
	scope.Key = tmp.Key
	for _, l := range el.layouts {
		if !given[l] {
			scope.LayoutKeys[l] = tmp.LayoutKeys[l]
		}
	}
	return true
}

// programLayouts lists every layout named by a key clause in the program, sorted.
func (p *Program) programLayouts() []string {
	seen := map[string]bool{}
	add := func(keys []*parser.LayoutKey) {
		for _, k := range keys {
			seen[k.Layout] = true
		}
	}
	var walk func(b *parser.Block)
	walk = func(b *parser.Block) {
		if b == nil {
			return
		}
		for _, st := range b.Stmts {
			switch st := st.(type) {
			case *parser.LayerStmt:
				add(st.LayoutKeys)
				walk(st.Body)
			case *parser.RepeatStmt:
				walk(st.Body)
			case *parser.IfStmt:
				walk(st.Then)
				if st.Else != nil {
					walk(elseBlock(st.Else))
				}
			case *parser.Block:
				walk(st)
			}
		}
	}
	for _, m := range p.models {
		// An adapter's own key clause names no layout (InjectAdapter refuses layout=…).
		if !m.IsAdapter {
			add(m.LayoutKeys)
		}
		walk(m.Body)
	}
	out := make([]string, 0, len(seen))
	for l := range seen {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

func joinKey(prefix, seg string) string {
	switch {
	case seg == "":
		return prefix
	case prefix == "":
		return seg
	}
	return prefix + "." + seg
}

// layer elaborates one child into its scope.
func (el *elab) layer(it item, scope *ir.Scope, ins []*ir.Value) []*ir.Value {
	s := it.stmt
	if log := el.mod.Context; log != nil {
		if el.adapterOrder > 0 {
			// An adapter's layers run when its target does: what they store in the
			// context is seen by the layers after the target.
			log.Order[scope] = el.adapterOrder
		} else {
			log.Order[scope] = len(log.Order) + 1
		}
	}
	el.depth++
	defer func() { el.depth-- }()
	if el.depth > 200 {
		el.errs = append(el.errs, el.errAt(s.Pos, "layers nest more than 200 deep: is %s using itself?", s.Name))
		return nil
	}
	if _, ok := el.adapterClass(s); ok {
		return el.adapterTarget(it, scope, ins)
	}
	if decl, ok := el.prog.models[s.Name]; ok && !decl.IsAdapter {
		if s.Body != nil {
			el.errs = append(el.errs, el.errAt(s.Body.Pos, "%s is a model, not a container: it takes no block", s.Name))
			return nil
		}
		el.calls = append(el.calls, s.Pos)
		menv, err := el.bindModelParams(decl, &it, nil)
		el.calls = el.calls[:len(el.calls)-1]
		if err != nil {
			el.errs = append(el.errs, err.(ErrorList)...)
			return nil
		}
		scope.Args = el.callArgsString(s, it.env)
		if !el.applyModelKeys(decl, s, scope, menv) {
			return nil
		}
		el.calls = append(el.calls, s.Pos)
		outs := el.modelBody(decl, menv, scope, ins, false)
		el.calls = el.calls[:len(el.calls)-1]
		if outs != nil {
			scope.Outs = types(outs)
		}
		return outs
	}
	b, ok := builtins[s.Name]
	if !ok {
		el.errs = append(el.errs, el.errAt(s.Pos, "unknown layer %s%s", s.Name, el.suggest(s.Name)))
		return nil
	}
	a, err := el.matchArgs(s.Name, b.Args, &it)
	if err != nil {
		el.errs = append(el.errs, err.(ErrorList)...)
		return nil
	}
	scope.Args = displayArgs(b, a)
	if b.Container {
		if s.Body == nil {
			el.errs = append(el.errs, el.errAt(s.Pos, "%s is a container: give it a block { … }", s.Name))
			return nil
		}
		var items []item
		if !el.expand(s.Body, newEnv(it.env), &items, nil) {
			return nil
		}
		return el.container(s.Name, a, items, scope, ins, s.Pos)
	}
	if s.Body != nil {
		el.errs = append(el.errs, el.errAt(s.Body.Pos, "%s is not a container: it takes no block", s.Name))
		return nil
	}
	return el.leaf(b, a, s, scope, ins)
}

// leaf runs a builtin layer that is not a container in scope.
func (el *elab) leaf(b *builtin, a args, s *parser.LayerStmt, scope *ir.Scope, ins []*ir.Value) []*ir.Value {
	switch s.Name {
	case "SetContext":
		if len(ins) != 1 {
			el.errs = append(el.errs, el.errAt(s.Pos, "SetContext stores one value, got %d inputs", len(ins)))
			return nil
		}
		el.context[a.str("context")+"\x00"+a.str("key")] = ins
		if log := el.mod.Context; log != nil {
			log.Writes = append(log.Writes, ir.ContextWrite{Context: a.str("context"), Key: a.str("key"), Values: ins, At: log.Order[scope]})
		}
		scope.Outs = types(ins)
		return ins
	case "UseContext":
		k := a.str("context") + "\x00" + a.str("key")
		if v, ok := el.context[k]; ok {
			scope.Outs = types(v)
			return v
		}
		if v, ok := el.inputs[a.str("key")]; ok && el.ctxKeys[a.str("key")] {
			scope.Outs = types([]*ir.Value{v})
			return []*ir.Value{v}
		}
		el.errs = append(el.errs, el.errAt(s.Pos, "context key %q of %q is used but never set: set it earlier with SetContext, or declare `input %s: f32[…]` in the entry point", a.str("key"), a.str("context"), a.str("key")))
		return nil
	}
	if b.Inputs >= 0 && len(ins) != b.Inputs {
		el.errs = append(el.errs, el.errAt(s.Pos, "%s takes %d input%s, got %d (%s)", s.Name, b.Inputs, plural(b.Inputs), len(ins), shapesOf(ins)))
		return nil
	}
	c := &layerCtx{el: el, scope: scope, pos: s.Pos}
	if s.Name == "Parameter" {
		c.bare = el.bareLayouts(s)
	}
	outs, berr := b.build(c, a, ins)
	if berr != nil {
		if e, ok := berr.(*Error); ok {
			el.errs = append(el.errs, e)
		} else {
			el.errs = append(el.errs, el.errAt(s.Pos, "%s (%s): %v (input %s)", s.Name, scope.Path(), berr, shapesOf(ins)))
		}
		return nil
	}
	scope.Outs = types(outs)
	return outs
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func shapesOf(vs []*ir.Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Type.String()
	}
	return strings.Join(parts, ", ")
}

// matchArgs binds a call's positional and keyword arguments to specs and fills defaults.
func (el *elab) matchArgs(callee string, specs []argSpec, it *item) (args, error) {
	s := it.stmt
	a := args{}
	var errs ErrorList
	pos := 0
	for _, arg := range s.Args {
		v, err := el.eval(arg.Value, it.env)
		if err != nil {
			errs = append(errs, err.(*Error))
			continue
		}
		if arg.Name == "" {
			if pos < len(specs) && specs[pos].Kind == kVarInts {
				list, _ := a[specs[pos].Name].([]int)
				n, ok := v.(int)
				if !ok {
					errs = append(errs, el.errAt(arg.Pos, "%s: %s takes ints, got %s%s", callee, specs[pos].Name, formatConst(v), runtimeSizeHint(v)))
					continue
				}
				a[specs[pos].Name] = append(list, n)
				continue
			}
			if pos < len(specs) && specs[pos].Kind == kVarSizes {
				list, _ := a[specs[pos].Name].([]ir.Dim)
				d, ok := coerce(v, kSizes)
				if sizes, isList := d.([]ir.Dim); !ok || !isList || len(sizes) != 1 || isListValue(v) {
					errs = append(errs, el.errAt(arg.Pos, "%s: %s takes sizes, got %s", callee, specs[pos].Name, formatConst(v)))
					continue
				}
				a[specs[pos].Name] = append(list, d.([]ir.Dim)[0])
				continue
			}
			if pos >= len(specs) {
				names := make([]string, len(specs))
				for i, sp := range specs {
					names[i] = sp.Name
				}
				errs = append(errs, el.errAt(arg.Pos, "%s takes at most %d positional argument%s (%s), got %d", callee, len(specs), plural(len(specs)), strings.Join(names, ", "), countPositional(s)))
				break
			}
			sp := specs[pos]
			pos++
			if err := el.setArg(a, sp, v, callee, arg.Pos); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		i := slices.IndexFunc(specs, func(sp argSpec) bool { return sp.Name == arg.Name })
		if i < 0 {
			names := make([]string, len(specs))
			for i, sp := range specs {
				names[i] = sp.Name
			}
			errs = append(errs, el.errAt(arg.Pos, "%s has no argument %s (arguments: %s)", callee, arg.Name, strings.Join(names, ", ")))
			continue
		}
		if _, dup := a[arg.Name]; dup {
			errs = append(errs, el.errAt(arg.Pos, "%s: argument %s is given twice", callee, arg.Name))
			continue
		}
		if err := el.setArg(a, specs[i], v, callee, arg.Pos); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sp := range specs {
		if _, ok := a[sp.Name]; ok {
			continue
		}
		if sp.Default == required {
			if len(errs) == 0 {
				errs = append(errs, el.errAt(s.Pos, "%s needs argument %s (%s)", callee, sp.Name, sp.Kind))
			}
			continue
		}
		a[sp.Name] = defaultOf(sp)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return a, nil
}

func isListValue(v any) bool { _, ok := v.([]any); return ok }

// runtimeSizeHint explains a value that holds a size known only at run time where a
// compile-time value is needed.
func runtimeSizeHint(v any) string {
	var syms []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case ir.Dim:
			syms = append(syms, x.Symbols()...)
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	if len(syms) == 0 {
		return ""
	}
	return fmt.Sprintf(": %s is a size known only at run time, and this argument needs its value when the model is compiled (fix it with --set %s=N)", syms[0], syms[0])
}

// defaultOf is the default of an argument, in the form its kind takes.
func defaultOf(sp argSpec) any {
	if sp.Default == none || sp.Default == required {
		return sp.Default
	}
	v, _ := coerce(sp.Default, sp.Kind)
	return v
}

func countPositional(s *parser.LayerStmt) int {
	n := 0
	for _, a := range s.Args {
		if a.Name == "" {
			n++
		}
	}
	return n
}

func (el *elab) setArg(a args, sp argSpec, v any, callee string, pos parser.Pos) *Error {
	c, ok := coerce(v, sp.Kind)
	if !ok {
		return el.errAt(pos, "%s: argument %s must be %s, got %s %s%s", callee, sp.Name, sp.Kind, typeName(v), formatConst(v), runtimeSizeHint(v))
	}
	if c == none && sp.Default != none {
		return el.errAt(pos, "%s: argument %s cannot be none", callee, sp.Name)
	}
	a[sp.Name] = c
	return nil
}

// displayArgs renders the arguments shown in the tree: required ones, then those that
// differ from their default.
func displayArgs(b *builtin, a args) string {
	var parts []string
	for _, sp := range b.Args {
		v := a[sp.Name]
		if sp.Default != required && fmt.Sprint(v) == fmt.Sprint(defaultOf(sp)) {
			continue
		}
		if sp.Kind == kPair {
			if p, ok := v.([]int); ok && p[0] == p[1] {
				v = p[0]
			}
		}
		parts = append(parts, sp.Name+"="+formatConst(v))
	}
	return strings.Join(parts, ", ")
}

func (el *elab) callArgsString(s *parser.LayerStmt, e *env) string {
	var parts []string
	for _, a := range s.Args {
		v, err := el.eval(a.Value, e)
		if err != nil {
			continue
		}
		if a.Name != "" {
			parts = append(parts, a.Name+"="+formatConst(v))
		} else {
			parts = append(parts, formatConst(v))
		}
	}
	return strings.Join(parts, ", ")
}

// suggest names the closest known layers.
func (el *elab) suggest(name string) string {
	var cands []string
	for n := range builtins {
		cands = append(cands, n)
	}
	for n, d := range el.prog.models {
		if !d.IsAdapter {
			cands = append(cands, n)
		}
	}
	best, bestD := "", 4
	slices.Sort(cands)
	for _, c := range cands {
		if d := editdist.Distance(strings.ToLower(name), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

func elseBlock(s parser.Stmt) *parser.Block {
	if b, ok := s.(*parser.Block); ok {
		return b
	}
	return &parser.Block{Stmts: []parser.Stmt{s}}
}

// layerCtx is what a builtin's build function uses to add parameters and ops.
type layerCtx struct {
	el    *elab
	scope *ir.Scope
	pos   parser.Pos
	// bare lists the layouts in which the layer's tensor is keyed by the layer's key
	// itself, without its name ("" for the unnamed keys): a Parameter with a key clause.
	bare map[string]bool
}

// bareLayouts is where a Parameter's key clause names its tensor: published checkpoints
// store such a tensor bare, as an attribute of the module above (CLIP's class_embedding,
// the perceiver's latents), where Refiners wraps it in a layer whose tensor is weight.
// The Refiners paths keep ….Parameter.weight.
func (el *elab) bareLayouts(s *parser.LayerStmt) map[string]bool {
	out := map[string]bool{}
	if len(el.layouts) == 0 {
		if s.Key != nil {
			out[""] = true
		}
		return out
	}
	for _, l := range el.layouts {
		if s.Key != nil {
			out[l] = true
		}
	}
	for _, lk := range s.LayoutKeys {
		out[lk.Layout] = true
	}
	return out
}

func (c *layerCtx) param(name string, dims ...int) *ir.Value {
	path := c.scope.Path()
	full := name
	if path != "" {
		full = path + "." + name
	}
	tensorKey := func(layout, prefix string) string {
		if !c.bare[layout] {
			return joinKey(prefix, name)
		}
		if prefix == "" {
			c.el.errs = append(c.el.errs, c.el.errAt(c.pos, "a Parameter's key clause names its tensor, but it gives the empty key here: give the tensor's key"))
		}
		return prefix
	}
	key := tensorKey("", c.scope.Key)
	if prev, dup := c.el.keys[key]; dup {
		c.el.errs = append(c.el.errs, c.el.errAt(c.pos, "checkpoint key %q is already used by the layer at %s: give this layer another key", key, prev))
	}
	c.el.keys[key] = c.pos
	var layouts map[string]string
	if len(c.scope.LayoutKeys) > 0 {
		layouts = make(map[string]string, len(c.scope.LayoutKeys))
		for l, prefix := range c.scope.LayoutKeys {
			lk := tensorKey(l, prefix)
			layouts[l] = lk
			if prev, dup := c.el.keys["layout "+l+": "+lk]; dup {
				c.el.errs = append(c.el.errs, c.el.errAt(c.pos, "checkpoint key %q of layout %s is already used by the layer at %s: give this layer another %s key", lk, l, prev, l))
			}
			c.el.keys["layout "+l+": "+lk] = c.pos
		}
	}
	v := &ir.Value{Kind: ir.KindParam, Name: full, Key: key, LayoutKeys: layouts, Type: ir.F32Of(ir.StaticShape(dims...)), Scope: c.scope}
	c.el.mod.Params = append(c.el.mod.Params, v)
	return v
}

func (c *layerCtx) op(op string, operands []*ir.Value, attrs ...ir.Attr) (*ir.Value, error) {
	return c.el.newOp(c.scope, c.pos, op, operands, attrs...)
}

func (c *layerCtx) reshape(x *ir.Value, shape ir.Shape) (*ir.Value, error) {
	v := &ir.Value{Kind: ir.KindOp, Op: "reshape", Args: []*ir.Value{x}, Type: ir.Type{DType: x.Type.DType, Shape: shape}, Scope: c.scope}
	if _, err := ir.Infer(v); err != nil {
		return nil, err
	}
	c.el.mod.Body = append(c.el.mod.Body, v)
	return v, nil
}

// declared adds an op whose result type is given rather than computed (an upsampling to
// sizes known only at run time); the op's rule checks it.
func (c *layerCtx) declared(op string, operands []*ir.Value, t ir.Type, attrs ...ir.Attr) (*ir.Value, error) {
	v := &ir.Value{Kind: ir.KindOp, Op: op, Args: operands, Attrs: attrs, Type: t, Scope: c.scope}
	got, err := ir.Infer(v)
	if err != nil {
		return nil, err
	}
	v.Type = got
	c.el.mod.Body = append(c.el.mod.Body, v)
	return v, nil
}

func (c *layerCtx) axis(d int, x *ir.Value) (int, error) {
	r := len(x.Type.Shape)
	if d < -r || d >= r {
		return 0, fmt.Errorf("dim %d is out of range for %s", d, x.Type.Shape)
	}
	if d < 0 {
		d += r
	}
	return d, nil
}

func (c *layerCtx) wantChannels(x *ir.Value, ch int) error {
	s := x.Type.Shape
	if len(s) < 2 || s[1] != ir.D(ch) {
		return fmt.Errorf("expects %d channels in dim 1, got input %s", ch, s)
	}
	return nil
}

func (el *elab) newOp(scope *ir.Scope, pos parser.Pos, op string, operands []*ir.Value, attrs ...ir.Attr) (*ir.Value, error) {
	v := &ir.Value{Kind: ir.KindOp, Op: op, Args: operands, Attrs: attrs, Scope: scope}
	t, err := ir.Infer(v)
	if err != nil {
		return nil, err
	}
	v.Type = t
	el.mod.Body = append(el.mod.Body, v)
	return v, nil
}
