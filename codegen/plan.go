package codegen

import (
	"github.com/rfc-project/rfc/codegen/memplan"
	"github.com/rfc-project/rfc/ir"
)

// arenaAlign is the alignment of every planned buffer (and weight), in float32 elements:
// 64 bytes, a cache line and one AVX-512 register, so that no two buffers share a line.
const arenaAlign = 16

// numElements is the element count of a static shape.
func numElements(s ir.Shape) int { return ir.Prod(s.Ints()) }

// planMemory plans the arena of a verified module, in float32 elements. Load-time values
// (hoisted) live outside the arena, like weights; outputs that are not op results are
// copied, so the caller never gets an input or a weight back. With sizes chosen at run
// time (sized), only the plan's buffers and lifetimes are used: generated code places
// them at each set of sizes.
func planMemory(m *ir.Module, hoisted map[*ir.Value]bool, sized bool) (*memplan.Plan, error) {
	size := func(v *ir.Value) int { return numElements(v.Type.Shape) }
	if sized {
		size = func(*ir.Value) int { return 1 }
	}
	return memplan.New(m, memplan.Options{
		Size:        size,
		Align:       arenaAlign,
		Outside:     hoisted,
		CopyOutputs: true,
	})
}

func alignUp(n int) int { return (n + arenaAlign - 1) / arenaAlign * arenaAlign }
