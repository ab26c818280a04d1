package adapters

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/internal/editdist"
	"github.com/rfc-project/rfc/ir"
)

// Match reports whether the path of scope s (its names from the root's child down, dot-
// joined) matches pattern, a dot-separated glob: `**` matches any number of segments (none
// included), any other segment matches one: a segment without wildcards matches a layer
// whose name or class it is (`Attention` matches Attention_2), one with `*`, `?` or `[…]`
// matches names and classes as path.Match does (`Linear_*`). The empty pattern matches
// every path.
func Match(pattern string, s *ir.Scope) bool {
	if pattern == "" {
		return true
	}
	var chain []*ir.Scope
	for x := s; x != nil && x.Parent != nil; x = x.Parent {
		chain = append(chain, x)
	}
	slices.Reverse(chain)
	segs := strings.Split(pattern, ".")
	memo := map[[2]int]bool{}
	var match func(i, j int) bool
	match = func(i, j int) bool {
		k := [2]int{i, j}
		if r, ok := memo[k]; ok {
			return r
		}
		var r bool
		switch {
		case i == len(segs):
			r = j == len(chain)
		case segs[i] == "**":
			r = match(i+1, j) || (j < len(chain) && match(i, j+1))
		default:
			r = j < len(chain) && segmentMatch(segs[i], chain[j]) && match(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return match(0, 0)
}

func segmentMatch(seg string, s *ir.Scope) bool {
	if !strings.ContainsAny(seg, "*?[") {
		return seg == s.Name || seg == s.Class
	}
	a, _ := path.Match(seg, s.Name)
	b, _ := path.Match(seg, s.Class)
	return a || b
}

// checkPattern refuses patterns path.Match cannot read.
func checkPattern(pattern string) error {
	if pattern == "" {
		return nil
	}
	for _, seg := range strings.Split(pattern, ".") {
		if seg == "" {
			return fmt.Errorf("pattern %q has an empty segment", pattern)
		}
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("pattern %q: segment %q: %v", pattern, seg, err)
		}
	}
	return nil
}

// Internal reports whether s is a layer an adapter added (not a layer of the model that an
// adapter wraps): the keys of an adapter's own layers extend its scope's key, which is
// "NAME.TARGETKEY", while the target keeps its own. Such layers are never selected.
func Internal(s *ir.Scope) bool {
	for a := s.Parent; a != nil; a = a.Parent {
		if a.Adapter != "" && (s.Key == a.Key || strings.HasPrefix(s.Key, a.Key+".")) {
			return true
		}
	}
	return false
}

// Select returns the layers of class class ("" or "*": any) whose path matches pattern, in
// tree order, leaving out the root and the layers adapters added. Selecting nothing is an
// error that shows the pattern and the nearest paths.
func Select(m *ir.Module, class, pattern string) ([]*ir.Scope, error) {
	if err := checkPattern(pattern); err != nil {
		return nil, err
	}
	anyClass := class == "" || class == "*"
	var out []*ir.Scope
	classes := map[string]bool{}
	m.Root.Walk(func(s *ir.Scope) {
		if s.Parent == nil || Internal(s) {
			return
		}
		classes[s.Class] = true
		if (anyClass || s.Class == class) && Match(pattern, s) {
			out = append(out, s)
		}
	})
	if len(out) > 0 {
		return out, nil
	}
	what := "layer"
	if !anyClass {
		what = class + " layer"
		if !classes[class] {
			names := make([]string, 0, len(classes))
			for c := range classes {
				names = append(names, c)
			}
			slices.Sort(names)
			return nil, fmt.Errorf("no %s matches %q: module %s has no layer of class %s (classes: %s)", what, pattern, m.Name, class, strings.Join(names, ", "))
		}
	}
	c := class
	if anyClass {
		c = ""
	}
	// Wildcards say nothing about nearness: compare the literal rest of the pattern.
	var literal []string
	for _, seg := range strings.Split(pattern, ".") {
		if seg = strings.Trim(seg, "*"); seg != "" {
			literal = append(literal, seg)
		}
	}
	return nil, fmt.Errorf("no %s matches %q%s", what, pattern, nearestHint(m, c, strings.Join(literal, ".")))
}

// nearestHint lists the paths (of layers of class, when given) closest to text.
func nearestHint(m *ir.Module, class, text string) string {
	type cand struct {
		path string
		d    int
	}
	var cands []cand
	m.Root.Walk(func(s *ir.Scope) {
		if s.Parent == nil || Internal(s) || (class != "" && s.Class != class) {
			return
		}
		p := s.Path()
		cands = append(cands, cand{p, editdist.ToSubstring(text, p)})
	})
	if len(cands) == 0 {
		return ""
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return a.d - b.d })
	var lines []string
	for i := 0; i < len(cands) && i < 5; i++ {
		lines = append(lines, "    "+cands[i].path)
	}
	return "; nearest paths:\n" + strings.Join(lines, "\n")
}
