package parser

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that ParseFile never panics, that its errors point inside
// the source, and that whatever parses formats to text that parses to the
// same AST and formats to itself.
func FuzzParse(f *testing.F) {
	f.Add([]byte("model M(c: int = 3) {\n    input x: f32[b, c]\n    Linear(c, c // 2) key \"0\" // proj\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := ParseFile("f.rfn", src)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if strings.Contains(perr.Msg, "internal") {
				t.Fatalf("internal error: %v", err)
			}
			if want := posAtOffset("f.rfn", src, perr.Pos.Offset); perr.Pos != want || perr.Pos.Offset > len(src) {
				t.Fatalf("error position %+v, but its offset is at %+v", perr.Pos, want)
			}
			_ = Caret(src, perr.Pos)
			return
		}
		for _, c := range file.Comments {
			if string(src[c.Pos.Offset:c.EndPos.Offset]) != c.Text {
				t.Fatalf("comment %q at %v does not match the source", c.Text, c.Pos)
			}
		}
		if msg := checkRoundTrip("f.rfn", src); msg != "" {
			t.Fatalf("%s\nsource:\n%s", msg, src)
		}
	})
}
