package codegen

import (
	"go/token"
	"strconv"
	"strings"
	"unicode"
)

// words splits a name such as "Chain.Residual_1.Attention.weight" or "my-embed" into the
// parts that camel case joins: runs of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	})
}

// camel joins the words of s in camel case, the first one capitalised when upper is true.
// A name that would start with a digit gets a prefix, so that the result is an identifier.
func camel(s string, upper bool, prefix string) string {
	var b strings.Builder
	for i, w := range words(s) {
		if i == 0 && !upper {
			b.WriteString(lowerFirst(w))
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	out := b.String()
	if out == "" || unicode.IsDigit(rune(out[0])) {
		if upper {
			prefix = strings.ToUpper(prefix[:1]) + prefix[1:]
		}
		out = prefix + out
	}
	return out
}

// predeclared are Go's predeclared identifiers: a parameter of that name would shadow them.
var predeclared = map[string]bool{
	"any": true, "append": true, "bool": true, "byte": true, "cap": true, "clear": true, "close": true,
	"comparable": true, "complex": true, "complex128": true, "complex64": true, "copy": true,
	"delete": true, "error": true, "false": true, "float32": true, "float64": true, "imag": true,
	"int": true, "int16": true, "int32": true, "int64": true, "int8": true, "iota": true, "len": true,
	"make": true, "max": true, "min": true, "new": true, "nil": true, "panic": true, "print": true,
	"println": true, "real": true, "recover": true, "rune": true, "string": true, "true": true,
	"uint": true, "uint16": true, "uint32": true, "uint64": true, "uint8": true, "uintptr": true,
}

// namer hands out unique identifiers in one scope.
type namer struct{ used map[string]bool }

func newNamer(reserved ...string) *namer {
	n := &namer{used: map[string]bool{}}
	for _, r := range reserved {
		n.used[r] = true
	}
	return n
}

// take returns want, or want with a number appended when want is taken, a keyword or a
// predeclared name; the result is then taken.
func (n *namer) take(want string) string {
	name := want
	for i := 2; n.used[name] || token.IsKeyword(name) || predeclared[name]; i++ {
		name = want + strconv.Itoa(i)
	}
	n.used[name] = true
	return name
}

// PackageName turns a model name into a Go package name: lower case letters and digits,
// with "model" before a name that would be empty, start with a digit, or be a keyword or
// a predeclared identifier. The CUDA target names its packages with it too.
func PackageName(model string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(model) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		}
	}
	name := b.String()
	if name == "" || unicode.IsDigit(rune(name[0])) || token.IsKeyword(name) || predeclared[name] {
		name = "model" + name
	}
	return name
}

// ValidPackageName reports whether s can name a Go package (the CUDA target checks its
// names with it too).
func ValidPackageName(s string) bool {
	return token.IsIdentifier(s) && s != "_" && !strings.ContainsFunc(s, func(r rune) bool { return r >= unicode.MaxASCII })
}

// lowerFirst lower-cases the leading capital of w, or its leading run of capitals (an
// acronym): Conv2d → conv2d, MLP → mlp, TAESDDecoder → taesdDecoder.
func lowerFirst(w string) string {
	n := 0
	for n < len(w) && w[n] >= 'A' && w[n] <= 'Z' {
		n++
	}
	switch {
	case n == len(w):
		return strings.ToLower(w)
	case n > 1:
		// The last capital of the run starts the next word (TAESD|Decoder).
		return strings.ToLower(w[:n-1]) + w[n-1:]
	}
	return strings.ToLower(w[:1]) + w[1:]
}
