package runtime

import (
	"fmt"
	"slices"
	"strings"
)

// WeightSpec is one checkpoint tensor a model reads.
type WeightSpec struct {
	Key   string // checkpoint key
	Param string // the model's name for it, for messages
	Shape []int
}

// WeightSet is a checked match of a model's weight specs to the tensors of safetensors files.
type WeightSet struct {
	specs []WeightSpec
	files []*SafetensorsFile
}

// LocateWeights matches specs to the tensors of files by key and checks the whole set before
// any data is read. It reports every problem at once, one line each: a key the model needs
// that no file has, a key of a file that the model does not have, a shape that differs from
// the model's (both shown), a key present in two files, a tensor that is not floating point;
// the error is a *WeightsError, whose message lists the first ten.
// model names the model in messages. Generated packages and the interpreter share it, so both
// engines report a bad checkpoint alike.
func LocateWeights(model string, specs []WeightSpec, files ...*SafetensorsFile) (*WeightSet, error) {
	type location struct {
		file *SafetensorsFile
		info TensorInfo
	}
	wanted := make(map[string]bool, len(specs))
	for _, s := range specs {
		wanted[s.Key] = true
	}
	var problems []string
	found := map[string]location{}
	for _, f := range files {
		if f == nil {
			problems = append(problems, "a nil safetensors file was passed")
			continue
		}
		for _, name := range f.Names() {
			info, ok := f.Info(name)
			if !ok {
				continue
			}
			if prev, dup := found[name]; dup {
				problems = append(problems, fmt.Sprintf("key %q is in both %s and %s", name, fileName(prev.file), fileName(f)))
				continue
			}
			found[name] = location{f, info}
			if !wanted[name] {
				problems = append(problems, fmt.Sprintf("%s: key %q (%s %s) is not a parameter of module %s", fileName(f), name, info.DType, formatShape(info.Shape), model))
			}
		}
	}
	set := &WeightSet{specs: specs, files: make([]*SafetensorsFile, len(specs))}
	matched := 0
	for i, s := range specs {
		loc, ok := found[s.Key]
		if ok {
			matched++
		}
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing weight %q (parameter @%s, expected shape %s)", s.Key, s.Param, formatShape(s.Shape)))
		case !loc.info.DType.IsFloat():
			problems = append(problems, fmt.Sprintf("%s: key %q has dtype %s; parameters need a floating-point dtype", fileName(loc.file), s.Key, loc.info.DType))
		case !slices.Equal(loc.info.Shape, s.Shape):
			problems = append(problems, fmt.Sprintf("%s: key %q has shape %s, the model wants %s (parameter @%s)", fileName(loc.file), s.Key, formatShape(loc.info.Shape), formatShape(s.Shape), s.Param))
		}
		set.files[i] = loc.file
	}
	if len(problems) > 0 {
		e := &WeightsError{Problems: problems}
		if matched == 0 && len(found) > 0 {
			e.Headline = fmt.Sprintf("none of the %d keys of %s is a parameter of module %s: is it the checkpoint of another model?", len(found), fileNames(files), model)
		}
		return nil, e
	}
	return set, nil
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

// ReadInto converts weight i of the specs to float32 into dst, whose length must be the
// element count of its shape.
func (w *WeightSet) ReadInto(i int, dst []float32) error {
	s := w.specs[i]
	if err := w.files[i].ReadF32Shape(s.Key, dst, s.Shape...); err != nil {
		return fmt.Errorf("reading weight %q: %w", s.Key, err)
	}
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
