package tokenizer

import (
	"slices"
	"unicode/utf8"

	// NFC needs the canonical decompositions, combining classes and compositions of all
	// of Unicode with its exclusions: large and easy to get subtly wrong by hand. x/text
	// is the Go team's, on the same Unicode version (15.0) as the standard library's
	// tables used for everything else here.
	"golang.org/x/text/unicode/norm"
)

// nfc is Unicode NFC as Python's unicodedata.normalize computes it. norm.NFC follows the
// Stream-Safe Text Format: after 30 non-starters in a row (a "zalgo" prompt) it inserts
// U+034F and stops reordering and composing across it, which Python does not. Such text
// takes composeCanonical, the plain algorithm of Unicode §3.11 built on norm's tables.
func nfc(s string) string {
	if hasLongNonStarterRun(s) {
		return composeCanonical(s)
	}
	return norm.NFC.String(s)
}

// hasLongNonStarterRun tells whether s may hold, once decomposed, a run of non-starters
// that norm would cut. It errs on the long side: the threshold is well below 30.
func hasLongNonStarterRun(s string) bool {
	run := 0
	for i := 0; i < len(s); {
		if s[i] < 0xC0 { // ASCII, and any continuation byte of invalid text: starters
			run = 0
			i++
			continue
		}
		p := norm.NFD.PropertiesString(s[i:])
		size := max(p.Size(), 1)
		n := max(utf8.RuneCount(p.Decomposition()), 1)
		switch {
		case p.LeadCCC() == 0 && p.CCC() == 0 && p.TrailCCC() == 0:
			run = 0
		case p.LeadCCC() == 0 && p.CCC() == 0:
			run = n - 1 // a starter, then its decomposition's marks
		default:
			run += n
		}
		if run > 16 {
			return true
		}
		i += size
	}
	return false
}

// composeCanonical is NFC without the Stream-Safe limit: full canonical decomposition,
// canonical ordering of every run of non-starters, then canonical composition.
func composeCanonical(s string) string {
	var runes []rune
	for _, r := range s {
		runes = append(runes, []rune(norm.NFD.String(string(r)))...)
	}
	ccc := func(r rune) uint8 { return norm.NFD.PropertiesString(string(r)).CCC() }
	for i := 0; i < len(runes); {
		if ccc(runes[i]) == 0 {
			i++
			continue
		}
		j := i
		for j < len(runes) && ccc(runes[j]) != 0 {
			j++
		}
		slices.SortStableFunc(runes[i:j], func(a, b rune) int { return int(ccc(a)) - int(ccc(b)) })
		i = j
	}
	out := runes[:0]
	starter := -1       // index in out of the last starter
	lastCCC := uint8(0) // class of the last rune kept after that starter
	adjacent := false   // whether the starter is the last rune kept
	for _, r := range runes {
		c := ccc(r)
		if starter >= 0 && (adjacent || lastCCC != 0 && lastCCC < c) {
			if composite, ok := primaryComposite(out[starter], r); ok {
				out[starter] = composite
				continue
			}
		}
		if c == 0 {
			starter, adjacent = len(out), true
		} else {
			adjacent = false
		}
		lastCCC = c
		out = append(out, r)
	}
	return string(out)
}

// primaryComposite returns the composition of a starter and the rune after it, if
// Unicode defines one that NFC uses: NFC turns the pair into that one rune, which
// decomposes back to the pair.
func primaryComposite(starter, r rune) (rune, bool) {
	pair := string(starter) + string(r)
	composed := norm.NFC.String(pair)
	c, size := utf8.DecodeRuneInString(composed)
	if size != len(composed) || norm.NFD.String(composed) != norm.NFD.String(pair) {
		return 0, false
	}
	return c, true
}
