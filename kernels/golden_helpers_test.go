package kernels_test

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/kernels"
	"github.com/rfc-project/rfc/runtime"
)

// Golden cases come from scripts/golden/ops.py (PyTorch): tensors `<op>.case<N>.<role>` and
// a metadata entry `<op>.case<N>` holding the case's attributes as JSON.

type goldenFile struct {
	f    *runtime.SafetensorsFile
	meta map[string]string
}

func openGolden(t *testing.T, family string) *goldenFile {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", "ops_"+family+".safetensors")
	f, err := runtime.OpenSafetensors(path)
	if err != nil {
		t.Fatalf("open golden file (regenerate with /usr/bin/python3 scripts/golden/ops.py): %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return &goldenFile{f: f, meta: f.Metadata()}
}

type goldenCase struct {
	t     *testing.T
	file  *goldenFile
	name  string
	attrs map[string]any
}

// cases returns the cases of op in case-number order; it fails the test if there are none.
func (g *goldenFile) cases(t *testing.T, op string) []*goldenCase {
	t.Helper()
	type numbered struct {
		n    int
		name string
	}
	var found []numbered
	for key := range g.meta {
		rest, ok := strings.CutPrefix(key, op+".case")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			continue
		}
		found = append(found, numbered{n, key})
	}
	if len(found) == 0 {
		t.Fatalf("golden file has no %q cases", op)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].n < found[j].n })
	out := make([]*goldenCase, len(found))
	for i, f := range found {
		attrs := map[string]any{}
		if err := json.Unmarshal([]byte(g.meta[f.name]), &attrs); err != nil {
			t.Fatalf("%s: attributes: %v", f.name, err)
		}
		out[i] = &goldenCase{t: t, file: g, name: f.name, attrs: attrs}
	}
	return out
}

// tensor returns role of the case (from the case named by the "inputs" attribute if set
// and the case lacks it); it fails the test if the tensor is missing.
func (c *goldenCase) tensor(role string) *runtime.Tensor {
	c.t.Helper()
	if x := c.optional(role); x != nil {
		return x
	}
	c.t.Fatalf("%s: golden tensor %q missing", c.name, role)
	return nil
}

// optional returns role of the case, or nil when the case has no such tensor.
func (c *goldenCase) optional(role string) *runtime.Tensor {
	c.t.Helper()
	names := []string{c.name + "." + role}
	if src, ok := c.attrs["inputs"].(string); ok {
		names = append(names, src+"."+role)
	}
	for _, name := range names {
		if _, ok := c.file.f.Info(name); !ok {
			continue
		}
		x, err := c.file.f.Tensor(name)
		if err != nil {
			c.t.Fatalf("%s: %v", name, err)
		}
		return x
	}
	return nil
}

// f32 returns the data of role, or nil when the case has none (an absent bias).
func (c *goldenCase) f32(role string) []float32 {
	if x := c.optional(role); x != nil {
		return x.F32
	}
	return nil
}

// attr is the case's attribute key, which must be of type T (kind names it in the error).
func attr[T any](c *goldenCase, key, kind string) T {
	c.t.Helper()
	v, ok := c.attrs[key].(T)
	if !ok {
		c.t.Fatalf("%s: attribute %q missing or not a %s: %v", c.name, key, kind, c.attrs[key])
	}
	return v
}

func (c *goldenCase) num(key string) float64 { return attr[float64](c, key, "number") }

func (c *goldenCase) int(key string) int { return int(c.num(key)) }

func (c *goldenCase) str(key string) string { return attr[string](c, key, "string") }

func (c *goldenCase) bool(key string) bool { return attr[bool](c, key, "bool") }

func (c *goldenCase) ints(key string) []int {
	c.t.Helper()
	raw, ok := c.attrs[key].([]any)
	if !ok {
		c.t.Fatalf("%s: attribute %q missing or not a list: %v", c.name, key, c.attrs[key])
	}
	out := make([]int, len(raw))
	for i, v := range raw {
		f, ok := v.(float64)
		if !ok {
			c.t.Fatalf("%s: attribute %q[%d] is not a number", c.name, key, i)
		}
		out[i] = int(f)
	}
	return out
}

// nanSlice returns an output buffer full of NaN, so an element a kernel forgets to write
// fails the comparison.
func nanSlice(n int) []float32 {
	s := make([]float32, n)
	nan := float32(math.NaN())
	for i := range s {
		s[i] = nan
	}
	return s
}

// maxAbsDiff returns max|got−want| (+Inf on a NaN or length mismatch) and max|want|.
func maxAbsDiff(got, want []float32) (diff, ref float64) {
	if len(got) != len(want) {
		return math.Inf(1), 0
	}
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		diff = max(diff, d)
		ref = max(ref, math.Abs(float64(want[i])))
	}
	return diff, ref
}

// tolerance is the allowed max|Δ| relative to the reference's magnitude.
const tolerance = 1e-4

// worst records the largest relative max|Δ| seen per family; logWorst reports it.
var worst = map[string]float64{}

// logWorst logs the family's worst max|Δ|/max(1, max|ref|) (see it with go test -v).
func logWorst(t *testing.T, family string) {
	t.Logf("golden %s: worst max|Δ|/max(1,max|ref|) = %.3g", family, worst[family])
}

// check compares got with the golden tensor want: max|Δ| ≤ 1e-4·max(1, max|want|). It also
// fails on a degenerate reference (constant data), which could not catch a wrong kernel.
func check(t *testing.T, family, label string, got []float32, want *runtime.Tensor) {
	t.Helper()
	if len(want.F32) < 2 {
		t.Fatalf("%s: reference %s too small to test anything", label, want.ShapeString())
	}
	constant := true
	for _, v := range want.F32[1:] {
		if v != want.F32[0] {
			constant = false
			break
		}
	}
	if constant {
		t.Fatalf("%s: reference is constant (%v): the case cannot detect a wrong kernel", label, want.F32[0])
	}
	diff, ref := maxAbsDiff(got, want.F32)
	worst[family] = max(worst[family], diff/max(1, ref))
	if diff > tolerance*max(1, ref) {
		i := firstBad(got, want.F32, tolerance*max(1, ref))
		t.Errorf("%s: max|Δ| = %.3g > %.3g (max|ref| %.3g); first bad element %d: got %v want %v",
			label, diff, tolerance*max(1, ref), ref, i, at(got, i), at(want.F32, i))
	}
}

func firstBad(got, want []float32, tol float64) int {
	for i := range min(len(got), len(want)) {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if !(d <= tol) {
			return i
		}
	}
	return min(len(got), len(want))
}

func at(s []float32, i int) string {
	if i < len(s) {
		return fmt.Sprint(s[i])
	}
	return fmt.Sprintf("<missing, len %d>", len(s))
}

// workerCounts are the worker settings each golden case runs under: serial, and an odd
// count so that parallel splits are uneven.
var workerCounts = []int{1, 3}

// withWorkers runs fn once per worker count, restoring the setting afterwards.
func withWorkers(t *testing.T, fn func(label string)) {
	t.Helper()
	defer kernels.SetWorkers(kernels.Workers())
	for _, w := range workerCounts {
		kernels.SetWorkers(w)
		fn(fmt.Sprintf("workers=%d", w))
	}
}

// prod is the product of dims.
func prod(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// splitAt returns (prod(shape[:dim]), shape[dim], prod(shape[dim+1:])), with a negative dim
// counted from the end.
func splitAt(shape []int, dim int) (outer, mid, inner int) {
	if dim < 0 {
		dim += len(shape)
	}
	return prod(shape[:dim]), shape[dim], prod(shape[dim+1:])
}
