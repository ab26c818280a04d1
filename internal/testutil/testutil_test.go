package testutil

import (
	"math"
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
