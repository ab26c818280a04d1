package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The vocabulary and merges of CLIP (MIT licence, LICENSE.clip).
//
//go:embed bpe_simple_vocab_16e6.txt.gz
var mergesGz []byte

const (
	// StartToken is the id of <|startoftext|>, put before the prompt's ids.
	StartToken = 49406
	// EndToken is the id of <|endoftext|>, put after the prompt's ids and used as padding.
	EndToken = 49407
	// VocabSize is the number of ids: every id is in [0, VocabSize).
	VocabSize = 49408
	// DefaultLength is the sequence length of CLIP's text encoder in SD1.5 and SDXL.
	DefaultLength = 77

	// CLIP keeps the first 49152-256-2 lines after the header of the merges file.
	numMerges = VocabSize - 2*256 - 2
)

// Tokenizer holds CLIP's BPE tables. It is safe for concurrent use.
type Tokenizer struct {
	// merges maps a pair of adjacent symbol ids to its rank and the id of the merged symbol.
	merges map[uint64]merge
	// byteID is the id of the symbol for one byte; byteID[b]+256 is the same at word end.
	byteID [256]int32
	// symbolBytes is, per id, the bytes its symbol stands for ("</w>" kept literally, as
	// CLIP's decoder maps it back only after joining).
	symbolBytes []string

	// cache holds the ids of pieces already seen, as CLIP's bpe cache does; it is emptied
	// when full so that a stream of distinct words cannot grow it without bound.
	cacheMu sync.RWMutex
	cache   map[string][]int32
}

const cacheLimit = 1 << 15

type merge struct {
	rank   int32
	merged int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

var (
	defaultOnce      sync.Once
	defaultTokenizer *Tokenizer
	defaultErr       error
)

// Default returns the tokenizer of the embedded CLIP vocabulary, built on first use and
// shared afterwards.
func Default() (*Tokenizer, error) {
	defaultOnce.Do(func() { defaultTokenizer, defaultErr = New() })
	return defaultTokenizer, defaultErr
}

// New builds a tokenizer from the embedded CLIP vocabulary. Most callers want Default,
// which builds it once.
func New() (*Tokenizer, error) {
	zr, err := gzip.NewReader(bytes.NewReader(mergesGz))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: embedded bpe_simple_vocab_16e6.txt.gz: %w", err)
	}
	return newFromMerges(zr, "bpe_simple_vocab_16e6.txt.gz")
}

// byteSymbols returns CLIP's bytes_to_unicode table in its own order: the bytes that are
// printable in Latin-1 stand for themselves, the 68 others (controls, space, NBSP, soft
// hyphen) are moved to U+0100 upwards, so that no BPE symbol is white space. The order is
// that of the first 256 ids.
func byteSymbols() (order [256]byte, symbol [256]rune) {
	n := 0
	printable := func(b int) bool { return b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE }
	for b := 0; b < 256; b++ {
		if printable(b) {
			order[n], symbol[b] = byte(b), rune(b)
			n++
		}
	}
	moved := 0
	for b := 0; b < 256; b++ {
		if !printable(b) {
			order[n], symbol[b] = byte(b), rune(256+moved)
			n++
			moved++
		}
	}
	return order, symbol
}

func newFromMerges(r io.Reader, name string) (*Tokenizer, error) {
	order, symbol := byteSymbols()
	// All byte symbols are below U+0144: a table beats a map here, the hot loop of New.
	var runeByte [2 * 256]int16
	for i := range runeByte {
		runeByte[i] = -1
	}
	for b, s := range symbol {
		runeByte[s] = int16(b)
	}
	t := &Tokenizer{
		merges:      make(map[uint64]merge, numMerges),
		symbolBytes: make([]string, 0, VocabSize),
		cache:       make(map[string][]int32),
	}
	// ids maps a symbol's text (in bytes_to_unicode form) to its id; as in CLIP's
	// dict(zip(vocab, range)), a repeated text keeps its last id.
	ids := make(map[string]int32, VocabSize)
	add := func(text string) error {
		raw := make([]byte, 0, len(text))
		for _, c := range text {
			if c >= rune(len(runeByte)) || runeByte[c] < 0 {
				return fmt.Errorf("symbol %q has %q, which stands for no byte", text, c)
			}
			raw = append(raw, byte(runeByte[c]))
		}
		ids[text] = int32(len(t.symbolBytes))
		t.symbolBytes = append(t.symbolBytes, string(raw))
		return nil
	}
	for i, b := range order {
		t.byteID[b] = int32(i)
		_ = add(string(symbol[b]))
	}
	for _, b := range order {
		_ = add(string(symbol[b]) + "</w>")
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	type pair struct{ first, second, merged string }
	pairs := make([]pair, 0, numMerges)
	for line := 0; len(pairs) < numMerges; line++ {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("tokenizer: %s: line %d: %w", name, line+1, err)
			}
			return nil, fmt.Errorf("tokenizer: %s: %d merges, want %d", name, len(pairs), numMerges)
		}
		if line == 0 {
			continue // version header
		}
		first, second, ok := strings.Cut(sc.Text(), " ")
		if !ok || first == "" || second == "" || strings.ContainsFunc(first+second, unicode.IsSpace) {
			return nil, fmt.Errorf("tokenizer: %s: line %d: %q is not two symbols", name, line+1, sc.Text())
		}
		_, okA := ids[first]
		_, okB := ids[second]
		if !okA || !okB {
			return nil, fmt.Errorf("tokenizer: %s: line %d: merge %q uses a symbol no earlier line makes", name, line+1, sc.Text())
		}
		merged := first + second
		if err := add(merged); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: line %d: %w", name, line+1, err)
		}
		pairs = append(pairs, pair{first, second, merged})
	}
	for _, special := range []string{"<|startoftext|>", "<|endoftext|>"} {
		_ = add(special)
	}
	// Symbols are resolved to ids only now, since a text made twice keeps its last id.
	for rank, p := range pairs {
		a, b := ids[p.first], ids[p.second]
		// bpe merges the best pair everywhere before it looks at the pairs that creates;
		// that equals CLIP's loop only if a merge ranks after the merges that made its
		// halves (id 512+rank), which holds for CLIP's file.
		for _, half := range [2]int32{a, b} {
			if made := int(half) - 512; made >= rank {
				return nil, fmt.Errorf("tokenizer: %s: line %d: merge %q ranks before line %d, which makes its half %q",
					name, rank+2, p.first+" "+p.second, made+2, t.symbolBytes[half])
			}
		}
		// As in CLIP's dict(zip(merges, range)), a repeated merge keeps its last rank.
		t.merges[pairKey(a, b)] = merge{rank: int32(rank), merged: ids[p.merged]}
	}
	return t, nil
}

// Encode returns the BPE ids of text, without start or end token and without truncation.
// A literal "<|startoftext|>" or "<|endoftext|>" in the text gives that special id, as in
// CLIP.
func (t *Tokenizer) Encode(text string) []int32 {
	var ids []int32
	var scratch bpeScratch
	pretokenize(clean(text), func(piece string) bool {
		ids = t.appendPiece(ids, piece, &scratch)
		return true
	})
	return ids
}

// Tokenize returns the DefaultLength (77) ids the text encoder reads: StartToken, the
// prompt's ids cut to leave room for the end token, EndToken, then EndToken as padding.
func (t *Tokenizer) Tokenize(text string) []int32 {
	out := make([]int32, DefaultLength)
	_ = t.TokenizeTo(out, text) // DefaultLength >= 2
	return out
}

// TokenizeTo writes the tokenized text into dst, whose length is the sequence length:
// StartToken, at most len(dst)-2 of the prompt's ids, EndToken, and EndToken up to the end.
// It fails only when dst has room for fewer than the two special tokens.
func (t *Tokenizer) TokenizeTo(dst []int32, text string) error {
	if len(dst) < 2 {
		return fmt.Errorf("tokenizer: sequence length %d, need at least 2 for the start and end tokens", len(dst))
	}
	limit := len(dst) - 2
	ids := dst[1:1:len(dst)]
	var scratch bpeScratch
	pretokenize(clean(text), func(piece string) bool {
		ids = t.appendPiece(ids, piece, &scratch)
		return len(ids) < limit // later pieces cannot change the ids kept
	})
	n := min(len(ids), limit)
	if len(ids) > limit {
		// appendPiece may have grown past dst's capacity into a new array.
		copy(dst[1:1+n], ids[:n])
	}
	dst[0] = StartToken
	for i := 1 + n; i < len(dst); i++ {
		dst[i] = EndToken
	}
	return nil
}

// Decode turns ids back into text as CLIP's decode does: the bytes of the symbols joined,
// invalid UTF-8 replaced, and each "</w>" (end of word) turned into a space. The text is
// the cleaned, lower-case prompt, not the original.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	var sb strings.Builder
	for i, id := range ids {
		if id < 0 || id >= VocabSize {
			return "", fmt.Errorf("tokenizer: id %d at index %d is outside [0, %d)", id, i, VocabSize)
		}
		sb.WriteString(t.symbolBytes[id])
	}
	return strings.ReplaceAll(toValidUTF8(sb.String()), "</w>", " "), nil
}

// appendPiece appends the ids of one pre-tokenized piece.
func (t *Tokenizer) appendPiece(ids []int32, piece string, s *bpeScratch) []int32 {
	switch piece {
	case "<|startoftext|>": // CLIP's BPE cache starts with the two special tokens.
		return append(ids, StartToken)
	case "<|endoftext|>":
		return append(ids, EndToken)
	}
	t.cacheMu.RLock()
	cached, ok := t.cache[piece]
	t.cacheMu.RUnlock()
	if ok {
		return append(ids, cached...)
	}
	word := s.word[:0]
	for i := 0; i < len(piece); i++ {
		word = append(word, t.byteID[piece[i]])
	}
	word[len(word)-1] += 256 // the same byte with "</w>"
	s.word = word
	merged := t.bpe(s)
	t.cacheMu.Lock()
	if len(t.cache) >= cacheLimit {
		clear(t.cache)
	}
	t.cache[strings.Clone(piece)] = append([]int32(nil), merged...)
	t.cacheMu.Unlock()
	return append(ids, merged...)
}

// bpeScratch keeps the buffers of one Encode or Tokenize call.
type bpeScratch struct {
	word       []int32
	next, prev []int32
	heap       []candidate
}

// candidate is a pair of adjacent symbols that has a merge: left is the index of the
// first symbol in the word, right the index of the second when the candidate was made.
type candidate struct {
	rank        int32
	left, right int32
	a, b        int32 // symbol ids, to notice a candidate made stale by another merge
	merged      int32
}

func (c candidate) before(d candidate) bool {
	return c.rank < d.rank || c.rank == d.rank && c.left < d.left
}

// bpe merges s.word in place and returns the ids left. CLIP repeatedly takes the pair of
// lowest rank and merges all its occurrences from left to right; since a merge always
// ranks after the merges that made its halves (checked in New), taking candidates from a
// heap ordered by (rank, position) does the same merges, in O(n log n) instead of O(n²)
// for a long run of letters (a line of CJK text is one piece).
func (t *Tokenizer) bpe(s *bpeScratch) []int32 {
	word := s.word
	n := len(word)
	if n < 2 {
		return word
	}
	s.next, s.prev, s.heap = grow(s.next, n), grow(s.prev, n), s.heap[:0]
	next, prev := s.next, s.prev
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	push := func(left, right int32) {
		m, ok := t.merges[pairKey(word[left], word[right])]
		if !ok {
			return
		}
		s.heap = heapPush(s.heap, candidate{rank: m.rank, left: left, right: right, a: word[left], b: word[right], merged: m.merged})
	}
	for i := 0; i+1 < n; i++ {
		push(int32(i), int32(i+1))
	}
	for len(s.heap) > 0 {
		var c candidate
		c, s.heap = heapPop(s.heap)
		if word[c.left] != c.a || next[c.left] != c.right || word[c.right] != c.b {
			continue // one of its symbols was merged since
		}
		word[c.left] = c.merged
		word[c.right] = -1
		after := next[c.right]
		next[c.left] = after
		if int(after) < n {
			prev[after] = c.left
			push(c.left, after)
		}
		if p := prev[c.left]; p >= 0 {
			push(p, c.left)
		}
	}
	out := word[:0]
	for i := int32(0); int(i) < n; i = next[i] {
		out = append(out, word[i])
	}
	return out
}

func grow(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}

func heapPush(h []candidate, c candidate) []candidate {
	h = append(h, c)
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h[i].before(h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	return h
}

func heapPop(h []candidate) (candidate, []candidate) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, best := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].before(h[best]) {
			best = l
		}
		if r < len(h) && h[r].before(h[best]) {
			best = r
		}
		if best == i {
			break
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
	return top, h
}

// toValidUTF8 replaces invalid UTF-8 as Python's decode(errors="replace") does: one U+FFFD
// for each maximal subpart of an ill-formed sequence (a lead byte and the continuation
// bytes that can still follow it), where strings.ToValidUTF8 would replace a whole run and
// utf8.DecodeRune each byte.
func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || size > 1 {
			sb.WriteString(s[i : i+size])
			i += size
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += maximalSubpart(s[i:])
	}
	return sb.String()
}

// maximalSubpart is the length of the ill-formed sequence at the start of s (Unicode 15,
// §3.9, table 3-7: the second byte's range depends on the lead byte).
func maximalSubpart(s string) int {
	lo, hi := byte(0x80), byte(0xBF)
	var need int
	switch c := s[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(s); n++ {
		if s[n] < lo || s[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}
