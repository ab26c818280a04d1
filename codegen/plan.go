package codegen

import (
	"slices"

	"github.com/rfc-project/rfc/ir"
)

// arenaAlign is the alignment of every planned buffer, in float32 elements: 64 bytes, a
// cache line and one AVX-512 register, so that no two buffers share a line.
const arenaAlign = 16

// buffer is one region of the activation arena. Several values may live in it: a reshape
// shares its operand's buffer (a view), and an element-wise op may overwrite an operand
// that dies with it (in place).
type buffer struct {
	size    int // elements
	first   int // body index of the op that first writes it
	last    int // body index of the last op that reads it (len(body) for outputs)
	pinned  bool
	offset  int
	members []*ir.Value
}

// outputCopy is an output that is an input or a weight (or a view of one): the caller must
// not get their memory back, so Forward copies it into a buffer of its own.
type outputCopy struct {
	value *ir.Value // the output as listed in m.Outputs
	from  *ir.Value // the input or parameter it views
	buf   *buffer   // nil for an integer output, which gets an []int64 outside the arena
}

// memoryPlan places every op result in one arena: values whose lifetimes do not overlap
// share bytes, reshapes are views, element-wise ops overwrite a dying operand when the
// kernel allows it, and outputs keep their buffers until the next call.
type memoryPlan struct {
	bufferOf map[*ir.Value]*buffer   // op results (views included) that live in the arena
	external map[*ir.Value]*ir.Value // reshapes of an input or a parameter → that value
	inPlace  map[*ir.Value]int       // op → the operand index whose buffer it overwrites
	copies   []*outputCopy
	buffers  []*buffer
	arenaLen int // elements
}

// inPlaceOK reports whether the kernel of v accepts its result aliasing operand j: the
// element-wise kernels do, when the operand has the result's shape.
func inPlaceOK(v *ir.Value, j int) bool {
	switch v.Op {
	case "relu", "silu", "sigmoid", "tanh", "sin", "cos", "gelu", "clamp", "scale":
		return true
	case "add", "sub", "mul", "div":
		return v.Args[j].Type.Shape.Equal(v.Type.Shape)
	}
	return false
}

func numElements(s ir.Shape) int {
	n := 1
	for _, d := range s {
		n *= d.N
	}
	return n
}

// planMemory builds the plan of a verified module with static shapes. Load-time values
// (hoisted) live outside the arena, like weights.
func planMemory(m *ir.Module, hoisted map[*ir.Value]bool) *memoryPlan {
	p := &memoryPlan{
		bufferOf: map[*ir.Value]*buffer{},
		external: map[*ir.Value]*ir.Value{},
		inPlace:  map[*ir.Value]int{},
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
	// dies reports whether nothing after op i reads buffer b.
	dies := func(b *buffer, i int) bool {
		if b.pinned {
			return false
		}
		for _, v := range b.members {
			if lastUse[v] > i {
				return false
			}
		}
		return true
	}
	for i, v := range m.Body {
		if hoisted[v] {
			continue
		}
		if v.Op == "reshape" {
			a := v.Args[0]
			if b := p.bufferOf[a]; b != nil {
				join(b, v)
				continue
			}
			root := a
			if r, ok := p.external[a]; ok {
				root = r
			}
			p.external[v] = root
			continue
		}
		reused := false
		for j, a := range v.Args {
			b := p.bufferOf[a]
			if b == nil || !inPlaceOK(v, j) || !dies(b, i) {
				continue
			}
			p.inPlace[v] = j
			join(b, v)
			reused = true
			break
		}
		if reused {
			continue
		}
		b := &buffer{size: numElements(v.Type.Shape), first: i}
		p.buffers = append(p.buffers, b)
		join(b, v)
	}
	for _, v := range m.Outputs {
		root, ok := p.external[v]
		if !ok && v.Kind == ir.KindOp && !hoisted[v] {
			continue
		}
		if !ok {
			root = v // an input or a parameter given back as it is
		}
		if slices.ContainsFunc(p.copies, func(c *outputCopy) bool { return c.value == v }) {
			continue
		}
		c := &outputCopy{value: v, from: root}
		if v.Type.DType.IsFloat() {
			c.buf = &buffer{size: numElements(v.Type.Shape), first: end, pinned: true}
			p.buffers = append(p.buffers, c.buf)
		}
		p.copies = append(p.copies, c)
	}
	for _, b := range p.buffers {
		b.last = b.first
		if b.pinned {
			b.last = end
			continue
		}
		for _, v := range b.members {
			b.last = max(b.last, lastUse[v])
		}
	}
	p.place()
	return p
}

// place gives each buffer an offset: largest first, each at the lowest aligned offset that
// no buffer alive at the same time overlaps (a greedy first fit, deterministic).
func (p *memoryPlan) place() {
	order := slices.Clone(p.buffers)
	slices.SortStableFunc(order, func(a, b *buffer) int {
		if a.size != b.size {
			return b.size - a.size
		}
		return a.first - b.first
	})
	var placed []*buffer
	for _, b := range order {
		var busy [][2]int
		for _, o := range placed {
			if o.first <= b.last && b.first <= o.last {
				busy = append(busy, [2]int{o.offset, o.offset + o.size})
			}
		}
		slices.SortFunc(busy, func(x, y [2]int) int { return x[0] - y[0] })
		offset := 0
		for _, r := range busy {
			if offset+b.size <= r[0] {
				break
			}
			offset = max(offset, alignUp(r[1]))
		}
		b.offset = offset
		placed = append(placed, b)
		p.arenaLen = max(p.arenaLen, alignUp(offset+b.size))
	}
}

func alignUp(n int) int { return (n + arenaAlign - 1) / arenaAlign * arenaAlign }

// peakLive is the largest sum of sizes of buffers alive at one op: a lower bound for the
// arena, which tests compare the plan against.
func (p *memoryPlan) peakLive(steps int) int {
	peak := 0
	for i := 0; i <= steps; i++ {
		n := 0
		for _, b := range p.buffers {
			if b.first <= i && i <= b.last {
				n += b.size
			}
		}
		peak = max(peak, n)
	}
	return peak
}
