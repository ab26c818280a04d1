package cuda

import (
	"slices"

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

// buffer is one region of the arena. Several values may live in it: a reshape shares its
// operand's buffer, and an element-wise op may overwrite an operand that dies with it.
type buffer struct {
	bytes   int64
	first   int // body index of the op that writes it first (−1: an input, written before)
	last    int // body index of the last op that reads it (len(body) for outputs)
	pinned  bool
	offset  int64
	members []*ir.Value
}

// plan places every value on the device: inputs and op results in one arena, where values
// whose lifetimes do not overlap share bytes, parameters in the weight slab (in module
// order), reshapes where their operand is.
type plan struct {
	at       map[*ir.Value]loc
	inPlace  map[*ir.Value]int // op → the operand whose buffer it overwrites
	scratch  map[*ir.Value]loc // op → its temporary buffer
	bufferOf map[*ir.Value]*buffer
	buffers  []*buffer

	arenaBytes, weightBytes int64
	weightElem              int64 // bytes of one weight element: 4, or 2 for f16 storage
}

func alignUp(n int64) int64 { return (n + align - 1) / align * align }

func elements(t ir.Type) int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d.N)
	}
	return n
}

// elemBytes is the size of one element of an activation: integer data (indices) is int64
// on the device, as the host gives it.
func elemBytes(t ir.Type) int64 {
	if t.DType.IsFloat() {
		return 4
	}
	return 8
}

// elementWise reports whether the kernel of v reads operand j at exactly the index it
// writes, so that the result may overwrite that operand.
func elementWise(v *ir.Value, j int) bool {
	switch v.Op {
	case "relu", "silu", "sigmoid", "tanh", "sin", "cos", "gelu", "clamp", "scale":
		return true
	case "add", "sub", "mul", "div":
		return v.Args[j].Type.Shape.Equal(v.Type.Shape)
	}
	return false
}

// scratchBytes is the temporary memory an op's kernels need besides its result.
func scratchBytes(v *ir.Value) int64 {
	switch v.Op {
	case "group_norm", "instance_norm2d":
		g := groupNormGeometry(v)
		return int64(8 * g.groupsTotal * g.chunks)
	}
	return 0
}

func planMemory(m *ir.Module, f16 bool) *plan {
	p := &plan{
		at:         map[*ir.Value]loc{},
		inPlace:    map[*ir.Value]int{},
		scratch:    map[*ir.Value]loc{},
		bufferOf:   map[*ir.Value]*buffer{},
		weightElem: 4,
	}
	if f16 {
		p.weightElem = 2
	}
	for _, w := range m.Params {
		p.at[w] = loc{weights, p.weightBytes}
		p.weightBytes += alignUp(elements(w.Type) * p.weightElem)
	}
	end := len(m.Body)
	lastUse := map[*ir.Value]int{}
	for i, v := range m.Body {
		for _, a := range v.Args {
			lastUse[a] = i
		}
	}
	isOutput := map[*ir.Value]bool{}
	for _, v := range m.Outputs {
		isOutput[v] = true
	}
	join := func(b *buffer, v *ir.Value) {
		b.members = append(b.members, v)
		p.bufferOf[v] = b
		if isOutput[v] {
			b.pinned = true
		}
	}
	dies := func(b *buffer, i int) bool {
		if b.pinned || b.first < 0 {
			return false // outputs live on; inputs are the caller's data
		}
		for _, v := range b.members {
			if lastUse[v] > i {
				return false
			}
		}
		return true
	}
	newBuffer := func(bytes int64, first int) *buffer {
		b := &buffer{bytes: bytes, first: first}
		p.buffers = append(p.buffers, b)
		return b
	}
	for _, v := range m.Inputs {
		join(newBuffer(elements(v.Type)*elemBytes(v.Type), -1), v)
	}
	var scratch []*buffer
	var scratchOf []*ir.Value
	for i, v := range m.Body {
		if n := scratchBytes(v); n > 0 {
			b := newBuffer(n, i)
			b.last = i
			scratch = append(scratch, b)
			scratchOf = append(scratchOf, v)
		}
		if v.Op == "reshape" {
			a := v.Args[0]
			if b := p.bufferOf[a]; b != nil {
				join(b, v)
			} else {
				p.at[v] = p.at[a] // a view of a parameter
			}
			continue
		}
		reused := false
		for j, a := range v.Args {
			b := p.bufferOf[a]
			if b == nil || !elementWise(v, j) || !dies(b, i) {
				continue
			}
			p.inPlace[v] = j
			join(b, v)
			reused = true
			break
		}
		if !reused {
			join(newBuffer(elements(v.Type)*elemBytes(v.Type), i), v)
		}
	}
	for _, b := range p.buffers {
		if slices.Contains(scratch, b) {
			continue
		}
		b.last = max(b.first, 0)
		if b.pinned {
			b.last = end
			continue
		}
		for _, v := range b.members {
			b.last = max(b.last, lastUse[v])
		}
	}
	p.place()
	for _, b := range p.buffers {
		for _, v := range b.members {
			p.at[v] = loc{arena, b.offset}
		}
	}
	for i, b := range scratch {
		p.scratch[scratchOf[i]] = loc{arena, b.offset}
	}
	return p
}

// place gives each buffer an offset: largest first, each at the lowest aligned offset that
// no buffer alive at the same time overlaps (a greedy first fit, deterministic).
func (p *plan) place() {
	order := slices.Clone(p.buffers)
	slices.SortStableFunc(order, func(a, b *buffer) int {
		if a.bytes != b.bytes {
			if a.bytes > b.bytes {
				return -1
			}
			return 1
		}
		return a.first - b.first
	})
	var placed []*buffer
	for _, b := range order {
		var busy [][2]int64
		for _, o := range placed {
			if o.first <= b.last && b.first <= o.last {
				busy = append(busy, [2]int64{o.offset, o.offset + o.bytes})
			}
		}
		slices.SortFunc(busy, func(x, y [2]int64) int {
			switch {
			case x[0] < y[0]:
				return -1
			case x[0] > y[0]:
				return 1
			}
			return 0
		})
		var offset int64
		for _, r := range busy {
			if offset+b.bytes <= r[0] {
				break
			}
			offset = max(offset, alignUp(r[1]))
		}
		b.offset = offset
		placed = append(placed, b)
		p.arenaBytes = max(p.arenaBytes, alignUp(offset+b.bytes))
	}
}
