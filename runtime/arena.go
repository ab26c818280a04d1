package runtime

import "fmt"

// Arena is one float32 slab from which generated code carves its planned buffers at the
// fixed offsets the compiler's memory plan chose, so that a forward pass allocates nothing.
// Buffers whose lifetimes do not overlap share bytes; the plan guarantees it.
type Arena struct {
	slab []float32
}

// NewArena allocates a zeroed arena of size float32 elements.
func NewArena(size int) *Arena {
	if size < 0 {
		panic(fmt.Sprintf("runtime: NewArena(%d): negative size", size))
	}
	return &Arena{slab: make([]float32, size)}
}

// Size is the arena's length in float32 elements.
func (a *Arena) Size() int { return len(a.slab) }

// Slice returns the n elements at offset. Its capacity is n, so appending to a buffer can
// never spill into its neighbour.
//
// This is internal to generated code: offsets come from the compiler's memory plan, never
// from user input, so an out-of-range request is a compiler bug and panics saying so.
func (a *Arena) Slice(offset, n int) []float32 {
	if offset < 0 || n < 0 || offset > len(a.slab)-n {
		panic(fmt.Sprintf("runtime: Arena.Slice(%d, %d) is outside the arena of %d elements (a compiler bug: the memory plan is wrong)", offset, n, len(a.slab)))
	}
	return a.slab[offset : offset+n : offset+n]
}
