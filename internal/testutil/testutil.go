// Package testutil holds what the module's tests share: building modules from IR text or
// .rfn source, reading goldens, measuring how far an output is from its reference, and
// making altered copies of checkpoint folders.
package testutil

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/runtime"
)

// Tensors reads the named tensors of a safetensors file (all when none is named), failing
// the test on any error.
func Tensors(t testing.TB, path string, names ...string) map[string]*runtime.Tensor {
	t.Helper()
	out, err := runtime.ReadTensors(path, names...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Tensor reads one tensor of a safetensors file, failing the test on any error.
func Tensor(t testing.TB, path, name string) *runtime.Tensor {
	t.Helper()
	return Tensors(t, path, name)[name]
}

// MaxDiff is max|got − want| and the scale the project's tolerances are relative to,
// max(1, max|want|). A NaN in got makes the difference +Inf; a length mismatch too.
func MaxDiff(got, want []float32) (worst, scale float64) {
	worst, largest := diff(got, want)
	return worst, math.Max(1, largest)
}

// RelDiff is max|got − want| / max|want|: the error relative to the reference's largest
// value (latents, whose scale is their own). A NaN in got or a length mismatch gives +Inf;
// equal slices give 0.
func RelDiff(got, want []float32) float64 {
	worst, largest := diff(got, want)
	if worst == 0 {
		return 0
	}
	return worst / largest
}

// diff is max|got − want| (+Inf for a NaN in got or a length mismatch) and max|want|.
func diff(got, want []float32) (worst, largest float64) {
	if len(got) != len(want) {
		return math.Inf(1), 0
	}
	for i, w := range want {
		largest = math.Max(largest, math.Abs(float64(w)))
		if d := math.Abs(float64(got[i]) - float64(w)); !(d <= worst) {
			worst = d
			if math.IsNaN(d) {
				worst = math.Inf(1)
			}
		}
	}
	return worst, largest
}

// EditedFolder copies the files of the folder src (a diffusers model: config.json and its
// weights) into a new folder dst, with old replaced by new in config.json, and returns dst.
// old must occur there.
func EditedFolder(t testing.TB, src, dst, old, new string) string {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "config.json" {
			if !strings.Contains(string(data), old) {
				t.Fatalf("%s/config.json has no %s", src, old)
			}
			data = []byte(strings.Replace(string(data), old, new, 1))
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// WithinTolerance checks got against want with the project's tolerance: the same dtype
// and shape, equal integers, and floats with max|got − want| ≤ tol·max(1, max|want|) over
// want's finite values, where a NaN or an infinity passes only against the same. The
// error names the worst element, or the first NaN or infinity out of place.
func WithinTolerance(got, want *runtime.Tensor, tol float64) error {
	if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) {
		return fmt.Errorf("got a %s tensor of shape %v, want %s %v", got.DType, got.Shape, want.DType, want.Shape)
	}
	if want.DType == runtime.I64 {
		for i, w := range want.I64 {
			if got.I64[i] != w {
				return fmt.Errorf("element %d is %d, want %d", i, got.I64[i], w)
			}
		}
		return nil
	}
	scale, worst, at := 1.0, 0.0, -1
	for _, w := range want.F32 {
		if a := math.Abs(float64(w)); !math.IsInf(a, 0) && a > scale {
			scale = a
		}
	}
	for i, w := range want.F32 {
		g, w := float64(got.F32[i]), float64(w)
		if g == w || math.IsNaN(g) && math.IsNaN(w) {
			continue
		}
		d := math.Abs(g - w)
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return fmt.Errorf("flat index %d: got %g, want %g", i, g, w)
		}
		if d > worst {
			worst, at = d, i
		}
	}
	if at >= 0 && worst > tol*scale {
		return fmt.Errorf("max|Δ| = %g at flat index %d (got %g, want %g), tolerance %g", worst, at, got.F32[at], want.F32[at], tol*scale)
	}
	return nil
}
