package tokenizer

import (
	"html"
	"strconv"
	"testing"
)

// FuzzTokenize checks, on any bytes, that tokenizing never panics and that its output has
// the shape the text encoder expects and agrees with Encode.
func FuzzTokenize(f *testing.F) {
	tok := mustDefault(f)
	for _, g := range loadGoldens(f) {
		f.Add(g.prompt(f))
	}
	f.Fuzz(func(t *testing.T, text string) {
		ids := tok.Encode(text)
		for i, id := range ids {
			if id < 0 || id >= VocabSize {
				t.Fatalf("Encode(%q)[%d] = %d, outside the vocabulary", text, i, id)
			}
		}
		for _, length := range []int{DefaultLength, 2 + len(text)%9} {
			out := tok.Tokenize(text)
			if length != DefaultLength {
				out = make([]int32, length)
				if err := tok.TokenizeTo(out, text); err != nil {
					t.Fatal(err)
				}
			}
			if len(out) != length || out[0] != StartToken {
				t.Fatalf("Tokenize(%q) = %v: want %d ids starting with %d", text, out, length, StartToken)
			}
			kept := min(len(ids), length-2)
			for i := range kept {
				if out[1+i] != ids[i] {
					t.Fatalf("Tokenize(%q)[%d] = %d, Encode gives %d", text, 1+i, out[1+i], ids[i])
				}
			}
			for i := 1 + kept; i < length; i++ {
				if out[i] != EndToken {
					t.Fatalf("Tokenize(%q)[%d] = %d, want the end token after %d ids", text, i, out[i], kept)
				}
			}
		}
		if _, err := tok.Decode(ids); err != nil {
			t.Fatalf("Decode(Encode(%q)): %v", text, err)
		}
	})
}

// TestStdlibUnescapeDiffers records why unescapeHTML exists: html.UnescapeString gives
// other text than Python's html.unescape for these references (Python's results are in
// testdata/clip_unicode.json, checked in TestHTMLReferencesMatchPython).
func TestStdlibUnescapeDiffers(t *testing.T) {
	u := loadUnicode(t)
	for _, code := range []int{0x0B, 0x7F, 0x1F, 0xFDD0, 0x10FFFF, 0xFFFFFFFF + 0x42} {
		ref := "&#" + strconv.Itoa(code) + ";"
		want := u.HTMLNumeric[strconv.Itoa(code)]
		if html.UnescapeString(ref) == want || unescapeHTML(ref) != want {
			t.Errorf("%s: html.UnescapeString %q, unescapeHTML %q, Python %q", ref, html.UnescapeString(ref), unescapeHTML(ref), want)
		}
	}
	for _, name := range []string{"nLt;", "nGt;"} {
		if html.UnescapeString("&"+name) == u.HTMLNamed[name] {
			t.Errorf("&%s: html.UnescapeString now knows it", name)
		}
	}
}
