package dsl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/parser"
)

// This file elaborates `adapter` declarations around one target layer of an already
// elaborated module (package adapters selects the targets and rewires the graph), and
// defines MultiplyInput, the layer that makes a runtime scalar such as a LoRA's scale.
// LANGUAGE.md's "Adapters" section is the reference.

// AnyLayer is the target type that accepts a layer of any class.
const AnyLayer = "Layer"

// AdapterInfo describes an adapter declaration.
type AdapterInfo struct {
	Name        string
	Target      string   // the name of the target parameter ("target")
	TargetClass string   // its type: a layer class, or AnyLayer
	Params      []string // the other parameters, in order
}

// Adapter returns the adapter declaration called name.
func (p *Program) Adapter(name string) (*AdapterInfo, error) {
	decl, ok := p.models[name]
	if !ok || !decl.IsAdapter {
		return nil, fmt.Errorf("no adapter %s (adapters: %s)", name, strings.Join(p.AdapterNames(), ", "))
	}
	info := &AdapterInfo{Name: name}
	for _, prm := range decl.Params {
		if isValueType(prm.Type) {
			info.Params = append(info.Params, prm.Name)
			continue
		}
		if info.Target != "" {
			return nil, p.newError(prm.Pos, "", fmt.Sprintf("adapter %s has two target parameters, %s and %s: it adapts one layer", name, info.Target, prm.Name))
		}
		info.Target, info.TargetClass = prm.Name, prm.Type
	}
	if info.Target == "" {
		return nil, p.newError(decl.Pos, "", fmt.Sprintf("adapter %s has no target parameter: declare one such as `target: Linear`", name))
	}
	return info, nil
}

// AdapterNames lists every adapter declaration the program knows, sorted.
func (p *Program) AdapterNames() []string {
	var out []string
	for n, d := range p.models {
		if d.IsAdapter {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// AddSource adds a library file (adapter and model declarations, such as the LoRA
// library) to the program, as if the main file imported it.
func (p *Program) AddSource(path string, src []byte) error {
	var errs ErrorList
	if _, err := p.add(path, src, false, &errs); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func isValueType(t string) bool {
	switch t {
	case "pair":
		return true
	}
	_, ok := paramKinds[t]
	return ok
}

// AdapterSite is one injection of an adapter around a target layer.
type AdapterSite struct {
	Adapter string    // the adapter declaration
	Name    string    // the injected adapter's name (an identifier)
	Target  *ir.Scope // the target layer, in the module's tree
	// Inputs and Outputs are the values the target reads and gives, in order.
	Inputs, Outputs []*ir.Value
	// Params gives parameters of the declaration, as --set writes them ("4", "0.5",
	// "true", "[3, 1]"). Parameters not given come from the target's arguments of the same
	// name, from `name` (the injected adapter's name), from `index` (Index), or from their
	// defaults.
	Params map[string]string
	// Index is the target's position among the targets of its injection, in tree order,
	// from 0: the value of an `index: int` parameter.
	Index int
}

// adapterSite is the state of an adapter body being elaborated: its target() statement
// stands for the target layer.
type adapterSite struct {
	param  string // the target parameter's name
	site   AdapterSite
	ops    []*ir.Value // the target's ops
	placed bool
}

// InjectAdapter elaborates an adapter around site.Target inside m. The adapter's scope
// takes the target's place in the tree (siblings are renamed by Refiners' rule), and the
// target scope moves into it where the body calls target(). The body's ops are appended to
// m.Body, its parameters to m.Params (keys under "NAME.TARGETKEY."), scalar inputs it
// makes to m.Inputs. It returns the adapter's scope and outputs; the caller redirects the
// target's readers to those outputs and restores a topological order. On error m is left
// in an undefined state: callers work on a copy.
func (p *Program) InjectAdapter(m *ir.Module, site AdapterSite) (*ir.Scope, []*ir.Value, error) {
	info, err := p.Adapter(site.Adapter)
	if err != nil {
		return nil, nil, err
	}
	decl := p.models[site.Adapter]
	t := site.Target
	if t == nil || t.Parent == nil {
		return nil, nil, fmt.Errorf("adapter %s: the target must be a layer below the root", site.Adapter)
	}
	if info.TargetClass != AnyLayer && info.TargetClass != t.Class {
		return nil, nil, fmt.Errorf("adapter %s adapts a %s, but %s is a %s", site.Adapter, info.TargetClass, t.Path(), t.Class)
	}
	el := &elab{prog: p, mod: m, context: map[string][]*ir.Value{}, inputs: map[string]*ir.Value{}, keys: map[string]parser.Pos{}, ctxKeys: p.contextKeys(), dims: map[string]int{}}
	for _, in := range m.Inputs {
		el.inputs[in.Name] = in
	}
	// The body reads the model's context as its target saw it, and binds the sizes the
	// model was elaborated with.
	if m.Context != nil {
		for c := t; c != nil && el.adapterOrder == 0; c = c.Parent {
			el.adapterOrder = m.Context.Order[c]
		}
		for k, v := range m.Context.Visible(t) {
			el.context[k[0]+"\x00"+k[1]] = v
		}
		for d, n := range m.Context.Dims {
			el.dims[d] = n
		}
	}
	for _, prm := range m.Params {
		el.keys[prm.Key] = parser.Pos{Filename: "the module " + m.Name}
	}
	inTarget := map[*ir.Scope]bool{}
	t.Walk(func(s *ir.Scope) { inTarget[s] = true })
	as := &adapterSite{param: info.Target, site: site}
	for _, v := range m.Body {
		if inTarget[v.Scope] {
			as.ops = append(as.ops, v)
		}
	}
	el.adapter = as
	targetArgs := el.targetArgs(t)
	// The sizes of the target's features, for adapters on layers whose arguments do not
	// say them (an attention's query width).
	if targetArgs == nil {
		targetArgs = map[string]any{}
	}
	for name, vs := range map[string][]*ir.Value{"input_features": site.Inputs, "output_features": site.Outputs} {
		if _, given := targetArgs[name]; !given && len(vs) > 0 {
			if sh := vs[0].Type.Shape; len(sh) > 0 && sh[len(sh)-1].Static() {
				targetArgs[name] = sh[len(sh)-1].N
			}
		}
	}
	e, display, err := el.bindAdapterParams(decl, info, site, targetArgs)
	if err != nil {
		return nil, nil, err
	}
	key := joinKey(site.Name, t.Key)
	// In a program that names layouts the adapter's layers get a key in each of them, as the
	// model's do: NAME before the target's key in that layout, then the segments of the
	// body. The unnamed keys are then Refiners' paths below NAME.TARGETKEY, unique however
	// the body's key clauses read (a ControlNet's copy of the UNet's blocks, whose `key ""`
	// levels only make sense in the named layouts).
	// An adapter with a key clause of its own keys its tensors as its published files do, in
	// every layout alike: its keys are the unnamed ones, which a layout without a key of the
	// tensor's falls back to.
	var layoutKeys map[string]string
	if layouts := p.programLayouts(); len(layouts) > 0 && decl.Key == nil {
		el.layouts = layouts
		layoutKeys = make(map[string]string, len(layouts))
		for _, l := range layouts {
			tk, ok := t.LayoutKeys[l]
			if !ok {
				tk = t.Key
			}
			layoutKeys[l] = joinKey(site.Name, tk)
		}
	}
	// A key clause on the declaration replaces NAME.TARGETKEY, for adapters whose published
	// files number their tensors otherwise (IP-Adapter's ip_adapter.N, N from the index).
	if len(decl.LayoutKeys) > 0 {
		return nil, nil, ErrorList{el.errAt(decl.LayoutKeys[0].Pos, "adapter %s: an adapter's key clause gives one key for every layout; it takes no layout=…", decl.Name)}
	}
	if decl.Key != nil {
		k, ok := el.keySegment(decl.Key, e)
		if !ok {
			return nil, nil, el.errs
		}
		if k == "" {
			return nil, nil, ErrorList{el.errAt(decl.Key.Start(), "adapter %s: the key clause gives an empty key for %s; an adapter's tensors need a key of their own", decl.Name, t.Path())}
		}
		key = k
	}
	// Input lines add inputs to the entry point, named NAME_INPUT after the injected
	// adapter (two ControlNets get two condition inputs), which the body reads through
	// UseContext by INPUT; the targets of one injection (an IP-Adapter's sixteen
	// attentions) share them.
	for _, st := range decl.Body.Stmts {
		in, ok := st.(*parser.InputStmt)
		if !ok {
			continue
		}
		want, err := el.inputType(in, e)
		if err != nil {
			return nil, nil, ErrorList{err}
		}
		full := site.Name + "_" + in.Name
		v := m.Input(full)
		switch {
		case v != nil && !want.Equal(v.Type):
			return nil, nil, ErrorList{el.errAt(in.Pos, "adapter %s declares input %s as %s, but the module has %s as %s", decl.Name, in.Name, want, full, v.Type)}
		case v == nil:
			v = &ir.Value{Kind: ir.KindInput, Name: full, Type: want}
			m.Inputs = append(m.Inputs, v)
		}
		el.inputs[in.Name] = v
		el.ctxKeys[in.Name] = true
	}
	a := &ir.Scope{Class: decl.Name, Args: display, Key: key, LayoutKeys: layoutKeys, Adapter: site.Name}
	path := t.Path()
	parent := t.Parent
	i := slices.Index(parent.Children, t)
	if i < 0 {
		return nil, nil, fmt.Errorf("adapter %s: target %s is not among its parent's children", site.Adapter, t.Path())
	}
	parent.Children[i] = a
	a.Parent = parent
	RenameChildren(parent)
	outs := el.modelBody(decl, e, a, site.Inputs, false)
	if len(el.errs) > 0 {
		return nil, nil, el.errs
	}
	if !as.placed {
		return nil, nil, ErrorList{el.errAt(decl.Pos, "adapter %s never runs its target: call %s() in its body", decl.Name, info.Target)}
	}
	a.Outs = types(outs)
	if len(outs) != len(site.Outputs) {
		return nil, nil, ErrorList{el.errAt(decl.Pos, "adapter %s gives %d outputs (%s) where its target %s gives %d (%s)", decl.Name, len(outs), shapesOf(outs), path, len(site.Outputs), shapesOf(site.Outputs))}
	}
	for i := range outs {
		if !outs[i].Type.Equal(site.Outputs[i].Type) {
			return nil, nil, ErrorList{el.errAt(decl.Pos, "adapter %s output %d is %s where its target %s gives %s", decl.Name, i, outs[i].Type, path, site.Outputs[i].Type)}
		}
	}
	return a, outs, nil
}

// RenameChildren names the children of s as Refiners does: the class name, with _1, _2, …
// appended when the class occurs more than once among them.
func RenameChildren(s *ir.Scope) {
	count := map[string]int{}
	for _, c := range s.Children {
		count[c.Class]++
	}
	seen := map[string]int{}
	for _, c := range s.Children {
		c.Name = c.Class
		if count[c.Class] > 1 {
			seen[c.Class]++
			c.Name = fmt.Sprintf("%s_%d", c.Class, seen[c.Class])
		}
	}
}

// adapterClass is the class a target() statement gives its place: the target's.
func (el *elab) adapterClass(s *parser.LayerStmt) (string, bool) {
	if el.adapter == nil || s.Name != el.adapter.param {
		return "", false
	}
	return el.adapter.site.Target.Class, true
}

// adapterTarget elaborates target(): the target scope takes the place container() made for
// the statement, and the target's ops read ins instead of their original inputs.
func (el *elab) adapterTarget(it item, slot *ir.Scope, ins []*ir.Value) []*ir.Value {
	as, s := el.adapter, it.stmt
	site := as.site
	fail := func(format string, args ...any) []*ir.Value {
		el.errs = append(el.errs, el.errAt(s.Pos, format, args...))
		return nil
	}
	switch {
	case as.placed:
		return fail("%s() appears twice: an adapter runs its target once", s.Name)
	case len(s.Args) > 0 || s.Body != nil:
		return fail("%s() takes no arguments and no block: it is the layer being adapted", s.Name)
	case s.Key != nil:
		return fail("%s() keeps the checkpoint keys of the layer being adapted: it takes no key", s.Name)
	case len(ins) != len(site.Inputs):
		return fail("%s() receives %d inputs (%s), but %s takes %d (%s)", s.Name, len(ins), shapesOf(ins), site.Target.Path(), len(site.Inputs), shapesOf(site.Inputs))
	}
	for i := range ins {
		if !ins[i].Type.Equal(site.Inputs[i].Type) {
			return fail("%s() input %d is %s, but %s reads %s", s.Name, i, ins[i].Type, site.Target.Path(), site.Inputs[i].Type)
		}
	}
	parent := slot.Parent
	i := slices.Index(parent.Children, slot)
	t := site.Target
	t.Name, t.Parent = slot.Name, parent
	parent.Children[i] = t
	as.placed = true
	// The target's ops read what the body gives target(); usually that is what they read
	// already (a Sum gives every child the same inputs).
	for j, in := range ins {
		orig := site.Inputs[j]
		if in == orig {
			continue
		}
		for _, v := range as.ops {
			for k, a := range v.Args {
				if a == orig {
					v.Args[k] = in
				}
			}
		}
	}
	t.Outs = types(site.Outputs)
	return site.Outputs
}

// targetArgs reads the evaluated arguments of a target layer back from its scope's
// display form (Scope.Args), completed with the defaults of the builtin or model. A scope
// whose arguments do not read back gives none; parameters then need explicit values.
func (el *elab) targetArgs(t *ir.Scope) map[string]any {
	src := fmt.Sprintf("model M_ {\n    %s(%s)\n}\n", t.Class, t.Args)
	f, err := parser.ParseFile("<arguments of "+t.Path()+">", []byte(src))
	if err != nil || len(f.Decls) != 1 || len(f.Decls[0].Body.Stmts) != 1 {
		return nil
	}
	stmt, ok := f.Decls[0].Body.Stmts[0].(*parser.LayerStmt)
	if !ok {
		return nil
	}
	it := &item{stmt: stmt, env: newEnv(nil)}
	saved := el.errs
	defer func() { el.errs = saved }()
	out := map[string]any{}
	if b, ok := builtins[t.Class]; ok {
		a, err := el.matchArgs(t.Class, b.Args, it)
		if err != nil {
			return nil
		}
		for k, v := range a {
			out[k] = envValue(v)
		}
		return out
	}
	if decl, ok := el.prog.models[t.Class]; ok && !decl.IsAdapter {
		e, err := el.bindModelParams(decl, it, nil)
		if err != nil {
			return nil
		}
		for _, prm := range decl.Params {
			if v, ok := e.lookup(prm.Name); ok {
				out[prm.Name] = v
			}
		}
		return out
	}
	return nil
}

// envValue turns an argument as matchArgs gives it into a value the evaluator reads back
// (lists of ints are []any there).
func envValue(v any) any {
	if l, ok := v.([]int); ok {
		out := make([]any, len(l))
		for i, n := range l {
			out[i] = n
		}
		return out
	}
	return v
}

// bindAdapterParams evaluates an adapter's parameters in order: an explicit value, the
// injected name (for `name: string`), the target's argument of the same name, the default.
// It also returns the display arguments of the adapter's scope: the parameters not taken
// from the target.
func (el *elab) bindAdapterParams(decl *parser.Model, info *AdapterInfo, site AdapterSite, targetArgs map[string]any) (*env, string, error) {
	known := map[string]bool{}
	for _, prm := range decl.Params {
		known[prm.Name] = true
	}
	var unknown []string
	for k := range site.Params {
		if !known[k] || k == info.Target {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, "", fmt.Errorf("adapter %s has no parameter %s (parameters: %s)", decl.Name, strings.Join(unknown, ", "), strings.Join(info.Params, ", "))
	}
	e := newEnv(nil)
	var display []string
	for _, prm := range decl.Params {
		if prm.Name == info.Target {
			continue
		}
		kind := adapterParamKind(prm.Type)
		var v any
		fromTarget := false
		if raw, ok := site.Params[prm.Name]; ok {
			parsed, err := parseAdapterSetting(raw, prm.Type)
			if err != nil {
				return nil, "", fmt.Errorf("adapter %s: %s=%s: %v (parameter %s: %s)", decl.Name, prm.Name, raw, err, prm.Name, prm.Type)
			}
			v = parsed
		} else if prm.Name == "name" && prm.Type == "string" {
			v, fromTarget = site.Name, true
		} else if prm.Name == "index" && prm.Type == "int" {
			v, fromTarget = site.Index, true
		} else if tv, ok := targetArgs[prm.Name]; ok {
			c, ok := coerceParam(tv, kind)
			if !ok {
				return nil, "", fmt.Errorf("adapter %s: parameter %s is %s, but the target %s has %s=%s", decl.Name, prm.Name, prm.Type, site.Target.Path(), prm.Name, formatConst(tv))
			}
			v, fromTarget = c, true
		} else if prm.Default != nil {
			d, err := el.eval(prm.Default, e)
			if err != nil {
				return nil, "", ErrorList{err.(*Error)}
			}
			c, ok := coerceParam(d, kind)
			if !ok {
				return nil, "", ErrorList{el.errAt(prm.Default.Start(), "default of %s is a %s, not %s", prm.Name, typeName(d), prm.Type)}
			}
			v = c
		} else {
			return nil, "", fmt.Errorf("adapter %s: parameter %s has no value: the target %s (%s) has no argument %s; give it explicitly", decl.Name, prm.Name, site.Target.Path(), site.Target.Class, prm.Name)
		}
		if !fromTarget {
			display = append(display, prm.Name+"="+formatConst(v))
		}
		e = e.with(prm.Name, v)
	}
	return e, strings.Join(display, ", "), nil
}

// adapterParamKind maps a parameter type to an argument kind; `pair` (an int or a list of
// two ints, as Conv2d's kernel_size) exists for adapters, which take such target arguments.
func adapterParamKind(t string) argKind {
	if t == "pair" {
		return kPair
	}
	return paramKind(t)
}

// coerceParam is coerce for parameter values, which stay in the evaluator's form.
func coerceParam(v any, k argKind) (any, bool) {
	c, ok := coerce(v, k)
	if !ok {
		return nil, false
	}
	if k == kPair {
		p := c.([]int)
		if p[0] == p[1] {
			return p[0], true
		}
		return []any{p[0], p[1]}, true
	}
	return c, true
}

func parseAdapterSetting(raw, typ string) (any, error) {
	if typ != "pair" {
		return parseSetting(raw, typ)
	}
	s := strings.TrimSpace(raw)
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	inner, ok := strings.CutPrefix(s, "[")
	if inner, ok2 := strings.CutSuffix(inner, "]"); ok && ok2 {
		parts := strings.Split(inner, ",")
		if len(parts) == 2 {
			a, err1 := strconv.Atoi(strings.TrimSpace(parts[0]))
			b, err2 := strconv.Atoi(strings.TrimSpace(parts[1]))
			if err1 == nil && err2 == nil {
				if a == b {
					return a, nil
				}
				return []any{a, b}, nil
			}
		}
	}
	return nil, fmt.Errorf("%q is not an int or [int, int]", raw)
}

func init() {
	def(&builtin{Name: "MultiplyInput", Inputs: 1, Args: []argSpec{{"input", kString, required}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			s, err := c.el.scalarInput(a.str("input"))
			if err != nil {
				return nil, err
			}
			v, err := c.op("mul", []*ir.Value{ins[0], s})
			return []*ir.Value{v}, err
		}})
}

// scalarInput returns the scalar f32[] input of the entry point called name, declaring it
// on first use.
func (el *elab) scalarInput(name string) (*ir.Value, error) {
	if !ir.IsIdent(name) {
		return nil, fmt.Errorf("input name %q is not an identifier", name)
	}
	scalar := ir.F32Of(ir.Shape{})
	if v, ok := el.inputs[name]; ok {
		if !v.Type.Equal(scalar) {
			return nil, fmt.Errorf("input %s is %s, not the scalar %s", name, v.Type, scalar)
		}
		return v, nil
	}
	v := &ir.Value{Kind: ir.KindInput, Name: name, Type: scalar}
	el.inputs[name] = v
	el.mod.Inputs = append(el.mod.Inputs, v)
	return v, nil
}
