package editdist

import (
	"math/rand/v2"
	"testing"
)

// naive is the edit distance by its recursive definition.
func naive(a, b string) int {
	switch {
	case a == "":
		return len(b)
	case b == "":
		return len(a)
	}
	cost := 1
	if a[0] == b[0] {
		cost = 0
	}
	return min(naive(a[1:], b)+1, naive(a, b[1:])+1, naive(a[1:], b[1:])+cost)
}

// TestAgainstDefinitions checks the three distances on random short strings against the
// recursive definition, taken over every substring and every suffix of b.
func TestAgainstDefinitions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = "abc."[r.IntN(4)]
		}
		return string(b)
	}
	for range 2000 {
		a, b := word(), word()
		if got, want := Distance(a, b), naive(a, b); got != want {
			t.Fatalf("Distance(%q, %q) = %d, want %d", a, b, got, want)
		}
		sub, suf := len(a), len(a)
		for i := 0; i <= len(b); i++ {
			suf = min(suf, naive(a, b[i:]))
			for j := i; j <= len(b); j++ {
				sub = min(sub, naive(a, b[i:j]))
			}
		}
		if got := ToSubstring(a, b); got != sub {
			t.Fatalf("ToSubstring(%q, %q) = %d, want %d", a, b, got, sub)
		}
		if got := ToSuffix(a, b); got != suf {
			t.Fatalf("ToSuffix(%q, %q) = %d, want %d", a, b, got, suf)
		}
	}
}
