package main

import (
	"math"
	"strings"
	"testing"
)

// FuzzParseControl feeds --controlnet/--t2i-adapter values to their parser: a value is
// PATH:COND[:SCALE] with both paths given and a finite scale, or an error naming the flag;
// never a panic. Seeds: testdata/fuzz/FuzzParseControl.
func FuzzParseControl(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		path, cond, scale, err := parseControl("controlnet", v)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--controlnet ") {
				t.Fatalf("the error does not name the flag: %v", err)
			}
			return
		}
		if path == "" || cond == "" || math.IsNaN(scale) || math.IsInf(scale, 0) {
			t.Fatalf("%q parsed as %q, %q, %v", v, path, cond, scale)
		}
		if !strings.HasPrefix(v, path+":"+cond) {
			t.Fatalf("%q parsed as %q, %q", v, path, cond)
		}
	})
}
