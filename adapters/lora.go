package adapters

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/internal/editdist"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	lorafile "github.com/rfc-project/rfc/lora"
	"github.com/rfc-project/rfc/runtime"
)

// LoraFile is a community LoRA weight file (PEFT or kohya naming), read by package lora,
// which programs without the compiler share.
type LoraFile = lorafile.File

// OpenLora opens a LoRA file: a .safetensors file, or a PEFT directory holding
// adapter_model.safetensors and adapter_config.json (package lora).
func OpenLora(path string) (*LoraFile, error) { return lorafile.Open(path) }

// LoraOptions say how to inject a LoRA file.
type LoraOptions struct {
	Name  string  // the adapter's name; its scale input is NAME_scale
	Scale float64 // the scale recorded for NAME_scale (1 is the LoRA as trained)
	// Class and Pattern, when set, select the targets (as Spec does) instead of the file's
	// keys: every selected layer must then have weights in the file, and every module of
	// the file a selected layer.
	Class, Pattern string
}

// loraClasses are the layer classes LoRA adapts, with their adapter declarations.
var loraClasses = map[string]string{"Linear": "LinearLora", "Conv2d": "Conv2dLora"}

type loraMatch struct {
	mod          *lorafile.Module
	target       *ir.Scope
	rank         int
	alpha        float64
	down, up     []int // the shapes the adapter's parameters have
	downKey, upK string
}

// InjectLora matches the file's modules with layers of m by checkpoint key, checks every
// shape, injects LinearLora or Conv2dLora (the LoRA library must be in prog: AddLibrary)
// around each matched layer with the file's rank and alpha, and reads the LoRA tensors. It
// returns the new module and the tensors by the parameters' checkpoint keys
// (NAME.K.down.weight, NAME.K.up.weight). Every problem (a module that matches no layer,
// a shape that disagrees) is reported at once, and then nothing is injected or read.
func InjectLora(m *ir.Module, prog *dsl.Program, lf *LoraFile, opts LoraOptions) (*ir.Module, map[string]*runtime.Tensor, error) {
	if opts.Class != "" && opts.Class != "*" && loraClasses[opts.Class] == "" {
		return nil, nil, fmt.Errorf("LoRA adapts Linear and Conv2d layers, not %s", opts.Class)
	}
	selected := opts.Class != "" || opts.Pattern != ""
	var cands []*ir.Scope
	if selected {
		scopes, err := Select(m, opts.Class, opts.Pattern)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range scopes {
			if loraClasses[s.Class] != "" && s.Key != "" {
				cands = append(cands, s)
			}
		}
		if len(cands) == 0 {
			return nil, nil, fmt.Errorf("%q selects no Linear or Conv2d layer", opts.Pattern)
		}
	} else {
		m.Root.Walk(func(s *ir.Scope) {
			if s.Parent != nil && loraClasses[s.Class] != "" && s.Key != "" && !Internal(s) {
				cands = append(cands, s)
			}
		})
	}
	dotted := map[string][]*ir.Scope{}
	flat := map[string][]*ir.Scope{}
	for _, s := range cands {
		dotted[s.Key] = append(dotted[s.Key], s)
		f := strings.ReplaceAll(s.Key, ".", "_")
		flat[f] = append(flat[f], s)
	}
	var problems []string
	var matches []*loraMatch
	matched := map[*ir.Scope]*lorafile.Module{}
	for _, mod := range lf.Modules {
		hits := lookupStem(mod.Stem, dotted, flat)
		switch {
		case len(hits) == 0:
			problems = append(problems, fmt.Sprintf("%s (%s, %s) matches no layer%s", mod.Stem, mod.Down, mod.Up, keyHint(cands, mod.Stem)))
			continue
		case len(hits) > 1:
			var paths []string
			for _, h := range hits {
				paths = append(paths, h.Path())
			}
			problems = append(problems, fmt.Sprintf("%s matches several layers: %s", mod.Stem, strings.Join(paths, ", ")))
			continue
		}
		t := hits[0]
		if prev, dup := matched[t]; dup {
			problems = append(problems, fmt.Sprintf("%s and %s both adapt %s", prev.Stem, mod.Stem, t.Path()))
			continue
		}
		matched[t] = mod
		mt, err := check(lf, m, mod, t)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		matches = append(matches, mt)
	}
	if selected {
		for _, s := range cands {
			if matched[s] == nil {
				problems = append(problems, fmt.Sprintf("layer %s (key %q), selected by %q, has no weights in the file", s.Path(), s.Key, opts.Pattern))
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, nil, fmt.Errorf("%s: the LoRA does not fit module %s:\n  %s", lf.Path, m.Name, strings.Join(problems, "\n  "))
	}
	spec := Spec{Name: opts.Name, Scale: opts.Scale}
	for _, mt := range matches {
		spec.Targets = append(spec.Targets, Target{Path: mt.target.Path(), Adapter: loraClasses[mt.target.Class], Params: map[string]string{
			"rank":  strconv.Itoa(mt.rank),
			"alpha": strconv.FormatFloat(mt.alpha, 'g', -1, 64),
		}})
	}
	c, err := Inject(m, prog, spec)
	if err != nil {
		return nil, nil, err
	}
	tensors := map[string]*runtime.Tensor{}
	for _, mt := range matches {
		// The branch's parameters, down then up, found by place rather than by key: in a
		// program that names layouts their unnamed keys are Refiners' paths.
		own := OwnParams(c, opts.Name, mt.target.Class, mt.target.Key)
		for i, w := range []struct {
			file  string
			shape []int
		}{{mt.mod.Down, mt.down}, {mt.mod.Up, mt.up}} {
			if len(own) != 2 || !slices.Equal(own[i].Type.Shape.Ints(), w.shape) {
				return nil, nil, fmt.Errorf("internal error: the LoRA library gives no parameter %d of shape %v around %s", i, w.shape, mt.target.Path())
			}
			p := own[i]
			t, err := lf.Tensor(w.file)
			if err != nil {
				return nil, nil, err
			}
			t.Shape = slices.Clone(w.shape)
			tensors[p.Key] = t
		}
	}
	return c, tensors, nil
}

// lookupStem finds the layers a module stem names: PEFT style, the longest key that ends
// the stem at a dot; kohya style, the stem after lora_ and one optional word.
func lookupStem(stem string, dotted, flat map[string][]*ir.Scope) []*ir.Scope {
	for rest := stem; ; {
		if hits := dotted[rest]; len(hits) > 0 {
			return hits
		}
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	if r, ok := strings.CutPrefix(stem, "lora_"); ok {
		if hits := flat[r]; len(hits) > 0 {
			return hits
		}
		if i := strings.IndexByte(r, '_'); i > 0 {
			return flat[r[i+1:]]
		}
	}
	return nil
}

func keyHint(cands []*ir.Scope, stem string) string {
	if len(cands) == 0 {
		return " (the module has no Linear or Conv2d layer to adapt)"
	}
	type cand struct {
		key string
		d   int
	}
	var cs []cand
	for _, s := range cands {
		k := s.Key
		if strings.HasPrefix(stem, "lora_") && !strings.Contains(stem, ".") {
			k = strings.ReplaceAll(k, ".", "_")
		}
		cs = append(cs, cand{s.Key, editdist.ToSubstring(k, stem)})
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var keys []string
	for i := 0; i < len(cs) && i < 3; i++ {
		keys = append(keys, strconv.Quote(cs[i].key))
	}
	return "; nearest layer keys: " + strings.Join(keys, ", ")
}

// check compares a module's shapes with its target and reads its alpha.
func check(lf *LoraFile, m *ir.Module, mod *lorafile.Module, t *ir.Scope) (*loraMatch, error) {
	var w *ir.Value
	var conv *ir.Value
	for _, p := range m.Params {
		if p.Scope == t && p.Key == joinKey(t.Key, "weight") {
			w = p
		}
	}
	for _, v := range m.Body {
		if v.Scope == t && v.Op == "conv2d" {
			conv = v
		}
	}
	if w == nil {
		return nil, fmt.Errorf("%s: layer %s has no weight %q", mod.Stem, t.Path(), joinKey(t.Key, "weight"))
	}
	ws := w.Type.Shape.Ints()
	d, u := mod.DownInfo.Shape, mod.UpInfo.Shape
	bad := func(why string) error {
		return fmt.Errorf("%s: %s %v and %s %v do not fit %s %s (weight %v): %s", mod.Stem, mod.Down, d, mod.Up, u, t.Class, t.Path(), ws, why)
	}
	rank := mod.Rank() // package lora checked that down and up have 2 or 4 dims and one rank
	mt := &loraMatch{mod: mod, target: t, rank: rank}
	ones := func(s []int) bool {
		for _, n := range s {
			if n != 1 {
				return false
			}
		}
		return true
	}
	switch t.Class {
	case "Linear":
		out, in := ws[0], ws[1]
		if !(len(d) == 2 || len(d) == 4 && ones(d[2:])) || d[1] != in {
			return nil, bad(fmt.Sprintf("down must be [rank, %d]", in))
		}
		if !(len(u) == 2 || len(u) == 4 && ones(u[2:])) || u[0] != out {
			return nil, bad(fmt.Sprintf("up must be [%d, rank]", out))
		}
		mt.down, mt.up = []int{rank, in}, []int{out, rank}
	case "Conv2d":
		groups := 1
		if conv != nil {
			groups = conv.Int("groups", 1)
		}
		out, in, kh, kw := ws[0], ws[1]*groups, ws[2], ws[3]
		downOK := len(d) == 4 && d[1] == in && d[2] == kh && d[3] == kw || len(d) == 2 && d[1] == in && kh == 1 && kw == 1
		if !downOK {
			return nil, bad(fmt.Sprintf("down must be [rank, %d, %d, %d]", in, kh, kw))
		}
		if !(len(u) == 4 && ones(u[2:]) || len(u) == 2) || u[0] != out {
			return nil, bad(fmt.Sprintf("up must be [%d, rank, 1, 1]", out))
		}
		mt.down, mt.up = []int{rank, in, kh, kw}, []int{out, rank, 1, 1}
	}
	alpha, err := lf.Alpha(mod)
	if err != nil {
		return nil, err
	}
	mt.alpha = alpha
	return mt, nil
}

func joinKey(prefix, seg string) string {
	if prefix == "" {
		return seg
	}
	return prefix + "." + seg
}

// Weights completes interp weights for a module with adapters: parameters whose key is in
// extra (LoRA tensors, by checkpoint key) take those, the others load from files by key
// as interp.LoadWeights does. Every problem is reported at once.
func Weights(m *ir.Module, extra map[string]*runtime.Tensor, files ...*runtime.SafetensorsFile) (interp.Weights, error) {
	base := *m
	base.Params = nil
	var problems []string
	w := interp.Weights{}
	for _, p := range m.Params {
		t, ok := extra[p.Key]
		if !ok {
			base.Params = append(base.Params, p)
			continue
		}
		if !slices.Equal(t.Shape, p.Type.Shape.Ints()) {
			problems = append(problems, fmt.Sprintf("adapter weight %q has shape %v, the module wants %s", p.Key, t.Shape, p.Type.Shape))
			continue
		}
		w[p] = t
	}
	bw, err := interp.LoadWeights(&base, files...)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	for p, t := range bw {
		w[p] = t
	}
	return w, nil
}

// ScalarInputs gives a tensor for each scalar input that an adapter of m added and that
// inputs lacks, holding the value recorded at injection (a LoRA's scale).
func ScalarInputs(m *ir.Module, inputs map[string]*runtime.Tensor) map[string]*runtime.Tensor {
	out := map[string]*runtime.Tensor{}
	for k, v := range inputs {
		out[k] = v
	}
	for _, in := range m.Inputs {
		if _, given := out[in.Name]; given {
			continue
		}
		if v, ok := m.ScalarValue(in.Name); ok {
			out[in.Name] = runtime.FromF32([]float32{float32(v)})
		}
	}
	return out
}

// OwnParams returns the parameters that the adapter called name added around the layer of
// class class and checkpoint key key (the target as it was selected), in the module's order:
// those inside the adapter's scope and not inside the target.
func OwnParams(m *ir.Module, name, class, key string) []*ir.Value {
	var adapter, target *ir.Scope
	m.Root.Walk(func(s *ir.Scope) {
		if adapter != nil || s.Adapter != name {
			return
		}
		s.Walk(func(x *ir.Scope) {
			if target == nil && x.Class == class && x.Key == key && !Internal(x) {
				target = x
			}
		})
		if target != nil {
			adapter = s
		}
	})
	if adapter == nil {
		return nil
	}
	in := map[*ir.Scope]bool{}
	adapter.Walk(func(s *ir.Scope) { in[s] = true })
	adapter.Walk(func(s *ir.Scope) {
		if s.Adapter != "" && s.Adapter != name { // another adapter, injected later inside
			s.Walk(func(x *ir.Scope) { in[x] = false })
		}
	})
	target.Walk(func(s *ir.Scope) { in[s] = false })
	var out []*ir.Value
	for _, p := range m.Params {
		if in[p.Scope] {
			out = append(out, p)
		}
	}
	return out
}
