package lora

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/internal/editdist"
	"github.com/rfc-project/rfc/kernels"
	"github.com/rfc-project/rfc/runtime"
)

// Target is a model whose weights LoRA files may patch: a generated package's
// WeightSpecs, and the words that name it in LoRA keys.
type Target struct {
	Name string // for messages: "UNet", "text encoder"
	// Words name the model at the front of a key: kohya's WORD in lora_WORD_… (unet; te,
	// te1) and PEFT's first segment (unet; text_encoder). A key that starts with one of a
	// target's words is matched in that target only; other keys in every target.
	Words []string
	Specs []runtime.WeightSpec
}

// Use is a LoRA file applied at a scale (1: as trained).
type Use struct {
	File  *File
	Scale float64
}

// Patch is the merge of LoRA modules into one target's weights, for
// runtime.LoadOptions.Patch: Apply adds each module's scale·(alpha/rank)·up·down to the
// weight it adapts as the weight loads.
type Patch struct {
	target string
	specs  []runtime.WeightSpec
	parts  map[int][]part // by spec index, in the order of the uses
}

// part is one module's contribution to one weight: up [rows, rank] times down
// [rank, cols], times factor.
type part struct {
	file             *File
	mod              *Module
	factor           float64
	rows, cols, rank int
}

// Modules is the number of LoRA modules the patch merges.
func (p *Patch) Modules() int {
	n := 0
	for _, ps := range p.parts {
		n += len(ps)
	}
	return n
}

// Apply adds the LoRA modules that adapt weight index (of the target's specs) to data,
// the weight as float32; other weights are left as they are. Its signature is
// runtime.LoadOptions.Patch's; the files must still be open.
func (p *Patch) Apply(index int, data []float32) error {
	parts := p.parts[index]
	if len(parts) == 0 {
		return nil
	}
	for _, pt := range parts {
		if len(data) != pt.rows*pt.cols {
			return fmt.Errorf("%s: weight %d (%s) has %d elements, the LoRA module %s expects %d×%d", p.target, index, p.specs[index].Param, len(data), pt.mod.Stem, pt.rows, pt.cols)
		}
		down, err := pt.file.Tensor(pt.mod.Down)
		if err != nil {
			return err
		}
		up, err := pt.file.Tensor(pt.mod.Up)
		if err != nil {
			return err
		}
		// W += factor · up · down, up [rows, rank] and down [rank, cols] as stored
		// (trailing 1×1 dims are only a layout).
		kernels.Sgemm(false, false, pt.rows, pt.cols, pt.rank, float32(pt.factor), up.F32, pt.rank, down.F32, pt.cols, 1, data, pt.cols)
	}
	return nil
}

// Plan matches every module of every file with one weight of one target, by the
// target's checkpoint keys in all its layouts, checks the shapes and reads the alphas,
// and returns a Patch per target (in targets' order). Every problem — a module that
// matches no weight (with the nearest keys) or several, two modules of a file on one
// weight, shapes that do not fit — is reported at once, and then nothing is returned.
// The files must stay open until the patches have been applied.
func Plan(targets []Target, uses []Use) ([]*Patch, error) {
	indexes := make([]*keyIndex, len(targets))
	patches := make([]*Patch, len(targets))
	for t, tg := range targets {
		indexes[t] = newKeyIndex(tg.Specs)
		patches[t] = &Patch{target: tg.Name, specs: tg.Specs, parts: map[int][]part{}}
	}
	var all []string
	for _, u := range uses {
		if math.IsNaN(u.Scale) || math.IsInf(u.Scale, 0) {
			all = append(all, fmt.Sprintf("%s: scale %g", u.File.Path, u.Scale))
			continue
		}
		var problems []string
		taken := map[[2]int]string{}
		for _, mod := range u.File.Modules {
			hits := match(targets, indexes, mod)
			switch {
			case len(hits) == 0:
				if len(problems) < runtime.MaxListedProblems {
					problems = append(problems, fmt.Sprintf("%s matches no weight%s", mod.Stem, nearest(targets, indexes, mod)))
				} else {
					problems = append(problems, fmt.Sprintf("%s matches no weight", mod.Stem))
				}
				continue
			case len(hits) > 1:
				var names []string
				for _, h := range hits {
					names = append(names, targets[h[0]].Name+" "+strings.TrimSuffix(targets[h[0]].Specs[h[1]].Param, ".weight"))
				}
				problems = append(problems, fmt.Sprintf("%s matches several weights: %s", mod.Stem, strings.Join(names, ", ")))
				continue
			}
			h := hits[0]
			spec := targets[h[0]].Specs[h[1]]
			if prev, dup := taken[h]; dup {
				problems = append(problems, fmt.Sprintf("%s and %s both adapt %s %s", prev, mod.Stem, targets[h[0]].Name, spec.Param))
				continue
			}
			taken[h] = mod.Stem
			pt, err := fit(u.File, mod, spec)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			pt.factor *= u.Scale
			patches[h[0]].parts[h[1]] = append(patches[h[0]].parts[h[1]], pt)
		}
		if len(problems) > 0 {
			slices.Sort(problems)
			lines := runtime.SummarizeLines(problems, runtime.MaxListedProblems, "problems")
			var names []string
			for _, tg := range targets {
				names = append(names, tg.Name)
			}
			all = append(all, fmt.Sprintf("%s: the LoRA does not fit the %s:\n  %s", u.File.Path, strings.Join(names, " and "), strings.Join(lines, "\n  ")))
		}
	}
	if len(all) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(all, "\n"))
	}
	return patches, nil
}

// fit checks a module's shapes against the weight it adapts and returns its part.
func fit(f *File, mod *Module, spec runtime.WeightSpec) (part, error) {
	ws := spec.Shape
	d, u := mod.DownInfo.Shape, mod.UpInfo.Shape
	rank := d[0]
	bad := func(want string) error {
		return fmt.Errorf("%s: down %v and up %v do not fit weight %s %v: %s", mod.Stem, d, u, spec.Param, ws, want)
	}
	ones := func(s []int) bool {
		for _, n := range s {
			if n != 1 {
				return false
			}
		}
		return true
	}
	out := ws[0]
	cols := 1
	for _, n := range ws[1:] {
		cols *= n
	}
	switch len(ws) {
	case 2: // a Linear
		if !(len(d) == 2 || ones(d[2:])) || d[1] != ws[1] {
			return part{}, bad(fmt.Sprintf("down must be [rank, %d]", ws[1]))
		}
	case 4: // a Conv2d
		if !(len(d) == 4 && d[1] == ws[1] && d[2] == ws[2] && d[3] == ws[3] || len(d) == 2 && d[1] == ws[1] && ws[2] == 1 && ws[3] == 1) {
			return part{}, bad(fmt.Sprintf("down must be [rank, %d, %d, %d]", ws[1], ws[2], ws[3]))
		}
	}
	if !(len(u) == 2 || ones(u[2:])) || u[0] != out {
		return part{}, bad(fmt.Sprintf("up must be [%d, rank]", out))
	}
	alpha, err := f.Alpha(mod)
	if err != nil {
		return part{}, err
	}
	return part{file: f, mod: mod, factor: alpha / float64(rank), rows: out, cols: cols, rank: rank}, nil
}

// keyIndex finds a model's adaptable weights (2-D and 4-D .weight tensors) by their
// layer keys in every layout: the full key, and the key less leading segments of the
// prefix its whole layout shares (model.diffusion_model., cond_stage_model.transformer.),
// since LoRA files name layers below some part of it. Dotted and flattened (kohya) forms.
type keyIndex struct {
	dotted, flat map[string][]int
	keys         [][]string // per spec, its distinct layer keys (for hints)
}

func newKeyIndex(specs []runtime.WeightSpec) *keyIndex {
	ix := &keyIndex{dotted: map[string][]int{}, flat: map[string][]int{}, keys: make([][]string, len(specs))}
	layoutKeys := map[string][]string{} // layout → every key, to find its common prefix
	keyOf := func(s runtime.WeightSpec, layout string) string {
		switch layout {
		case "":
			return s.Key
		case runtime.RefinersLayout:
			return s.Param
		}
		if k, ok := s.Layouts[layout]; ok {
			return k
		}
		return s.Key
	}
	layouts := []string{"", runtime.RefinersLayout}
	for _, s := range specs {
		for l := range s.Layouts {
			if !slices.Contains(layouts, l) {
				layouts = append(layouts, l)
			}
		}
	}
	for _, l := range layouts {
		for _, s := range specs {
			layoutKeys[l] = append(layoutKeys[l], keyOf(s, l))
		}
	}
	for _, l := range layouts {
		shared := commonSegments(layoutKeys[l])
		for i, s := range specs {
			if len(s.Shape) != 2 && len(s.Shape) != 4 {
				continue
			}
			layer, ok := strings.CutSuffix(keyOf(s, l), ".weight")
			if !ok {
				continue
			}
			if !slices.Contains(ix.keys[i], layer) {
				ix.keys[i] = append(ix.keys[i], layer)
			}
			segs := strings.Split(layer, ".")
			for drop := 0; drop <= shared && drop < len(segs); drop++ {
				k := strings.Join(segs[drop:], ".")
				ix.add(ix.dotted, k, i)
				ix.add(ix.flat, strings.ReplaceAll(k, ".", "_"), i)
			}
		}
	}
	return ix
}

func (ix *keyIndex) add(m map[string][]int, k string, i int) {
	if !slices.Contains(m[k], i) {
		m[k] = append(m[k], i)
	}
}

// commonSegments is how many leading dot-separated segments every key shares, leaving
// every key at least one of its own.
func commonSegments(keys []string) int {
	if len(keys) == 0 {
		return 0
	}
	first := strings.Split(keys[0], ".")
	n := len(first) - 1
	for _, k := range keys[1:] {
		segs := strings.Split(k, ".")
		n = min(n, len(segs)-1)
		for j := 0; j < n; j++ {
			if segs[j] != first[j] {
				n = j
				break
			}
		}
	}
	return max(n, 0)
}

// match returns the (target, spec) pairs a module names.
func match(targets []Target, indexes []*keyIndex, mod *Module) [][2]int {
	named := func(word string) []int {
		var ts []int
		for t, tg := range targets {
			if slices.Contains(tg.Words, word) {
				ts = append(ts, t)
			}
		}
		return ts
	}
	every := make([]int, len(targets))
	for t := range every {
		every[t] = t
	}
	var hits [][2]int
	collect := func(ts []int, lookup func(ix *keyIndex) []int) {
		for _, t := range ts {
			for _, i := range lookup(indexes[t]) {
				hits = append(hits, [2]int{t, i})
			}
		}
	}
	if mod.Kohya || !strings.Contains(mod.Stem, ".") {
		rest, ok := strings.CutPrefix(mod.Stem, "lora_")
		if !ok {
			return nil
		}
		word, f, _ := strings.Cut(rest, "_")
		if ts := named(word); len(ts) > 0 && f != "" {
			collect(ts, func(ix *keyIndex) []int { return ix.flat[f] })
			return hits
		}
		collect(every, func(ix *keyIndex) []int {
			if h := ix.flat[rest]; len(h) > 0 || f == "" {
				return h
			}
			return ix.flat[f] // an unknown word
		})
		return hits
	}
	stem, ts := mod.Stem, every
	if word, rest, ok := strings.Cut(mod.Stem, "."); ok {
		if named := named(word); len(named) > 0 {
			stem, ts = rest, named
		}
	}
	// PEFT: PREFIX.K, the longest K that some weight has.
	collect(ts, func(ix *keyIndex) []int {
		for rest := stem; ; {
			if h := ix.dotted[rest]; len(h) > 0 {
				return h
			}
			_, after, ok := strings.Cut(rest, ".")
			if !ok {
				return nil
			}
			rest = after
		}
	})
	return hits
}

// nearest suggests the layer keys closest to a module that matches none.
func nearest(targets []Target, indexes []*keyIndex, mod *Module) string {
	name := mod.Stem
	flat := mod.Kohya || !strings.Contains(name, ".")
	if flat {
		name = strings.TrimPrefix(name, "lora_")
	}
	type cand struct {
		key string
		d   int
	}
	var cs []cand
	for t := range targets {
		for _, keys := range indexes[t].keys {
			for _, k := range keys {
				c := k
				if flat {
					c = strings.ReplaceAll(k, ".", "_")
				}
				cs = append(cs, cand{k, editdist.ToSuffix(c, name)})
			}
		}
	}
	if len(cs) == 0 {
		return " (the models have no Linear or Conv2d weight)"
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var keys []string
	for i := 0; i < len(cs) && len(keys) < 3; i++ {
		q := strconv.Quote(cs[i].key)
		if !slices.Contains(keys, q) {
			keys = append(keys, q)
		}
	}
	return "; nearest layer keys: " + strings.Join(keys, ", ")
}
