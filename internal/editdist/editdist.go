// Package editdist measures how far apart two names are (Levenshtein distance: insertions,
// deletions and substitutions of one byte each), for the "did you mean" hints of errors,
// where the name the user wrote may also be a piece of a longer name.
package editdist

import "slices"

// Distance is the edit distance between a and b.
func Distance(a, b string) int { return lastRow(a, b, false)[len(b)] }

// ToSubstring is the edit distance from a to the closest substring of b.
func ToSubstring(a, b string) int { return slices.Min(lastRow(a, b, true)) }

// ToSuffix is the edit distance from a to the closest suffix of b: how far b's end is from
// being a, whatever comes before it.
func ToSuffix(a, b string) int { return lastRow(a, b, true)[len(b)] }

// lastRow is the last row of the edit-distance table of a against b: entry j is the
// distance from a to b[:j], or with freeStart to the closest substring of b ending at j.
func lastRow(a, b string, freeStart bool) []int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	if !freeStart {
		for j := range prev {
			prev[j] = j
		}
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev
}
