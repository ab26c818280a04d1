package runtime

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/seedcorpus"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the committed FuzzReadSafetensors seed corpus")

// fuzzSeeds are the committed seeds of FuzzReadSafetensors: valid files of each kind and
// files broken in each way the validator knows.
func fuzzSeeds() map[string][]byte {
	var valid bytes.Buffer
	w := FromF32([]float32{1, -2.5, float32(math.Inf(1)), 0.1, 7, 8}, 2, 3)
	ids := FromI64([]int64{-3, 0, 1 << 40}, 3)
	if err := EncodeSafetensors(&valid, map[string]*Tensor{"w": w, "ids": ids, "empty": NewTensor(0, 2)}, map[string]string{"format": "pt"}); err != nil {
		panic(err)
	}
	half := rawSafetensors(`{"__metadata__":{"k":"v"},"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}}  `,
		[]byte{0, 0x3c, 1, 0, 0, 0x7c, 0xff, 0x7f, 0x80, 0x3f, 0x49, 0x40, 0x80, 0xff})
	small := rawSafetensors(`{"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]},"u":{"dtype":"U8","shape":[2],"data_offsets":[3,5]},"f8":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[5,7]},"i":{"dtype":"I16","shape":[1],"data_offsets":[8,10]}}`,
		[]byte{1, 0, 2, 255, 7, 0x7f, 0x38, 0, 0xfe, 0xff})
	ints := rawSafetensors(`{"a":{"dtype":"I32","shape":[1,1],"data_offsets":[0,4]},"b":{"dtype":"U64","shape":[],"data_offsets":[4,12]},"c":{"dtype":"F64","shape":[1],"data_offsets":[12,20]},"d":{"dtype":"U32","shape":[1],"data_offsets":[20,24]}}`,
		make([]byte, 24))
	return map[string][]byte{
		"valid_f32_i64_metadata": valid.Bytes(),
		"valid_f16_bf16":         half,
		"valid_bool_u8_f8_gap":   small,
		"valid_ints_scalar":      ints,
		"empty_header":           rawSafetensors(`{}`, nil),
		"empty_tensor":           rawSafetensors(`{"e":{"dtype":"F32","shape":[4,0],"data_offsets":[0,0]}}`, nil),
		"truncated_data":         valid.Bytes()[:valid.Len()-5],
		"truncated_header":       valid.Bytes()[:20],
		"short":                  {7, 0, 0},
		"overlap":                rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)),
		"bad_json":               rawSafetensors(`{"a":{"dtype":"F32",,}}`, nil),
		"huge_header_len":        binary.LittleEndian.AppendUint64(nil, math.MaxUint64),
		"size_mismatch":          rawSafetensors(`{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}}`, make([]byte, 4)),
		"negative_dim":           rawSafetensors(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)),
		"unknown_dtype":          rawSafetensors(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)),
		"metadata_not_strings":   rawSafetensors(`{"__metadata__":{"a":1}}`, nil),
		"duplicate_key":          rawSafetensors(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}),
	}
}

// TestFuzzSeedCorpus keeps the committed corpus in step with fuzzSeeds; run with
// -update-seeds to rewrite it.
func TestFuzzSeedCorpus(t *testing.T) {
	files := map[string][]byte{}
	for name, data := range fuzzSeeds() {
		_, err := ReadSafetensors(bytes.NewReader(data), int64(len(data)), name)
		if wantValid := strings.HasPrefix(name, "valid_") || strings.HasPrefix(name, "empty_"); (err == nil) != wantValid {
			t.Errorf("seed %s: ReadSafetensors error %v, want valid=%v", name, err, wantValid)
		}
		files[name] = seedcorpus.File(data)
	}
	seedcorpus.Sync(t, filepath.Join("testdata", "fuzz", "FuzzReadSafetensors"), files, *updateSeeds, "go test ./runtime -run TestFuzzSeedCorpus -update-seeds")
}

func FuzzReadSafetensors(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.safetensors"
		sf, err := ReadSafetensors(bytes.NewReader(data), int64(len(data)), name)
		if err != nil {
			if sf != nil {
				t.Fatal("ReadSafetensors returned a file with its error")
			}
			if !strings.HasPrefix(err.Error(), name+": ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line naming the file: %q", err)
			}
			return
		}
		names := sf.Names()
		if !slices.IsSorted(names) {
			t.Fatalf("Names() not sorted: %q", names)
		}
		// Whatever validation accepts must read, convert and write back without error.
		read := map[string]*Tensor{}
		for _, n := range names {
			info, ok := sf.Info(n)
			if !ok || info.Name != n || info.End-info.Begin != int64(info.Len()*info.DType.Size()) {
				t.Fatalf("Info(%q) = %+v, %v", n, info, ok)
			}
			tt, err := sf.Tensor(n)
			if err != nil {
				if info.DType == U64 && strings.Contains(err.Error(), "does not fit in I64") {
					continue
				}
				t.Fatalf("Tensor(%q): %v", n, err)
			}
			if tt.Len() != info.Len() || tt.check() != nil {
				t.Fatalf("Tensor(%q) = %+v does not match %+v", n, tt, info)
			}
			if err := sf.ReadF32Into(n, make([]float32, info.Len())); err != nil {
				t.Fatalf("ReadF32Into(%q): %v", n, err)
			}
			read[n] = tt
		}
		var buf bytes.Buffer
		if err := EncodeSafetensors(&buf, read, sf.Metadata()); err != nil {
			t.Fatalf("EncodeSafetensors of what was read: %v", err)
		}
		again, err := ReadSafetensors(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "again")
		if err != nil {
			t.Fatalf("re-reading what was written: %v", err)
		}
		for n, want := range read {
			got, err := again.Tensor(n)
			if err != nil {
				t.Fatal(err)
			}
			if got.ShapeString() != want.ShapeString() || !slices.Equal(f32Bits(got.F32), f32Bits(want.F32)) || !slices.Equal(got.I64, want.I64) {
				t.Fatalf("%q changed in a write/read round trip", n)
			}
		}
	})
}
