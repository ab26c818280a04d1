package testutil

import (
	"math"
	"os"
	"path/filepath"
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
