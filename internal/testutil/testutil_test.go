package testutil

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/runtime"
)

func TestMaxDiff(t *testing.T) {
	for _, c := range []struct {
		got, want    []float32
		worst, scale float64
	}{
		{[]float32{1, 2}, []float32{1, 2.5}, 0.5, 2.5},
		{[]float32{0.1}, []float32{0.2}, float64(float32(0.2)) - float64(float32(0.1)), 1},
		{[]float32{float32(math.NaN())}, []float32{0}, math.Inf(1), 1},
		{[]float32{1}, []float32{1, 2}, math.Inf(1), 1},
	} {
		if w, s := MaxDiff(c.got, c.want); w != c.worst || s != c.scale {
			t.Errorf("MaxDiff(%v, %v) = %g, %g; want %g, %g", c.got, c.want, w, s, c.worst, c.scale)
		}
	}
}

func TestRelDiff(t *testing.T) {
	for _, c := range []struct {
		got, want []float32
		rel       float64
	}{
		{[]float32{1, 2}, []float32{1, 4}, 0.5},
		{[]float32{0.25}, []float32{0.5}, 0.5},
		{[]float32{3, -2}, []float32{3, -2}, 0},
		{[]float32{float32(math.NaN()), 1}, []float32{0, 1}, math.Inf(1)},
		{[]float32{1}, []float32{1, 2}, math.Inf(1)},
	} {
		if r := RelDiff(c.got, c.want); r != c.rel {
			t.Errorf("RelDiff(%v, %v) = %g, want %g", c.got, c.want, r, c.rel)
		}
	}
}

func TestTensors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	x := runtime.NewTensor(2)
	x.F32[1] = 3
	if err := runtime.WriteSafetensors(path, map[string]*runtime.Tensor{"x": x}, nil); err != nil {
		t.Fatal(err)
	}
	if got := Tensor(t, path, "x"); got.F32[1] != 3 {
		t.Errorf("Tensor = %v", got.F32)
	}
	if got := Tensors(t, path); len(got) != 1 {
		t.Errorf("Tensors = %v", got)
	}
}

func TestEditedFolder(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "config.json"), []byte(`{"a": "rgb", "b": "rgb"}`), 0o644)
	os.WriteFile(filepath.Join(src, "w.safetensors"), []byte{1, 2, 3}, 0o644)
	dst := EditedFolder(t, src, filepath.Join(t.TempDir(), "copy"), `"rgb"`, `"bgr"`)
	cfg, _ := os.ReadFile(filepath.Join(dst, "config.json"))
	w, _ := os.ReadFile(filepath.Join(dst, "w.safetensors"))
	if string(cfg) != `{"a": "bgr", "b": "rgb"}` || string(w) != "\x01\x02\x03" {
		t.Errorf("copy has config %s and weights %v", cfg, w)
	}
}

func TestOpCases(t *testing.T) {
	const relu = "module M\nscope \"\" M key \"\"\ninput %x: f32[2]\n%0: f32[2] = relu(%x) in \"\"\noutput %0\n"
	write := func(tensors map[string]*runtime.Tensor) string {
		path := filepath.Join(t.TempDir(), "ops.safetensors")
		if err := runtime.WriteSafetensors(path, tensors, map[string]string{"relu": relu}); err != nil {
			t.Fatal(err)
		}
		return path
	}
	x, y := runtime.NewTensor(2), runtime.NewTensor(2)
	cases := OpCases(t, write(map[string]*runtime.Tensor{"relu.in.x": x, "relu.out": y}))
	if len(cases) != 1 || cases[0].Name != "relu" || cases[0].Inputs["x"] == nil || len(cases[0].Outputs) != 1 || cases[0].Outputs[0] == nil {
		t.Fatalf("OpCases = %+v", cases)
	}
	for _, c := range []struct {
		tensors map[string]*runtime.Tensor
		want    string
	}{
		{map[string]*runtime.Tensor{"relu.in.x": x}, "case relu: no expected tensor for output 0"},
		{map[string]*runtime.Tensor{"relu.in.x": x, "relu.out": y, "gelu.out": y}, `tensor "gelu.out" belongs to no case`},
		{map[string]*runtime.Tensor{"relu.in.x": x, "relu.out": y, "relu.out.1": y}, `tensor "relu.out.1": unknown role or output index`},
		{map[string]*runtime.Tensor{"relu.in.x": x, "relu.out": y, "relu.grad": y}, `tensor "relu.grad": unknown role or output index`},
	} {
		path := write(c.tensors)
		if _, err := opCasesOf(path); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%v: got %v, want an error naming %s with %q", c.tensors, err, path, c.want)
		}
	}
}

func TestWithinTolerance(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	f := func(v ...float32) *runtime.Tensor { return runtime.FromF32(v, len(v)) }
	for _, c := range []struct {
		got, want *runtime.Tensor
		err       string // "" when got is within 1e-3 of want
	}{
		{f(1, 2), f(1, 2.001), ""},
		{f(100, 2), f(100.05, 2), ""}, // relative to max|want|
		{f(1, 2), f(1, 2.01), "at flat index 1 (got 2, want 2.01), tolerance 0.0020"},
		{f(1, 2, 2.005), f(1, 2.01, 2), "at flat index 1 (got 2, want 2.01)"}, // the worst
		{f(nan, 1), f(nan, 1), ""},
		{f(inf, 1), f(inf, 1), ""},
		{f(inf, 1000), f(1, 1000), "flat index 0: got +Inf, want 1"},
		{f(nan, 1), f(0, 1), "flat index 0: got NaN, want 0"},
		{f(0, 1), f(nan, 1), "flat index 0: got 0, want NaN"},
		{f(1, 2), f(1, 2, 3), "got a F32 tensor of shape [2], want F32 [3]"},
		{runtime.FromI64([]int64{1, 2}, 2), runtime.FromI64([]int64{1, 3}, 2), "element 1 is 2, want 3"},
		{runtime.FromI64([]int64{1, 2}, 2), f(1, 2), "got a I64 tensor of shape [2], want F32 [2]"},
	} {
		err := WithinTolerance(c.got, c.want, 1e-3)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("WithinTolerance(%v, %v) = %v, want %q", c.got, c.want, err, c.err)
		}
	}
}
