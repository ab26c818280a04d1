package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rawSafetensors lays out a file from a literal header and data section, so that tests can
// build files the writer would never produce.
func rawSafetensors(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func readBytes(t testing.TB, data []byte) *SafetensorsFile {
	t.Helper()
	f, err := ReadSafetensors(bytes.NewReader(data), int64(len(data)), "mem.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func f32Bits(x []float32) []uint32 {
	out := make([]uint32, len(x))
	for i, v := range x {
		out[i] = math.Float32bits(v)
	}
	return out
}

// TestTorchGolden reads a file laid out by scripts/golden/safetensors.py and compares each
// converted tensor with torch's own conversion stored beside it.
func TestTorchGolden(t *testing.T) {
	const path = "testdata/golden/torch.safetensors"
	mapped, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*SafetensorsFile{mapped, readBytes(t, data)} {
		names := f.Names()
		if len(names) != 20 || !slices.IsSorted(names) {
			t.Fatalf("Names() = %q, want 20 sorted names", names)
		}
		if md := f.Metadata(); md["format"] != "pt" || len(md) != 2 {
			t.Errorf("Metadata() = %v", md)
		}
		if ti, ok := f.Info("w.f16"); !ok || ti.DType != F16 || !slices.Equal(ti.Shape, []int{2, 7}) {
			t.Errorf("Info(w.f16) = %+v, %v", ti, ok)
		}
		checked := 0
		for _, name := range names {
			for _, suffix := range []string{":f32", ":i64"} {
				base, ok := strings.CutSuffix(name, suffix)
				if !ok {
					continue
				}
				got, err := f.Tensor(base)
				if err != nil {
					t.Fatal(err)
				}
				want, err := f.Tensor(name)
				if err != nil {
					t.Fatal(err)
				}
				if got.DType != want.DType || got.ShapeString() != want.ShapeString() {
					t.Errorf("%s: %v %s, torch gives %v %s", base, got.DType, got.ShapeString(), want.DType, want.ShapeString())
				}
				if !slices.Equal(f32Bits(got.F32), f32Bits(want.F32)) || !slices.Equal(got.I64, want.I64) {
					t.Errorf("%s: got %v%v, torch gives %v%v", base, got.F32, got.I64, want.F32, want.I64)
				}
				// Integer tensors read into float32 memory too.
				dst := make([]float32, got.Len())
				if err := f.ReadF32Into(base, dst); err != nil {
					t.Fatal(err)
				}
				for i := range dst {
					var w float32
					if got.DType == F32 {
						w = got.F32[i]
					} else {
						w = float32(got.I64[i])
					}
					if math.Float32bits(dst[i]) != math.Float32bits(w) {
						t.Errorf("ReadF32Into(%s)[%d] = %v, want %v", base, i, dst[i], w)
					}
				}
				checked++
			}
		}
		if checked != 8 {
			t.Errorf("compared %d tensors with torch, want 8", checked)
		}
		if s, err := f.Tensor("scalar"); err != nil || len(s.Shape) != 0 || s.Len() != 1 {
			t.Errorf("scalar: %v %v", s, err)
		}
		if e, err := f.Tensor("empty"); err != nil || e.ShapeString() != "[0, 3]" || len(e.F32) != 0 {
			t.Errorf("empty: %v %v", e, err)
		}
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.safetensors")
	w := NewTensor(2, 3, 5)
	for i := range w.F32 {
		w.F32[i] = float32(i)*0.25 - 3
	}
	w.F32[7] = float32(math.NaN())
	w.F32[8] = float32(math.Inf(-1))
	tensors := map[string]*Tensor{
		"b.weight":    w,
		"a.ids":       FromI64([]int64{-1 << 62, 0, 5}, 3),
		"scalar":      FromF32([]float32{1.5}),
		"empty":       NewTensor(0, 4),
		`odd "key"/é`: FromF32([]float32{1, 2}, 2, 1),
	}
	meta := map[string]string{"format": "pt", "note": "quotes \" and <tags>"}
	if err := WriteSafetensors(path, map[string]*Tensor{"old": NewTensor(1)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteSafetensors(path, tensors, meta); err != nil { // replaces the file
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after writing, want 1 (temporary file left?)", len(entries))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	headerLen := binary.LittleEndian.Uint64(raw)
	if (8+headerLen)%8 != 0 {
		t.Errorf("data section starts at %d, not 8-byte aligned", 8+headerLen)
	}
	if !bytes.HasPrefix(raw[8:], []byte(`{"__metadata__":`)) {
		t.Errorf("header does not start with __metadata__: %.40s", raw[8:])
	}
	f, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !slices.Equal(got, []string{"a.ids", "b.weight", "empty", `odd "key"/é`, "scalar"}) {
		t.Errorf("Names() = %q", got)
	}
	if got := f.Metadata(); len(got) != 2 || got["note"] != meta["note"] {
		t.Errorf("Metadata() = %v", got)
	}
	if f.Path() != path {
		t.Errorf("Path() = %q", f.Path())
	}
	// Data is packed in key order.
	var prevEnd int64
	for _, name := range f.Names() {
		ti, _ := f.Info(name)
		if ti.Begin != prevEnd {
			t.Errorf("%s begins at %d, previous tensor ends at %d", name, ti.Begin, prevEnd)
		}
		prevEnd = ti.End
	}
	read := map[string]*Tensor{}
	for name, want := range tensors {
		got, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != want.DType || got.ShapeString() != want.ShapeString() ||
			!slices.Equal(f32Bits(got.F32), f32Bits(want.F32)) || !slices.Equal(got.I64, want.I64) {
			t.Errorf("%s: read %+v, wrote %+v", name, got, want)
		}
		read[name] = got
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Tensor("scalar"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Tensor after Close: %v, want a closed-file error", err)
	}
	// Tensors read before Close are copies and stay intact.
	if read["b.weight"].F32[3] != w.F32[3] {
		t.Error("tensor data changed after Close")
	}
	// EncodeSafetensors writes the same bytes.
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), raw) {
		t.Error("EncodeSafetensors and WriteSafetensors disagree")
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := []struct {
		tensors map[string]*Tensor
		want    string
	}{
		{map[string]*Tensor{"x": nil}, `tensor "x" is nil`},
		{map[string]*Tensor{"x": {DType: F32, Shape: []int{2, 2}, F32: make([]float32, 3)}}, `tensor "x": shape [2, 2] needs 4 elements, F32 data has 3`},
		{map[string]*Tensor{"x": {DType: I64, Shape: []int{2}, F32: make([]float32, 2)}}, `tensor "x": shape [2] needs 2 elements, I64 data has 0`},
		{map[string]*Tensor{"x": {DType: F16, Shape: []int{1}}}, `tensor "x": tensor dtype F16 is not F32 or I64`},
		{map[string]*Tensor{"x": {DType: F32, Shape: []int{-1}}}, `tensor "x": shape [-1] has a negative dimension`},
		{map[string]*Tensor{"__metadata__": NewTensor(1)}, `"__metadata__" is reserved`},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		err := EncodeSafetensors(&buf, c.tensors, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("EncodeSafetensors(%v) = %v, want %q", c.tensors, err, c.want)
		}
		if buf.Len() != 0 {
			t.Errorf("EncodeSafetensors wrote %d bytes before failing", buf.Len())
		}
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteSafetensors(path, cases[0].tensors, nil); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("WriteSafetensors error %v does not name the file", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed WriteSafetensors left a file: %v", err)
	}
}

func TestValidation(t *testing.T) {
	entry := func(name, dtype, shape, offsets string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	zeros := make([]byte, 73726)
	cases := []struct {
		name string
		file []byte
		want string // the whole message after "bad.safetensors: "
	}{
		{"short", []byte{1, 2, 3}, "file is 3 bytes, shorter than the 8-byte header length"},
		{"empty", nil, "file is 0 bytes, shorter than the 8-byte header length"},
		{"header past end", rawSafetensors("{}", nil)[:9], "header length 2 runs past the end of the file (9 bytes)"},
		{"absurd header", binary.LittleEndian.AppendUint64(nil, 1<<40), "header length 1099511627776 is over the 100000000-byte limit"},
		{"bad json", rawSafetensors(`{"a":`, nil), "header is not valid JSON: it ends early"},
		{"bad json char", rawSafetensors(`{"a" 1}`, nil), "header is not valid JSON: expected colon after object key (at byte 5 of the header)"},
		{"not object", rawSafetensors(`[1,2]`, nil), "header is not a JSON object"},
		{"empty header", rawSafetensors(``, nil), "header is empty, not a JSON object"},
		{"trailing", rawSafetensors(`{} {}`, nil), "header has data after its JSON object (at byte 4 of the header)"},
		{"duplicate", rawSafetensors(`{`+entry("a", "U8", "[1]", "[0,1]")+`,`+entry("a", "U8", "[1]", "[1,2]")+`}`, []byte{1, 2}), `header has key "a" twice`},
		{"metadata not map", rawSafetensors(`{"__metadata__":[1]}`, nil), "__metadata__ is an array, not a map of strings"},
		{"metadata value", rawSafetensors(`{"__metadata__":{"k":3}}`, nil), `__metadata__ value of "k" is a number, not a string`},
		{"entry not object", rawSafetensors(`{"w":null}`, nil), `tensor "w": entry is null, not an object`},
		{"no dtype", rawSafetensors(`{"w":{"shape":[],"data_offsets":[0,4]}}`, nil), `tensor "w": entry has no dtype`},
		{"dtype not string", rawSafetensors(`{"w":{"dtype":4,"shape":[],"data_offsets":[0,4]}}`, nil), `tensor "w": dtype is a number, not a string`},
		{"unknown dtype", rawSafetensors(`{`+entry("w", "F4", "[1]", "[0,1]")+`}`, []byte{0}), `tensor "w": unknown dtype "F4"`},
		{"no shape", rawSafetensors(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, nil), `tensor "w": entry has no shape`},
		{"shape string", rawSafetensors(`{`+entry("w", "F32", `["1"]`, "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape[0] is "1", not an integer in range`},
		{"shape float", rawSafetensors(`{`+entry("w", "F32", `[1.5]`, "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape[0] is 1.5, not an integer in range`},
		{"negative dim", rawSafetensors(`{`+entry("w", "F32", "[2,-3]", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape [2, -3] has a negative dimension`},
		{"overflow", rawSafetensors(`{`+entry("w", "F32", "[4294967296,4294967296]", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape [4294967296, 4294967296] has too many elements`},
		{"bytes overflow", rawSafetensors(`{`+entry("w", "F32", "[4611686018427387904]", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape [4611686018427387904] has too many elements`},
		{"no offsets", rawSafetensors(`{"w":{"dtype":"F32","shape":[1]}}`, nil), `tensor "w": entry has no data_offsets`},
		{"three offsets", rawSafetensors(`{`+entry("w", "F32", "[1]", "[0,4,8]")+`}`, make([]byte, 8)), `tensor "w": data_offsets has 3 values, not 2`},
		{"offsets object", rawSafetensors(`{`+entry("w", "F32", "[1]", `{"a":1}`)+`}`, make([]byte, 8)), `tensor "w": data_offsets is an object, not an array of integers`},
		{"negative offsets", rawSafetensors(`{`+entry("w", "F32", "[1]", "[-4,0]")+`}`, make([]byte, 8)), `tensor "w": data_offsets [-4, 0] are negative`},
		{"begin after end", rawSafetensors(`{`+entry("w", "F32", "[1]", "[8,4]")+`}`, make([]byte, 8)), `tensor "w": data_offsets [8, 4] begin after they end`},
		{"size mismatch", rawSafetensors(`{`+entry("1.conv.0.weight", "F16", "[64,64,3,3]", "[0,73726]")+`}`, zeros),
			`tensor "1.conv.0.weight": shape [64, 64, 3, 3] × F16 needs 73728 bytes, data_offsets give 73726`},
		{"past end", rawSafetensors(`{`+entry("w", "F32", "[2]", "[4,12]")+`}`, make([]byte, 10)), `tensor "w": data_offsets [4, 12] run past the end of the data section (10 bytes)`},
		{"overlap", rawSafetensors(`{`+entry("a", "F32", "[2]", "[0,8]")+`,`+entry("b", "F32", "[2]", "[4,12]")+`}`, make([]byte, 12)),
			`tensors "a" [0, 8) and "b" [4, 12) overlap`},
		{"same range", rawSafetensors(`{`+entry("b", "F32", "[1]", "[0,4]")+`,`+entry("a", "I32", "[1]", "[0,4]")+`}`, make([]byte, 4)),
			`tensors "a" [0, 4) and "b" [0, 4) overlap`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := ReadSafetensors(bytes.NewReader(c.file), int64(len(c.file)), "bad.safetensors")
			if err == nil {
				t.Fatalf("accepted; names %q", f.Names())
			}
			if got, want := err.Error(), "bad.safetensors: "+c.want; got != want {
				t.Errorf("error\n got %s\nwant %s", got, want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) || fe.File != "bad.safetensors" {
				t.Errorf("error %T is not a *FormatError naming the file", err)
			}
			// The same bytes on disk fail the same way through the mapped path.
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenSafetensors(path); err == nil || err.Error() != path+": "+c.want {
				t.Errorf("OpenSafetensors: %v", err)
			}
		})
	}
}

func TestValidationAccepts(t *testing.T) {
	cases := []struct {
		name   string
		header string
		data   []byte
		names  []string
	}{
		{"empty", `{}`, nil, nil},
		{"padded", `{"__metadata__":null}      `, nil, nil},
		{"gap and unknown field", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[3,5],"extra":true}}`, make([]byte, 8), []string{"a"}},
		{"empty range inside another", `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[0,5],"data_offsets":[2,2]}}`, make([]byte, 4), []string{"a", "b"}},
		{"zero dim after huge ones", `{"z":{"dtype":"F64","shape":[9223372036854775807,9223372036854775807,0],"data_offsets":[0,0]}}`, nil, []string{"z"}},
	}
	for _, c := range cases {
		f, err := ReadSafetensors(bytes.NewReader(rawSafetensors(c.header, c.data)), int64(8+len(c.header)+len(c.data)), c.name)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(f.Names(), c.names) {
			t.Errorf("%s: Names() = %q, want %q", c.name, f.Names(), c.names)
		}
		for _, n := range f.Names() {
			if _, err := f.Tensor(n); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
	}
}

func TestTensorErrors(t *testing.T) {
	file := rawSafetensors(`{"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"u":{"dtype":"U64","shape":[2],"data_offsets":[8,24]}}`,
		[]byte{0, 0x3c, 0, 0xc0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f := readBytes(t, file)
	check := func(err error, want string) {
		t.Helper()
		if err == nil || err.Error() != want {
			t.Errorf("error %v, want %s", err, want)
		}
	}
	_, err := f.Tensor("missing")
	check(err, `mem.safetensors: no tensor "missing" (the file has 2)`)
	check(f.ReadF32Into("w", make([]float32, 3)), `mem.safetensors: tensor "w": has 4 elements (shape [2, 2]), destination holds 3`)
	check(f.ReadF32Shape("w", make([]float32, 4), 4), `mem.safetensors: tensor "w": shape [2, 2] in the file, [4] expected`)
	_, err = f.Tensor("u")
	check(err, `mem.safetensors: tensor "u": U64 value 18446744073709551615 at index 1 does not fit in I64`)
	dst := make([]float32, 4)
	if err := f.ReadF32Shape("w", dst, 2, 2); err != nil || !slices.Equal(dst, []float32{1, -2, 0, 0}) {
		t.Errorf("ReadF32Shape = %v, %v", dst, err)
	}
	if err := f.ReadF32Into("u", dst[:2]); err != nil || dst[0] != 1 || dst[1] != float32(math.MaxUint64) {
		t.Errorf("ReadF32Into(U64) = %v, %v", dst[:2], err)
	}
	// Info hands out a copy of the shape.
	ti, _ := f.Info("w")
	ti.Shape[0] = 99
	if ti2, _ := f.Info("w"); ti2.Shape[0] != 2 {
		t.Error("Info exposes the file's own shape slice")
	}
}

// failingReader serves the header and fails past it, like a file that went away.
type failingReader struct {
	data  []byte
	limit int64
}

func (r failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.limit {
		return 0, errors.New("device gone")
	}
	return copy(p, r.data[off:]), nil
}

func TestReadError(t *testing.T) {
	file := rawSafetensors(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8))
	f, err := ReadSafetensors(failingReader{file, int64(len(file)) - 8}, int64(len(file)), "gone.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Tensor("w"); err == nil || err.Error() != `gone.safetensors: tensor "w": reading data: device gone` {
		t.Errorf("Tensor = %v", err)
	}
}

// TestLargeTensor covers the chunked ReaderAt path and the parallel mapped path, at an odd
// alignment of the data section.
func TestLargeTensor(t *testing.T) {
	const n = 700_001 // over readChunk bytes as F16 and over parallelDecodeMin elements
	halves := make([]byte, 2*n)
	want := make([]float32, n)
	for i := range n {
		h := uint16(i*7919) & 0x7bff // finite values only
		binary.LittleEndian.PutUint16(halves[2*i:], h)
		want[i] = F16ToF32(h)
	}
	header := `{"big":{"dtype":"F16","shape":[1,700001],"data_offsets":[0,1400002]}}` // length 71: odd alignment
	file := rawSafetensors(header, halves)
	path := filepath.Join(t.TempDir(), "big.safetensors")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	mapped, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	for _, f := range []*SafetensorsFile{mapped, readBytes(t, file)} {
		got, err := f.Tensor("big")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.F32, want) {
			t.Errorf("large tensor read through %T differs", f.r)
		}
	}
}

func TestTensorBasics(t *testing.T) {
	x := NewTensor(2, 3, 4)
	if x.Len() != 24 || len(x.F32) != 24 || x.ShapeString() != "[2, 3, 4]" || x.DType != F32 {
		t.Errorf("NewTensor(2, 3, 4) = %+v", x)
	}
	if s := FromF32([]float32{3}); s.ShapeString() != "[]" || s.Len() != 1 {
		t.Errorf("scalar: %+v", s)
	}
	shape := []int{2}
	y := FromI64([]int64{1, 2}, shape...)
	shape[0] = 5
	if y.Shape[0] != 2 || y.DType != I64 {
		t.Error("FromI64 keeps the caller's shape slice")
	}
	for _, f := range []func(){
		func() { FromF32(make([]float32, 5), 2, 3) },
		func() { FromI64(nil, 1) },
		func() { NewTensor(-1, 2) },
		func() { NewTensor(1<<40, 1<<40) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("bad constructor call did not panic")
				}
			}()
			f()
		}()
	}
}

func TestDType(t *testing.T) {
	for _, name := range []string{"F32", "F16", "BF16", "I32", "I64", "U8", "F64", "BOOL", "I8", "I16", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2"} {
		d, err := ParseDType(name)
		if err != nil || d.String() != name {
			t.Errorf("ParseDType(%q) = %v, %v", name, d, err)
		}
	}
	sizes := map[DType]int{F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, F64: 8, BOOL: 1, I8: 1, I16: 2}
	for d, s := range sizes {
		if d.Size() != s {
			t.Errorf("%v.Size() = %d, want %d", d, d.Size(), s)
		}
	}
	if F32 != 1 || I16 != 10 {
		t.Error("the first ten DType values moved")
	}
	if _, err := ParseDType("f32"); err == nil {
		t.Error(`ParseDType("f32") accepted a lower-case name`)
	}
	if DType(0).String() != "DType(0)" || DType(200).Size() != 0 {
		t.Error("invalid DType not reported as such")
	}
}

var _ io.ReaderAt = failingReader{}

func BenchmarkTensorF16Mapped(b *testing.B) {
	const n = 1 << 22
	halves := make([]byte, 2*n)
	for i := range n {
		binary.LittleEndian.PutUint16(halves[2*i:], uint16(i)&0x7bff)
	}
	path := filepath.Join(b.TempDir(), "b.safetensors")
	if err := os.WriteFile(path, rawSafetensors(`{"w":{"dtype":"F16","shape":[4194304],"data_offsets":[0,8388608]}}`, halves), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := OpenSafetensors(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	dst := make([]float32, n)
	b.SetBytes(2 * n)
	for b.Loop() {
		if err := f.ReadF32Into("w", dst); err != nil {
			b.Fatal(err)
		}
	}
}

// ReadTensors reads a whole file or the tensors named, and its errors name the file.
func TestReadTensors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "two.safetensors")
	a, b := NewTensor(2, 2), NewTensor(3)
	a.F32[3], b.F32[0] = 4, -1
	if err := WriteSafetensors(path, map[string]*Tensor{"a": a, "b": b}, nil); err != nil {
		t.Fatal(err)
	}
	all, err := ReadTensors(path)
	if err != nil || len(all) != 2 || !slices.Equal(all["a"].F32, a.F32) || !slices.Equal(all["b"].Shape, []int{3}) {
		t.Fatalf("ReadTensors(all) = %v, %v", all, err)
	}
	one, err := ReadTensors(path, "b")
	if err != nil || len(one) != 1 || one["b"].F32[0] != -1 {
		t.Fatalf("ReadTensors(b) = %v, %v", one, err)
	}
	if _, err := ReadTensors(path, "c"); err == nil || !strings.Contains(err.Error(), path+`: no tensor "c"`) {
		t.Errorf("missing tensor: %v", err)
	}
	if _, err := ReadTensors(filepath.Join(t.TempDir(), "none.safetensors")); err == nil || !strings.Contains(err.Error(), "none.safetensors") {
		t.Errorf("missing file: %v", err)
	}
}
