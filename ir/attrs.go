package ir

import (
	"fmt"
	"math"
	"math/big"
	"slices"
)

// Typed attributes. Passes and back ends (interp, codegen, codegen/cuda) read an op's
// attributes through these accessors, never by name: what each attribute means, its
// default and its enum values live here, beside the catalogue (ops.go) that validates
// them. The accessors trust a verified op (Infer has checked every attribute); on an
// unverified one they return zero values and invalid enums, never panic.

// Activation is an element-wise function: what an activation op computes (relu, …, exp,
// and gelu with its approximation), the activation attribute of glu and linear_glu, and the
// act attribute of fused ops (ActNone there means none). Its zero value is no activation
// at all: an attribute that did not parse.
type Activation uint8

const (
	ActNone Activation = iota + 1
	ActReLU
	ActSiLU
	ActSigmoid
	ActTanh
	ActSin
	ActCos
	ActExp
	ActGeLU        // exact (erf) GeLU
	ActGeLUTanh    // GeLU, tanh approximation
	ActGeLUSigmoid // GeLU as x·σ(1.702x)
)

// activationInfo is the activation table: the IR name of each activation, whether it is an
// op of its own (gelu is one op for three activations, by its approximate attribute),
// whether glu may name it and whether fused ops may apply it. Adding an activation op
// starts with a row here (see docs/ADDING_AN_OP.md).
var activationInfo = [...]struct {
	name            string
	op, glu, fused  bool
	geluApproximate GeLUApprox
}{
	ActNone:        {name: "none", fused: true},
	ActReLU:        {name: "relu", op: true, glu: true, fused: true},
	ActSiLU:        {name: "silu", op: true, glu: true, fused: true},
	ActSigmoid:     {name: "sigmoid", op: true, glu: true, fused: true},
	ActTanh:        {name: "tanh", op: true, glu: true, fused: true},
	ActSin:         {name: "sin", op: true, glu: true},
	ActCos:         {name: "cos", op: true, glu: true},
	ActExp:         {name: "exp", op: true, glu: true},
	ActGeLU:        {name: "gelu", glu: true, fused: true, geluApproximate: GeLUExact},
	ActGeLUTanh:    {name: "gelu_tanh", fused: true, geluApproximate: GeLUTanh},
	ActGeLUSigmoid: {name: "gelu_sigmoid", fused: true, geluApproximate: GeLUSigmoid},
}

func (a Activation) valid() bool { return a >= ActNone && int(a) < len(activationInfo) }

// String is the IR name: the op's name for an activation op, the attribute value otherwise.
func (a Activation) String() string {
	if a.valid() {
		return activationInfo[a].name
	}
	return fmt.Sprintf("Activation(%d)", uint8(a))
}

// ParseActivation reads a name String gives.
func ParseActivation(name string) (Activation, bool) {
	for a := ActNone; a.valid(); a++ {
		if activationInfo[a].name == name {
			return a, true
		}
	}
	return 0, false
}

// GeLU returns the approximation of a GeLU activation; false for the others.
func (a Activation) GeLU() (GeLUApprox, bool) {
	if !a.valid() || activationInfo[a].geluApproximate == 0 {
		return 0, false
	}
	return activationInfo[a].geluApproximate, true
}

// Fusable reports whether fused ops may apply a (it is in FusedActivations).
func (a Activation) Fusable() bool { return a.valid() && activationInfo[a].fused }

func activationsWhere(keep func(i int) bool) []Activation {
	var out []Activation
	for a := ActNone; a.valid(); a++ {
		if keep(int(a)) {
			out = append(out, a)
		}
	}
	return out
}

var (
	// AllActivations lists every activation, in enum order: back ends' completeness tests
	// range over it.
	AllActivations = activationsWhere(func(int) bool { return true })
	// Activations are the values of the activation attribute of glu (and linear_glu): the
	// activation ops by name, gelu being the exact GeLU.
	Activations = activationsWhere(func(i int) bool { return activationInfo[i].glu })
	// FusedActivations are the values of the act attribute of fused ops: the activation the
	// op applies last. gelu is the exact GeLU; gelu_tanh and gelu_sigmoid are gelu with
	// approximate="tanh" and "sigmoid".
	FusedActivations = activationsWhere(func(i int) bool { return activationInfo[i].fused })
	// activationOps are the activation ops named like their activation (gelu, which takes
	// an approximation, is registered on its own).
	activationOps = activationsWhere(func(i int) bool { return activationInfo[i].op })
)

// GeLUApprox is the formula of a GeLU, as Refiners' GeLU(approximation=…) and the
// approximate attribute of the gelu op name it.
type GeLUApprox uint8

const (
	GeLUExact   GeLUApprox = iota + 1 // x·Φ(x) with the exact erf: "none"
	GeLUTanh                          // x/2·(1+tanh(√(2/π)·(x+0.044715x³))): "tanh"
	GeLUSigmoid                       // x·σ(1.702x): "sigmoid"
)

var geluNames = []string{GeLUExact: "none", GeLUTanh: "tanh", GeLUSigmoid: "sigmoid"}

// GeLUApproxes lists the approximations, for back ends' completeness tests.
var GeLUApproxes = []GeLUApprox{GeLUExact, GeLUTanh, GeLUSigmoid}

func (g GeLUApprox) String() string { return enumName(geluNames, int(g), "GeLUApprox") }

// Activation is the activation of a gelu op with this approximation.
func (g GeLUApprox) Activation() Activation {
	for a := ActNone; a.valid(); a++ {
		if activationInfo[a].geluApproximate == g && g != 0 {
			return a
		}
	}
	return 0
}

// enumName is names[i], or a placeholder naming the type for a value out of the table.
func enumName(names []string, i int, typ string) string {
	if i > 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", typ, i)
}

// parseEnum finds s among names (index 0 is the invalid zero value and never matches).
func parseEnum(names []string, s string) (int, bool) {
	if i := slices.Index(names, s); i > 0 {
		return i, true
	}
	return 0, false
}

// ActivationOp returns what an activation op computes: relu…exp by the op's name, gelu by
// its approximation. It is false for every other op.
func (v *Value) ActivationOp() (Activation, bool) {
	if v.Op == "gelu" {
		g, ok := parseEnum(geluNames, v.Str("approximate", ""))
		return GeLUApprox(g).Activation(), ok
	}
	a, ok := ParseActivation(v.Op)
	if !ok || !activationInfo[a].op {
		return 0, false
	}
	return a, true
}

// GLUActivation is the activation glu and linear_glu apply to the gate half.
func (v *Value) GLUActivation() Activation {
	a, _ := ParseActivation(v.Str("activation", ""))
	return a
}

// FusedAct is the act attribute of a fused op: the activation it applies last.
func (v *Value) FusedAct() Activation {
	a, _ := ParseActivation(v.Str("act", ""))
	return a
}

// ActAttr is the act attribute of a fused op applying a.
func ActAttr(a Activation) Attr { return Attr{Name: "act", Value: a.String()} }

// GLUActivationAttr is the activation attribute of glu and linear_glu.
func GLUActivationAttr(a Activation) Attr { return Attr{Name: "activation", Value: a.String()} }

// ConvParams are the attributes of conv2d, conv_transpose2d and conv2d_fused: pairs are
// (height, width).
type ConvParams struct {
	Stride, Padding, Dilation [2]int
	OutputPadding             [2]int // conv_transpose2d only
	Groups                    int
}

// Conv reads the convolution attributes.
func (v *Value) Conv() ConvParams {
	p, _ := convParams(v)
	return p
}

func pair(v *Value, name string) ([2]int, error) {
	s := v.Ints(name)
	if len(s) != 2 {
		return [2]int{}, fmt.Errorf("%s needs 2 values, got %v", name, s)
	}
	return [2]int{s[0], s[1]}, nil
}

func convParams(v *Value) (p ConvParams, err error) {
	if p.Stride, err = pair(v, "stride"); err != nil {
		return
	}
	if p.Padding, err = pair(v, "padding"); err != nil {
		return
	}
	if p.Dilation, err = pair(v, "dilation"); err != nil {
		return
	}
	if v.Op == "conv_transpose2d" {
		if p.OutputPadding, err = pair(v, "output_padding"); err != nil {
			return
		}
	}
	p.Groups = v.Int("groups", 1)
	for i := 0; i < 2; i++ {
		if p.Stride[i] < 1 || p.Dilation[i] < 1 || p.Padding[i] < 0 {
			err = fmt.Errorf("stride %v and dilation %v must be ≥ 1 and padding %v ≥ 0", p.Stride, p.Dilation, p.Padding)
			return
		}
	}
	if p.Groups < 1 {
		err = fmt.Errorf("groups must be ≥ 1, got %d", p.Groups)
	}
	return
}

// NormParams are the attributes of the normalizations: Axes (layer_norm, layer_norm_act:
// how many trailing dims are normalized together), Groups (group_norm, group_norm_act) and
// Eps (all).
type NormParams struct {
	Axes, Groups int
	Eps          float64
}

// Norm reads the normalization attributes.
func (v *Value) Norm() NormParams {
	return NormParams{Axes: v.Int("axes", 1), Groups: v.Int("groups", 1), Eps: v.Float("eps", 1e-5)}
}

// EpilogueParams are the epilogue attributes of conv2d_fused and linear_fused: the
// result is Act(y·Scale + Shift + residual), the affine step only when Affine reports it.
type EpilogueParams struct {
	Scale, Shift float64
	Residual     bool // the residual is the op's last operand
	Act          Activation
}

// Affine reports whether the epilogue has an affine step (scale ≠ 1 or shift ≠ 0).
func (e EpilogueParams) Affine() bool { return e.Scale != 1 || e.Shift != 0 }

// Epilogue reads the epilogue attributes of a fused conv2d or linear.
func (v *Value) Epilogue() EpilogueParams {
	return EpilogueParams{Scale: v.Float("scale", 1), Shift: v.Float("shift", 0), Residual: v.Bool("residual", false), Act: v.FusedAct()}
}

// EpilogueAttrs are the epilogue attributes of a fused op, in the catalogue's order.
func EpilogueAttrs(e EpilogueParams) []Attr {
	return []Attr{{Name: "scale", Value: e.Scale}, {Name: "shift", Value: e.Shift}, {Name: "residual", Value: e.Residual}, ActAttr(e.Act)}
}

// ClampRange is the [min, max] of clamp.
func (v *Value) ClampRange() (lo, hi float64) { return v.Float("min", 0), v.Float("max", 0) }

// ScaleBias is the affine map x·scale + bias of a scale op.
func (v *Value) ScaleBias() (scale, bias float64) { return v.Float("scale", 1), v.Float("bias", 0) }

// ScaleAttrs are the attributes of a scale op computing x·scale + bias.
func ScaleAttrs(scale, bias float64) []Attr {
	return []Attr{{Name: "scale", Value: scale}, {Name: "bias", Value: bias}}
}

// AttentionParams are the attributes of sdpa.
type AttentionParams struct {
	Heads  int
	Causal bool
}

// Attention reads the attributes of sdpa.
func (v *Value) Attention() AttentionParams {
	return AttentionParams{Heads: v.Int("heads", 1), Causal: v.Bool("causal", false)}
}

// Axis resolves a possibly negative dim against a rank (the catalogue has checked its
// range).
func Axis(d, rank int) int {
	if d < 0 {
		return d + rank
	}
	return d
}

// checkAxis resolves d as Axis does, refusing a dim outside the rank.
func checkAxis(d, rank int) (int, error) {
	if d < -rank || d >= rank {
		return 0, fmt.Errorf("dim %d is out of range for rank %d", d, rank)
	}
	return Axis(d, rank), nil
}

// Axis is the dim attribute of softmax, slice and concat, resolved against the rank of the
// first operand.
func (v *Value) Axis() int {
	if len(v.Args) == 0 {
		return v.Int("dim", 0)
	}
	return Axis(v.Int("dim", 0), len(v.Args[0].Type.Shape))
}

// SliceParams are the attributes of slice: [Start:End:Step] along Dim (resolved).
type SliceParams struct{ Dim, Start, End, Step int }

// Slice reads the attributes of slice.
func (v *Value) Slice() SliceParams {
	return SliceParams{Dim: v.Axis(), Start: v.Int("start", 0), End: v.Int("end", 0), Step: v.Int("step", 1)}
}

// Perm is the permutation of permute: result dim i is operand dim Perm[i].
func (v *Value) Perm() []int { return v.Ints("perm") }

// PermAttr is the attribute of a permute op.
func PermAttr(perm []int) Attr { return Attr{Name: "perm", Value: perm} }

// Factor is the factor of pixel_shuffle and pixel_unshuffle.
func (v *Value) Factor() int { return v.Int("factor", 1) }

// PadMode is how pad fills the border.
type PadMode uint8

const (
	PadConstant  PadMode = iota + 1 // the value
	PadReflect                      // the mirror image, edge excluded
	PadReplicate                    // the edge repeated
)

var padModeNames = []string{PadConstant: "constant", PadReflect: "reflect", PadReplicate: "replicate"}

// PadModes lists the modes, for back ends' completeness tests.
var PadModes = []PadMode{PadConstant, PadReflect, PadReplicate}

func (m PadMode) String() string { return enumName(padModeNames, int(m), "PadMode") }

// PadParams are the attributes of pad: Pads lists (low, high) pairs from the last dim
// backwards, as torch.nn.functional.pad.
type PadParams struct {
	Pads  []int
	Mode  PadMode
	Value float64 // the fill of PadConstant
}

// Pad reads the attributes of pad.
func (v *Value) Pad() PadParams {
	m, _ := parseEnum(padModeNames, v.Str("mode", ""))
	return PadParams{Pads: v.Ints("pads"), Mode: PadMode(m), Value: v.Float("value", 0)}
}

// UpsampleMode is the interpolation of upsample.
type UpsampleMode uint8

const (
	UpsampleNearest UpsampleMode = iota + 1
	UpsampleBilinear
)

var upsampleModeNames = []string{UpsampleNearest: "nearest", UpsampleBilinear: "bilinear"}

// UpsampleModes lists the modes, for back ends' completeness tests.
var UpsampleModes = []UpsampleMode{UpsampleNearest, UpsampleBilinear}

func (m UpsampleMode) String() string { return enumName(upsampleModeNames, int(m), "UpsampleMode") }

// UpsampleParams are the attributes of upsample: the output's (height, width).
type UpsampleParams struct {
	Mode         UpsampleMode
	Size         [2]int
	AlignCorners bool // bilinear only
}

// Upsample reads the attributes of upsample.
func (v *Value) Upsample() UpsampleParams {
	m, _ := parseEnum(upsampleModeNames, v.Str("mode", ""))
	size, _ := pair(v, "size")
	return UpsampleParams{Mode: UpsampleMode(m), Size: size, AlignCorners: v.Bool("align_corners", false)}
}

// ArangeParams are the attributes of arange: the values Start, Start+Step, … up to End
// (excluded), of type DType, as torch.arange(start, end, step).
type ArangeParams struct {
	Start, End, Step int
	DType            DType
}

// Arange reads the attributes of arange.
func (v *Value) Arange() ArangeParams {
	d, _ := ParseDType(v.Str("dtype", ""))
	return ArangeParams{Start: v.Int("start", 0), End: v.Int("end", 0), Step: v.Int("step", 1), DType: d}
}

// Len is the number of values, ⌈(End−Start)/Step⌉; an error for a step of 0 or an empty
// range, which torch refuses too.
func (p ArangeParams) Len() (int, error) {
	if p.Step == 0 {
		return 0, fmt.Errorf("arange step must not be 0")
	}
	// In big integers: End−Start may overflow an int.
	span := new(big.Int).Sub(big.NewInt(int64(p.End)), big.NewInt(int64(p.Start)))
	step := big.NewInt(int64(p.Step))
	q, r := new(big.Int).QuoRem(span, step, new(big.Int))
	if r.Sign() != 0 && r.Sign() == step.Sign() {
		q.Add(q, big.NewInt(1)) // the quotient truncates; ⌈⌉ rounds up the positive ones
	}
	if q.Sign() <= 0 {
		return 0, fmt.Errorf("arange(start=%d, end=%d, step=%d) is empty: the range needs at least one value", p.Start, p.End, p.Step)
	}
	if !q.IsInt64() || q.Int64() > math.MaxInt {
		return 0, fmt.Errorf("arange(start=%d, end=%d, step=%d) has %s values, more than an int counts", p.Start, p.End, p.Step, q)
	}
	n := int(q.Int64())
	return n, nil
}

// Bounds are the smallest and the largest value of a valid range (Len without error).
func (p ArangeParams) Bounds() (lo, hi int) {
	n, _ := p.Len()
	last := p.Start + (n-1)*p.Step
	return min(p.Start, last), max(p.Start, last)
}

// ArangeAttrs are the attributes of an arange op.
func ArangeAttrs(p ArangeParams) []Attr {
	return []Attr{{Name: "start", Value: p.Start}, {Name: "end", Value: p.End}, {Name: "step", Value: p.Step}, {Name: "dtype", Value: p.DType.String()}}
}
