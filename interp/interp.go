// Package interp runs an ir.Module directly, op by op, with the CPU kernels of package
// kernels. It is rfc's numeric oracle: compiled code is checked against it, and it is checked
// against PyTorch goldens. It favours clarity over speed, but keeps memory near the live set:
// each intermediate is dropped after its last use, and element-wise ops overwrite an operand
// that dies with them.
package interp

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/codegen/memplan"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// Run executes m on inputs (matched by name) with weights w and returns the outputs in the
// order of m.Outputs. Every shape of m must be static; the inputs must match their declared
// dtype and shape and w must hold every parameter with its declared shape. Errors name the
// value, the op and the shapes concerned; a kernel panic becomes an error naming the op.
func Run(m *ir.Module, w Weights, inputs map[string]*runtime.Tensor) ([]*runtime.Tensor, error) {
	if m == nil {
		return nil, errors.New("interp: nil module")
	}
	if err := checkModule(m); err != nil {
		return nil, err
	}
	if err := checkMemory(m); err != nil {
		return nil, err
	}
	mc := newMachine(m)
	if err := mc.bindInputs(inputs); err != nil {
		return nil, err
	}
	if err := mc.bindWeights(w); err != nil {
		return nil, err
	}
	for i, v := range m.Body {
		if err := mc.step(i, v); err != nil {
			return nil, err
		}
	}
	outs := make([]*runtime.Tensor, len(m.Outputs))
	for i, v := range m.Outputs {
		s := mc.slots[v]
		if s == nil {
			return nil, fmt.Errorf("interp: output %d (%s) was never computed", i, v.Ref())
		}
		t := s.t
		// An output that shares the caller's memory (an input, a weight, or a reshape of one)
		// is copied, so that writing to it cannot change them.
		if s.st.external {
			t = cloneTensor(t)
		}
		outs[i] = t
	}
	return outs, nil
}

// checkModule refuses what Run cannot execute before any work is done: symbolic shapes,
// ops the interpreter does not know, and ops whose declared type disagrees with the rule of
// the op catalogue (the kernels trust the shapes they are given).
func checkModule(m *ir.Module) error {
	var problems []string
	// Symbolic shapes spread from the inputs to most ops: name the inputs and parameters,
	// the first op, and count the rest.
	symbolicOps := 0
	symbolic := func(what string, v *ir.Value) {
		if v.Type.Shape.Static() {
			return
		}
		if v.Kind == ir.KindOp {
			if symbolicOps++; symbolicOps > 1 {
				return
			}
		}
		problems = append(problems, fmt.Sprintf("%s has the symbolic shape %s; the interpreter needs static shapes (bind the dims first)", what, v.Type))
	}
	sized := func(what string, v *ir.Value) {
		if err := ir.CheckSize(what, v.Type); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, v := range m.Inputs {
		symbolic("input "+v.Ref(), v)
		sized("input "+v.Ref(), v)
	}
	for _, v := range m.Params {
		symbolic(fmt.Sprintf("parameter %s (key %q)", v.Ref(), v.Key), v)
		sized(fmt.Sprintf("parameter %s (key %q)", v.Ref(), v.Key), v)
	}
	defined := map[*ir.Value]bool{}
	for _, v := range m.Inputs {
		defined[v] = true
	}
	for _, v := range m.Params {
		defined[v] = true
	}
	for _, v := range m.Body {
		if v == nil {
			problems = append(problems, "nil value in the module body")
			continue
		}
		where := ir.FormatValue(v)
		if v.Kind != ir.KindOp {
			problems = append(problems, fmt.Sprintf("%s: a value of the body is not an op", where))
			continue
		}
		if _, ok := opTable[v.Op]; !ok {
			problems = append(problems, fmt.Sprintf("%s: the interpreter does not know op %q", where, v.Op))
			defined[v] = true
			continue
		}
		usable := true
		for i, a := range v.Args {
			if a == nil || !defined[a] {
				problems = append(problems, fmt.Sprintf("%s: operand %d is not defined before use", where, i))
				usable = false
			}
		}
		defined[v] = true
		if !usable {
			continue
		}
		if !v.Type.Shape.Static() {
			symbolic(where, v)
			continue
		}
		t, err := ir.Infer(v)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
		case !t.Equal(v.Type):
			problems = append(problems, fmt.Sprintf("%s: declared %s, but the rule of %s gives %s", where, v.Type, v.Op, t))
		}
	}
	if symbolicOps > 1 {
		problems = append(problems, fmt.Sprintf("(and %d more ops of symbolic shape)", symbolicOps-1))
	}
	if len(m.Outputs) == 0 {
		problems = append(problems, fmt.Sprintf("module %s has no output", m.Name))
	}
	for i, v := range m.Outputs {
		if v == nil || !defined[v] {
			problems = append(problems, fmt.Sprintf("output %d is not a value of the module", i))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("interp: module %s cannot run:\n%s", m.Name, strings.Join(problems, "\n"))
	}
	return nil
}

// checkMemory refuses a module whose intermediates cannot fit in the memory the machine
// has: the peak of the bytes alive at once (the interpreter frees each value after its
// last use and overwrites dying operands, as the memory planner assumes), before anything
// is allocated. A model too large is then an error stating its size, not a crash of the Go
// runtime.
func checkMemory(m *ir.Module) error {
	p, err := memplan.New(m, memplan.Options{
		Size:  func(v *ir.Value) int { b, _ := v.Type.Bytes(); return b },
		Align: 1,
	})
	if err != nil {
		return fmt.Errorf("interp: %w", err)
	}
	peak := p.PeakLive(len(m.Body))
	if err := runtime.CheckMemory(fmt.Sprintf("interp: module %s (its intermediates at their peak)", m.Name), int64(peak)); err != nil {
		return err
	}
	return nil
}

// storage is one buffer, shared by the live values that view it (a reshape shares its
// operand's). An op may overwrite a dying operand only when no other live value views it.
type storage struct {
	refs     int
	external bool // owned by the caller (an input or a weight): never written
}

type slot struct {
	t  *runtime.Tensor
	st *storage
}

type machine struct {
	m       *ir.Module
	slots   map[*ir.Value]*slot
	lastUse map[*ir.Value]int // body index of the last op reading the value
	output  map[*ir.Value]bool
}

func newMachine(m *ir.Module) *machine {
	mc := &machine{
		m:       m,
		slots:   map[*ir.Value]*slot{},
		lastUse: map[*ir.Value]int{},
		output:  map[*ir.Value]bool{},
	}
	for i, v := range m.Body {
		for _, a := range v.Args {
			mc.lastUse[a] = i
		}
	}
	for _, v := range m.Outputs {
		mc.output[v] = true
	}
	return mc
}

func (mc *machine) bindInputs(inputs map[string]*runtime.Tensor) error {
	var problems []string
	for _, in := range mc.m.Inputs {
		t, ok := inputs[in.Name]
		if !ok || t == nil {
			problems = append(problems, fmt.Sprintf("missing input %s: %s", in.Ref(), in.Type))
			continue
		}
		if err := checkTensor(t, in.Type); err != nil {
			problems = append(problems, fmt.Sprintf("input %s: declared %s, got %s", in.Ref(), in.Type, err))
			continue
		}
		mc.slots[in] = &slot{t: t, st: &storage{refs: 1, external: true}}
	}
	var extra []string
	for name := range inputs {
		if mc.m.Input(name) == nil {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	for _, name := range extra {
		problems = append(problems, fmt.Sprintf("unexpected input %q (shape %s): module %s has no such input", name, tensorShape(inputs[name]), mc.m.Name))
	}
	if len(problems) > 0 {
		return fmt.Errorf("interp: %s", strings.Join(problems, "\n"))
	}
	return nil
}

func (mc *machine) bindWeights(w Weights) error {
	var problems []string
	for _, p := range mc.m.Params {
		t := w[p]
		if t == nil {
			problems = append(problems, fmt.Sprintf("no weight for parameter %s (key %q, %s)", p.Ref(), p.Key, p.Type))
			continue
		}
		if err := checkTensor(t, ir.F32Of(p.Type.Shape)); err != nil {
			problems = append(problems, fmt.Sprintf("weight of parameter %s (key %q): declared %s, got %s", p.Ref(), p.Key, p.Type, err))
			continue
		}
		mc.slots[p] = &slot{t: t, st: &storage{refs: 1, external: true}}
	}
	if len(problems) > 0 {
		return fmt.Errorf("interp: %s", strings.Join(problems, "\n"))
	}
	return nil
}

// checkTensor compares a tensor with a declared type: floating-point types want an F32
// tensor, integer types an I64 one (indices arrive widened to int64).
func checkTensor(t *runtime.Tensor, want ir.Type) error {
	wantDType := runtime.F32
	if !want.DType.IsFloat() {
		wantDType = runtime.I64
	}
	if t.DType != wantDType {
		return fmt.Errorf("%s data of shape %s (%s values need %s data)", t.DType, runtime.FormatInts(t.Shape), want.DType, wantDType)
	}
	if !slices.Equal(t.Shape, want.Shape.Ints()) {
		return fmt.Errorf("shape %s", runtime.FormatInts(t.Shape))
	}
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	have := len(t.F32)
	if t.DType == runtime.I64 {
		have = len(t.I64)
	}
	if have != n {
		return fmt.Errorf("shape %s with %d elements of data, not %d", runtime.FormatInts(t.Shape), have, n)
	}
	return nil
}

// step runs op i and drops the operands it was the last reader of.
func (mc *machine) step(i int, v *ir.Value) error {
	c := &call{mc: mc, v: v, index: i, args: make([]*runtime.Tensor, len(v.Args))}
	for j, a := range v.Args {
		s := mc.slots[a]
		if s == nil {
			return fmt.Errorf("interp: %s: operand %s has no value", ir.FormatValue(v), a.Ref())
		}
		c.args[j] = s.t
	}
	out, err := c.run()
	if err != nil {
		return err
	}
	if want := v.Type.Shape.Ints(); !slices.Equal(out.Shape, want) {
		return fmt.Errorf("interp: %s: op produced shape %s", ir.FormatValue(v), runtime.FormatInts(out.Shape))
	}
	st := c.outStorage
	if st == nil {
		st = &storage{}
	}
	st.refs++
	mc.slots[v] = &slot{t: out, st: st}
	for j, a := range v.Args {
		if mc.lastUse[a] == i && !slices.Contains(v.Args[:j], a) {
			mc.release(a)
		}
	}
	if _, used := mc.lastUse[v]; !used {
		mc.release(v)
	}
	return nil
}

// release drops a value that no later op reads; outputs are kept.
func (mc *machine) release(v *ir.Value) {
	if mc.output[v] || v.Kind != ir.KindOp {
		return
	}
	if s := mc.slots[v]; s != nil {
		s.st.refs--
		delete(mc.slots, v)
	}
}

// call is one execution of an op: its operands, and the storage of its result when it
// reuses or shares an operand's.
type call struct {
	mc         *machine
	v          *ir.Value
	index      int
	args       []*runtime.Tensor
	outStorage *storage
}

func (c *call) run() (out *runtime.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("interp: %s: kernel of %s panicked: %v", ir.FormatValue(c.v), c.v.Op, r)
		}
	}()
	out, err = opTable[c.v.Op](c)
	if err != nil {
		return nil, fmt.Errorf("interp: %s: %w", ir.FormatValue(c.v), err)
	}
	return out, nil
}

// outShape is the static shape of the result.
func (c *call) outShape() []int { return c.v.Type.Shape.Ints() }

// newOut allocates a zeroed result tensor.
func (c *call) newOut() *runtime.Tensor { return runtime.NewTensor(c.outShape()...) }

// outOver returns a result tensor that overwrites operand j when that operand dies here, is
// an op result nothing else views, and has the result's shape; otherwise a fresh one. Only
// element-wise ops, whose kernels allow y to alias x, call it.
func (c *call) outOver(j int) *runtime.Tensor {
	if !c.reusable(j) {
		return c.newOut()
	}
	// The operand's storage passes to the result; the operand keeps a storage of its own,
	// which its release then drops.
	s := c.mc.slots[c.v.Args[j]]
	c.outStorage = s.st
	s.st.refs--
	s.st = &storage{refs: 1}
	return &runtime.Tensor{DType: runtime.F32, Shape: c.outShape(), F32: s.t.F32}
}

// reusable reports whether operand j may be overwritten by the result: it dies at this op,
// is an op result that no other live value views and that is not an output, and has the
// result's shape.
func (c *call) reusable(j int) bool {
	a := c.v.Args[j]
	s := c.mc.slots[a]
	return a.Kind == ir.KindOp && c.mc.lastUse[a] == c.index && !c.mc.output[a] && s != nil &&
		!s.st.external && s.st.refs == 1 && s.t.DType == runtime.F32 && slices.Equal(s.t.Shape, c.outShape())
}

// view returns a result that shares operand j's data under the result's shape (reshape).
func (c *call) view(j int) *runtime.Tensor {
	s := c.mc.slots[c.v.Args[j]]
	c.outStorage = s.st
	return &runtime.Tensor{DType: s.t.DType, Shape: c.outShape(), F32: s.t.F32, I64: s.t.I64}
}

func cloneTensor(t *runtime.Tensor) *runtime.Tensor {
	return &runtime.Tensor{DType: t.DType, Shape: slices.Clone(t.Shape), F32: slices.Clone(t.F32), I64: slices.Clone(t.I64)}
}
