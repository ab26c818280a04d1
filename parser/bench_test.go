package parser

import (
	"os"
	"strings"
	"testing"
)

func BenchmarkParseViT(b *testing.B) {
	src, err := os.ReadFile("testdata/vit.rfn")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := ParseFile("vit.rfn", src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormatViT(b *testing.B) {
	src, err := os.ReadFile("testdata/vit.rfn")
	if err != nil {
		b.Fatal(err)
	}
	f, err := ParseFile("vit.rfn", src)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		Format(f)
	}
}

// BenchmarkParseRereads measures the worst case of the old `//` rule (ParseOldComments,
// which rfc fmt uses to convert such files): every line's comment passes the lexer's
// filter and needs a second parse.
func BenchmarkParseRereads(b *testing.B) {
	src := []byte("model M() {\n" + strings.Repeat("    let h = d * 4 // d + e, or\n", 50) + "}\n")
	for b.Loop() {
		if _, err := ParseOldComments("r.rfn", src); err != nil {
			b.Fatal(err)
		}
	}
}
