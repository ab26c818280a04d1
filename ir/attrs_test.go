package ir

import (
	"math"
	"slices"
	"strings"
	"testing"
)

const constantsIR = `module Constants
scope "" Constants key ""
input %x: f32[2, 6]
param @table: f32[11, 3] key "table" in ""
%0: f32[6] = arange() {start=-3, end=9, step=2, dtype="f32"} in ""
%1: f32[1, 6] = reshape(%0) in ""
%2: f32[2, 6] = mul(%x, %1) in ""
%3: i32[4] = arange() {start=10, end=-2, step=-3, dtype="i32"} in ""
%4: f32[4, 3] = embedding(%3, @table) in ""
%5: i64[77] = arange() {start=0, end=77, step=1, dtype="i64"} in ""
%6: f32[2, 6] = exp(%2) in ""
%7: f32[2, 3] = glu(%6) {activation="exp"} in ""
output %7, %4, %5
`

// TestZeroOperandOps: arange, an op without operands, verifies and round-trips like any
// other, and so does exp.
func TestZeroOperandOps(t *testing.T) {
	m := roundTrip(t, constantsIR)
	if p := m.Body[3].Arange(); p != (ArangeParams{Start: 10, End: -2, Step: -3, DType: I32}) {
		t.Errorf("Arange() = %+v", p)
	}
	if lo, hi := m.Body[3].Arange().Bounds(); lo != 1 || hi != 10 {
		t.Errorf("Bounds() = %d, %d; want 1, 10", lo, hi)
	}
	if a, ok := m.Body[6].ActivationOp(); !ok || a != ActExp {
		t.Errorf("exp: ActivationOp() = %v, %v", a, ok)
	}
}

func TestArangeErrors(t *testing.T) {
	for _, c := range []struct{ attrs, want string }{
		{`start=0, end=5, step=0, dtype="f32"`, "step must not be 0"},
		{`start=5, end=0, step=1, dtype="f32"`, "is empty"},
		{`start=0, end=0, step=1, dtype="i64"`, "is empty"},
		{`start=0, end=5, step=1, dtype="f16"`, "dtype \"f16\" is not one of f32, i32, i64"},
		{`start=0, end=4000000000, step=3000000000, dtype="i32"`, "beyond what i32 holds"},
		{`start=-9223372036854775808, end=9223372036854775807, step=1, dtype="i64"`, "more than an int counts"},
		{`start=0, end=5, step=1`, "needs attribute dtype"},
	} {
		src := "module A\nscope \"\" A key \"\"\n%0: f32[1] = arange() {" + c.attrs + "} in \"\"\noutput %0\n"
		m, err := Parse(src)
		if err != nil {
			t.Fatalf("%s: %v", c.attrs, err)
		}
		_, err = Infer(m.Body[0])
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("arange {%s}: got %v, want an error containing %q", c.attrs, err, c.want)
		}
	}
	// torch.arange's lengths: ⌈(end−start)/step⌉ either way.
	for _, c := range []struct{ start, end, step, n int }{{0, 77, 1, 77}, {-3, 8, 2, 6}, {10, -2, -3, 4}, {0, 10, 3, 4}, {0, 1, 100, 1}, {5, 4, -1, 1}} {
		if n, err := (ArangeParams{Start: c.start, End: c.end, Step: c.step}).Len(); err != nil || n != c.n {
			t.Errorf("Len of arange(%d, %d, %d) = %d, %v; want %d", c.start, c.end, c.step, n, err, c.n)
		}
	}
}

// TestActivationTable: every activation's name parses back to it; GLU takes the activation
// ops, fused ops their act values.
func TestActivationTable(t *testing.T) {
	for _, a := range AllActivations {
		if b, ok := ParseActivation(a.String()); !ok || b != a {
			t.Errorf("ParseActivation(%q) = %v, %v", a.String(), b, ok)
		}
	}
	if _, ok := ParseActivation("swish"); ok {
		t.Error("swish parsed")
	}
	if !slices.Contains(Activations, ActExp) || slices.Contains(Activations, ActNone) || slices.Contains(Activations, ActGeLUTanh) {
		t.Errorf("Activations = %v", Activations)
	}
	if slices.Contains(FusedActivations, ActExp) || !slices.Contains(FusedActivations, ActGeLUSigmoid) {
		t.Errorf("FusedActivations = %v", FusedActivations)
	}
	for _, g := range GeLUApproxes {
		a := g.Activation()
		if back, ok := a.GeLU(); !ok || back != g {
			t.Errorf("%s: activation %s gives back %v, %v", g, a, back, ok)
		}
	}
	for _, op := range []string{"relu", "silu", "sigmoid", "tanh", "sin", "cos", "exp"} {
		info, ok := Lookup(op)
		if !ok || !info.InPlace {
			t.Errorf("activation op %s is not in the catalogue as an in-place op", op)
		}
	}
}

// TestSizesChecked: sizes that overflow an int are errors naming the tensor, in the
// verifier and in every rule that multiplies or adds dims.
func TestSizesChecked(t *testing.T) {
	if _, ok := MulChecked(math.MaxInt/2+1, 2); ok {
		t.Error("MulChecked did not see the overflow")
	}
	if n, ok := MulChecked(1<<31, 1<<31); !ok || n != 1<<62 {
		t.Errorf("MulChecked(2^31, 2^31) = %d, %v", n, ok)
	}
	if _, ok := AddChecked(math.MaxInt, 1); ok {
		t.Error("AddChecked did not see the overflow")
	}
	big := Shape{S("batch"), D(4294967296), D(4294967296)}
	if _, err := big.NumElementsChecked(); err == nil {
		t.Error("NumElementsChecked accepted 2^64 elements")
	}
	if n, err := StaticShape(2, 3, 4).NumElementsChecked(); err != nil || n != 24 {
		t.Errorf("NumElementsChecked = %d, %v", n, err)
	}
	if b, err := (Type{DType: I64, Shape: StaticShape(3)}).Bytes(); err != nil || b != 24 {
		t.Errorf("Bytes = %d, %v", b, err)
	}
	// 2^61 f32 elements count, but not their 2^63 bytes.
	if _, err := F32Of(StaticShape(1<<31, 1<<30)).Bytes(); err == nil {
		t.Error("Bytes accepted 2^63 bytes")
	}

	for _, c := range []struct{ name, text, want string }{
		{"huge input", "input %x: f32[batch, 4294967296, 4294967296]\n%0: f32[batch, 4294967296, 4294967296] = relu(%x) in \"\"\n", "input %x: shape [batch, 4294967296, 4294967296] has more elements than an int holds"},
		{"huge param", "param @w: f32[4294967296, 4294967296] key \"w\" in \"\"\ninput %x: f32[2]\n%0: f32[2] = relu(%x) in \"\"\n", `param @w (key "w")`},
		{"negative dim", "input %x: f32[2, -3]\n%0: f32[2, -3] = relu(%x) in \"\"\n", "negative dim"},
		{"pixel_shuffle", "input %x: f32[1, 4, 4611686018427387904, 1]\n%0: f32[1, 1, 1, 1] = pixel_shuffle(%x) {factor=2} in \"\"\n", "pixel_shuffle"},
		{"pad", "input %x: f32[1, 2]\n%0: f32[1, 2] = pad(%x) {pads=[9223372036854775807, 9223372036854775807], mode=\"constant\", value=0.0} in \"\"\n", "padding"},
		{"upsample", "input %x: f32[1, 65536, 1, 1]\n%0: f32[1, 1, 1, 1] = upsample(%x) {mode=\"nearest\", size=[1073741824, 1073741824], align_corners=false} in \"\"\n", "upsample result"},
		{"concat", "input %x: f32[9223372036854775807]\n%0: f32[1] = concat(%x, %x) {dim=0} in \"\"\n", "overflows an int"},
	} {
		src := "module A\nscope \"\" A key \"\"\n" + c.text + "output %0\n"
		m, err := Parse(src)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		err = Verify(m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
