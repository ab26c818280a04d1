package runtime

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLocateWeights(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.safetensors")
	b := filepath.Join(dir, "b.safetensors")
	if err := WriteSafetensors(a, map[string]*Tensor{
		"w":     FromF32([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"bias":  FromF32([]float32{1, 2}, 2),
		"extra": NewTensor(1),
		"ints":  FromI64([]int64{1}, 1),
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteSafetensors(b, map[string]*Tensor{"bias": FromF32([]float32{1, 2}, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	files, err := OpenAll(a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(files)
	specs := []WeightSpec{
		{Key: "w", Param: "L.weight", Shape: []int{3, 2}},
		{Key: "bias", Param: "L.bias", Shape: []int{2}},
		{Key: "ints", Param: "E.weight", Shape: []int{1}},
		{Key: "gone", Param: "G.weight", Shape: []int{4}},
	}
	_, err = LocateWeights("M", specs, files...)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`key "w" has shape [2, 3], the model wants [3, 2] (parameter @L.weight)`,
		`key "bias" is in both`,
		`key "extra" (F32 [1]) is not a parameter of module M`,
		`key "ints" has dtype I64`,
		`missing weight "gone" (parameter @G.weight, expected shape [4])`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	set, err := LocateWeights("M", specs[:1:1], files[:1]...)
	if err == nil || set != nil {
		t.Fatalf("a file with extra keys must not load: %v", err)
	}
	good := []WeightSpec{{Key: "w", Shape: []int{2, 3}}, {Key: "bias", Shape: []int{2}}, {Key: "extra", Shape: []int{1}}, {Key: "ints", Shape: []int{1}}}
	if _, err := LocateWeights("M", good, files[0]); err == nil || !strings.Contains(err.Error(), "ints") {
		t.Fatalf("integer tensor accepted: %v", err)
	}
	set, err = LocateWeights("M", good[:3], files[1], mustOpen(t, filepath.Join(dir, "c.safetensors"), map[string]*Tensor{
		"w": FromF32([]float32{1, 2, 3, 4, 5, 6}, 2, 3), "extra": NewTensor(1),
	}))
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 6)
	if err := set.ReadInto(0, dst); err != nil || dst[5] != 6 {
		t.Fatalf("ReadInto: %v %v", dst, err)
	}
}

func mustOpen(t *testing.T, path string, tensors map[string]*Tensor) *SafetensorsFile {
	t.Helper()
	if err := WriteSafetensors(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	f, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
