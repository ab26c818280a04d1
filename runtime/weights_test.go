package runtime

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/kernels"
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
		`weight "bias" (parameter @L.bias) is in both`,
		`key "ints" has dtype I64`,
		`missing weight "gone" (the unnamed keys of ` + a + `), parameter @G.weight, expected shape [4]`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// Keys of a file that are no weight of the model (other components of a checkpoint)
	// are ignored.
	set, err := LocateWeights("M", []WeightSpec{{Key: "bias", Param: "L.bias", Shape: []int{2}}}, files[:1]...)
	if err != nil || set == nil {
		t.Fatalf("a file with extra keys must load: %v", err)
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
	if w, err := set.ReadTensor(0); err != nil || !slices.Equal(w.Shape, []int{2, 3}) || !slices.Equal(w.F32, dst) {
		t.Fatalf("ReadTensor: %v %v", w, err)
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

// A model with named layouts loads from a file in any of them, under a common prefix too;
// shapes may differ by leading or trailing 1s; a folder yields the file that holds the model.
func TestLocateWeightsLayouts(t *testing.T) {
	dir := t.TempDir()
	specs := []WeightSpec{
		{Key: "norm.weight", Param: "Chain.GroupNorm.weight", Shape: []int{2}, Layouts: map[string]string{"ldm": "model.in_layers.0.weight", "diffusers": "norm1.weight"}},
		{Key: "proj.weight", Param: "Chain.Linear.weight", Shape: []int{2, 3}, Layouts: map[string]string{"ldm": "model.proj.weight", "diffusers": "proj.weight"}},
	}
	w := FromF32([]float32{1, 2, 3, 4, 5, 6}, 2, 3, 1, 1) // a 1×1 conv's shape for a linear
	for _, tc := range []struct {
		name    string
		tensors map[string]*Tensor
		layout  string
	}{
		{"ldm", map[string]*Tensor{"model.in_layers.0.weight": FromF32([]float32{7, 8}, 2), "model.proj.weight": w, "alphas_cumprod": NewTensor(1000), "cond_stage_model.x": NewTensor(3)}, "layout ldm"},
		{"diffusers", map[string]*Tensor{"norm1.weight": FromF32([]float32{7, 8}, 1, 2), "proj.weight": w}, "layout diffusers"}, // [1, 2] for [2]
		{"refiners", map[string]*Tensor{"Encoder.Chain.GroupNorm.weight": FromF32([]float32{7, 8}, 2), "Encoder.Chain.Linear.weight": w, "Decoder.Chain.Linear.weight": w}, `Refiners' paths under the prefix "Encoder."`},
	} {
		f := mustOpen(t, filepath.Join(dir, tc.name+".safetensors"), tc.tensors)
		set, err := LocateWeights("M", specs, f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := set.Layout[f]; got != tc.layout {
			t.Errorf("%s: read as %s, want %s", tc.name, got, tc.layout)
		}
		dst := make([]float32, 6)
		if err := set.ReadInto(1, dst); err != nil || dst[5] != 6 {
			t.Errorf("%s: ReadInto %v %v", tc.name, dst, err)
		}
		f.Close()
	}
	// A file in a layout with one weight missing names the closest layout and the key.
	f := mustOpen(t, filepath.Join(dir, "partial.safetensors"), map[string]*Tensor{"model.proj.weight": w, "other": NewTensor(1)})
	_, err := LocateWeights("M", specs, f)
	if err == nil || !strings.Contains(err.Error(), `missing weight "model.in_layers.0.weight" (layout ldm of `) || !strings.Contains(err.Error(), "holds 1 of the 2 weights of module M (layout ldm); 1 missing") {
		t.Errorf("got %v", err)
	}
	f.Close()
	// With an adapter's file beside the model's, a weight missing from the adapter's file
	// is looked for there, not in the model's.
	withAdapter := append(slices.Clone(specs),
		WeightSpec{Key: "ip_adapter.1.to_k_ip.weight", Param: "A.Linear.weight", Shape: []int{2}},
		WeightSpec{Key: "ip_adapter.3.to_k_ip.weight", Param: "B.Linear.weight", Shape: []int{2}})
	model := mustOpen(t, filepath.Join(dir, "model.safetensors"), map[string]*Tensor{"norm1.weight": FromF32([]float32{7, 8}, 2), "proj.weight": w})
	adapter := mustOpen(t, filepath.Join(dir, "adapter.safetensors"), map[string]*Tensor{"ip_adapter.1.to_k_ip.weight": NewTensor(2)})
	_, err = LocateWeights("M", withAdapter, model, adapter)
	if err == nil || !strings.Contains(err.Error(), `missing weight "ip_adapter.3.to_k_ip.weight" (the unnamed keys of `+adapter.Path()+`)`) || !strings.Contains(err.Error(), "adapter.safetensors hold 3 of the 4 weights of module M; 1 missing") {
		t.Errorf("got %v", err)
	}
	// A folder: the file holding the model is used, the others skipped.
	folder := filepath.Join(dir, "pipe")
	for sub, tensors := range map[string]map[string]*Tensor{
		"unet":         {"norm1.weight": FromF32([]float32{7, 8}, 2), "proj.weight": w},
		"text_encoder": {"text_model.x": NewTensor(1)},
	} {
		if err := WriteSafetensors(filepath.Join(folder, sub, "model.safetensors"), tensors, nil); err != nil {
			t.Fatal(err)
		}
	}
	files, err := OpenWeights(folder)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(files)
	if _, err := LocateWeights("M", specs, files...); err != nil {
		t.Errorf("folder: %v", err)
	}
	if _, err := OpenWeights(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .safetensors file") {
		t.Errorf("empty folder: %v", err)
	}
}

// A half-precision weight stays half in memory when packed, unless a patch makes a value
// that half precision cannot hold; then it is kept as float32. The values are the file's
// (or the patch's), bit for bit.
func TestReadPacked(t *testing.T) {
	dir := t.TempDir()
	vals := []float32{0.5, -1.25, 3, 0.0625, 1024, -0.75}
	half := make([]uint16, len(vals))
	F32ToF16Slice(half, vals)
	data := make([]byte, 2*len(half))
	for i, h := range half {
		data[2*i], data[2*i+1] = byte(h), byte(h>>8)
	}
	path := filepath.Join(dir, "h.safetensors")
	if err := os.WriteFile(path, rawSafetensors(`{"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}}`, data), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set, err := LocateWeights("M", []WeightSpec{{Key: "w", Param: "L.weight", Shape: []int{2, 3}}}, f)
	if err != nil {
		t.Fatal(err)
	}
	var scratch []float32
	check := func(patch func(int, []float32) error, format kernels.WeightFormat, want []float32) {
		t.Helper()
		w, err := set.ReadPacked(0, &scratch, patch, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		if w.Format() != format || !w.Packed() {
			t.Errorf("format %s packed %v, want %s packed", w.Format(), w.Packed(), format)
		}
		got := make([]float32, 6)
		kernels.WidenWeights(got, w, 2, 3)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Errorf("value %d: %g, want %g", i, got[i], want[i])
			}
		}
	}
	check(nil, kernels.WeightF16, vals)
	patched := append([]float32(nil), vals...)
	patched[1] += 1e-4
	check(func(i int, d []float32) error { d[1] += 1e-4; return nil }, kernels.WeightF32, patched)
}
