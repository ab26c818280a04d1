package runtime

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"strings"
	"testing"
)

// f16Reference computes an f16 value from its fields in float64, independently of the bit
// manipulation in F16ToF32.
func f16Reference(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 0x1f:
		if mant == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

func isNaN16(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }

func TestF16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := F16ToF32(h)
		want := f16Reference(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(f)) || math.Signbit(float64(f)) != (h&0x8000 != 0) {
				t.Fatalf("F16ToF32(%#04x) = %v (%#08x), want a NaN of the same sign", h, f, math.Float32bits(f))
			}
			// Payload kept, quiet bit set on the way back.
			if back := F32ToF16(f); back != h|0x200 {
				t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x, want %#04x", h, back, h|0x200)
			}
			continue
		}
		if float64(f) != want || math.Signbit(float64(f)) != math.Signbit(want) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, f, want)
		}
		if back := F32ToF16(f); back != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
		}
	}
}

func TestF16ToF32MatchesNumpy(t *testing.T) {
	wantHex, err := os.ReadFile("testdata/golden/f16_to_f32.sha256")
	if err != nil {
		t.Fatal(err)
	}
	table := make([]byte, 4<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint32(table[4*i:], math.Float32bits(F16ToF32(uint16(i))))
	}
	sum := sha256.Sum256(table)
	if got, want := hex.EncodeToString(sum[:]), strings.TrimSpace(string(wantHex)); got != want {
		t.Fatalf("SHA-256 of the widened f16 table = %s, numpy gives %s", got, want)
	}
}

func TestBF16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := F32ToBF16(BF16ToF32(h))
		want := h
		if h&0x7f80 == 0x7f80 && h&0x7f != 0 {
			want |= 0x40 // NaNs come back quiet
		}
		if f != want {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x, want %#04x", h, f, want)
		}
	}
}

// TestNarrowingMatchesNumpy checks f32 → f16 and f32 → bf16 rounding against records that
// scripts/golden/dtypes.py computed with numpy: ties, subnormals, overflow and random bits.
func TestNarrowingMatchesNumpy(t *testing.T) {
	data, err := os.ReadFile("testdata/golden/dtypes.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%8 != 0 || len(data) < 8*1000 {
		t.Fatalf("dtypes.bin has %d bytes; rerun scripts/golden/dtypes.py", len(data))
	}
	le := binary.LittleEndian
	ties := 0
	for i := 0; i < len(data); i += 8 {
		bits, want16, wantBF := le.Uint32(data[i:]), le.Uint16(data[i+4:]), le.Uint16(data[i+6:])
		f := math.Float32frombits(bits)
		got16, gotBF := F32ToF16(f), F32ToBF16(f)
		if math.IsNaN(float64(f)) {
			if !isNaN16(got16) || got16&0x8000 != want16&0x8000 {
				t.Errorf("F32ToF16(%#08x) = %#04x, want a NaN of the same sign", bits, got16)
			}
			if !math.IsNaN(float64(BF16ToF32(gotBF))) || gotBF&0x8000 != wantBF&0x8000 {
				t.Errorf("F32ToBF16(%#08x) = %#04x, want a NaN of the same sign", bits, gotBF)
			}
			continue
		}
		if bits&0xffff == 0x8000 {
			ties++
		}
		if got16 != want16 {
			t.Errorf("F32ToF16(%v = %#08x) = %#04x, numpy gives %#04x", f, bits, got16, want16)
		}
		if gotBF != wantBF {
			t.Errorf("F32ToBF16(%v = %#08x) = %#04x, numpy gives %#04x", f, bits, gotBF, wantBF)
		}
	}
	if ties == 0 {
		t.Error("the golden holds no bf16 ties; it cannot test rounding to even")
	}
}

func TestF8(t *testing.T) {
	for i := range 256 {
		v := uint8(i)
		// e5m2 is the top byte of an f16.
		if got, want := F8E5M2ToF32(v), F16ToF32(uint16(v)<<8); math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("F8E5M2ToF32(%#02x) = %v, want %v", v, got, want)
		}
		// e4m3fn from its fields: bias 7, S.1111.111 is NaN, no infinities.
		sign := 1.0
		if v&0x80 != 0 {
			sign = -1
		}
		exp, mant := int(v>>3)&0xf, float64(v&7)
		var want float64
		switch {
		case exp == 0xf && mant == 7:
			want = math.NaN()
		case exp == 0:
			want = sign * math.Ldexp(mant, -9)
		default:
			want = sign * math.Ldexp(1+mant/8, exp-7)
		}
		got := float64(F8E4M3ToF32(v))
		if math.IsNaN(want) != math.IsNaN(got) || !math.IsNaN(want) && (got != want || math.Signbit(got) != math.Signbit(want)) {
			t.Errorf("F8E4M3ToF32(%#02x) = %v, want %v", v, got, want)
		}
	}
}

func TestSliceConversions(t *testing.T) {
	src := []float32{0, 1, -2.5, 65504, 1e-7, float32(math.Inf(-1)), 3.14159}
	h := make([]uint16, len(src))
	b := make([]uint16, len(src))
	F32ToF16Slice(h, src)
	F32ToBF16Slice(b, src)
	back16 := make([]float32, len(src))
	backBF := make([]float32, len(src))
	F16ToF32Slice(back16, h)
	BF16ToF32Slice(backBF, b)
	for i, f := range src {
		if h[i] != F32ToF16(f) || b[i] != F32ToBF16(f) || back16[i] != F16ToF32(h[i]) || backBF[i] != BF16ToF32(b[i]) {
			t.Errorf("slice conversion of %v differs from the scalar one", f)
		}
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("F16ToF32Slice with mismatched lengths did not panic")
		}
	}()
	F16ToF32Slice(make([]float32, 2), make([]uint16, 3))
}

func BenchmarkF16ToF32Slice(b *testing.B) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	dst := make([]float32, len(src))
	b.SetBytes(int64(2 * len(src)))
	for b.Loop() {
		F16ToF32Slice(dst, src)
	}
}

func BenchmarkF32ToF16Slice(b *testing.B) {
	src := make([]float32, 1<<16)
	for i := range src {
		src[i] = float32(i) * 0.37
	}
	dst := make([]uint16, len(src))
	b.SetBytes(int64(4 * len(src)))
	for b.Loop() {
		F32ToF16Slice(dst, src)
	}
}
