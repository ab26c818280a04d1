package parser

import (
	"bytes"
	"testing"
)

// FuzzFormat is `rfc fmt` on arbitrary text: a file that ParseUpgrading reads (with `#`
// comments, or converted from `//` comments) formats to text that parses to the same AST
// with the same comments and formats to itself; a file already canonical is left as it
// is. FuzzParse covers ParseFile alone; this target covers the old-comment reading too.
// Its seed corpus (testdata/fuzz/FuzzFormat) holds models the differential fuzzer
// generated and their old-style variants.
func FuzzFormat(f *testing.F) {
	f.Add([]byte("// old comment\nmodel M(c: int = 4) {\n    input x: f32[b, c // 2]  // a dim\n    Linear(c // 2, c)\n}\n"))
	f.Add([]byte("# new comment\nmodel M {\n    input x: f32[1, 4]; ReLU()\n    Residual key \"r\" {\n        Linear(4, 4) key ldm=\"a\", diffusers=\"b\"\n    }\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file, upgraded, err := ParseUpgrading("f.rfn", src)
		if err != nil {
			return
		}
		out := Format(file)
		if msg := checkRoundTrip("f.rfn", out); msg != "" {
			t.Fatalf("upgraded %t: %s\nsource:\n%s", upgraded, msg, src)
		}
		if upgraded {
			return
		}
		// Read with the current rules, the formatted text has the source's AST.
		again, err := ParseFile("f.rfn", out)
		if err != nil {
			t.Fatalf("formatted text does not parse: %v\n%s", err, out)
		}
		if d1, d2 := dump(file), dump(again); d1 != d2 {
			t.Fatalf("formatting changed the AST:\n%s\n%s", d1, d2)
		}
		if bytes.Equal(src, out) {
			if o2 := Format(again); !bytes.Equal(o2, out) {
				t.Fatalf("canonical text formats differently:\n%s", o2)
			}
		}
	})
}
