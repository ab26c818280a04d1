package tokenizer

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// golden is one prompt of testdata/clip_goldens.json, written by
// scripts/golden/clip_tokenizer.py (CLIP's tokenizer transcribed in Python).
type golden struct {
	Name      string  `json:"name"`
	Hex       string  `json:"hex"` // the prompt's bytes, which may be invalid UTF-8
	Encode    []int32 `json:"encode"`
	Tokenize  []int32 `json:"tokenize"`
	Tokenize8 []int32 `json:"tokenize_8"`
	Decode    string  `json:"decode"`
}

func loadGoldens(t testing.TB) []golden {
	t.Helper()
	data, err := os.ReadFile("testdata/clip_goldens.json")
	if err != nil {
		t.Fatal(err)
	}
	var goldens []golden
	if err := json.Unmarshal(data, &goldens); err != nil {
		t.Fatalf("testdata/clip_goldens.json: %v", err)
	}
	return goldens
}

func (g golden) prompt(t testing.TB) string {
	raw, err := hex.DecodeString(g.Hex)
	if err != nil {
		t.Fatalf("%s: hex: %v", g.Name, err)
	}
	return string(raw)
}

func mustDefault(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestGoldens(t *testing.T) {
	tok := mustDefault(t)
	goldens := loadGoldens(t)
	if len(goldens) < 40 {
		t.Fatalf("%d golden prompts, want at least 40", len(goldens))
	}
	for _, g := range goldens {
		t.Run(g.Name, func(t *testing.T) {
			prompt := g.prompt(t)
			if got := tok.Encode(prompt); !slices.Equal(got, g.Encode) {
				t.Errorf("Encode(%q)\n got %v\nwant %v", prompt, got, g.Encode)
			}
			if got := tok.Tokenize(prompt); !slices.Equal(got, g.Tokenize) {
				t.Errorf("Tokenize(%q)\n got %v\nwant %v", prompt, got, g.Tokenize)
			}
			short := make([]int32, 8)
			if err := tok.TokenizeTo(short, prompt); err != nil || !slices.Equal(short, g.Tokenize8) {
				t.Errorf("TokenizeTo(8 ids, %q) = %v, %v; want %v", prompt, short, err, g.Tokenize8)
			}
			if got, err := tok.Decode(g.Encode); err != nil || got != g.Decode {
				t.Errorf("Decode(%v) = %q, %v; want %q", g.Encode, got, err, g.Decode)
			}
		})
	}
}

// TestGoldensCoverTruncation keeps the golden set honest: it must hold prompts cut at 77
// and prompts shorter than that.
func TestGoldensCoverTruncation(t *testing.T) {
	long, short := 0, 0
	for _, g := range loadGoldens(t) {
		if len(g.Encode) > DefaultLength-2 {
			long++
		} else {
			short++
		}
	}
	if long < 3 || short < 30 {
		t.Errorf("%d prompts past 75 ids and %d within, want at least 3 and 30", long, short)
	}
}

func TestTokenizeToRejectsShortSequence(t *testing.T) {
	tok := mustDefault(t)
	for _, n := range []int{0, 1} {
		err := tok.TokenizeTo(make([]int32, n), "a cat")
		if err == nil || !strings.Contains(err.Error(), "sequence length") {
			t.Errorf("TokenizeTo with %d ids: error %v, want one about the sequence length", n, err)
		}
	}
	two := make([]int32, 2)
	if err := tok.TokenizeTo(two, "a cat"); err != nil || !slices.Equal(two, []int32{StartToken, EndToken}) {
		t.Errorf("TokenizeTo with 2 ids = %v, %v", two, err)
	}
}

func TestDecodeRejectsUnknownIDs(t *testing.T) {
	tok := mustDefault(t)
	for _, id := range []int32{-1, VocabSize, 1 << 30} {
		if _, err := tok.Decode([]int32{320, id}); err == nil || !strings.Contains(err.Error(), "index 1") {
			t.Errorf("Decode with id %d: error %v, want one naming index 1", id, err)
		}
	}
}

func TestNewIsDeterministic(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	b := mustDefault(t)
	if len(a.symbolBytes) != VocabSize || !slices.Equal(a.symbolBytes, b.symbolBytes) || len(a.merges) != numMerges {
		t.Fatalf("vocabulary sizes %d and %d, %d merges", len(a.symbolBytes), len(b.symbolBytes), len(a.merges))
	}
}

func TestMergesFileErrors(t *testing.T) {
	header := "#version: 0.2\n"
	for _, c := range []struct{ name, text, want string }{
		{"empty", "", "0 merges"},
		{"short", header + "i n\nt h\n", "2 merges, want 48894"},
		{"three fields", header + "i n x\n", `line 2: "i n x" is not two symbols`},
		{"unknown symbol", header + "in g\n", `line 2: merge "in g" uses a symbol`},
		{"not a byte symbol", header + "i \u4e00\n", `line 2: merge "i 一" uses a symbol`},
		{"merge before its half", header + "a b\nab c\na b\n" + fillerMerges(numMerges-3), `line 3: merge "ab c" ranks before line 4`},
	} {
		_, err := newFromMerges(strings.NewReader(c.text), "m.txt")
		if err == nil || !strings.Contains(err.Error(), "m.txt") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
}

// fillerMerges returns n distinct merges of two byte symbols, none of them "a b".
func fillerMerges(n int) string {
	_, symbol := byteSymbols()
	var sb strings.Builder
	for _, x := range symbol {
		for _, y := range symbol {
			if n == 0 {
				return sb.String()
			}
			if x != 'a' || y != 'b' {
				sb.WriteString(string(x) + " " + string(y) + "\n")
				n--
			}
		}
	}
	return sb.String()
}

// naiveBPE is CLIP's bpe loop as written there: find the pair of lowest rank, merge all its
// occurrences left to right, repeat. The heap version must give the same ids.
func naiveBPE(t *Tokenizer, word []int32) []int32 {
	word = slices.Clone(word)
	for len(word) > 1 {
		best, bestRank := -1, int32(1<<30)
		for i := 0; i+1 < len(word); i++ {
			if m, ok := t.merges[pairKey(word[i], word[i+1])]; ok && m.rank < bestRank {
				best, bestRank = i, m.rank
			}
		}
		if best < 0 {
			break
		}
		a, b := word[best], word[best+1]
		merged := t.merges[pairKey(a, b)].merged
		var out []int32
		for i := 0; i < len(word); i++ {
			if i+1 < len(word) && word[i] == a && word[i+1] == b {
				out = append(out, merged)
				i++
			} else {
				out = append(out, word[i])
			}
		}
		word = out
	}
	return word
}

func TestHeapBPEMatchesCLIPLoop(t *testing.T) {
	tok := mustDefault(t)
	words := []string{"aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "hmmmmmmmmmmmmmmm", "mississippi",
		"antidisestablishmentarianism", "ééééééééééééééé", "一只猫坐在窗台上一只猫坐在窗台上", "!!!!!!!!!!!!!!!!!!!!", "photograph"}
	// Every piece of the golden prompts too.
	for _, g := range loadGoldens(t) {
		pretokenize(clean(g.prompt(t)), func(p string) bool { words = append(words, p); return true })
	}
	var s bpeScratch
	for _, w := range words {
		word := make([]int32, len(w))
		for i := 0; i < len(w); i++ {
			word[i] = tok.byteID[w[i]]
		}
		word[len(word)-1] += 256
		want := naiveBPE(tok, word)
		s.word = slices.Clone(word)
		if got := tok.bpe(&s); !slices.Equal(got, want) {
			t.Errorf("bpe(%q) = %v, CLIP's loop gives %v", w, got, want)
		}
	}
}

func TestLongPieceTokenizeMatchesEncode(t *testing.T) {
	// A line of CJK text without spaces is one piece; CLIP's loop is quadratic in it. This
	// only checks the result's consistency: the speed is in BenchmarkLongPiece.
	tok := mustDefault(t)
	prompt := strings.Repeat("一只猫坐在窗台上阳光明媚", 2000)
	ids := tok.Encode(prompt)
	tokens := tok.Tokenize(prompt)
	if !slices.Equal(tokens[1:DefaultLength-1], ids[:DefaultLength-2]) || tokens[DefaultLength-1] != EndToken {
		t.Errorf("Tokenize and Encode disagree on a long piece")
	}
}

// TestConcurrentUse tokenizes the goldens from several goroutines at once on one
// Tokenizer, whose piece cache they share (run with -race to check the locking).
func TestConcurrentUse(t *testing.T) {
	tok, err := New()
	if err != nil {
		t.Fatal(err)
	}
	goldens := loadGoldens(t)
	errs := make(chan string, 4*len(goldens))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range goldens {
				g := goldens[(i+w*7)%len(goldens)]
				if got := tok.Tokenize(g.prompt(t)); !slices.Equal(got, g.Tokenize) {
					errs <- g.Name
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for name := range errs {
		t.Errorf("%s: wrong ids under concurrent use", name)
	}
}
