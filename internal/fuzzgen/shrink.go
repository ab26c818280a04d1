package fuzzgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Signature identifies a failure while its model shrinks: the stage, and the words of the
// first line of its message without numbers, names or shapes, so that the failure of a
// smaller model still counts as the same.
func Signature(f Failure) string {
	line, _, _ := strings.Cut(f.Msg, "\n")
	var b strings.Builder
	for _, w := range strings.Fields(line) {
		if strings.IndexFunc(w, func(r rune) bool {
			return unicode.IsDigit(r) || r == '[' || r == '@' || r == '%' || r == '/' || r == '.'
		}) >= 0 {
			continue
		}
		b.WriteString(w + " ")
		if b.Len() > 60 {
			break
		}
	}
	return f.Stage + ": " + strings.TrimSpace(b.String())
}

// Shrink looks for a smaller model that fails as f did: it deletes statements and blocks,
// unwraps containers, drops key clauses, adapters and the merge, and lowers numbers, one
// edit at a time, keeping the smallest candidate that still fails, until no edit does.
// Candidates are checked in batches (one build per batch). logf, when not nil, reports
// progress.
func Shrink(m *Model, f Failure, backends []Backend, logf func(string, ...any)) *Model {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	want := Signature(f)
	var use []Backend
	for _, b := range backends {
		if strings.HasPrefix(f.Stage, b.Name()) {
			use = append(use, b)
		}
	}
	fails := func(cands []*Model) []bool {
		out := make([]bool, len(cands))
		// Models that do not even build are out early, without a back end.
		var ok []*Model
		index := map[*Model]int{}
		for i, c := range cands {
			_, err := Build(c)
			var bf *Failure
			switch {
			case errors.As(err, &bf):
				out[i] = Signature(*bf) == want
			case err == nil:
				index[c] = i
				ok = append(ok, c)
			}
		}
		if len(ok) == 0 || strings.HasPrefix(f.Stage, "elaborate") || strings.HasPrefix(f.Stage, "inject") {
			return out
		}
		rep := CheckModels(ok, use...)
		for _, g := range rep.Failures {
			if i, found := index[g.Model]; found && Signature(g) == want {
				out[i] = true
			}
		}
		return out
	}
	cur := m
	for round := 1; ; round++ {
		cands := edits(cur)
		// Try the largest reductions first.
		sort.SliceStable(cands, func(i, j int) bool { return size(cands[i]) < size(cands[j]) })
		var best *Model
		for start := 0; start < len(cands) && best == nil; start += 48 {
			chunk := cands[start:min(start+48, len(cands))]
			for i, bad := range fails(chunk) {
				if bad && size(chunk[i]) < size(cur) && (best == nil || size(chunk[i]) < size(best)) {
					best = chunk[i]
				}
			}
		}
		if best == nil {
			return cur
		}
		logf("shrink round %d: %d → %d bytes", round, size(cur), size(best))
		cur = best
	}
}

// size orders models by how much there is to read.
func size(m *Model) int {
	n := len(m.Source) + 40*len(m.Adapters)
	if m.Merge {
		n += 20
	}
	for _, a := range m.Adapters {
		n += 10 * len(a.Pick)
	}
	return n
}

var (
	intLiteral = regexp.MustCompile(`\b\d+\b`)
	keyClause  = regexp.MustCompile(` key [^{]*`)
	// conditional matches the `a if c else b` the generator writes (operands without
	// spaces or brackets).
	conditional = regexp.MustCompile(`([\w.]+) if (?:not )?\w+ else ([\w.]+)`)
)

// edits lists the models one edit away from m.
func edits(m *Model) []*Model {
	var out []*Model
	seen := map[string]bool{}
	add := func(c *Model) {
		k := c.Source + fmt.Sprint(c.Adapters, c.Merge, c.Set)
		if !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	with := func(src string) *Model {
		c := *m
		c.Source = dropUnusedContextInputs(src)
		return &c
	}
	lines := strings.Split(strings.TrimRight(m.Source, "\n"), "\n")
	join := func(ls []string) string { return strings.Join(ls, "\n") + "\n" }
	match := blockEnds(lines)
	for i, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
			add(with(join(slices.Delete(slices.Clone(lines), i, i+1))))
		case strings.HasPrefix(t, "}"):
		case strings.HasSuffix(t, "{"):
			end := match[i]
			if end < 0 {
				continue
			}
			if !strings.HasPrefix(t, "model "+m.Entry) {
				add(with(join(slices.Delete(slices.Clone(lines), i, end+1))))
			}
			if strings.TrimSpace(lines[end]) == "}" && !strings.HasPrefix(t, "model ") && !strings.HasPrefix(t, "adapter ") && !strings.HasPrefix(t, "if ") && !strings.HasPrefix(t, "}") {
				// Unwrap: the block's statements take its place.
				ls := slices.Clone(lines)
				ls = slices.Delete(ls, end, end+1)
				ls = slices.Delete(ls, i, i+1)
				add(with(join(ls)))
			}
		default:
			if !strings.HasPrefix(t, "input ") && !strings.HasPrefix(t, "model ") {
				add(with(join(slices.Delete(slices.Clone(lines), i, i+1))))
			}
		}
		if k := keyClause.FindStringIndex(l); k != nil && !strings.HasPrefix(t, "model ") && !strings.HasPrefix(t, "adapter ") {
			ls := slices.Clone(lines)
			rest := ""
			if strings.HasSuffix(t, "{") {
				rest = " {"
			}
			ls[i] = l[:k[0]] + rest
			add(with(join(ls)))
		}
		for _, loc := range conditional.FindAllStringSubmatchIndex(l, -1) {
			// `a if c else b` → a, and → b.
			for _, part := range [][2]int{{loc[2], loc[3]}, {loc[4], loc[5]}} {
				ls := slices.Clone(lines)
				ls[i] = l[:loc[0]] + l[part[0]:part[1]] + l[loc[1]:]
				add(with(join(ls)))
			}
		}
		for _, loc := range intLiteral.FindAllStringIndex(l, -1) {
			if loc[0] > 0 && (l[loc[0]-1] == '.' || l[loc[0]-1] == 'e' || l[loc[0]-1] == '-') || loc[1] < len(l) && (l[loc[1]] == '.' || l[loc[1]] == 'e') {
				continue // part of a float
			}
			n, err := strconv.Atoi(l[loc[0]:loc[1]])
			if err != nil || n <= 1 {
				continue
			}
			for _, smaller := range []int{1, n / 2, n - 1} {
				if smaller >= 1 && smaller < n {
					ls := slices.Clone(lines)
					ls[i] = l[:loc[0]] + strconv.Itoa(smaller) + l[loc[1]:]
					add(with(join(ls)))
				}
			}
		}
	}
	// Runs of siblings, and the entry point's tail (its output is whatever is left) and
	// head (its input becomes what the rest received).
	for i := range lines {
		end := match[i]
		if end < 0 {
			continue
		}
		kids := children(lines, match, i)
		for a := 0; a < len(kids); a++ {
			for b := a + 1; b < len(kids); b++ {
				last := kids[b]
				if match[last] >= 0 {
					last = match[last]
				}
				add(with(join(slices.Delete(slices.Clone(lines), kids[a], last+1))))
			}
		}
		t := strings.TrimSpace(lines[i])
		// A container replaced by one of its blocks: a Sum by its full branch.
		if !strings.HasPrefix(t, "model ") && !strings.HasPrefix(t, "adapter ") {
			for _, k := range kids {
				last := k
				if match[k] >= 0 {
					last = match[k]
				}
				add(with(join(slices.Concat(lines[:i], lines[k:last+1], lines[end+1:]))))
			}
		}
		if !strings.HasPrefix(t, "model "+m.Entry+"(") && !strings.HasPrefix(t, "model "+m.Entry+" ") {
			continue
		}
		var stmts []int
		for _, k := range kids {
			if u := strings.TrimSpace(lines[k]); !strings.HasPrefix(u, "input ") && !strings.HasPrefix(u, "let ") && !strings.HasPrefix(u, "#") {
				stmts = append(stmts, k)
			}
		}
		for a := 1; a < len(stmts); a++ {
			add(with(join(slices.Delete(slices.Clone(lines), stmts[a], end))))
			if head := retype(m, lines, stmts[a], end); head != nil {
				ls := slices.Delete(slices.Clone(head), stmts[0], stmts[a])
				add(with(join(ls)))
			}
		}
	}
	for i := range m.Adapters {
		c := *m
		c.Adapters = slices.Delete(slices.Clone(m.Adapters), i, i+1)
		add(&c)
		if len(m.Adapters[i].Pick) > 1 {
			for j := range m.Adapters[i].Pick {
				c := *m
				c.Adapters = slices.Clone(m.Adapters)
				c.Adapters[i].Pick = []int{m.Adapters[i].Pick[j]}
				add(&c)
			}
		}
	}
	if m.Merge {
		c := *m
		c.Merge = false
		add(&c)
	}
	if m.Other != nil {
		c := *m
		c.Other = nil
		add(&c)
	}
	if m.Set["batch"] != "1" {
		c := *m
		c.Set = map[string]string{}
		for k, v := range m.Set {
			c.Set[k] = v
		}
		c.Set["batch"] = "1"
		add(&c)
	}
	return out
}

// dropUnusedContextInputs removes the input lines of context keys (cond1, …) that no
// UseContext reads any more: the entry point would take them as inputs of its body.
func dropUnusedContextInputs(src string) string {
	lines := strings.Split(src, "\n")
	out := lines[:0]
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if name, ok := strings.CutPrefix(t, "input cond"); ok {
			key, _, _ := strings.Cut(name, ":")
			if !strings.Contains(src, `"cond`+key+`"`) {
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// children lists the lines of the statements directly inside the block opened at line i.
func children(lines []string, match []int, i int) []int {
	var out []int
	for k := i + 1; k < match[i]; k++ {
		t := strings.TrimSpace(lines[k])
		if t == "" || strings.HasPrefix(t, "}") {
			continue
		}
		out = append(out, k)
		if match[k] >= 0 {
			k = match[k]
		}
	}
	return out
}

// retype gives the lines of m with the entry point's first input declared as the value
// that the statement at line stmt receives (found by elaborating the entry point cut
// before it), so that the statements before it can go; nil when that is not one tensor.
func retype(m *Model, lines []string, stmt, end int) []string {
	cut := *m
	cut.Source = strings.Join(slices.Delete(slices.Clone(lines), stmt, end), "\n") + "\n"
	cut.Adapters, cut.Merge = nil, false
	c, err := Build(&cut)
	if err != nil || len(c.Module.Outputs) != 1 {
		return nil
	}
	t := c.Module.Outputs[0].Type
	if !t.DType.IsFloat() || len(t.Shape) < 1 {
		return nil
	}
	for k := range lines {
		l := lines[k]
		u := strings.TrimSpace(l)
		if k < stmt && strings.HasPrefix(u, "input ") && strings.Contains(l, ": ") {
			name, _, _ := strings.Cut(strings.TrimPrefix(u, "input "), ":")
			if strings.HasPrefix(name, "cond") {
				continue // a context input
			}
			dims := []string{"batch"}
			for _, d := range t.Shape.Ints()[1:] {
				dims = append(dims, strconv.Itoa(d))
			}
			out := slices.Clone(lines)
			out[k] = l[:len(l)-len(u)] + fmt.Sprintf("input %s: f32[%s]", name, strings.Join(dims, ", "))
			return out
		}
	}
	return nil
}

// blockEnds gives, for each line that opens a block, the line that closes it (-1 when
// none does).
func blockEnds(lines []string) []int {
	end := make([]int, len(lines))
	var stack []int
	for i, l := range lines {
		end[i] = -1
		t := strings.TrimSpace(l)
		if i := strings.Index(t, "#"); i >= 0 {
			t = strings.TrimSpace(t[:i])
		}
		if strings.HasPrefix(t, "}") && len(stack) > 0 {
			end[stack[len(stack)-1]] = i
			stack = stack[:len(stack)-1]
		}
		if strings.HasSuffix(t, "{") {
			stack = append(stack, i)
		}
	}
	return end
}

// The regression corpus: each file is a shrunk model with, on its first line, what the
// source does not say (the seed its weights and inputs are drawn from, the sizes set, the
// adapters to inject, the merge).

const corpusPrefix = "# fuzz: "

type corpusHeader struct {
	Seed     uint64
	Entry    string
	Set      map[string]string
	Adapters []Injection       `json:",omitempty"`
	Merge    bool              `json:",omitempty"`
	Other    map[string]string `json:",omitempty"`
}

// Encode writes m as a corpus file, with note (what it found) as comment lines.
func Encode(m *Model, note string) []byte {
	h, _ := json.Marshal(corpusHeader{Seed: m.Seed, Entry: m.Entry, Set: m.Set, Adapters: m.Adapters, Merge: m.Merge, Other: m.Other})
	var b strings.Builder
	b.WriteString(corpusPrefix + string(h) + "\n")
	for _, l := range strings.Split(strings.TrimSpace(note), "\n") {
		b.WriteString("# " + l + "\n")
	}
	b.WriteString(strings.TrimRight(m.Source, "\n") + "\n")
	return []byte(b.String())
}

// Decode reads a corpus file.
func Decode(data []byte) (*Model, error) {
	first, src, _ := strings.Cut(string(data), "\n")
	js, ok := strings.CutPrefix(first, corpusPrefix)
	if !ok {
		return nil, fmt.Errorf("the first line does not start with %q", corpusPrefix)
	}
	var h corpusHeader
	if err := json.Unmarshal([]byte(js), &h); err != nil {
		return nil, fmt.Errorf("the first line: %v", err)
	}
	return &Model{Seed: h.Seed, Source: src, Entry: h.Entry, Set: h.Set, Adapters: h.Adapters, Merge: h.Merge, Other: h.Other}, nil
}

// ReadCorpus reads every .rfn file of dir.
func ReadCorpus(dir string) (map[string]*Model, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]*Model{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".rfn") {
			continue
		}
		data, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		m, err := Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %v", dir, e.Name(), err)
		}
		out[e.Name()] = m
	}
	return out, nil
}
