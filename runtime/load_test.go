package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/kernels"
)

// fillFixture is a set of four weights, the third of which a model packs: a float16 one,
// so that Fill's packed path keeps the checkpoint's precision.
func fillFixture(t *testing.T) *WeightSet {
	t.Helper()
	var data []byte
	for _, v := range []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10} { // a, b
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	for _, v := range []float32{0.5, -1, 2, 4, 0.25, 8} { // c, exact in float16
		data = binary.LittleEndian.AppendUint16(data, F32ToF16(v))
	}
	for _, v := range []float32{11, 12, 13} { // d
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	header := `{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},` +
		`"b":{"dtype":"F32","shape":[4],"data_offsets":[24,40]},` +
		`"c":{"dtype":"F16","shape":[2,3],"data_offsets":[40,52]},` +
		`"d":{"dtype":"F32","shape":[1,3],"data_offsets":[52,64]}}`
	f := readBytes(t, rawSafetensors(header, data))
	specs := []WeightSpec{
		{Key: "a", Param: "A", Shape: []int{2, 3}},
		{Key: "b", Param: "B", Shape: []int{4}},
		{Key: "c", Param: "C", Shape: []int{2, 3}},
		{Key: "d", Param: "D", Shape: []int{3}}, // [1, 3] in the file: outer 1s are accepted
	}
	set, err := LocateWeights("M", specs, f)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// Fill puts each slab weight at its offset and nothing elsewhere, packs the weight the pack
// table names into its slot, and calls Patch once per weight in index order, before
// packing, with a slice that cannot spill into its neighbour.
func TestFill(t *testing.T) {
	set := fillFixture(t)
	const sentinel = -7
	slab := make([]float32, 40)
	for i := range slab {
		slab[i] = sentinel
	}
	offsets := []int{16, 0, -1, 32}
	var slot0, slot1 kernels.Weights
	packed := []*kernels.Weights{&slot0, &slot1}
	packs := map[int][3]int{2: {1, 2, 3}}
	var order []int
	patch := func(i int, data []float32) error {
		order = append(order, i)
		if cap(data) != len(data) {
			t.Errorf("weight %d: Patch gets cap %d for len %d: an append would spill into the next weight", i, cap(data), len(data))
		}
		for j := range data {
			data[j] += float32(100 * i)
		}
		return nil
	}
	if err := set.Fill(LoadOptions{Patch: patch}, slab, offsets, packed, packs); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []int{0, 1, 2, 3}) {
		t.Errorf("Patch saw the weights %v, want 0, 1, 2, 3 in order", order)
	}
	want := make([]float32, 40)
	for i := range want {
		want[i] = sentinel
	}
	copy(want[16:], []float32{1, 2, 3, 4, 5, 6})
	copy(want[0:], []float32{107, 108, 109, 110})
	copy(want[32:], []float32{311, 312, 313})
	if !slices.Equal(slab, want) {
		t.Errorf("slab\n got %v\nwant %v", slab, want)
	}
	if slot0.Packed() || slot0.Len() != 0 {
		t.Errorf("slot 0 was written: %d values", slot0.Len())
	}
	if !slot1.Packed() || slot1.Format() != kernels.WeightF16 {
		t.Fatalf("slot 1: packed %v, format %s; want packed float16", slot1.Packed(), slot1.Format())
	}
	got := make([]float32, 6)
	kernels.WidenWeights(got, slot1, 2, 3)
	if wantC := []float32{200.5, 199, 202, 204, 200.25, 208}; !slices.Equal(got, wantC) {
		t.Errorf("packed weight %v, want %v (patched before packing)", got, wantC)
	}
}

// Without a patch the slab holds the file's values; a packed weight without a patch still
// goes to its slot.
func TestFillWithoutPatch(t *testing.T) {
	set := fillFixture(t)
	slab := make([]float32, 20)
	var slot kernels.Weights
	if err := set.Fill(LoadOptions{}, slab, []int{0, 8, -1, 12}, []*kernels.Weights{&slot}, map[int][3]int{2: {0, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 13, 0, 0, 0, 0, 0}
	if !slices.Equal(slab, want) {
		t.Errorf("slab %v, want %v", slab, want)
	}
	got := make([]float32, 6)
	kernels.WidenWeights(got, slot, 2, 3)
	if want := []float32{0.5, -1, 2, 4, 0.25, 8}; !slices.Equal(got, want) {
		t.Errorf("packed weight %v, want %v", got, want)
	}
}

// Patch's error is returned as it is and stops the load: no later weight is read or
// patched.
func TestFillPatchError(t *testing.T) {
	set := fillFixture(t)
	refused := errors.New("patch refused")
	var order []int
	patch := func(i int, data []float32) error {
		order = append(order, i)
		if i == 2 {
			return refused
		}
		return nil
	}
	slab := make([]float32, 20)
	var slot kernels.Weights
	err := set.Fill(LoadOptions{Patch: patch}, slab, []int{0, 8, -1, 12}, []*kernels.Weights{&slot}, map[int][3]int{2: {0, 2, 3}})
	if err != refused {
		t.Fatalf("error %v, want the patch's own", err)
	}
	if !slices.Equal(order, []int{0, 1, 2}) {
		t.Errorf("Patch saw %v, want 0, 1, 2 and nothing after the error", order)
	}
	if slab[12] != 0 || slot.Len() != 0 {
		t.Errorf("weights after the error were stored: slab[12] = %g, slot of %d values", slab[12], slot.Len())
	}
}

// Tables that do not fit the specs, the slab or the slots are errors, not panics.
func TestFillBadTables(t *testing.T) {
	set := fillFixture(t)
	var slot kernels.Weights
	slots := []*kernels.Weights{&slot}
	for _, c := range []struct {
		name    string
		slab    int
		offsets []int
		slots   []*kernels.Weights
		packs   map[int][3]int
		want    string
	}{
		{"offsets", 20, []int{0, 8, -1}, slots, map[int][3]int{2: {0, 2, 3}}, "3 weight offsets for 4 weights"},
		{"slab", 14, []int{0, 8, -1, 12}, slots, map[int][3]int{2: {0, 2, 3}}, `weight 3 ("d") of 3 elements at offset 12 is outside the slab of 14`},
		{"negative offset", 20, []int{0, 8, -1, -1}, slots, map[int][3]int{2: {0, 2, 3}}, `weight 3 ("d") of 3 elements at offset -1`},
		{"slot", 20, []int{0, 8, -1, 12}, slots, map[int][3]int{2: {1, 2, 3}}, `weight 2 ("c") goes to packed slot 1 of 1`},
		{"nil slot", 20, []int{0, 8, -1, 12}, []*kernels.Weights{nil}, map[int][3]int{2: {0, 2, 3}}, `packed slot 0 of 1`},
		{"matrix", 20, []int{0, 8, -1, 12}, slots, map[int][3]int{2: {0, 3, 3}}, `weight 2 ("c") of shape [2, 3] is packed as [3, 3]`},
	} {
		err := set.Fill(LoadOptions{}, make([]float32, c.slab), c.offsets, c.slots, c.packs)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "compiler bug") {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
}

// OpenAndLoad hands load the opened files and closes them after; ReadAndLoad hands it the
// file read through an io.ReaderAt. Errors opening or reading come back without a call.
func TestOpenAndReadAndLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	var data bytes.Buffer
	tensors := map[string]*Tensor{"a": FromF32([]float32{1, 2}, 2)}
	if err := EncodeSafetensors(&data, tensors, nil); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, tensors).Close()
	var seen []*SafetensorsFile
	load := func(files ...*SafetensorsFile) (*int, error) {
		seen = files
		for _, f := range files {
			if _, err := f.Tensor("a"); err != nil {
				t.Errorf("load got a file it cannot read: %v", err)
			}
		}
		n := len(files)
		return &n, nil
	}
	n, err := OpenAndLoad(load, path, dir)
	if err != nil || *n != 2 {
		t.Fatalf("OpenAndLoad: %v, %v files; want the file and the folder's one", err, n)
	}
	for _, f := range seen {
		if _, err := f.Tensor("a"); err == nil {
			t.Error("OpenAndLoad left a file open")
		}
	}
	seen = nil
	if m, err := OpenAndLoad(load, filepath.Join(dir, "missing.safetensors")); err == nil || m != nil || seen != nil {
		t.Errorf("a missing file: model %v, error %v, load called: %v", m, err, seen != nil)
	}
	n, err = ReadAndLoad(load, bytes.NewReader(data.Bytes()), int64(data.Len()), "mem")
	if err != nil || *n != 1 || seen[0].Path() != "mem" {
		t.Fatalf("ReadAndLoad: %v, %v", err, n)
	}
	seen = nil
	bad := []byte("not a safetensors file")
	if m, err := ReadAndLoad(load, bytes.NewReader(bad), int64(len(bad)), "bad.safetensors"); err == nil || m != nil || seen != nil || !strings.Contains(err.Error(), "bad.safetensors") {
		t.Errorf("bad data: model %v, error %v, load called: %v", m, err, seen != nil)
	}
}

var testSizes = SizeNames{Package: "pkg", Model: "M", Names: []string{"batch", "height"}, From: []string{"dim 0 of input x", "dim 2 of input x"}}

func TestSizeNamesMessages(t *testing.T) {
	key := []int{2, 64}
	if got, want := testSizes.Format(key), "batch=2 (dim 0 of input x), height=64 (dim 2 of input x)"; got != want {
		t.Errorf("Format: %q, want %q", got, want)
	}
	err := testSizes.Errorf(key, "%s: h is %d, which differs from w (%d)", "Layer (%3): rule 100%", 3, 4)
	if want := "pkg: Forward: batch=2 (dim 0 of input x), height=64 (dim 2 of input x): Layer (%3): rule 100%: h is 3, which differs from w (4)"; err.Error() != want {
		t.Errorf("Errorf: %q, want %q", err, want)
	}
	if err := testSizes.Check(key); err != nil {
		t.Errorf("Check(%v): %v", key, err)
	}
	for _, c := range []struct {
		key  []int
		want string
	}{
		{[]int{0, 64}, "pkg: Forward: batch is 0 (dim 0 of input x): sizes must be at least 1"},
		{[]int{1, -3}, "pkg: Forward: height is -3 (dim 2 of input x): sizes must be at least 1"},
		{[]int{0, 0}, "pkg: Forward: batch is 0 (dim 0 of input x): sizes must be at least 1"},
	} {
		if err := testSizes.Check(c.key); err == nil || err.Error() != c.want {
			t.Errorf("Check(%v): %v, want %q", c.key, err, c.want)
		}
	}
}

// GrowArena grows the arena (zeroed) for a larger plan only, after the overflow and memory
// checks; a refused size leaves the arena as it was.
func TestGrowArena(t *testing.T) {
	a := NewArena(8)
	a.Slice(0, 8)[3] = 5
	key := []int{2, 64}
	if err := testSizes.GrowArena(a, 8, key); err != nil || a.Size() != 8 || a.Slice(0, 8)[3] != 5 {
		t.Fatalf("a plan that fits: %v, size %d; want the arena untouched", err, a.Size())
	}
	if err := testSizes.GrowArena(a, 4, key); err != nil || a.Size() != 8 {
		t.Fatalf("a smaller plan: %v, size %d; want no shrinking", err, a.Size())
	}
	restore := SetAvailableMemory(4 * 100)
	defer restore()
	if err := testSizes.GrowArena(a, 100, key); err != nil || a.Size() != 100 || a.Slice(0, 100)[3] != 0 {
		t.Fatalf("a plan of exactly the memory available: %v, size %d", err, a.Size())
	}
	err := testSizes.GrowArena(a, 101, key)
	want := "model M at batch=2 (dim 0 of input x), height=64 (dim 2 of input x) needs 404 bytes"
	if err == nil || !strings.HasPrefix(err.Error(), want) || a.Size() != 100 {
		t.Errorf("a plan over the memory: %v, size %d; want an error starting %q and the arena kept", err, a.Size(), want)
	}
	if math.MaxInt > math.MaxInt64/4 {
		huge := int64(math.MaxInt64/4 + 1)
		err = testSizes.GrowArena(a, int(huge), key)
		want = "pkg: Forward: batch=2 (dim 0 of input x), height=64 (dim 2 of input x): the arena of 2305843009213693952 float32 elements overflows a byte count"
		if err == nil || err.Error() != want || a.Size() != 100 {
			t.Errorf("an overflowing plan: %v, want %q", err, want)
		}
	}
}
