package memplan

import (
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/ir"
)

func elements(v *ir.Value) int {
	n := 1
	for _, d := range v.Type.Shape {
		n *= d.N
	}
	return n
}

// check verifies a plan: buffers alive at the same time never overlap, each is aligned
// and inside the arena, every member fills its buffer, and the arena is no smaller than
// the live set at its peak.
func check(t *testing.T, m *ir.Module, p *Plan, opts Options) {
	t.Helper()
	for i, a := range p.Buffers {
		if a.Offset%opts.Align != 0 || a.Offset+a.Size > p.ArenaLen {
			t.Errorf("buffer at %d of %d is misaligned or outside the arena of %d", a.Offset, a.Size, p.ArenaLen)
		}
		for _, b := range p.Buffers[i+1:] {
			live := a.First <= b.Last && b.First <= a.Last
			overlap := a.Offset < b.Offset+b.Size && b.Offset < a.Offset+a.Size
			if live && overlap && a.Size > 0 && b.Size > 0 {
				t.Errorf("buffers [%d,+%d) live %d..%d and [%d,+%d) live %d..%d overlap", a.Offset, a.Size, a.First, a.Last, b.Offset, b.Size, b.First, b.Last)
			}
		}
		for _, v := range a.Members {
			if opts.Size(v) != a.Size {
				t.Errorf("%s (%s) does not fill its buffer of %d", v.Ref(), v.Type, a.Size)
			}
		}
	}
	if peak := p.PeakLive(len(m.Body)); p.ArenaLen < peak {
		t.Errorf("arena of %d is below the live peak %d", p.ArenaLen, peak)
	}
}

// TestViewsAndCopies checks reshapes (views, never copies) and outputs that are inputs or
// views of inputs (copied into buffers of their own).
func TestViewsAndCopies(t *testing.T) {
	m := testutil.ParseIR(t, `module views
scope "" Test key ""
input %x: f32[2, 6]
%0: f32[3, 4] = reshape(%x) in ""
%1: f32[3, 4] = relu(%0) in ""
%2: f32[12] = reshape(%1) in ""
output %2, %0, %x
`)
	opts := Options{Size: elements, Align: 16, CopyOutputs: true}
	p, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.BufferOf[m.Body[2]] != p.BufferOf[m.Body[1]] {
		t.Error("the reshape of the relu does not share its buffer")
	}
	if p.External[m.Body[0]] != m.Inputs[0] {
		t.Error("the reshape of the input is not a view of it")
	}
	if len(p.Copies) != 2 || p.Copies[0].From != m.Inputs[0] || p.Copies[1].Value != m.Inputs[0] {
		t.Fatalf("output copies %+v, want %%0 and %%x, both from %%x", p.Copies)
	}
	if _, ok := p.InPlace[m.Body[1]]; ok {
		t.Error("relu overwrites a view of the input")
	}
	out := p.BufferOf[m.Outputs[0]]
	if out == nil || !out.Pinned || out.Last != len(m.Body) {
		t.Errorf("output buffer %+v is not kept to the end", out)
	}
	check(t, m, p, opts)
}

// TestInPlaceAndReuse checks that element-wise ops overwrite an operand that dies with
// them, and only then, and that dead buffers are reused.
func TestInPlaceAndReuse(t *testing.T) {
	m := testutil.ParseIR(t, `module chain
scope "" Test key ""
input %x: f32[3, 5]
param @b: f32[5] key "b" in ""
%0: f32[3, 5] = add(%x, @b) in ""
%1: f32[3, 5] = relu(%0) in ""
%2: f32[3, 5] = add(%1, @b) in ""
%3: f32[3, 5] = mul(%2, %1) in ""
%4: f32[5, 3] = transpose(%3) {dims=[1, 0]} in ""
%5: f32[5, 3] = transpose(%4) {dims=[1, 0]} in ""
%6: f32[5, 3] = transpose(%5) {dims=[1, 0]} in ""
output %6
`)
	opts := Options{Size: elements, Align: 4, CopyOutputs: true}
	p, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.InPlace[m.Body[0]]; ok {
		t.Error("add overwrites the caller's input")
	}
	if j, ok := p.InPlace[m.Body[1]]; !ok || j != 0 {
		t.Error("relu does not run in place over its dying operand")
	}
	if _, ok := p.InPlace[m.Body[2]]; ok {
		t.Error("add overwrites %1, which mul reads later")
	}
	if j, ok := p.InPlace[m.Body[3]]; !ok || j != 0 {
		t.Errorf("mul in place over operand %d, %v; want 0", j, ok)
	}
	if p.BufferOf[m.Body[4]].Offset != p.BufferOf[m.Body[6]].Offset {
		t.Error("the buffer of %4, dead when %6 is written, is not reused")
	}
	if len(p.Copies) != 0 {
		t.Errorf("%d output copies, want none", len(p.Copies))
	}
	check(t, m, p, opts)
}

// TestInputsScratchOutside checks the options a target may set: inputs in the arena
// (never overwritten), scratch alive during its op only, and values left out of the arena
// (copied when they are outputs).
func TestInputsScratchOutside(t *testing.T) {
	m := testutil.ParseIR(t, `module opts
scope "" Test key ""
input %x: f32[4, 8]
param @w: f32[4, 8] key "w" in ""
%0: f32[4, 8] = relu(@w) in ""
%1: f32[4, 8] = add(%x, %0) in ""
%2: f32[4, 8] = relu(%x) in ""
output %2, %0
`)
	bytes := func(v *ir.Value) int { return 4 * elements(v) }
	opts := Options{
		Size:  bytes,
		Align: 256,
		Scratch: func(v *ir.Value) int {
			if v.Op == "add" {
				return 100
			}
			return 0
		},
		Outside:     map[*ir.Value]bool{m.Body[0]: true},
		Inputs:      true,
		CopyOutputs: true,
	}
	p, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	in := p.BufferOf[m.Inputs[0]]
	if in == nil || in.First != -1 {
		t.Fatalf("input buffer %+v, want one written before the first op", in)
	}
	if _, ok := p.InPlace[m.Body[2]]; ok {
		t.Error("relu overwrites the input")
	}
	if p.BufferOf[m.Body[0]] != nil {
		t.Error("an Outside value is in the arena")
	}
	s := p.Scratch[m.Body[1]]
	if s == nil || s.Size != 100 || s.First != 1 || s.Last != 1 || len(p.Scratch) != 1 {
		t.Errorf("scratch %+v (%d in all), want one of 100 alive at op 1", s, len(p.Scratch))
	}
	if len(p.Copies) != 1 || p.Copies[0].From != m.Body[0] || p.Copies[0].Buf == nil || p.Copies[0].Buf.Size != bytes(m.Body[0]) {
		t.Errorf("output copies %+v, want one of %%0 in a buffer of its own", p.Copies)
	}
	check(t, m, p, opts)
}
