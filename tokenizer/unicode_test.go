package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// unicodeGoldens is testdata/clip_unicode.json: how Python's str, the regex module and
// html.unescape treat each code point, written by scripts/golden/clip_tokenizer.py.
type unicodeGoldens struct {
	LiteralFold           map[string][]int  `json:"literal_fold"`
	UTF8ReplaceSHA256     map[string]string `json:"utf8_replace_sha256"`
	Python                string            `json:"python"`
	UnicodedataVersion    string            `json:"unicodedata_version"`
	RegexVersion          string            `json:"regex_version"`
	PretokenizeClass      []codeRun         `json:"pretokenize_class"`
	WhitespaceRegex       []codeRun         `json:"whitespace_regex"`
	IsSpace               []codeRun         `json:"isspace"`
	UnassignedUnicodedata []codeRun         `json:"unassigned_unicodedata"`
	UnassignedRegex       []codeRun         `json:"unassigned_regex"`
	SigmaContext          []codeRun         `json:"sigma_context"`
	Lower                 map[string]string `json:"lower"`
	NFC                   map[string]string `json:"nfc"`
	HTMLNamed             map[string]string `json:"html_named"`
	HTMLNumeric           map[string]string `json:"html_numeric"`
}

// codeRun is [first, last, value]: code points first..last have value (a number or a
// one-letter class).
type codeRun [3]any

func loadUnicode(t *testing.T) *unicodeGoldens {
	t.Helper()
	data, err := os.ReadFile("testdata/clip_unicode.json")
	if err != nil {
		t.Fatal(err)
	}
	var u unicodeGoldens
	if err := json.Unmarshal(data, &u); err != nil {
		t.Fatalf("testdata/clip_unicode.json: %v", err)
	}
	return &u
}

// expand turns runs into one value per code point, as a string ("1", "0", "L", ...).
func expand(t *testing.T, name string, runs []codeRun) []string {
	t.Helper()
	out := make([]string, unicode.MaxRune+1)
	next := 0
	for _, r := range runs {
		first, ok1 := r[0].(float64)
		last, ok2 := r[1].(float64)
		if !ok1 || !ok2 || int(first) != next || last < first {
			t.Fatalf("%s: run %v does not follow code point %d", name, r, next-1)
		}
		for cp := int(first); cp <= int(last); cp++ {
			out[cp] = fmt.Sprint(r[2])
		}
		next = int(last) + 1
	}
	if next != len(out) {
		t.Fatalf("%s: runs end at %d", name, next-1)
	}
	return out
}

func goAssigned(r rune) bool {
	// unicode.C also holds the unassigned code points: list its assigned categories.
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z,
		unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

// comparable returns the code points that every Unicode database involved has assigned:
// Python's unicodedata (str.lower, isspace, NFC), the regex module's own tables (\p{L},
// \p{N}, \s) and Go's. Code points added in a later version than one of them may differ,
// as they would between two Python installations; their count is logged.
func comparable(t *testing.T, u *unicodeGoldens) []rune {
	t.Helper()
	py := expand(t, "unassigned_unicodedata", u.UnassignedUnicodedata)
	re := expand(t, "unassigned_regex", u.UnassignedRegex)
	var out []rune
	skipped := map[string]int{}
	for cp := range rune(unicode.MaxRune + 1) {
		if cp >= 0xD800 && cp <= 0xDFFF {
			continue // no Go string holds a surrogate
		}
		inPy, inRe, inGo := py[cp] == "0", re[cp] == "0", goAssigned(cp)
		if inPy && inRe && inGo {
			out = append(out, cp)
			continue
		}
		if inPy || inRe || inGo {
			skipped[fmt.Sprintf("python %v, regex %v, go %v", inPy, inRe, inGo)]++
		}
	}
	t.Logf("Python %s (unicodedata %s), regex %s, Go Unicode %s: %d code points compared; assigned in only some: %v",
		u.Python, u.UnicodedataVersion, u.RegexVersion, unicode.Version, len(out), skipped)
	return out
}

func TestCharacterTablesMatchPython(t *testing.T) {
	u := loadUnicode(t)
	runes := comparable(t, u)
	classes := expand(t, "pretokenize_class", u.PretokenizeClass)
	regexSpace := expand(t, "whitespace_regex", u.WhitespaceRegex)
	isSpace := expand(t, "isspace", u.IsSpace)
	sigma := expand(t, "sigma_context", u.SigmaContext)
	classNames := [...]string{classLetter: "L", classNumber: "N", classOther: "O", classNone: "S"}
	errors := 0
	report := func(format string, args ...any) {
		if errors++; errors <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range runes {
		if got := classNames[class(r)]; got != classes[r] {
			report("U+%04X: pattern class %s, Python's regex says %s", r, got, classes[r])
		}
		if got := isRegexSpace(r); got != (regexSpace[r] == "1") {
			report("U+%04X: regex \\s %v, Python says %s", r, got, regexSpace[r])
		}
		if got := isPythonSpace(r); got != (isSpace[r] == "1") {
			report("U+%04X: isspace %v, Python says %s", r, got, isSpace[r])
		}
		got := "O"
		if isCaseIgnorable(r) {
			got = "I"
		} else if isCased(r) {
			got = "C"
		}
		if got != sigma[r] {
			report("U+%04X: final-sigma context %s, Python behaves as %s", r, got, sigma[r])
		}
		want, ok := u.Lower[strconv.Itoa(int(r))]
		if !ok {
			want = string(r)
		}
		if got := pythonLower(string(r)); got != want {
			report("U+%04X: lower %q, Python %q", r, got, want)
		}
		want, ok = u.NFC[strconv.Itoa(int(r))]
		if !ok {
			want = string(r)
		}
		if got := norm.NFC.String(string(r)); got != want {
			report("U+%04X: NFC %q, Python %q", r, got, want)
		}
	}
	if errors > 0 {
		t.Errorf("%d differences", errors)
	}
}

// TestLiteralFoldMatchesPython: under IGNORECASE, each character of the pattern's literal
// alternatives matches the same code points in the regex module as in foldEqual.
func TestLiteralFoldMatchesPython(t *testing.T) {
	u := loadUnicode(t)
	seen := map[rune]bool{}
	for _, lit := range literals {
		for _, c := range lit {
			if seen[c] {
				continue
			}
			seen[c] = true
			matches, ok := u.LiteralFold[string(c)]
			if !ok {
				t.Fatalf("no golden for %q", c)
			}
			want := map[rune]bool{}
			for _, cp := range matches {
				want[rune(cp)] = true
			}
			for r := range rune(unicode.MaxRune + 1) {
				if (r < 0xD800 || r > 0xDFFF) && foldEqual(r, c) != want[r] {
					t.Errorf("%q against U+%04X: %v, Python's regex %v", c, r, foldEqual(r, c), want[r])
				}
			}
		}
	}
}

func TestHTMLReferencesMatchPython(t *testing.T) {
	u := loadUnicode(t)
	if len(u.HTMLNamed) < 2000 {
		t.Fatalf("%d named references", len(u.HTMLNamed))
	}
	for name, want := range u.HTMLNamed {
		if got := unescapeHTML("&" + name); got != want {
			t.Errorf("&%s: %q, Python %q", name, got, want)
		}
	}
	errors := 0
	for code := 0; code <= unicode.MaxRune+1; code++ {
		want, ok := u.HTMLNumeric[strconv.Itoa(code)]
		if !ok {
			want = string(rune(code))
		}
		for _, ref := range []string{fmt.Sprintf("&#%d;", code), fmt.Sprintf("&#x%X", code)} {
			if got := unescapeHTML(ref); got != want {
				if errors++; errors <= 20 {
					t.Errorf("%s: %q, Python %q", ref, got, want)
				}
			}
		}
	}
	// 2³²+0x41 wraps around to 'A' in html.UnescapeString's 32-bit arithmetic.
	huge := strconv.Itoa(0xFFFFFFFF + 0x42)
	if want, ok := u.HTMLNumeric[huge]; !ok || unescapeHTML("&#"+huge+";") != want {
		t.Errorf("&#%s;: %q, Python %q", huge, unescapeHTML("&#"+huge+";"), want)
	}
}

// TestInvalidUTF8MatchesPython hashes the replacements of the same byte sequences as the
// golden script: every two-byte sequence, and longer ones built from the edges of the
// continuation ranges, per lead byte.
func TestInvalidUTF8MatchesPython(t *testing.T) {
	u := loadUnicode(t)
	edges := []byte{0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF}
	for lead := range 256 {
		h := sha256.New()
		write := func(seq ...byte) {
			h.Write([]byte(toValidUTF8(string(seq))))
			h.Write([]byte{0})
		}
		for b := range 256 {
			write(byte(lead), byte(b))
		}
		for b := range 256 {
			for _, c := range edges {
				write(byte(lead), byte(b), c)
			}
		}
		for _, b := range edges {
			for _, c := range edges {
				for _, d := range edges {
					write(byte(lead), b, c, d)
				}
			}
		}
		if got, want := hex.EncodeToString(h.Sum(nil)), u.UTF8ReplaceSHA256[strconv.Itoa(lead)]; got != want {
			t.Errorf("lead byte %#02x: replacements differ from Python's decode(errors=\"replace\")", lead)
		}
	}
}
