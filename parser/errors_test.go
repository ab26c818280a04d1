package parser

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A long line is cut to a window around the column; the caret still points at the same
// character, and short lines are shown whole.
func TestCaretLongLine(t *testing.T) {
	long := "\tlet k = " + strings.Repeat("1 + ", 50000) + "zz + é"
	src := []byte("model A {\n" + long + "\n}\n")
	lineStart := len("model A {\n")
	for _, target := range []string{"zz", "é", "let"} {
		col := strings.Index(long, target) + 1
		got := Caret(src, Pos{Line: 2, Column: col, Offset: lineStart + col - 1})
		excerpt, caret, ok := strings.Cut(got, "\n")
		if !ok {
			t.Fatalf("%s: no caret line: %q", target, got)
		}
		if n := utf8.RuneCountInString(excerpt); n > caretWindow+2 {
			t.Errorf("%s: excerpt of %d characters", target, n)
		}
		// The caret's column in characters, tabs counting as one as in the excerpt.
		at := utf8.RuneCountInString(strings.TrimSuffix(caret, "^"))
		runes := []rune(excerpt)
		if at >= len(runes) || !strings.HasPrefix(string(runes[at:]), target) {
			t.Errorf("%s: the caret points at %q:\n%s", target, string(runes[min(at, len(runes)):]), got)
		}
	}
	mid := strings.Index(long, "1 + 1") + 40000
	got := Caret(src, Pos{Line: 2, Column: mid + 1, Offset: lineStart + mid})
	if !strings.HasPrefix(got, "…") || !strings.Contains(got, "…\n") {
		t.Errorf("a column in the middle of a long line wants … on both sides:\n%s", got)
	}
	// Past the end of a long line the caret still lands one past the last character shown.
	got = Caret(src, Pos{Line: 2, Column: len(long) + 1, Offset: -1})
	excerpt, caret, _ := strings.Cut(got, "\n")
	if utf8.RuneCountInString(caret) != utf8.RuneCountInString(excerpt)+1 || strings.HasSuffix(excerpt, "…") {
		t.Errorf("caret past the end:\n%s", got)
	}
	short := "model A {\n    Linear(4, $)\n}\n"
	if got := Caret([]byte(short), Pos{Line: 2, Column: 15, Offset: 24}); got != "    Linear(4, $)\n              ^" {
		t.Errorf("short line: %q", got)
	}
}
