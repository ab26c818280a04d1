// Package memplan places the activations of a module in one arena, for every code
// generator: values whose lifetimes do not overlap share bytes, reshapes are views,
// element-wise ops overwrite a dying operand, and outputs keep their buffers until the
// next call. Targets differ only in units, alignment and what lives in the arena, which
// Options say.
package memplan

import (
	"fmt"
	"math"
	"slices"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// Options is what a target decides about its arena. Sizes, offsets and Align share one
// unit of the target's choosing (float32 elements, bytes).
type Options struct {
	Size  func(v *ir.Value) int // the room v's data takes
	Align int                   // every buffer starts at a multiple of it
	// Scratch, if set, gives the temporary room an op needs besides its result, alive
	// during that op only.
	Scratch func(v *ir.Value) int
	// Outside holds op results that live out of the arena (load-time values), like
	// weights.
	Outside map[*ir.Value]bool
	// Inputs puts the inputs in the arena, written before the first op and never
	// overwritten in place (they are the caller's data).
	Inputs bool
	// CopyOutputs gives each output that is an input, a parameter, an Outside value or a
	// view of one a copy of its own, so the caller never gets that memory: a float output
	// in an arena buffer, an integer one outside the arena.
	CopyOutputs bool
}

// Buffer is one region of the arena. Several values may live in it: a reshape shares its
// operand's buffer (a view), and an element-wise op may overwrite an operand that dies
// with it (in place).
type Buffer struct {
	Size    int
	First   int // body index of the op that first writes it (−1: an input, written before)
	Last    int // body index of the last op that reads it (len(body) for outputs)
	Pinned  bool
	Offset  int
	Members []*ir.Value
}

// OutputCopy is an output that is an input, a parameter or an Outside value (or a view of
// one): the caller must not get that memory, so it is copied into a buffer of its own.
type OutputCopy struct {
	Value *ir.Value // the output as listed in m.Outputs
	From  *ir.Value // the value it views
	Buf   *Buffer   // nil for an integer output, which lives outside the arena
}

// Plan is the placement of a module's activations.
type Plan struct {
	BufferOf map[*ir.Value]*Buffer   // values (views included) that live in the arena
	External map[*ir.Value]*ir.Value // reshapes of a value outside the arena → that value
	InPlace  map[*ir.Value]int       // op → the operand index whose buffer it overwrites
	Scratch  map[*ir.Value]*Buffer   // op → its temporary buffer
	Copies   []*OutputCopy
	Buffers  []*Buffer
	ArenaLen int
}

// inPlaceOK reports whether the kernel of v reads operand j at exactly the index it
// writes, so that the result may overwrite that operand: the element-wise kernels
// (ir.OpInfo.InPlace), when the operand has the result's type.
func inPlaceOK(v *ir.Value, j int) bool {
	info, ok := ir.Lookup(v.Op)
	return ok && info.InPlace && v.Args[j].Type.Equal(v.Type)
}

// New plans a verified module with static shapes. The sizes and offsets are checked: an
// arena whose size does not fit an int is an error.
func New(m *ir.Module, opts Options) (*Plan, error) {
	p := &Plan{
		BufferOf: map[*ir.Value]*Buffer{},
		External: map[*ir.Value]*ir.Value{},
		InPlace:  map[*ir.Value]int{},
		Scratch:  map[*ir.Value]*Buffer{},
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
	join := func(b *Buffer, v *ir.Value) {
		b.Members = append(b.Members, v)
		p.BufferOf[v] = b
		if isOutput[v] {
			b.Pinned = true
		}
	}
	// dies reports whether nothing after op i reads buffer b.
	dies := func(b *Buffer, i int) bool {
		if b.Pinned || b.First < 0 {
			return false // outputs live on; inputs are the caller's data
		}
		for _, v := range b.Members {
			if lastUse[v] > i {
				return false
			}
		}
		return true
	}
	newBuffer := func(size, first int) *Buffer {
		b := &Buffer{Size: size, First: first}
		p.Buffers = append(p.Buffers, b)
		return b
	}
	if opts.Inputs {
		for _, v := range m.Inputs {
			join(newBuffer(opts.Size(v), -1), v)
		}
	}
	isScratch := map[*Buffer]bool{}
	for i, v := range m.Body {
		if opts.Outside[v] {
			continue
		}
		if opts.Scratch != nil {
			if n := opts.Scratch(v); n > 0 {
				b := newBuffer(n, i)
				b.Last = i
				isScratch[b] = true
				p.Scratch[v] = b
			}
		}
		if v.Op == "reshape" {
			a := v.Args[0]
			if b := p.BufferOf[a]; b != nil {
				join(b, v)
				continue
			}
			root := a
			if r, ok := p.External[a]; ok {
				root = r
			}
			p.External[v] = root
			continue
		}
		reused := false
		for j, a := range v.Args {
			b := p.BufferOf[a]
			if b == nil || !inPlaceOK(v, j) || !dies(b, i) {
				continue
			}
			p.InPlace[v] = j
			join(b, v)
			reused = true
			break
		}
		if !reused {
			join(newBuffer(opts.Size(v), i), v)
		}
	}
	if opts.CopyOutputs {
		p.planCopies(m, opts)
	}
	for _, b := range p.Buffers {
		if isScratch[b] {
			continue
		}
		b.Last = max(b.First, 0)
		if b.Pinned {
			b.Last = end
			continue
		}
		for _, v := range b.Members {
			b.Last = max(b.Last, lastUse[v])
		}
	}
	if err := p.place(opts.Align); err != nil {
		return nil, fmt.Errorf("memory plan of module %s: %w", m.Name, err)
	}
	return p, nil
}

// planCopies lists the outputs whose memory is not the arena's, each once, with a pinned
// buffer after the last op for float data.
func (p *Plan) planCopies(m *ir.Module, opts Options) {
	for _, v := range m.Outputs {
		root, ok := p.External[v]
		if !ok && v.Kind == ir.KindOp && !opts.Outside[v] {
			continue
		}
		if !ok {
			root = v // an input, a parameter or an Outside value given back as it is
		}
		if slices.ContainsFunc(p.Copies, func(c *OutputCopy) bool { return c.Value == v }) {
			continue
		}
		c := &OutputCopy{Value: v, From: root}
		if v.Type.DType.IsFloat() {
			c.Buf = &Buffer{Size: opts.Size(v), First: len(m.Body), Pinned: true}
			p.Buffers = append(p.Buffers, c.Buf)
		}
		p.Copies = append(p.Copies, c)
	}
}

// place gives each buffer an offset: largest first, each at the lowest aligned offset that
// no buffer alive at the same time overlaps (a greedy first fit, deterministic). Generated
// code for sizes chosen at run time places its buffers the same way (runtime.PlaceBuffers).
func (p *Plan) place(align int) error {
	sizes := make([]int, len(p.Buffers))
	first := make([]int, len(p.Buffers))
	last := make([]int, len(p.Buffers))
	offsets := make([]int, len(p.Buffers))
	for i, b := range p.Buffers {
		sizes[i], first[i], last[i] = b.Size, b.First, b.Last
	}
	n, err := runtime.PlaceBuffers(sizes, first, last, align, offsets)
	if err != nil {
		return err
	}
	for i, b := range p.Buffers {
		b.Offset = offsets[i]
	}
	p.ArenaLen = n
	return nil
}

// PeakLive is the largest sum of sizes of buffers alive at one op: a lower bound for the
// arena, which tests compare the plan against, and the memory the interpreter needs. A sum
// beyond an int is math.MaxInt.
func (p *Plan) PeakLive(steps int) int {
	peak := 0
	for i := -1; i <= steps; i++ {
		n := 0
		for _, b := range p.Buffers {
			if b.First <= i && i <= b.Last {
				var ok bool
				if n, ok = ir.AddChecked(n, b.Size); !ok {
					return math.MaxInt
				}
			}
		}
		peak = max(peak, n)
	}
	return peak
}
