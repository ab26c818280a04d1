package tokenizer

import (
	"strings"
	"testing"
)

const typicalPrompt = "A photograph of an astronaut riding a horse on Mars, highly detailed, " +
	"8k, cinematic lighting, trending on ArtStation, by Greg Rutkowski"

// BenchmarkNew measures building the tables from the embedded merges (done once by Default).
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenize is the steady state: the words of the prompt are in the piece cache.
func BenchmarkTokenize(b *testing.B) {
	tok := mustDefault(b)
	b.SetBytes(int64(len(typicalPrompt)))
	for b.Loop() {
		tok.Tokenize(typicalPrompt)
	}
}

// BenchmarkTokenizeColdCache empties the piece cache before each call: the cost of a
// prompt whose words were never seen.
func BenchmarkTokenizeColdCache(b *testing.B) {
	tok, err := New()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(typicalPrompt)))
	for b.Loop() {
		clear(tok.cache)
		tok.Tokenize(typicalPrompt)
	}
}

func BenchmarkEncodeLongPrompt(b *testing.B) {
	tok := mustDefault(b)
	prompt := strings.Repeat(typicalPrompt+" ", 20)
	b.SetBytes(int64(len(prompt)))
	for b.Loop() {
		tok.Encode(prompt)
	}
}

// BenchmarkLongPiece is a 72 kB line of CJK text, one piece for BPE.
func BenchmarkLongPiece(b *testing.B) {
	tok := mustDefault(b)
	prompt := strings.Repeat("一只猫坐在窗台上阳光明媚", 2000)
	b.SetBytes(int64(len(prompt)))
	for b.Loop() {
		tok.Encode(prompt)
	}
}
