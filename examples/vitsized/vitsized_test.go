package vitsized

import (
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/runtime"
)

const golden = "../../testdata/golden/"

func load(t testing.TB) *Model {
	t.Helper()
	m, err := Load(golden + "vit_weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sample is one input at one batch size with PyTorch's output for it.
type sample struct {
	batch int
	x, y  *runtime.Tensor
}

// samples are the goldens at batch 2 (scripts/golden/vit.py), 1 and 3
// (scripts/golden/sizes.py), all with the weights of vit_weights.safetensors.
func samples(t testing.TB) []sample {
	return []sample{
		{2, testutil.Tensor(t, golden+"vit_input.safetensors", "x"), testutil.Tensor(t, golden+"vit_output.safetensors", "y")},
		{1, testutil.Tensor(t, golden+"vit_batches.safetensors", "x1"), testutil.Tensor(t, golden+"vit_batches.safetensors", "y1")},
		{3, testutil.Tensor(t, golden+"vit_batches.safetensors", "x3"), testutil.Tensor(t, golden+"vit_batches.safetensors", "y3")},
	}
}

// TestBatchesMatchPyTorch runs one Model at batch 2, 1, 3, then 2 again, each against
// PyTorch's output: max|Δ| ≤ 1e-4·max(1, max|ref|).
func TestBatchesMatchPyTorch(t *testing.T) {
	m := load(t)
	s := samples(t)
	for _, c := range []sample{s[0], s[1], s[2], s[0]} {
		y, shape, err := m.Forward(c.x.F32, c.x.Shape)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(shape, c.y.Shape) {
			t.Fatalf("batch %d: output shape %v, PyTorch's %v", c.batch, shape, c.y.Shape)
		}
		worst, scale := testutil.MaxDiff(y, c.y.F32)
		if !(worst <= 1e-4*scale) {
			t.Fatalf("batch %d: max|Δ| = %g, tolerance %g", c.batch, worst, 1e-4*scale)
		}
		t.Logf("batch %d: max|Δ| vs PyTorch = %g (tolerance %g)", c.batch, worst, 1e-4*scale)
	}
}

// TestNoAllocationsAfterFirstCall: after one call at each batch size, calls at any of
// them, in any order, allocate nothing.
func TestNoAllocationsAfterFirstCall(t *testing.T) {
	m := load(t)
	s := samples(t)
	all := func() {
		for _, c := range s {
			if _, _, err := m.Forward(c.x.F32, c.x.Shape); err != nil {
				t.Fatal(err)
			}
		}
	}
	all()
	if n := testing.AllocsPerRun(10, all); n != 0 {
		t.Errorf("%g allocations per round of three calls, want 0", n)
	}
}

// TestBadShapes: shapes the model cannot take are errors naming the input and the rule.
func TestBadShapes(t *testing.T) {
	m := load(t)
	x := samples(t)[0].x
	cases := []struct {
		name  string
		data  []float32
		shape []int
		want  string
	}{
		{"channels", x.F32, []int{2, 4, 32, 24}, "input x has the shape [2 4 32 24], want f32[batch, 3, 32, 32]"},
		{"rank", x.F32, []int{2, 3, 1024}, "input x has the shape [2 3 1024], want f32[batch, 3, 32, 32]"},
		{"empty batch", nil, []int{0, 3, 32, 32}, "batch is 0 (dim 0 of input x): sizes must be at least 1"},
		{"data length", x.F32[:100], x.Shape, "input x has 100 elements, want 6144 (shape [2 3 32 32])"},
	}
	for _, c := range cases {
		if _, _, err := m.Forward(c.data, c.shape); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
	// The model still works after refusing them.
	if _, _, err := m.Forward(x.F32, x.Shape); err != nil {
		t.Fatal(err)
	}
}

// TestArenaMemoryCheck: a batch whose arena would not fit the memory available is an
// error naming the model and the sizes, before anything is allocated; the model keeps
// working at the sizes it has planned, and at the refused ones once the memory is there.
func TestArenaMemoryCheck(t *testing.T) {
	m := load(t)
	s := samples(t)
	small, large := s[1], s[2] // batch 1, then 3: a larger arena
	if _, _, err := m.Forward(small.x.F32, small.x.Shape); err != nil {
		t.Fatal(err)
	}
	restore := runtime.SetAvailableMemory(1024)
	_, _, err := m.Forward(large.x.F32, large.x.Shape)
	want := "model ViT at batch=3 (dim 0 of input x) needs "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "but only 1024 bytes") {
		t.Errorf("batch 3 with 1 KiB available: %v, want an error starting %q", err, want)
	}
	y, _, err := m.Forward(small.x.F32, small.x.Shape)
	restore()
	if err != nil {
		t.Fatalf("batch 1, planned before: %v", err)
	}
	if worst, scale := testutil.MaxDiff(y, small.y.F32); !(worst <= 1e-4*scale) {
		t.Errorf("batch 1 after the refusal: max|Δ| = %g, tolerance %g", worst, 1e-4*scale)
	}
	y, _, err = m.Forward(large.x.F32, large.x.Shape)
	if err != nil {
		t.Fatalf("batch 3 with the memory back: %v", err)
	}
	if worst, scale := testutil.MaxDiff(y, large.y.F32); !(worst <= 1e-4*scale) {
		t.Errorf("batch 3: max|Δ| = %g, tolerance %g", worst, 1e-4*scale)
	}
}

func BenchmarkForward(b *testing.B) {
	m := load(b)
	for _, c := range samples(b) {
		b.Run("batch"+string(rune('0'+c.batch)), func(b *testing.B) {
			m.Forward(c.x.F32, c.x.Shape)
			b.ReportAllocs()
			for b.Loop() {
				m.Forward(c.x.F32, c.x.Shape)
			}
		})
	}
}
