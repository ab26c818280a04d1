package ir

import (
	"slices"
	"strings"
	"testing"
)

const fusedIR = `module Fused
scope "" Fused key ""
input %x: f32[2, 3, 5, 6]
input %r: f32[2, 4, 5, 6]
input %t: f32[2, 7, 3]
param @w: f32[4, 3, 3, 3] key "w" in ""
param @b: f32[4] key "b" in ""
param @lw: f32[8, 3] key "lw" in ""
%0: f32[2, 4, 5, 6] = conv2d_fused(%x, @w, @b, %r) {stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, scale=1.0, shift=0.0, residual=true, act="relu"} in ""
%1: f32[2, 4, 5, 6] = conv2d_fused(%x, @w) {stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, scale=0.5, shift=1.0, residual=false, act="none"} in ""
%2: f32[2, 7, 8] = linear_fused(%t, @lw) {scale=1.0, shift=0.0, residual=false, act="gelu_tanh"} in ""
%3: f32[2, 7, 4] = linear_glu(%t, @lw) {activation="gelu"} in ""
%4: f32[2, 4, 5, 6] = group_norm_act(%0) {groups=2, eps=1e-05, act="silu"} in ""
%5: f32[2, 7, 8] = layer_norm_act(%2) {axes=1, eps=1e-05, act="relu"} in ""
output %1, %3, %4, %5
`

// roundTrip parses text, verifies it and checks that it prints back as it was.
func roundTrip(t *testing.T, text string) *Module {
	t.Helper()
	m, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(m); err != nil {
		t.Fatal(err)
	}
	if got := Print(m); got != text {
		t.Errorf("print(parse(x)) differs from x:\n%s", got)
	}
	return m
}

func TestFusedOps(t *testing.T) {
	m := roundTrip(t, fusedIR)
	fused := FusedOpNames()
	for _, v := range m.Body {
		if info, _ := Lookup(v.Op); !info.Fused || !slices.Contains(fused, v.Op) || slices.Contains(OpNames(), v.Op) {
			t.Errorf("%s is not listed as fused only", v.Op)
		}
	}
	if len(fused) != 5 {
		t.Errorf("FusedOpNames() = %v", fused)
	}
}

func TestFusedOpErrors(t *testing.T) {
	cases := map[string][2]string{
		"unknown act":                  {`act="relu"} in ""` + "\n%1", `act="swish"} in ""` + "\n%1"},
		"residual of a different type": {`conv2d_fused(%x, @w, @b, %r)`, `conv2d_fused(%x, @w, @b, %x)`},
		"residual missing":             {`conv2d_fused(%x, @w) {stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, scale=0.5, shift=1.0, residual=false`, `conv2d_fused(%x, @w) {stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, scale=0.5, shift=1.0, residual=true`},
		"four without residual":        {`residual=true, act="relu"`, `residual=false, act="relu"`},
		"odd glu width":                {`param @lw: f32[8, 3]`, `param @lw: f32[7, 3]`},
		"missing epilogue attribute":   {`{scale=1.0, shift=0.0, residual=false, act="gelu_tanh"}`, `{scale=1.0, residual=false, act="gelu_tanh"}`},
	}
	want := map[string]string{
		"unknown act":                  `act "swish" is not one of`,
		"residual of a different type": "residual f32[2, 3, 5, 6] is not of the result type f32[2, 4, 5, 6]",
		"residual missing":             "needs the residual as its last operand",
		"four without residual":        "takes 4 operands only with residual=true",
		"odd glu width":                "glu needs an even last dim",
		"missing epilogue attribute":   "linear_fused needs attribute shift",
	}
	for name, edit := range cases {
		text := strings.Replace(fusedIR, edit[0], edit[1], 1)
		if text == fusedIR {
			t.Fatalf("%s: the edit changes nothing", name)
		}
		m, err := Parse(text)
		if err == nil {
			err = Verify(m)
		}
		if err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, want[name])
		}
	}
}
