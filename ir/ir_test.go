package ir

import (
	"os"
	"strings"
	"testing"
)

func TestRoundTripAndVerify(t *testing.T) {
	src, err := os.ReadFile("testdata/mlp.ir")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(m); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if got := Print(m); got != string(src) {
		t.Errorf("print(parse(x)) differs from x:\n%s", got)
	}
	if n := m.ParamCount(); n != 4+4+32+8+32 {
		t.Errorf("ParamCount = %d", n)
	}
}

func TestVerifyCatchesBadTypes(t *testing.T) {
	src, _ := os.ReadFile("testdata/mlp.ir")
	cases := map[string]string{
		"wrong result shape": strings.Replace(string(src), "%1: f32[batch, 3, 8]", "%1: f32[batch, 3, 9]", 1),
		"bad reshape":        strings.Replace(string(src), "%5: f32[batch, 12]", "%5: f32[batch, 13]", 1),
		"duplicate key":      strings.Replace(string(src), `key "norm.bias"`, `key "norm.weight"`, 1),
		"missing attribute":  strings.Replace(string(src), ` {approximate="none"}`, "", 1),
	}
	for name, text := range cases {
		m, err := Parse(text)
		if err != nil {
			t.Errorf("%s: parse: %v", name, err)
			continue
		}
		if err := Verify(m); err == nil {
			t.Errorf("%s: Verify accepted it", name)
		}
	}
}

func TestParseErrors(t *testing.T) {
	src, _ := os.ReadFile("testdata/mlp.ir")
	cases := map[string]string{
		"use before def": strings.Replace(string(src), "linear(%0,", "linear(%9,", 1),
		"unknown scope":  strings.Replace(string(src), `in "Residual.GeLU"`, `in "Nowhere"`, 1),
		"bad dtype":      strings.Replace(string(src), "input %x: f32", "input %x: q8", 1),
		"no output":      strings.Replace(string(src), "output %6\n", "", 1),
	}
	for name, text := range cases {
		if _, err := Parse(text); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		} else if !strings.HasPrefix(err.Error(), "ir:") {
			t.Errorf("%s: error %q has no line", name, err)
		}
	}
}

func TestBroadcast(t *testing.T) {
	s, err := Broadcast(Shape{S("batch"), D(1), D(4)}, Shape{D(3), D(1)})
	if err != nil || s.String() != "[batch, 3, 4]" {
		t.Errorf("got %s, %v", s, err)
	}
	if _, err := Broadcast(StaticShape(2, 3), StaticShape(4, 3)); err == nil {
		t.Error("2 vs 4 broadcast")
	}
}

func FuzzParse(f *testing.F) {
	src, _ := os.ReadFile("testdata/mlp.ir")
	f.Add(string(src))
	f.Add("module M\nscope \"\" M key \"\"\ninput %x: f32[2]\noutput %x\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := Parse(text)
		if err != nil {
			return
		}
		_ = Verify(m)
		again, err := Parse(Print(m))
		if err != nil {
			t.Fatalf("printed module does not parse: %v\n%s", err, Print(m))
		}
		if Print(again) != Print(m) {
			t.Fatalf("print is not stable:\n%s\n---\n%s", Print(m), Print(again))
		}
	})
}
