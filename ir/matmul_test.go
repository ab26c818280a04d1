package ir

import (
	"slices"
	"testing"
)

// The batch walk every back end shares: uniform strides where a side has the full batch or
// one matrix, offsets when the batch broadcasts both ways.
func TestMatmulOf(t *testing.T) {
	mm := MatmulOf([]int{2, 3, 4, 5}, []int{5, 6}, []int{2, 3, 4, 6})
	if !mm.Uniform || mm.Batch != 6 || mm.StrideA != 20 || mm.StrideB != 0 || mm.M != 4 || mm.K != 5 || mm.N != 6 {
		t.Errorf("uniform: %+v", mm)
	}
	mm = MatmulOf([]int{2, 1, 4, 5}, []int{1, 3, 5, 6}, []int{2, 3, 4, 6})
	if mm.Uniform || mm.Batch != 6 {
		t.Fatalf("both ways: %+v", mm)
	}
	// Result entry (i, j) takes a's matrix i and b's matrix j.
	want := []int{0, 0, 0, 30, 0, 60, 20, 0, 20, 30, 20, 60}
	if got := mm.Offsets(); !slices.Equal(got, want) {
		t.Errorf("offsets %v, want %v", got, want)
	}
}
