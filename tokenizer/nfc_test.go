package tokenizer

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// composeCanonical must equal norm.NFC wherever norm does not cut a run of marks: on every
// code point alone, after a letter, and on random mixes of letters, marks, Hangul and
// precomposed characters. (Where norm cuts, the zalgo goldens compare it with Python.)
func TestComposeCanonicalMatchesNorm(t *testing.T) {
	check := func(s string) {
		t.Helper()
		if got, want := composeCanonical(s), norm.NFC.String(s); got != want {
			t.Fatalf("composeCanonical(%+q) = %+q, norm.NFC %+q", s, got, want)
		}
	}
	var marks, pieces []rune
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		p := norm.NFD.PropertiesString(string(r))
		if p.CCC() != 0 || p.LeadCCC() != 0 || p.Decomposition() != nil {
			check(string(r))
			check("a" + string(r))
			if p.CCC() != 0 && len(marks) < 2000 && r < 0x10000 {
				marks = append(marks, r)
			}
			if p.Decomposition() != nil && len(pieces) < 2000 {
				pieces = append(pieces, r)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	starters := []rune("aeiouAEIOUnNcCzZsSgG\u1100\u1161\u11a8\uac00\u0b47\u0b3e\u0928\u093c\u0627\u0653")
	for range 20000 {
		var sb strings.Builder
		for range 1 + rng.IntN(12) {
			switch rng.IntN(4) {
			case 0:
				sb.WriteRune(starters[rng.IntN(len(starters))])
			case 1:
				sb.WriteRune(pieces[rng.IntN(len(pieces))])
			default:
				sb.WriteRune(marks[rng.IntN(len(marks))])
			}
		}
		check(sb.String())
	}
}

func TestLongMarkRunsTakeComposeCanonical(t *testing.T) {
	for _, g := range loadGoldens(t) {
		s := g.prompt(t)
		long := strings.HasPrefix(g.Name, "zalgo")
		if got := hasLongNonStarterRun(s); got != long {
			t.Errorf("%s: hasLongNonStarterRun = %v", g.Name, got)
		}
	}
}
