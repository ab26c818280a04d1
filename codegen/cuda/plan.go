package cuda

import (
	"fmt"

	"github.com/rfc-project/rfc/codegen/memplan"
	"github.com/rfc-project/rfc/ir"
)

// align is the alignment of every planned buffer in bytes: what cudaMalloc guarantees, and
// more than any vector load of the kernels needs.
const align = 256

// space is a device allocation of the model.
type space uint8

const (
	arena   space = iota + 1 // activations: inputs, intermediates, outputs, scratch
	weights                  // the weight slab, written once at load
)

// loc is where data lies on the device.
type loc struct {
	space  space
	offset int64 // bytes
}

// plan places every value on the device: inputs and op results in one arena, where values
// whose lifetimes do not overlap share bytes, parameters in the weight slab (in module
// order), reshapes where their operand is.
type plan struct {
	at      map[*ir.Value]loc
	scratch map[*ir.Value]loc // op → its temporary buffer

	arenaBytes, weightBytes int64
	weightElem              int64 // bytes of one weight element: 4, or 2 for f16 storage
}

func alignUp(n int64) int64 { return (n + align - 1) / align * align }

// elements is the element count of a static type.
func elements(t ir.Type) int64 { return int64(ir.Prod(t.Shape.Ints())) }

// elemBytes is the size of one element of an activation: integer data (indices) is int64
// on the device, as the host gives it.
func elemBytes(t ir.Type) int64 { return int64(t.DType.StorageSize()) }

// scratchBytes is the temporary memory an op's kernels need besides its result.
func scratchBytes(v *ir.Value) int64 {
	switch v.Op {
	case "group_norm", "instance_norm2d":
		g := groupNormGeometry(v)
		return int64(8 * g.groupsTotal * g.chunks)
	}
	return 0
}

// planMemory lays out the weight slab and, in bytes, the arena: inputs are placed there
// too, and ops with scratch needs get a buffer alive during the op.
func planMemory(m *ir.Module, f16 bool) (*plan, error) {
	p := &plan{
		at:         map[*ir.Value]loc{},
		scratch:    map[*ir.Value]loc{},
		weightElem: 4,
	}
	if f16 {
		p.weightElem = 2
	}
	for _, w := range m.Params {
		p.at[w] = loc{weights, p.weightBytes}
		// Each tensor's bytes fit (check bounds its elements by 2^31); their sum may not.
		n, ok := ir.AddChecked(int(p.weightBytes), int(alignUp(elements(w.Type)*p.weightElem)))
		if !ok {
			return nil, fmt.Errorf("cuda: module %s: the weights overflow an int at parameter %s (key %q)", m.Name, w.Ref(), w.Key)
		}
		p.weightBytes = int64(n)
	}
	mp, err := memplan.New(m, memplan.Options{
		Size:    func(v *ir.Value) int { return int(elements(v.Type) * elemBytes(v.Type)) },
		Align:   align,
		Scratch: func(v *ir.Value) int { return int(scratchBytes(v)) },
		Inputs:  true,
	})
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	p.arenaBytes = int64(mp.ArenaLen)
	for _, v := range m.Body {
		if root, ok := mp.External[v]; ok {
			p.at[v] = p.at[root] // a view of a parameter
		}
	}
	for _, b := range mp.Buffers {
		for _, v := range b.Members {
			p.at[v] = loc{arena, int64(b.Offset)}
		}
	}
	for v, b := range mp.Scratch {
		p.scratch[v] = loc{arena, int64(b.Offset)}
	}
	return p, nil
}
