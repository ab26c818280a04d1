package runtime

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/kernels"
)

// WeightSpec is one checkpoint tensor a model reads.
type WeightSpec struct {
	Key   string // checkpoint key (the unnamed layout)
	Param string // the model's name for it (its Refiners path): also its key in Refiners' files
	Shape []int
	// Layouts are its keys in the named layouts of the model (`key ldm="…"`); a layout a
	// spec lacks (an adapter's own tensors) uses Key.
	Layouts map[string]string
}

// LoadOptions adjust how a generated package loads its weights (its LoadFilesWith).
type LoadOptions struct {
	// Patch, when set, is called for each weight once it is read as float32, with the
	// weight's index in the package's WeightSpecs and its data, which it may change in
	// place; Load computes nothing from the weights before. A LoRA is merged this way, so
	// that a generated package runs it at no cost per forward pass. An error stops the
	// load and is returned as is.
	Patch func(index int, data []float32) error
}

// Layout names a set of keys a file may use: "" (the unnamed keys), RefinersLayout (the
// parameters' paths) or a named layout of the model.
const RefinersLayout = "refiners"

// key is the spec's key in a layout.
func (s WeightSpec) key(layout string) string {
	switch layout {
	case "":
		return s.Key
	case RefinersLayout:
		return s.Param
	}
	if k, ok := s.Layouts[layout]; ok {
		return k
	}
	return s.Key
}

// WeightSet is a checked match of a model's weight specs to the tensors of safetensors files.
type WeightSet struct {
	specs []WeightSpec
	files []*SafetensorsFile
	keys  []string // each spec's key in its file
	// Layout tells, per file given, the layout and key prefix its tensors were read with.
	Layout map[*SafetensorsFile]string
	// halves is ReadPacked's 16-bit copy of a weight, reused from weight to weight: a new one
	// each time made a float16 UNet's load leave 1.7 GB of garbage behind, which the
	// collector let the heap grow by before reclaiming it.
	halves []uint16
}

// fileMatch is the layout that covers the most specs of one file.
type fileMatch struct {
	layout, prefix string
	covered        []int // spec indexes the file holds
}

// LocateWeights matches specs to the tensors of files and checks the whole set before any
// data is read. Each file is read in the one layout that covers most of the specs — the
// unnamed keys, the Refiners paths, or a named layout of the model — possibly under one
// common prefix (Refiners' converted autoencoder holds the encoder as `Encoder.…`). Keys
// of a file outside that layout (other components of a single checkpoint, EMA copies,
// `alphas_cumprod`) are ignored. A tensor whose shape differs from the parameter's only
// by leading or trailing 1s (a 1×1 convolution's [o, i, 1, 1] for a linear's [o, i], CLIP's
// class embedding [d] for Refiners' [1, d]) is accepted: its elements are in the same order.
//
// Files opened from a folder (OpenWeights) that hold nothing new are skipped, so a
// diffusers folder yields the one component the model needs.
//
// Every problem is reported at once, one line each: a weight no file has (with the layout
// that came closest), a shape that differs from the model's (both shown), a weight present
// in two files, a tensor that is not floating point, a file of which nothing matches; the
// error is a *WeightsError, whose message lists the first ten. model names the model in
// messages. Generated packages and the interpreter share it, so both engines report a bad
// checkpoint alike.
func LocateWeights(model string, specs []WeightSpec, files ...*SafetensorsFile) (*WeightSet, error) {
	var problems []string
	layouts := specLayouts(specs)
	set := &WeightSet{specs: specs, files: make([]*SafetensorsFile, len(specs)), keys: make([]string, len(specs)), Layout: map[*SafetensorsFile]string{}}
	owner := make([]*SafetensorsFile, len(specs))
	var best *fileMatch // the match that covers most, for messages
	var bestFile *SafetensorsFile
	var used []usedMatch // the files that gave weights, for the messages about missing ones
	anyKeys := 0
	for _, f := range files {
		if f == nil {
			problems = append(problems, "a nil safetensors file was passed")
			continue
		}
		anyKeys += len(f.names)
		m := matchFile(f, specs, layouts)
		if best == nil || len(m.covered) > len(best.covered) {
			best, bestFile = &m, f
		}
		fresh := 0
		for _, i := range m.covered {
			if owner[i] == nil {
				fresh++
			}
		}
		if fresh == 0 && f.fromFolder {
			continue // another component of a diffusers folder, or a variant already used
		}
		if len(m.covered) == 0 {
			if len(specs) == 0 || len(f.names) == 0 {
				continue // nothing to match: the missing weights, if any, are reported below
			}
			problems = append(problems, fmt.Sprintf("%s: none of its %d keys is a weight of module %s in any of its layouts (%s)", fileName(f), len(f.names), model, layoutList(layouts)))
			continue
		}
		set.Layout[f] = describeLayout(m.layout, m.prefix)
		used = append(used, usedMatch{f, m})
		for _, i := range m.covered {
			s := specs[i]
			key := m.prefix + s.key(m.layout)
			if owner[i] != nil {
				if !f.fromFolder {
					problems = append(problems, fmt.Sprintf("weight %q (parameter @%s) is in both %s and %s", key, s.Param, fileName(owner[i]), fileName(f)))
				}
				continue
			}
			owner[i] = f
			info, _ := f.Info(key)
			switch {
			case !info.DType.IsFloat():
				problems = append(problems, fmt.Sprintf("%s: key %q has dtype %s; parameters need a floating-point dtype", fileName(f), key, info.DType))
			case !sameShapeUpToOuterOnes(info.Shape, s.Shape):
				problems = append(problems, fmt.Sprintf("%s: key %q has shape %s, the model wants %s (parameter @%s)", fileName(f), key, formatShape(info.Shape), formatShape(s.Shape), s.Param))
			}
			set.files[i], set.keys[i] = f, key
		}
	}
	missing := 0
	for i, s := range specs {
		if owner[i] != nil {
			continue
		}
		missing++
		// A missing weight is looked for in the file that holds its neighbours (an
		// adapter's file beside the model's), in that file's layout.
		near, nearFile := best, bestFile
		if len(used) > 1 {
			near, nearFile = nearestMatch(specs, s, used)
		}
		if missing == 1 && near != nil && len(near.covered) > 0 {
			// The keys the file has but no weight uses often show a renamed layer.
			inUse := map[string]bool{}
			for _, i := range near.covered {
				inUse[near.prefix+specs[i].key(near.layout)] = true
			}
			var unused []string
			for _, name := range nearFile.names {
				if !inUse[name] && len(unused) < 5 {
					unused = append(unused, strconv.Quote(name))
				}
			}
			if len(unused) > 0 {
				problems = append(problems, fmt.Sprintf("%s: keys that no weight uses: %s", fileName(nearFile), strings.Join(unused, ", ")))
			}
		}
		where := ""
		if near != nil && len(near.covered) > 0 {
			where = fmt.Sprintf(" (%s of %s)", describeLayout(near.layout, near.prefix), fileName(nearFile))
			problems = append(problems, fmt.Sprintf("missing weight %q%s, parameter @%s, expected shape %s", near.prefix+s.key(near.layout), where, s.Param, formatShape(s.Shape)))
			continue
		}
		problems = append(problems, fmt.Sprintf("missing weight %q (parameter @%s, expected shape %s)", s.Key, s.Param, formatShape(s.Shape)))
	}
	if len(problems) > 0 {
		e := &WeightsError{Problems: problems}
		switch {
		case (best == nil || len(best.covered) == 0) && anyKeys > 0:
			e.Headline = fmt.Sprintf("none of the %d keys of %s is a parameter of module %s: is it the checkpoint of another model?", anyKeys, fileNames(files), model)
		case missing > 0 && len(used) > 1:
			var names []string
			for _, u := range used {
				names = append(names, fileName(u.f))
			}
			e.Headline = fmt.Sprintf("%s hold %d of the %d weights of module %s; %d missing", strings.Join(names, ", "), len(specs)-missing, len(specs), model, missing)
		case missing > 0 && best != nil:
			e.Headline = fmt.Sprintf("%s holds %d of the %d weights of module %s (%s); %d missing", fileName(bestFile), len(best.covered), len(specs), model, describeLayout(best.layout, best.prefix), missing)
		}
		return nil, e
	}
	return set, nil
}

// usedMatch is a file that gave weights, with the layout it was read in.
type usedMatch struct {
	f *SafetensorsFile
	m fileMatch
}

// nearestMatch is the file among used holding the key that shares the longest prefix with
// the missing spec's key in that file's layout.
func nearestMatch(specs []WeightSpec, missing WeightSpec, used []usedMatch) (*fileMatch, *SafetensorsFile) {
	bestLen, bestAt := -1, 0
	for k, u := range used {
		want := u.m.prefix + missing.key(u.m.layout)
		for _, i := range u.m.covered {
			have := u.m.prefix + specs[i].key(u.m.layout)
			n := 0
			for n < len(want) && n < len(have) && want[n] == have[n] {
				n++
			}
			if n > bestLen {
				bestLen, bestAt = n, k
			}
		}
	}
	return &used[bestAt].m, used[bestAt].f
}

// specLayouts lists the layouts to try: the unnamed keys, the named layouts, Refiners' paths.
func specLayouts(specs []WeightSpec) []string {
	seen := map[string]bool{}
	var named []string
	for _, s := range specs {
		for l := range s.Layouts {
			if !seen[l] {
				seen[l] = true
				named = append(named, l)
			}
		}
	}
	slices.Sort(named)
	return append(append([]string{""}, named...), RefinersLayout)
}

func layoutList(layouts []string) string {
	out := make([]string, len(layouts))
	for i, l := range layouts {
		out[i] = describeLayout(l, "")
	}
	return strings.Join(out, ", ")
}

func describeLayout(layout, prefix string) string {
	name := "layout " + layout
	switch layout {
	case "":
		name = "the unnamed keys"
	case RefinersLayout:
		name = "Refiners' paths"
	}
	if prefix != "" {
		name += fmt.Sprintf(" under the prefix %q", prefix)
	}
	return name
}

// matchFile finds the layout and prefix under which f holds the most specs.
func matchFile(f *SafetensorsFile, specs []WeightSpec, layouts []string) fileMatch {
	var best fileMatch
	for _, l := range layouts {
		for _, prefix := range candidatePrefixes(f, specs, l) {
			var covered []int
			for i, s := range specs {
				if _, ok := f.infos[prefix+s.key(l)]; ok {
					covered = append(covered, i)
				}
			}
			if len(covered) > len(best.covered) {
				best = fileMatch{layout: l, prefix: prefix, covered: covered}
			}
		}
	}
	return best
}

// candidatePrefixes is "" and, when some spec's key is not in f as it is, the prefixes under
// which f holds it (a key of f that ends with "."+key): at most a few, so that a hostile file
// cannot make matching quadratic.
func candidatePrefixes(f *SafetensorsFile, specs []WeightSpec, layout string) []string {
	out := []string{""}
	var probe string
	for _, s := range specs {
		if _, ok := f.infos[s.key(layout)]; !ok {
			probe = "." + s.key(layout)
			break
		}
	}
	if probe == "." || probe == "" {
		return out
	}
	for _, name := range f.names {
		if p, ok := strings.CutSuffix(name, probe); ok && !slices.Contains(out, p+".") {
			out = append(out, p+".")
			if len(out) > 4 {
				break
			}
		}
	}
	return out
}

// sameShapeUpToOuterOnes compares shapes with their leading and trailing 1s removed.
func sameShapeUpToOuterOnes(a, b []int) bool {
	trim := func(s []int) []int {
		for len(s) > 0 && s[len(s)-1] == 1 {
			s = s[:len(s)-1]
		}
		for len(s) > 0 && s[0] == 1 {
			s = s[1:]
		}
		return s
	}
	return slices.Equal(trim(a), trim(b))
}

// MaxListedProblems is how many problems an error lists before it counts the rest, so that
// a wrong checkpoint gives a screenful, not one line per key.
const MaxListedProblems = 10

// WeightsError is everything wrong with the weight files given to a model, one line each.
// Its message lists the first MaxListedProblems and counts the rest; Problems has them all.
type WeightsError struct {
	Headline string // a first line when the files look like another model's, else ""
	Problems []string
}

func (e *WeightsError) Error() string {
	lines := SummarizeLines(e.Problems, MaxListedProblems, "problems")
	if e.Headline != "" {
		lines = append([]string{e.Headline}, lines...)
	}
	return strings.Join(lines, "\n")
}

// SummarizeLines returns lines when there are at most max of them, else the first max and a
// last line "and N more WHAT (T in all)".
func SummarizeLines(lines []string, max int, what string) []string {
	if len(lines) <= max {
		return lines
	}
	out := append([]string(nil), lines[:max]...)
	return append(out, fmt.Sprintf("and %d more %s (%d in all)", len(lines)-max, what, len(lines)))
}

func fileNames(files []*SafetensorsFile) string {
	var names []string
	for _, f := range files {
		if f != nil {
			names = append(names, fileName(f))
		}
	}
	return strings.Join(names, ", ")
}

// ReadTensor reads weight i of the specs as a new float32 tensor of its spec's shape.
func (w *WeightSet) ReadTensor(i int) (*Tensor, error) {
	t := NewTensor(w.specs[i].Shape...)
	if err := w.ReadInto(i, t.F32); err != nil {
		return nil, err
	}
	return t, nil
}

// ReadInto converts weight i of the specs to float32 into dst, whose length must be the
// element count of its shape.
func (w *WeightSet) ReadInto(i int, dst []float32) error {
	if err := w.files[i].ReadF32Into(w.keys[i], dst); err != nil {
		return fmt.Errorf("reading weight %q: %w", w.keys[i], err)
	}
	w.files[i].release(w.keys[i]) // read once: its pages need not stay resident
	return nil
}

// OpenAll opens safetensors files; on error it closes those it opened.
func OpenAll(paths ...string) ([]*SafetensorsFile, error) {
	files := make([]*SafetensorsFile, 0, len(paths))
	for _, p := range paths {
		f, err := OpenSafetensors(p)
		if err != nil {
			CloseAll(files)
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// OpenWeights opens weight files as OpenAll does, and for a folder (a diffusers folder
// such as stable-diffusion-v1-5/, or one component of it such as unet/) every
// .safetensors file in it and in its direct subfolders, in name order; LocateWeights then
// uses those that hold the model's weights.
func OpenWeights(paths ...string) ([]*SafetensorsFile, error) {
	var files []*SafetensorsFile
	for _, p := range paths {
		if info, err := os.Stat(p); err != nil || !info.IsDir() {
			f, err := OpenSafetensors(p)
			if err != nil {
				CloseAll(files)
				return nil, err
			}
			files = append(files, f)
			continue
		}
		found, err := folderWeights(p)
		if err != nil {
			CloseAll(files)
			return nil, err
		}
		for _, name := range found {
			f, err := OpenSafetensors(name)
			if err != nil {
				CloseAll(files)
				return nil, err
			}
			f.fromFolder = true
			files = append(files, f)
		}
	}
	return files, nil
}

// folderWeights lists the .safetensors files of dir and of its direct subfolders.
func folderWeights(dir string) ([]string, error) {
	var out []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			sub, err := os.ReadDir(path)
			if err != nil {
				return nil, err
			}
			for _, f := range sub {
				if !f.IsDir() && strings.HasSuffix(f.Name(), ".safetensors") {
					out = append(out, filepath.Join(path, f.Name()))
				}
			}
		case strings.HasSuffix(e.Name(), ".safetensors"):
			out = append(out, path)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no .safetensors file in the folder or its subfolders (PyTorch .bin/.ckpt files cannot be read: convert them to safetensors)", dir)
	}
	slices.Sort(out)
	return out, nil
}

// CloseAll closes every file.
func CloseAll(files []*SafetensorsFile) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

func fileName(f *SafetensorsFile) string {
	if p := f.Path(); p != "" {
		return p
	}
	return "<safetensors>"
}

// ReadPacked reads weight i as ReadInto does into *scratch (grown as needed, reused by the
// caller from weight to weight), lets patch change it when patch is set, and returns it laid
// out in the GEMM micro-kernel's panels as the matrix [out, in] (kernels.PackWeights). A
// float16 or bfloat16 tensor stays in its precision when every value (patched or not) is
// exactly one of it, so a half-precision checkpoint costs its own size in memory; otherwise
// the weight is kept as float32. The packed weight owns its memory. Calls on one WeightSet
// must not run at the same time: they share its 16-bit copy.
func (w *WeightSet) ReadPacked(i int, scratch *[]float32, patch func(int, []float32) error, out, in int) (kernels.Weights, error) {
	n := out * in
	if cap(*scratch) < n {
		*scratch = make([]float32, n)
	}
	dst := (*scratch)[:n]
	if err := w.ReadInto(i, dst); err != nil {
		return kernels.Weights{}, err
	}
	if patch != nil {
		if err := patch(i, dst); err != nil {
			return kernels.Weights{}, err
		}
	}
	info, _ := w.files[i].Info(w.keys[i])
	switch info.DType {
	case F16:
		if bits, ok := w.narrowExactly(dst, F32ToF16, F16ToF32); ok {
			return kernels.PackWeights(kernels.F16Weights(bits), out, in), nil
		}
	case BF16:
		if bits, ok := w.narrowExactly(dst, F32ToBF16, BF16ToF32); ok {
			return kernels.PackWeights(kernels.BF16Weights(bits), out, in), nil
		}
	}
	return kernels.PackWeights(kernels.F32Weights(dst), out, in), nil
}

// narrowExactly converts src to 16-bit floats, in w.halves, when each value round-trips
// exactly. The result is valid until the next call (PackWeights copies it).
func (w *WeightSet) narrowExactly(src []float32, narrow func(float32) uint16, widen func(uint16) float32) ([]uint16, bool) {
	if cap(w.halves) < len(src) {
		w.halves = make([]uint16, len(src))
	}
	bits := w.halves[:len(src)]
	for i, v := range src {
		h := narrow(v)
		if back := widen(h); math.Float32bits(back) != math.Float32bits(v) {
			return nil, false
		}
		bits[i] = h
	}
	return bits, true
}
