package tokenizer

import (
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// clean is CLIP's basic_clean then whitespace_clean then str.lower, with NFC standing in
// for ftfy.fix_text.
func clean(text string) string {
	text = nfc(toValidUTF8(text))
	text = unescapeHTML(unescapeHTML(text))
	text = strings.TrimFunc(collapseWhiteSpace(text), isPythonSpace)
	return pythonLower(text)
}

// isRegexSpace is \s of Python's regex module on str: Unicode's White_Space property.
func isRegexSpace(r rune) bool { return unicode.Is(unicode.White_Space, r) }

// isPythonSpace is str.isspace, which str.strip uses: White_Space plus the four
// information separators U+001C..U+001F (bidirectional class B or S).
func isPythonSpace(r rune) bool { return r >= 0x1C && r <= 0x1F || isRegexSpace(r) }

// collapseWhiteSpace replaces each run of white space with one space (re.sub(r'\s+', ' ')).
func collapseWhiteSpace(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	inRun := false
	for _, r := range s {
		if isRegexSpace(r) {
			if !inRun {
				sb.WriteByte(' ')
			}
			inRun = true
			continue
		}
		inRun = false
		sb.WriteRune(r)
	}
	return sb.String()
}

// pythonLower is Python's str.lower: the simple lowercase mapping, except 'İ' (U+0130),
// whose full mapping is "i̇" (two runes), and 'Σ', which becomes 'ς' at the end of a word
// (the Final_Sigma condition of Unicode §3.13, as CPython applies it).
func pythonLower(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for i, r := range s {
		switch {
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			sb.WriteByte(byte(r))
		case r == 'İ':
			sb.WriteString("i\u0307")
		case r == 'Σ':
			if finalSigma(s, i) {
				sb.WriteRune('ς')
			} else {
				sb.WriteRune('σ')
			}
		default:
			sb.WriteRune(unicode.ToLower(r))
		}
	}
	return sb.String()
}

// finalSigma tells whether the Σ at byte i of s is preceded by a cased letter and not
// followed by one, skipping case-ignorable characters on both sides.
func finalSigma(s string, i int) bool {
	before := s[:i]
	for {
		r, size := utf8.DecodeLastRuneInString(before)
		if size == 0 {
			return false
		}
		if !isCaseIgnorable(r) {
			if !isCased(r) {
				return false
			}
			break
		}
		before = before[:len(before)-size]
	}
	for _, r := range s[i+len("Σ"):] {
		if !isCaseIgnorable(r) {
			return !isCased(r)
		}
	}
	return true
}

// isCased is Unicode's Cased property: Lowercase, Uppercase or titlecase letter.
func isCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// isCaseIgnorable is Unicode's Case_Ignorable property: marks, format characters,
// modifiers, and the characters of Word_Break MidLetter, MidNumLet and Single_Quote (UAX
// #29), which Go's tables do not carry and are listed here.
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0x00B7, 0x0387, 0x055F, 0x05F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// unescapeHTML is Python's html.unescape, which differs from html.UnescapeString: a
// numeric reference to a control or noncharacter such as &#11; is dropped, a number too
// large for a rune gives U+FFFD instead of wrapping around, and &nLt; and &nGt; are known.
func unescapeHTML(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s))
	for {
		amp := strings.IndexByte(s, '&')
		if amp < 0 {
			sb.WriteString(s)
			return sb.String()
		}
		sb.WriteString(s[:amp])
		s = s[amp+1:]
		replacement, n := characterReference(s)
		if n == 0 {
			sb.WriteByte('&')
			continue
		}
		sb.WriteString(replacement)
		s = s[n:]
	}
}

// characterReference reads a reference after '&' (Python's
// &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)) and returns its replacement and
// length, or n == 0 where none starts.
func characterReference(s string) (replacement string, n int) {
	if strings.HasPrefix(s, "#") {
		digits, base := s[1:], 10
		if len(digits) > 0 && (digits[0] == 'x' || digits[0] == 'X') {
			digits, base = digits[1:], 16
		}
		code, count := 0, 0
		for count < len(digits) {
			d := digitValue(digits[count])
			if d >= base {
				break
			}
			code = min(code*base+d, unicode.MaxRune+1) // larger is as invalid, and cannot overflow
			count++
		}
		if count == 0 {
			return "", 0 // "&#" and "&#x" without digits: no reference, and no name starts with '#'
		}
		n = len(s) - len(digits) + count
		if n < len(s) && s[n] == ';' {
			n++
		}
		return numericReference(code), n
	}
	runes := 0
	for n < len(s) && runes < 32 {
		r, size := utf8.DecodeRuneInString(s[n:])
		if strings.ContainsRune("\t\n\f <&#;", r) {
			break
		}
		n += size
		runes++
	}
	if n == 0 {
		return "", 0
	}
	if n < len(s) && s[n] == ';' {
		n++
	}
	name := s[:n]
	// Every HTML5 name is ASCII letters and digits with an optional ';'. Python looks up
	// the whole name, then its longest prefix that is a name without ';' (the legacy ones,
	// like "amp" and "copy"); only the leading letters and digits can hold either, and
	// html.UnescapeString applies that same lookup to them (its table is the same HTML5
	// list less two names, checked against Python's in the tests).
	alnum := 0
	for alnum < len(name) && isASCIIAlnum(name[alnum]) {
		alnum++
	}
	if alnum == len(name)-1 && name[alnum] == ';' {
		alnum++
	}
	switch name[:alnum] {
	case "":
		return "&" + name, n
	case "nLt;": // html.UnescapeString lacks the two names whose text is longer than the
		return "\u226A\u20D2" + name[alnum:], n // name (it unescapes in place)
	case "nGt;":
		return "\u226B\u20D2" + name[alnum:], n
	}
	return html.UnescapeString("&"+name[:alnum]) + name[alnum:], n
}

func isASCIIAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func digitValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return 99
}

// numericReference is Python's replacement for &#code; (the HTML5 rules).
func numericReference(code int) string {
	switch {
	case code == 0:
		return "\uFFFD"
	case code == '\r':
		return "\r"
	case code >= 0x80 && code <= 0x9F:
		// Windows-1252 for the C1 range; html.UnescapeString has the same table.
		return html.UnescapeString("&#" + strconv.Itoa(code) + ";")
	case code >= 0xD800 && code <= 0xDFFF || code > unicode.MaxRune:
		return "\uFFFD"
	case code >= 0x01 && code <= 0x08, code == 0x0B, code >= 0x0E && code <= 0x1F, code == 0x7F,
		code >= 0xFDD0 && code <= 0xFDEF, code&0xFFFE == 0xFFFE:
		return "" // controls and noncharacters are dropped
	}
	return string(rune(code))
}
