// Package adapters injects adapters into an elaborated module and ejects them again, as IR
// rewrites: Refiners' Adapter.inject/eject for a compiler. An adapter is an `adapter`
// declaration of the language (dsl/LANGUAGE.md, "Adapters"); injecting it around a target
// layer puts the adapter's scope in the target's place in the tree, with the target inside,
// and redirects every reader of the target's outputs to the adapter's outputs. Ejecting
// gives back the module as it was, text-equal.
//
// The LoRA library (lora.rfn: LinearLora, Conv2dLora) and the loader of community LoRA files
// (PEFT/diffusers and kohya naming) live here too.
package adapters

import (
	"container/heap"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
)

//go:embed lora.rfn
var loraSrc []byte

// LibraryName is the file name the LoRA library's positions carry.
const LibraryName = "<adapters/lora.rfn>"

// AddLibrary adds the LoRA library (LinearLora, Conv2dLora) to a program, unless the program
// already declares adapters of those names.
func AddLibrary(prog *dsl.Program) error {
	for _, n := range []string{"LinearLora", "Conv2dLora"} {
		if _, err := prog.Adapter(n); err == nil {
			return nil
		}
	}
	return prog.AddSource(LibraryName, loraSrc)
}

// Spec says which adapter to inject where.
type Spec struct {
	// Name names the injected adapter: an identifier, unique in the module. Its scopes show
	// it ([adapter NAME]), its parameters' keys start with it, Eject takes it.
	Name string
	// Adapter is the declaration to inject (for targets that name none).
	Adapter string
	// Class and Pattern select the targets when Targets is empty: layers of class Class
	// ("" for the adapter's target type, "*" for any) whose path matches Pattern (see
	// Match; "" matches every path).
	Class, Pattern string
	// Targets lists the targets explicitly instead.
	Targets []Target
	// Params gives parameters of the declaration for every target (as --set writes them).
	Params map[string]string
	// Scale is the value recorded for the scalar inputs the adapter adds (a LoRA's
	// NAME_scale): what an unmerged run feeds by default and what lora_merge folds. Zero
	// means zero.
	Scale float64
}

// Target is one explicit target: a layer named by Path, or by Class and checkpoint Key (the
// layer's Scope.Key; this form survives the renaming that injections cause).
type Target struct {
	Path       string
	Class, Key string
	Adapter    string            // the declaration for this target; "" for Spec.Adapter
	Params     map[string]string // over Spec.Params
}

// Inject returns a copy of m with the adapter injected around each target; m is not
// changed. Targets are processed in tree order; they must not contain each other. The
// result records the injection (ir.Injection) so that Eject can undo it.
func Inject(m *ir.Module, prog *dsl.Program, spec Spec) (*ir.Module, error) {
	if !ir.IsIdent(spec.Name) {
		return nil, fmt.Errorf("adapter name %q is not an identifier", spec.Name)
	}
	if m.Injection(spec.Name) != nil || hasAdapterScope(m, spec.Name) {
		return nil, fmt.Errorf("module %s already has an adapter named %s", m.Name, spec.Name)
	}
	c := Clone(m)
	targets, err := resolveTargets(c, prog, spec)
	if err != nil {
		return nil, err
	}
	before := map[*ir.Value]bool{}
	for _, v := range c.Inputs {
		before[v] = true
	}
	rec := &ir.Injection{Name: spec.Name, Scalars: map[string]float64{}}
	var decls []string
	var redo []Target
	prio := map[*ir.Value]order{}
	index := map[*ir.Value]int{}
	for i, v := range c.Body {
		index[v] = i
	}
	for ti, tg := range targets {
		t := tg.scope
		rec.Targets = append(rec.Targets, t.Path())
		redo = append(redo, stableTarget(c, t, tg.adapter, tg.params))
		if !slices.Contains(decls, tg.adapter) {
			decls = append(decls, tg.adapter)
		}
		ins, outs, ops, err := targetValues(c, t)
		if err != nil {
			return nil, err
		}
		n0 := len(c.Body)
		_, aouts, err := prog.InjectAdapter(c, dsl.AdapterSite{Adapter: tg.adapter, Name: spec.Name, Target: t, Inputs: ins, Outputs: outs, Params: tg.params, Index: ti})
		if err != nil {
			return nil, fmt.Errorf("injecting %s around %s: %w", tg.adapter, rec.Targets[len(rec.Targets)-1], err)
		}
		// The adapter's ops run right after the target's last op.
		anchor := index[ops[len(ops)-1]]
		for j, v := range c.Body[n0:] {
			prio[v] = order{anchor, j + 1}
		}
		redirect(c, c.Body[:n0], ops, outs, aouts)
	}
	if err := sortBody(c, prio); err != nil {
		return nil, err
	}
	renameParams(c)
	for _, v := range c.Inputs {
		if !before[v] && v.Type.Equal(ir.F32Of(ir.Shape{})) {
			rec.Scalars[v.Name] = spec.Scale
		}
	}
	if err := ir.Verify(c); err != nil {
		return nil, fmt.Errorf("internal error: injecting %s gives IR that does not verify: %w", spec.Name, err)
	}
	rec.Adapter = strings.Join(decls, ", ")
	rec.Before = Clone(m)
	replay := spec
	replay.Targets = redo
	rec.Redo = func(x *ir.Module) (*ir.Module, error) { return Inject(x, prog, replay) }
	c.Injections = append(slices.Clone(m.Injections), rec)
	return c, nil
}

// Eject returns the module without the adapter called name: the module from before its
// injection, with the adapters injected after it injected again. Ejecting the last adapter
// gives back exactly the module it was injected into (ir.Print-equal). Passes run after
// the injection are not replayed.
func Eject(m *ir.Module, name string) (*ir.Module, error) {
	i := slices.IndexFunc(m.Injections, func(r *ir.Injection) bool { return r.Name == name })
	if i < 0 {
		var names []string
		for _, r := range m.Injections {
			names = append(names, r.Name)
		}
		if hasAdapterScope(m, name) {
			return nil, fmt.Errorf("module %s shows adapter %s but holds no record of its injection (read from text?): it cannot be ejected", m.Name, name)
		}
		return nil, fmt.Errorf("module %s has no adapter %s (injected: %s)", m.Name, name, orNone(names))
	}
	out := Clone(m.Injections[i].Before)
	for _, r := range m.Injections[i+1:] {
		var err error
		if out, err = r.Redo(out); err != nil {
			return nil, fmt.Errorf("ejecting %s: injecting %s again: %w", name, r.Name, err)
		}
	}
	return out, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func hasAdapterScope(m *ir.Module, name string) bool {
	found := false
	if m.Root != nil {
		m.Root.Walk(func(s *ir.Scope) { found = found || s.Adapter == name })
	}
	return found
}

type resolved struct {
	scope   *ir.Scope
	adapter string
	params  map[string]string
}

func resolveTargets(m *ir.Module, prog *dsl.Program, spec Spec) ([]resolved, error) {
	params := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range spec.Params {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	var out []resolved
	if len(spec.Targets) == 0 {
		if spec.Adapter == "" {
			return nil, fmt.Errorf("adapter %s: no declaration given", spec.Name)
		}
		info, err := prog.Adapter(spec.Adapter)
		if err != nil {
			return nil, err
		}
		class := spec.Class
		if class == "" && info.TargetClass != dsl.AnyLayer {
			class = info.TargetClass
		}
		scopes, err := Select(m, class, spec.Pattern)
		if err != nil {
			return nil, err
		}
		for _, s := range scopes {
			out = append(out, resolved{s, spec.Adapter, params(nil)})
		}
	} else {
		byPath := map[string]*ir.Scope{}
		m.Root.Walk(func(s *ir.Scope) { byPath[s.Path()] = s })
		var problems []string
		for _, tg := range spec.Targets {
			decl := tg.Adapter
			if decl == "" {
				decl = spec.Adapter
			}
			var s *ir.Scope
			switch {
			case tg.Path != "":
				if s = byPath[tg.Path]; s == nil || s.Parent == nil {
					problems = append(problems, fmt.Sprintf("no layer at path %q%s", tg.Path, nearestHint(m, "", tg.Path)))
					continue
				}
			default:
				var found []*ir.Scope
				m.Root.Walk(func(x *ir.Scope) {
					if x.Parent != nil && x.Class == tg.Class && x.Key == tg.Key && !Internal(x) {
						found = append(found, x)
					}
				})
				if len(found) != 1 {
					problems = append(problems, fmt.Sprintf("%d layers of class %s have the key %q (want one)", len(found), tg.Class, tg.Key))
					continue
				}
				s = found[0]
			}
			out = append(out, resolved{s, decl, params(tg.Params)})
		}
		if len(problems) > 0 {
			return nil, errors.New(strings.Join(problems, "\n"))
		}
	}
	// Tree order, and no target inside another.
	pos := map[*ir.Scope]int{}
	n := 0
	m.Root.Walk(func(s *ir.Scope) { pos[s] = n; n++ })
	slices.SortStableFunc(out, func(a, b resolved) int { return pos[a.scope] - pos[b.scope] })
	for i := 1; i < len(out); i++ {
		if out[i].scope == out[i-1].scope {
			return nil, fmt.Errorf("layer %s is selected twice", out[i].scope.Path())
		}
		for p := out[i].scope.Parent; p != nil; p = p.Parent {
			for _, o := range out[:i] {
				if o.scope == p {
					return nil, fmt.Errorf("targets overlap: %s contains %s; select one of them", p.Path(), out[i].scope.Path())
				}
			}
		}
	}
	return out, nil
}

// stableTarget names a target for replaying an injection: by class and key when that pair
// is unique (paths change as injections rename siblings), else by path.
func stableTarget(m *ir.Module, t *ir.Scope, adapter string, params map[string]string) Target {
	n := 0
	m.Root.Walk(func(x *ir.Scope) {
		if x.Parent != nil && x.Class == t.Class && x.Key == t.Key && !Internal(x) {
			n++
		}
	})
	if n == 1 {
		return Target{Class: t.Class, Key: t.Key, Adapter: adapter, Params: params}
	}
	return Target{Path: t.Path(), Adapter: adapter, Params: params}
}

// targetValues finds what a layer reads and gives: its inputs are the values from outside
// its subtree (inputs of the module or results of other ops) that its ops read, in order of
// first use; its outputs are the results of its ops read outside it (or outputs of the
// module), which must agree with the types the scope records.
func targetValues(m *ir.Module, t *ir.Scope) (ins, outs, ops []*ir.Value, err error) {
	inT := map[*ir.Scope]bool{}
	t.Walk(func(s *ir.Scope) { inT[s] = true })
	isOp := map[*ir.Value]bool{}
	for _, v := range m.Body {
		if inT[v.Scope] {
			ops = append(ops, v)
			isOp[v] = true
		}
	}
	if len(ops) == 0 {
		return nil, nil, nil, fmt.Errorf("layer %s (%s) computes nothing: adapters wrap layers that compute", t.Path(), t.Class)
	}
	seen := map[*ir.Value]bool{}
	for _, v := range ops {
		for _, a := range v.Args {
			if a.Kind == ir.KindParam || isOp[a] || seen[a] {
				continue
			}
			seen[a] = true
			ins = append(ins, a)
		}
	}
	escapes := map[*ir.Value]bool{}
	for _, v := range m.Body {
		if isOp[v] {
			continue
		}
		for _, a := range v.Args {
			if isOp[a] {
				escapes[a] = true
			}
		}
	}
	for _, o := range m.Outputs {
		if isOp[o] {
			escapes[o] = true
		}
	}
	for _, v := range ops {
		if escapes[v] {
			outs = append(outs, v)
		}
	}
	if len(outs) == 0 {
		// Nothing reads the layer's result (a layer inside a Passthrough whose context
		// nobody uses): its outputs are then its ops that no op of its own reads. The
		// adapter is injected as anywhere else, and dead code elimination drops both.
		read := map[*ir.Value]bool{}
		for _, v := range ops {
			for _, a := range v.Args {
				read[a] = true
			}
		}
		for _, v := range ops {
			if !read[v] {
				outs = append(outs, v)
			}
		}
	}
	ok := len(outs) == len(t.Outs)
	for i := 0; ok && i < len(outs); i++ {
		ok = outs[i].Type.Equal(t.Outs[i])
	}
	if !ok {
		got := make([]string, len(outs))
		for i, o := range outs {
			got[i] = o.Type.String()
		}
		return nil, nil, nil, fmt.Errorf("cannot tell the outputs of layer %s (%s): it gives %v, but %d values of it are read outside it (%s)", t.Path(), t.Class, t.Outs, len(outs), strings.Join(got, ", "))
	}
	return ins, outs, ops, nil
}

// redirect makes the ops of old (but not the target's own ops) and the module's outputs
// read the adapter's outputs instead of the target's.
func redirect(m *ir.Module, old, targetOps, from, to []*ir.Value) {
	sub := map[*ir.Value]*ir.Value{}
	for i := range from {
		sub[from[i]] = to[i]
	}
	own := map[*ir.Value]bool{}
	for _, v := range targetOps {
		own[v] = true
	}
	for _, v := range old {
		if own[v] {
			continue
		}
		for i, a := range v.Args {
			if r, ok := sub[a]; ok {
				v.Args[i] = r
			}
		}
	}
	for i, o := range m.Outputs {
		if r, ok := sub[o]; ok {
			m.Outputs[i] = r
		}
	}
}

// order places an op: adapter ops go right after the last op of their target.
type order struct{ major, minor int }

func (a order) less(b order) bool {
	return a.major < b.major || (a.major == b.major && a.minor < b.minor)
}

type opHeap struct {
	items []*ir.Value
	key   map[*ir.Value]order
}

func (h *opHeap) Len() int           { return len(h.items) }
func (h *opHeap) Less(i, j int) bool { return h.key[h.items[i]].less(h.key[h.items[j]]) }
func (h *opHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *opHeap) Push(x any)         { h.items = append(h.items, x.(*ir.Value)) }
func (h *opHeap) Pop() any {
	v := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return v
}

// sortBody restores a topological order, as close to the wanted one as dependencies allow:
// original ops keep their relative order, adapter ops follow their target.
func sortBody(m *ir.Module, prio map[*ir.Value]order) error {
	key := map[*ir.Value]order{}
	inBody := map[*ir.Value]bool{}
	for i, v := range m.Body {
		inBody[v] = true
		if p, ok := prio[v]; ok {
			key[v] = p
		} else {
			key[v] = order{i, 0}
		}
	}
	waiting := map[*ir.Value]int{}
	readers := map[*ir.Value][]*ir.Value{}
	h := &opHeap{key: key}
	for _, v := range m.Body {
		deps := map[*ir.Value]bool{}
		for _, a := range v.Args {
			if inBody[a] && !deps[a] {
				deps[a] = true
				readers[a] = append(readers[a], v)
			}
		}
		waiting[v] = len(deps)
		if len(deps) == 0 {
			h.items = append(h.items, v)
		}
	}
	heap.Init(h)
	out := make([]*ir.Value, 0, len(m.Body))
	for h.Len() > 0 {
		v := heap.Pop(h).(*ir.Value)
		out = append(out, v)
		for _, r := range readers[v] {
			if waiting[r]--; waiting[r] == 0 {
				heap.Push(h, r)
			}
		}
	}
	if len(out) != len(m.Body) {
		return fmt.Errorf("internal error: the adapter makes the graph cyclic (%d of %d ops ordered)", len(out), len(m.Body))
	}
	m.Body = out
	return nil
}

// renameParams gives every parameter the name of its place in the tree, which injections
// change (the target moves into the adapter; siblings are renamed). Keys do not change.
func renameParams(m *ir.Module) {
	for _, p := range m.Params {
		tensor := p.Name
		if i := strings.LastIndexByte(tensor, '.'); i >= 0 {
			tensor = tensor[i+1:]
		}
		if path := p.Scope.Path(); path != "" {
			p.Name = path + "." + tensor
		} else {
			p.Name = tensor
		}
	}
}

// Clone deep-copies a module: scopes, values and the list of injections (whose records are
// shared: they never change).
func Clone(m *ir.Module) *ir.Module {
	scopes := map[*ir.Scope]*ir.Scope{}
	var copyScope func(s, parent *ir.Scope) *ir.Scope
	copyScope = func(s, parent *ir.Scope) *ir.Scope {
		n := *s
		n.Parent = parent
		n.Outs = make([]ir.Type, len(s.Outs))
		for i, t := range s.Outs {
			n.Outs[i] = ir.Type{DType: t.DType, Shape: t.Shape.Clone()}
		}
		n.Children = make([]*ir.Scope, len(s.Children))
		scopes[s] = &n
		for i, c := range s.Children {
			n.Children[i] = copyScope(c, &n)
		}
		return &n
	}
	out := &ir.Module{Name: m.Name, Source: m.Source, Settings: slices.Clone(m.Settings), Injections: slices.Clone(m.Injections)}
	if m.Root != nil {
		out.Root = copyScope(m.Root, nil)
	}
	values := map[*ir.Value]*ir.Value{}
	copyValue := func(v *ir.Value) *ir.Value {
		n := *v
		n.Type = ir.Type{DType: v.Type.DType, Shape: v.Type.Shape.Clone()}
		if s, ok := scopes[v.Scope]; ok {
			n.Scope = s
		}
		n.Args = make([]*ir.Value, len(v.Args))
		for i, a := range v.Args {
			if c, ok := values[a]; ok {
				n.Args[i] = c
			} else {
				n.Args[i] = a
			}
		}
		n.Attrs = make([]ir.Attr, len(v.Attrs))
		for i, a := range v.Attrs {
			if l, ok := a.Value.([]int); ok {
				a.Value = slices.Clone(l)
			}
			n.Attrs[i] = a
		}
		if v.Attrs == nil {
			n.Attrs = nil
		}
		values[v] = &n
		return &n
	}
	for _, v := range m.Inputs {
		out.Inputs = append(out.Inputs, copyValue(v))
	}
	for _, v := range m.Params {
		out.Params = append(out.Params, copyValue(v))
	}
	for _, v := range m.Body {
		out.Body = append(out.Body, copyValue(v))
	}
	for _, v := range m.Outputs {
		if c, ok := values[v]; ok {
			out.Outputs = append(out.Outputs, c)
		} else {
			out.Outputs = append(out.Outputs, v)
		}
	}
	if m.Context != nil {
		out.Context = &ir.ContextLog{Order: map[*ir.Scope]int{}, Dims: maps.Clone(m.Context.Dims)}
		for s, at := range m.Context.Order {
			if c, ok := scopes[s]; ok {
				out.Context.Order[c] = at
			}
		}
		for _, w := range m.Context.Writes {
			vs := make([]*ir.Value, len(w.Values))
			for i, v := range w.Values {
				if c, ok := values[v]; ok {
					vs[i] = c
				} else {
					vs[i] = v
				}
			}
			out.Context.Writes = append(out.Context.Writes, ir.ContextWrite{Context: w.Context, Key: w.Key, Values: vs, At: w.At})
		}
	}
	return out
}
