package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Character classes of CLIP's pattern, compiled with re.IGNORECASE.
const (
	classLetter = iota // [\p{L}]
	classNumber        // [\p{N}]
	classOther         // [^\s\p{L}\p{N}]
	classNone          // none of them: white space, and U+0345 (see class)
)

// class tells which of the pattern's classes r belongs to. Under IGNORECASE the regex
// module tests a negated class against every case variant of the character, so a
// character that is neither letter, number nor space but has a case variant that is one
// (U+0345 COMBINING GREEK YPOGEGRAMMENI, whose variants are iota) matches no class at all
// and is skipped like white space.
func class(r rune) int {
	switch {
	case r < utf8.RuneSelf:
		switch {
		case 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z':
			return classLetter
		case '0' <= r && r <= '9':
			return classNumber
		case r == ' ' || '\t' <= r && r <= '\r':
			return classNone
		}
		return classOther
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case isRegexSpace(r):
		return classNone
	}
	for v := unicode.SimpleFold(r); v != r; v = unicode.SimpleFold(v) {
		if unicode.IsLetter(v) || unicode.IsNumber(v) || isRegexSpace(v) {
			return classNone
		}
	}
	return classOther
}

// The pattern's literal alternatives, tried in this order before the classes.
var literals = [...]string{"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// pretokenize calls yield with each piece CLIP's pattern finds in text (re.findall), in
// order, until yield returns false.
func pretokenize(text string, yield func(piece string) bool) {
	for i := 0; i < len(text); {
		if n := matchLiteral(text[i:]); n > 0 {
			if !yield(text[i : i+n]) {
				return
			}
			i += n
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		c := class(r)
		switch c {
		case classNone:
			i += size
			continue
		case classNumber: // one number at a time
			if !yield(text[i : i+size]) {
				return
			}
			i += size
			continue
		}
		end := i + size
		for end < len(text) {
			r, size := utf8.DecodeRuneInString(text[end:])
			if class(r) != c {
				break
			}
			end += size
		}
		if !yield(text[i:end]) {
			return
		}
		i = end
	}
}

// matchLiteral returns the length in bytes of the first literal alternative that matches
// case-insensitively at the start of s, or 0. The text is already lower case, but
// IGNORECASE also lets 'ſ' (U+017F, long s) match 's'.
func matchLiteral(s string) int {
	if len(s) < 2 || s[0] != '<' && s[0] != '\'' {
		return 0
	}
	for _, lit := range literals {
		if n := hasFoldPrefix(s, lit); n > 0 {
			return n
		}
	}
	return 0
}

// hasFoldPrefix returns the byte length of the prefix of s equal to the ASCII string lit
// under simple case folding, or 0.
func hasFoldPrefix(s, lit string) int {
	n := 0
	for k := 0; k < len(lit); k++ {
		if n >= len(s) {
			return 0
		}
		r, size := utf8.DecodeRuneInString(s[n:])
		if !foldEqual(r, rune(lit[k])) {
			return 0
		}
		n += size
	}
	return n
}

func foldEqual(r, want rune) bool {
	if r == want {
		return true
	}
	for v := unicode.SimpleFold(want); v != want; v = unicode.SimpleFold(v) {
		if v == r {
			return true
		}
	}
	return false
}
