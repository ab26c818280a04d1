package ir

import (
	"fmt"
	"math"
	"math/big"
	"slices"
)

// OpInfo describes one op: how many operands it takes, which attributes it requires and how
// its result type follows from its operands. The catalogue is the single source of shape
// rules: the language elaborator, the verifier and the passes all call Infer.
type OpInfo struct {
	Name             string
	MinArgs, MaxArgs int // MaxArgs < 0: unbounded
	Attrs            []AttrSpec
	// OptionalAttrs may be absent; the rule says what their absence means.
	OptionalAttrs []AttrSpec
	// DeclaredResult ops (reshape) take their result shape from the value's own type; infer
	// then only checks it.
	DeclaredResult bool
	// Fused ops are made by the fusion passes (passes/fuse_*.go) only, never by the
	// language: one of them computes what a chain of plain ops does. A back end that lacks
	// them fails on them by name; passes.Config.Ops keeps them out of its modules.
	Fused bool
	// InPlace ops read each operand at exactly the index they write (element-wise ops):
	// their result may overwrite an operand of the result's shape that dies with them.
	InPlace bool
	infer   func(r *rules, args []Type, v *Value) (Type, error)
}

// AttrKind is the Go type an attribute holds.
type AttrKind uint8

const (
	AttrInt AttrKind = iota + 1
	AttrFloat
	AttrBool
	AttrString
	AttrInts
)

func (k AttrKind) String() string {
	return [...]string{"?", "int", "float", "bool", "string", "[int]"}[k]
}

// AttrSpec is one attribute an op takes.
type AttrSpec struct {
	Name string
	Kind AttrKind
}

var ops = map[string]*OpInfo{}

// Lookup returns the catalogue entry of an op.
func Lookup(op string) (*OpInfo, bool) {
	info, ok := ops[op]
	return info, ok
}

// OpNames lists the ops every back end implements, sorted: all but the fused ones.
func OpNames() []string { return opNames(false) }

// FusedOpNames lists the fused ops (OpInfo.Fused), sorted. Only the fusion passes make them,
// and only for a back end that says it implements them (passes.Config.Ops): a back end may
// leave them out.
func FusedOpNames() []string { return opNames(true) }

func opNames(fused bool) []string {
	var names []string
	for n, info := range ops {
		if info.Fused == fused {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func register(info *OpInfo) { ops[info.Name] = info }

func init() {
	same := func(_ *rules, args []Type, _ *Value) (Type, error) { return args[0], nil }
	// The activation ops (attrs.go's activation table), each named as its activation.
	for _, a := range activationOps {
		register(&OpInfo{Name: a.String(), MinArgs: 1, MaxArgs: 1, InPlace: true, infer: same})
	}
	register(&OpInfo{Name: "gelu", MinArgs: 1, MaxArgs: 1, InPlace: true, Attrs: []AttrSpec{{"approximate", AttrString}}, infer: func(r *rules, args []Type, v *Value) (Type, error) {
		if _, ok := v.ActivationOp(); !ok {
			return Type{}, fmt.Errorf("gelu approximation %q is not one of %v", v.Str("approximate", ""), geluNames[1:])
		}
		return args[0], nil
	}})
	register(&OpInfo{Name: "clamp", MinArgs: 1, MaxArgs: 1, InPlace: true, Attrs: []AttrSpec{{"min", AttrFloat}, {"max", AttrFloat}}, infer: func(r *rules, args []Type, v *Value) (Type, error) {
		if lo, hi := v.ClampRange(); lo > hi {
			return Type{}, fmt.Errorf("clamp min %g is above max %g", lo, hi)
		}
		return args[0], nil
	}})
	register(&OpInfo{Name: "scale", MinArgs: 1, MaxArgs: 1, InPlace: true, Attrs: []AttrSpec{{"scale", AttrFloat}, {"bias", AttrFloat}}, infer: same})
	for _, op := range []string{"add", "sub", "mul", "div"} {
		register(&OpInfo{Name: op, MinArgs: 2, MaxArgs: 2, InPlace: true, infer: func(r *rules, args []Type, _ *Value) (Type, error) {
			s, err := r.broadcast(args[0].Shape, args[1].Shape)
			return F32Of(s), err
		}})
	}
	register(&OpInfo{Name: "linear", MinArgs: 2, MaxArgs: 3, infer: inferLinear})
	register(&OpInfo{Name: "matmul", MinArgs: 2, MaxArgs: 2, infer: inferMatmul})
	register(&OpInfo{Name: "conv2d", MinArgs: 2, MaxArgs: 3, Attrs: []AttrSpec{{"stride", AttrInts}, {"padding", AttrInts}, {"dilation", AttrInts}, {"groups", AttrInt}}, infer: inferConv2d})
	register(&OpInfo{Name: "conv_transpose2d", MinArgs: 2, MaxArgs: 3, Attrs: []AttrSpec{{"stride", AttrInts}, {"padding", AttrInts}, {"output_padding", AttrInts}, {"dilation", AttrInts}, {"groups", AttrInt}}, infer: inferConvTranspose2d})
	register(&OpInfo{Name: "layer_norm", MinArgs: 1, MaxArgs: 3, Attrs: []AttrSpec{{"axes", AttrInt}, {"eps", AttrFloat}}, infer: inferLayerNorm})
	register(&OpInfo{Name: "group_norm", MinArgs: 1, MaxArgs: 3, Attrs: []AttrSpec{{"groups", AttrInt}, {"eps", AttrFloat}}, infer: inferGroupNorm})
	register(&OpInfo{Name: "layer_norm2d", MinArgs: 1, MaxArgs: 3, Attrs: []AttrSpec{{"eps", AttrFloat}}, infer: inferChannelNorm})
	register(&OpInfo{Name: "instance_norm2d", MinArgs: 1, MaxArgs: 3, Attrs: []AttrSpec{{"eps", AttrFloat}}, infer: inferChannelNorm})
	register(&OpInfo{Name: "embedding", MinArgs: 2, MaxArgs: 2, infer: inferEmbedding})
	register(&OpInfo{Name: "batch_param", MinArgs: 2, MaxArgs: 2, infer: func(r *rules, args []Type, _ *Value) (Type, error) {
		if len(args[0].Shape) == 0 {
			return Type{}, fmt.Errorf("a batch-expanded parameter needs an input with a batch dimension, got a scalar")
		}
		return F32Of(append(Shape{args[0].Shape[0]}, args[1].Shape...)), nil
	}})
	register(&OpInfo{Name: "sdpa", MinArgs: 3, MaxArgs: 3, Attrs: []AttrSpec{{"heads", AttrInt}, {"causal", AttrBool}}, infer: inferSDPA})
	register(&OpInfo{Name: "softmax", MinArgs: 1, MaxArgs: 1, Attrs: []AttrSpec{{"dim", AttrInt}}, infer: func(r *rules, args []Type, v *Value) (Type, error) {
		if _, err := checkAxis(v.Int("dim", 0), len(args[0].Shape)); err != nil {
			return Type{}, err
		}
		return args[0], nil
	}})
	register(&OpInfo{Name: "reshape", MinArgs: 1, MaxArgs: 1, DeclaredResult: true, infer: func(r *rules, args []Type, v *Value) (Type, error) {
		if err := r.sameCount(args[0].Shape, v.Type.Shape); err != nil {
			return Type{}, err
		}
		return Type{DType: args[0].DType, Shape: v.Type.Shape}, nil
	}})
	register(&OpInfo{Name: "permute", MinArgs: 1, MaxArgs: 1, Attrs: []AttrSpec{{"perm", AttrInts}}, infer: inferPermute})
	register(&OpInfo{Name: "slice", MinArgs: 1, MaxArgs: 1, Attrs: []AttrSpec{{"dim", AttrInt}, {"start", AttrInt}, {"end", AttrInt}, {"step", AttrInt}}, infer: inferSlice})
	register(&OpInfo{Name: "concat", MinArgs: 1, MaxArgs: -1, Attrs: []AttrSpec{{"dim", AttrInt}}, infer: inferConcat})
	register(&OpInfo{Name: "upsample", MinArgs: 1, MaxArgs: 1, Attrs: []AttrSpec{{"mode", AttrString}, {"align_corners", AttrBool}}, OptionalAttrs: []AttrSpec{{"size", AttrInts}}, infer: inferUpsample})
	register(&OpInfo{Name: "pad", MinArgs: 1, MaxArgs: 1, Attrs: []AttrSpec{{"pads", AttrInts}, {"mode", AttrString}, {"value", AttrFloat}}, infer: inferPad})
	register(&OpInfo{Name: "pixel_unshuffle", MinArgs: 1, MaxArgs: 1, Attrs: []AttrSpec{{"factor", AttrInt}}, infer: inferPixelUnshuffle})
	register(&OpInfo{Name: "pixel_shuffle", MinArgs: 1, MaxArgs: 1, Attrs: []AttrSpec{{"factor", AttrInt}}, infer: inferPixelShuffle})
	register(&OpInfo{Name: "glu", MinArgs: 1, MaxArgs: 1, Attrs: []AttrSpec{{"activation", AttrString}}, infer: inferGLU})
	register(&OpInfo{Name: "arange", MinArgs: 0, MaxArgs: 0, Attrs: []AttrSpec{{"start", AttrInt}, {"end", AttrInt}, {"step", AttrInt}, {"dtype", AttrString}}, infer: inferArange})
	registerFused()
}

// Fused ops. Each is a plain op with an epilogue, and computes exactly what the chain of
// plain ops it replaces computes, rounding step by step as they do:
//
//	conv2d_fused(x, w[, b][, r]) {stride, padding, dilation, groups, scale, shift, residual, act}
//	linear_fused(x, w[, b][, r]) {scale, shift, residual, act}
//	    y = act((op(x, w) + b)·scale + shift + r): the conv2d or linear, the affine step of
//	    a scale op (skipped when scale = 1 and shift = 0), the residual add when residual
//	    is true (r is then the last operand, of the result's type), then the activation
//	    (act, one of FusedActivations). In chain order: op → scale → add → activation.
//	group_norm_act(x[, w][, b]) {groups, eps, act}, layer_norm_act(x[, w][, b]) {axes, eps, act}
//	    the norm, then the activation.
//	linear_glu(x, w[, b]) {activation}
//	    glu(linear(x, w, b)) {activation}: GEGLU and its kin, without the linear's result.
func registerFused() {
	epilogue := []AttrSpec{{"scale", AttrFloat}, {"shift", AttrFloat}, {"residual", AttrBool}, {"act", AttrString}}
	convAttrs := []AttrSpec{{"stride", AttrInts}, {"padding", AttrInts}, {"dilation", AttrInts}, {"groups", AttrInt}}
	register(&OpInfo{Name: "conv2d_fused", MinArgs: 2, MaxArgs: 4, Fused: true, Attrs: append(slices.Clip(convAttrs), epilogue...), infer: withEpilogue("conv2d", inferConv2d)})
	register(&OpInfo{Name: "linear_fused", MinArgs: 2, MaxArgs: 4, Fused: true, Attrs: epilogue, infer: withEpilogue("linear", inferLinear)})
	act := AttrSpec{"act", AttrString}
	register(&OpInfo{Name: "group_norm_act", MinArgs: 1, MaxArgs: 3, Fused: true, Attrs: []AttrSpec{{"groups", AttrInt}, {"eps", AttrFloat}, act}, infer: withAct(inferGroupNorm)})
	register(&OpInfo{Name: "layer_norm_act", MinArgs: 1, MaxArgs: 3, Fused: true, Attrs: []AttrSpec{{"axes", AttrInt}, {"eps", AttrFloat}, act}, infer: withAct(inferLayerNorm)})
	register(&OpInfo{Name: "linear_glu", MinArgs: 2, MaxArgs: 3, Fused: true, Attrs: []AttrSpec{{"activation", AttrString}}, infer: func(r *rules, args []Type, v *Value) (Type, error) {
		t, err := inferLinear(r, args, v)
		if err != nil {
			return Type{}, err
		}
		return inferGLU(r, []Type{t}, v)
	}})
}

func checkAct(v *Value) error {
	if !v.FusedAct().Fusable() {
		return fmt.Errorf("%s act %q is not one of %v", v.Op, v.Str("act", ""), FusedActivations)
	}
	return nil
}

func withAct(infer func(*rules, []Type, *Value) (Type, error)) func(*rules, []Type, *Value) (Type, error) {
	return func(r *rules, args []Type, v *Value) (Type, error) {
		if err := checkAct(v); err != nil {
			return Type{}, err
		}
		return infer(r, args, v)
	}
}

// withEpilogue checks the operands of base (all but a residual) with base's rule, and the
// residual against the result.
func withEpilogue(base string, infer func(*rules, []Type, *Value) (Type, error)) func(*rules, []Type, *Value) (Type, error) {
	return func(r *rules, args []Type, v *Value) (Type, error) {
		if err := checkAct(v); err != nil {
			return Type{}, err
		}
		res := v.Epilogue().Residual
		if res {
			if len(args) < 3 {
				return Type{}, fmt.Errorf("%s with residual=true needs the residual as its last operand", v.Op)
			}
			args = args[:len(args)-1]
		} else if len(args) > 3 {
			return Type{}, fmt.Errorf("%s takes 4 operands only with residual=true", v.Op)
		}
		t, err := infer(r, args, v)
		if err != nil {
			return Type{}, fmt.Errorf("%s: %w", base, err)
		}
		if res {
			res := v.Args[len(v.Args)-1].Type
			if err := r.sameShape(res.Shape, t.Shape, func() error {
				return fmt.Errorf("%s residual %s is not of the result type %s", v.Op, res, t)
			}); err != nil || res.DType != t.DType {
				return Type{}, fmt.Errorf("%s residual %s is not of the result type %s", v.Op, res, t)
			}
		}
		return t, nil
	}
}

// Infer computes the result type of v from its operands and attributes, checking every
// rule of the op. The error names the shapes involved, not the layer: callers add that.
// Conditions on symbolic sizes that cannot be decided yet are accepted: InferChecks lists
// them.
func Infer(v *Value) (Type, error) { return infer(nil, v) }

func infer(r *rules, v *Value) (Type, error) {
	info, ok := ops[v.Op]
	if !ok {
		return Type{}, fmt.Errorf("unknown op %q", v.Op)
	}
	if len(v.Args) < info.MinArgs || (info.MaxArgs >= 0 && len(v.Args) > info.MaxArgs) {
		return Type{}, fmt.Errorf("%s takes %s operands, got %d", v.Op, arity(info), len(v.Args))
	}
	for _, spec := range info.Attrs {
		a, ok := v.Attr(spec.Name)
		if !ok {
			return Type{}, fmt.Errorf("%s needs attribute %s", v.Op, spec.Name)
		}
		if !attrHasKind(a, spec.Kind) {
			return Type{}, fmt.Errorf("%s attribute %s must be %s, got %v", v.Op, spec.Name, spec.Kind, a)
		}
	}
	for _, spec := range info.OptionalAttrs {
		if a, ok := v.Attr(spec.Name); ok && !attrHasKind(a, spec.Kind) {
			return Type{}, fmt.Errorf("%s attribute %s must be %s, got %v", v.Op, spec.Name, spec.Kind, a)
		}
	}
	args := make([]Type, len(v.Args))
	for i, a := range v.Args {
		args[i] = a.Type
		if a.Type.DType != F32 && !(v.Op == "embedding" && i == 0) && v.Op != "reshape" {
			return Type{}, fmt.Errorf("%s operand %d is %s; ops compute in f32", v.Op, i, a.Type)
		}
	}
	t, err := info.infer(r, args, v)
	if err != nil {
		return Type{}, err
	}
	// Every size of the result must be countable: the rules multiply and add dims.
	if _, err := t.Bytes(); err != nil {
		return Type{}, fmt.Errorf("%s result: %v", v.Op, err)
	}
	return t, nil
}

func arity(info *OpInfo) string {
	switch {
	case info.MaxArgs < 0:
		return fmt.Sprintf("at least %d", info.MinArgs)
	case info.MinArgs == info.MaxArgs:
		return fmt.Sprint(info.MinArgs)
	}
	return fmt.Sprintf("%d to %d", info.MinArgs, info.MaxArgs)
}

func attrHasKind(a any, k AttrKind) bool {
	switch a.(type) {
	case int:
		return k == AttrInt || k == AttrFloat
	case float64:
		return k == AttrFloat
	case bool:
		return k == AttrBool
	case string:
		return k == AttrString
	case []int:
		return k == AttrInts
	}
	return false
}

// Broadcast combines two shapes by NumPy's rules. A size known only at run time never
// broadcasts: it must equal the other (a check when that is not decided).
func Broadcast(a, b Shape) (Shape, error) { return (*rules)(nil).broadcast(a, b) }

// Matmul is how a matmul of a [..., m, k] by b [..., k, n] into out [..., m, n] walks its
// batch, for every back end: one strided batched call when each side has the full batch or
// a single matrix (Uniform, with StrideA and StrideB in elements), else one call per entry
// of the result's batch at the offsets Offsets gives.
type Matmul struct {
	M, K, N, Batch   int
	Uniform          bool
	StrideA, StrideB int
	a, b, batchShape []int
}

// MatmulOf describes the matmul of static shapes a and b into out.
func MatmulOf(a, b, out []int) Matmul {
	ra, rb, ro := len(a), len(b), len(out)
	mm := Matmul{M: a[ra-2], K: a[ra-1], N: b[rb-1], a: a[:ra-2], b: b[:rb-2], batchShape: out[:ro-2]}
	mm.Batch = Prod(mm.batchShape)
	// A side whose batch dims differ from the result's only by 1s has the full batch.
	stride := func(count, size int) (int, bool) {
		switch count {
		case mm.Batch:
			return size, true
		case 1:
			return 0, true
		}
		return 0, false
	}
	sa, okA := stride(Prod(mm.a), mm.M*mm.K)
	sb, okB := stride(Prod(mm.b), mm.K*mm.N)
	mm.Uniform = okA && okB
	if mm.Uniform {
		mm.StrideA, mm.StrideB = sa, sb
	}
	return mm
}

// Offsets gives, for each entry of the result's batch in order, the offsets (in elements)
// of its a and b matrices, a then b: broadcasting both ways ([2, 1] with [1, 3]).
func (mm Matmul) Offsets() []int {
	aStrides := BroadcastStrides(mm.a, mm.batchShape, mm.M*mm.K)
	bStrides := BroadcastStrides(mm.b, mm.batchShape, mm.K*mm.N)
	offsets := make([]int, 0, 2*mm.Batch)
	idx := make([]int, len(mm.batchShape))
	for range mm.Batch {
		offA, offB := 0, 0
		for d := range idx {
			offA += idx[d] * aStrides[d]
			offB += idx[d] * bStrides[d]
		}
		offsets = append(offsets, offA, offB)
		for d := len(idx) - 1; d >= 0; d-- {
			if idx[d]++; idx[d] < mm.batchShape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return offsets
}

// BroadcastStrides gives, for each dim of out, the stride (in elements, with inner the size
// of one item) of an operand of shape s right-aligned to out as Broadcast aligns it;
// broadcast dims get 0. Every back end walks broadcast operands with these strides.
func BroadcastStrides(s, out []int, inner int) []int {
	strides := make([]int, len(out))
	step := inner
	for i := len(out) - 1; i >= 0; i-- {
		j := i - (len(out) - len(s))
		if j < 0 {
			continue
		}
		if s[j] != 1 {
			strides[i] = step
		}
		step *= s[j]
	}
	return strides
}

func (r *rules) broadcast(a, b Shape) (Shape, error) {
	n := max(len(a), len(b))
	out := make(Shape, n)
	for i := 0; i < n; i++ {
		da, db := D(1), D(1)
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == D(1):
			out[i] = db
		case db == D(1):
			out[i] = da
		default:
			if err := r.eq(da, db, func() error {
				return fmt.Errorf("shapes %s and %s do not broadcast (dim %d: %s vs %s)", a, b, i, da, db)
			}); err != nil {
				return nil, err
			}
			// The static one, if any, says more.
			out[i] = da
			if !db.Static() || da.Static() {
				continue
			}
			out[i] = db
		}
	}
	return out, nil
}

// sameCount requires equal element counts.
func (r *rules) sameCount(a, b Shape) error {
	fail := func() error {
		return fmt.Errorf("cannot reshape %s (%s elements) to %s (%s elements)", a, a.NumElements(), b, b.NumElements())
	}
	na, err := a.NumElementsDim()
	if err != nil {
		return fail()
	}
	nb, err := b.NumElementsDim()
	if err != nil {
		return fail()
	}
	return r.eq(na, nb, fail)
}

func needRank(what string, t Type, rank int) error {
	if len(t.Shape) != rank {
		return fmt.Errorf("%s must have rank %d, got %s", what, rank, t.Shape)
	}
	return nil
}

func inferLinear(r *rules, args []Type, _ *Value) (Type, error) {
	x, w := args[0].Shape, args[1].Shape
	if len(w) != 2 {
		return Type{}, fmt.Errorf("linear weight must be [out, in], got %s", w)
	}
	if len(x) == 0 {
		return Type{}, fmt.Errorf("linear expects input [..., %s], got %s", w[1], x)
	}
	if err := r.eq(x[len(x)-1], w[1], func() error { return fmt.Errorf("linear expects input [..., %s], got %s", w[1], x) }); err != nil {
		return Type{}, err
	}
	if len(args) == 3 && !args[2].Shape.Equal(Shape{w[0]}) {
		return Type{}, fmt.Errorf("linear bias must be [%s], got %s", w[0], args[2].Shape)
	}
	out := x.Clone()
	out[len(out)-1] = w[0]
	return F32Of(out), nil
}

func inferMatmul(r *rules, args []Type, _ *Value) (Type, error) {
	a, b := args[0].Shape, args[1].Shape
	if len(a) < 2 || len(b) < 2 {
		return Type{}, fmt.Errorf("matmul needs operands of rank ≥ 2, got %s and %s", a, b)
	}
	if err := r.eq(a[len(a)-1], b[len(b)-2], func() error {
		return fmt.Errorf("matmul of %s and %s: inner dims %s and %s differ", a, b, a[len(a)-1], b[len(b)-2])
	}); err != nil {
		return Type{}, err
	}
	batch, err := r.broadcast(a[:len(a)-2], b[:len(b)-2])
	if err != nil {
		return Type{}, fmt.Errorf("matmul batch dims: %v", err)
	}
	return F32Of(append(batch, a[len(a)-2], b[len(b)-1])), nil
}

func inferConv2d(r *rules, args []Type, v *Value) (Type, error) {
	p, err := convParams(v)
	if err != nil {
		return Type{}, err
	}
	stride, pad, dil, groups := p.Stride, p.Padding, p.Dilation, p.Groups
	x, w := args[0], args[1]
	if err := needRank("conv2d input", x, 4); err != nil {
		return Type{}, err
	}
	if err := needRank("conv2d weight", w, 4); err != nil {
		return Type{}, err
	}
	c, k := x.Shape[1], w.Shape[0]
	if !c.Static() {
		return Type{}, fmt.Errorf("conv2d needs static channels, got %s", x.Shape)
	}
	if c.N%groups != 0 || k.N%groups != 0 || w.Shape[1].N*groups != c.N {
		return Type{}, fmt.Errorf("conv2d weight %s does not fit input %s with groups=%d (expects [K, %d/%d, kh, kw])", w.Shape, x.Shape, groups, c.N, groups)
	}
	if len(args) == 3 && !args[2].Shape.Equal(Shape{k}) {
		return Type{}, fmt.Errorf("conv2d bias must be [%s], got %s", k, args[2].Shape)
	}
	out := Shape{x.Shape[0], k, {}, {}}
	for i := 0; i < 2; i++ {
		if !x.Shape[2+i].Static() {
			if out[2+i], err = r.convOut(x, w, i, stride[i], pad[i], dil[i]); err != nil {
				return Type{}, err
			}
			continue
		}
		in, kk := x.Shape[2+i].N, w.Shape[2+i].N
		padded, ok1 := sizeExpr(in, 2*int64(pad[i]))
		reach, ok2 := sizeExpr(1, int64(dil[i])*int64(kk-1))
		if !ok1 || !ok2 {
			return Type{}, fmt.Errorf("conv2d padding %v or dilation %v overflows the size of input %s", pad, dil, x.Shape)
		}
		if padded < reach {
			return Type{}, fmt.Errorf("conv2d kernel %dx%d (dilation %v, padding %v) is larger than the padded input %s", w.Shape[2].N, w.Shape[3].N, dil, pad, x.Shape)
		}
		out[2+i] = D(int((padded-reach)/int64(stride[i]) + 1))
	}
	return F32Of(out), nil
}

// convOut is a convolution's output size along spatial dim i of x (2+i) when it is
// symbolic: (in + 2·pad − dil·(k−1) − 1) // stride + 1, which must be at least 1.
func (r *rules) convOut(x, w Type, i, stride, pad, dil int) (Dim, error) {
	in, kk := x.Shape[2+i], w.Shape[2+i].N
	if pad < 0 || dil < 1 || stride < 1 || pad > 1<<30 || dil > 1<<30 || kk > 1<<30 {
		return Dim{}, fmt.Errorf("conv2d padding %d, dilation %d or stride %d is out of range for input %s", pad, dil, stride, x.Shape)
	}
	reach := dil*(kk-1) + 1
	padded, err := AddDimChecked(in, D(2*pad))
	if err != nil {
		return Dim{}, err
	}
	if err := r.atLeast(padded, D(reach), func() error {
		return fmt.Errorf("conv2d kernel %dx%d (dilation %d, padding %d) is larger than the padded input %s", w.Shape[2].N, w.Shape[3].N, dil, pad, x.Shape)
	}); err != nil {
		return Dim{}, err
	}
	span, err := SubDim(padded, D(reach))
	if err != nil {
		return Dim{}, err
	}
	q, err := FloorDivDim(span, stride)
	if err != nil {
		return Dim{}, err
	}
	return AddDimChecked(q, D(1))
}

// sizeExpr is a + b for a size formula, computed in int64 from values that fit 32 bits
// each way (dims and attributes beyond that are refused): false when it does not fit.
func sizeExpr(a int, b int64) (int64, bool) {
	const limit = 1 << 62
	if a < 0 || int64(a) > limit || b > limit || b < -limit {
		return 0, false
	}
	return int64(a) + b, true
}

func inferConvTranspose2d(r *rules, args []Type, v *Value) (Type, error) {
	p, err := convParams(v)
	if err != nil {
		return Type{}, err
	}
	stride, pad, dil, groups, outPad := p.Stride, p.Padding, p.Dilation, p.Groups, p.OutputPadding
	x, w := args[0], args[1]
	if err := needRank("conv_transpose2d input", x, 4); err != nil {
		return Type{}, err
	}
	if err := needRank("conv_transpose2d weight", w, 4); err != nil {
		return Type{}, err
	}
	c := x.Shape[1]
	if !c.Static() {
		return Type{}, fmt.Errorf("conv_transpose2d needs static channels, got %s", x.Shape)
	}
	if w.Shape[0] != c || c.N%groups != 0 {
		return Type{}, fmt.Errorf("conv_transpose2d weight %s does not fit input %s with groups=%d (expects [%d, K/%d, kh, kw])", w.Shape, x.Shape, groups, c.N, groups)
	}
	kn, ok := MulChecked(w.Shape[1].N, groups)
	if !ok {
		return Type{}, fmt.Errorf("conv_transpose2d weight %s with groups=%d has too many output channels", w.Shape, groups)
	}
	k := D(kn)
	if len(args) == 3 && !args[2].Shape.Equal(Shape{k}) {
		return Type{}, fmt.Errorf("conv_transpose2d bias must be [%s], got %s", k, args[2].Shape)
	}
	out := Shape{x.Shape[0], k, {}, {}}
	for i := 0; i < 2; i++ {
		if outPad[i] < 0 || (outPad[i] >= stride[i] && outPad[i] >= dil[i]) {
			return Type{}, fmt.Errorf("conv_transpose2d output_padding %v must be smaller than stride %v or dilation %v", outPad, stride, dil)
		}
		if !x.Shape[2+i].Static() {
			if out[2+i], err = r.convTransposeOut(x, w, i, stride[i], pad[i], dil[i], outPad[i]); err != nil {
				return Type{}, err
			}
			continue
		}
		// In 128 bits: every factor is a user's number.
		o := new(big.Int).Mul(big.NewInt(int64(x.Shape[2+i].N-1)), big.NewInt(int64(stride[i])))
		o.Sub(o, big.NewInt(2*int64(pad[i])))
		o.Add(o, new(big.Int).Mul(big.NewInt(int64(dil[i])), big.NewInt(int64(w.Shape[2+i].N-1))))
		o.Add(o, big.NewInt(int64(outPad[i])+1))
		if o.Sign() < 1 {
			return Type{}, fmt.Errorf("conv_transpose2d output would be empty for input %s", x.Shape)
		}
		if !o.IsInt64() || o.Int64() > math.MaxInt {
			return Type{}, fmt.Errorf("conv_transpose2d output size %s overflows an int for input %s", o, x.Shape)
		}
		out[2+i] = D(int(o.Int64()))
	}
	return F32Of(out), nil
}

// convTransposeOut is a transposed convolution's output size along a symbolic spatial dim:
// (in − 1)·stride − 2·pad + dil·(k − 1) + output_padding + 1, at least 1.
func (r *rules) convTransposeOut(x, w Type, i, stride, pad, dil, outPad int) (Dim, error) {
	kk := w.Shape[2+i].N
	if pad < 0 || dil < 1 || stride < 1 || pad > 1<<30 || dil > 1<<30 || stride > 1<<30 || kk > 1<<30 {
		return Dim{}, fmt.Errorf("conv_transpose2d padding %d, dilation %d or stride %d is out of range for input %s", pad, dil, stride, x.Shape)
	}
	scaled, err := MulDimChecked(x.Shape[2+i], D(stride))
	if err != nil {
		return Dim{}, err
	}
	o, err := AddDimChecked(scaled, D(-stride-2*pad+dil*(kk-1)+outPad+1))
	if err != nil {
		return Dim{}, err
	}
	if err := r.atLeast(o, D(1), func() error {
		return fmt.Errorf("conv_transpose2d output would be empty for input %s", x.Shape)
	}); err != nil {
		return Dim{}, err
	}
	return o, nil
}

func affineArgs(op string, args []Type, want Shape) error {
	for i, a := range args[1:] {
		if !a.Shape.Equal(want) {
			return fmt.Errorf("%s %s must be %s, got %s", op, []string{"weight", "bias"}[i], want, a.Shape)
		}
	}
	return nil
}

func inferLayerNorm(r *rules, args []Type, v *Value) (Type, error) {
	x := args[0].Shape
	n := v.Norm().Axes
	if n < 1 || n > len(x) {
		return Type{}, fmt.Errorf("layer_norm over %d trailing dims of %s", n, x)
	}
	return args[0], affineArgs("layer_norm", args, x[len(x)-n:])
}

func inferGroupNorm(r *rules, args []Type, v *Value) (Type, error) {
	x := args[0].Shape
	if len(x) < 2 || !x[1].Static() {
		return Type{}, fmt.Errorf("group_norm needs [N, C, …] with static C, got %s", x)
	}
	g := v.Norm().Groups
	if g < 1 || x[1].N%g != 0 {
		return Type{}, fmt.Errorf("group_norm: %d channels do not split into %d groups", x[1].N, g)
	}
	return args[0], affineArgs("group_norm", args, Shape{x[1]})
}

func inferChannelNorm(r *rules, args []Type, v *Value) (Type, error) {
	if err := needRank(v.Op+" input", args[0], 4); err != nil {
		return Type{}, err
	}
	return args[0], affineArgs(v.Op, args, Shape{args[0].Shape[1]})
}

func inferEmbedding(r *rules, args []Type, _ *Value) (Type, error) {
	idx, w := args[0], args[1]
	if idx.DType != I32 && idx.DType != I64 {
		return Type{}, fmt.Errorf("embedding indices must be i32 or i64, got %s", idx)
	}
	if len(w.Shape) != 2 {
		return Type{}, fmt.Errorf("embedding table must be [vocab, dim], got %s", w.Shape)
	}
	return F32Of(append(idx.Shape.Clone(), w.Shape[1])), nil
}

func inferSDPA(r *rules, args []Type, v *Value) (Type, error) {
	q, k, val := args[0].Shape, args[1].Shape, args[2].Shape
	if len(q) != 3 || len(k) != 3 || len(val) != 3 {
		return Type{}, fmt.Errorf("attention needs [batch, tokens, features] operands, got q %s, k %s, v %s", q, k, val)
	}
	h := v.Attention().Heads
	if h < 1 || !q[2].Static() || !val[2].Static() || q[2].N%h != 0 || val[2].N%h != 0 {
		return Type{}, fmt.Errorf("attention: %d heads do not divide query features %s and value features %s", h, q[2], val[2])
	}
	batchFail := func() error { return fmt.Errorf("attention batch sizes differ: q %s, k %s, v %s", q, k, val) }
	if err := r.eq(q[0], k[0], batchFail); err != nil {
		return Type{}, err
	}
	if err := r.eq(k[0], val[0], batchFail); err != nil {
		return Type{}, err
	}
	if q[2] != k[2] {
		return Type{}, fmt.Errorf("attention: query %s and key %s features differ", q, k)
	}
	if err := r.eq(k[1], val[1], func() error { return fmt.Errorf("attention: key %s and value %s lengths differ", k, val) }); err != nil {
		return Type{}, err
	}
	return F32Of(Shape{q[0], q[1], val[2]}), nil
}

func inferPermute(r *rules, args []Type, v *Value) (Type, error) {
	x := args[0].Shape
	perm := v.Perm()
	if len(perm) != len(x) {
		return Type{}, fmt.Errorf("permutation %v does not have rank %d of %s", perm, len(x), x)
	}
	seen := make([]bool, len(x))
	out := make(Shape, len(x))
	for i, p := range perm {
		if p < 0 || p >= len(x) || seen[p] {
			return Type{}, fmt.Errorf("%v is not a permutation of %d dims", perm, len(x))
		}
		seen[p] = true
		out[i] = x[p]
	}
	return Type{DType: args[0].DType, Shape: out}, nil
}

func inferSlice(r *rules, args []Type, v *Value) (Type, error) {
	x := args[0].Shape
	d, err := checkAxis(v.Int("dim", 0), len(x))
	if err != nil {
		return Type{}, err
	}
	p := v.Slice()
	start, end, step := p.Start, p.End, p.Step
	if !x[d].Static() {
		return Type{}, fmt.Errorf("cannot slice symbolic dim %s of %s", x[d], x)
	}
	if step < 1 || start < 0 || end > x[d].N || start >= end {
		return Type{}, fmt.Errorf("slice [%d:%d:%d] of dim %d (size %d) is empty or out of range", start, end, step, d, x[d].N)
	}
	out := x.Clone()
	out[d] = D((end-start-1)/step + 1)
	return Type{DType: args[0].DType, Shape: out}, nil
}

func inferConcat(r *rules, args []Type, v *Value) (Type, error) {
	first := args[0].Shape
	d, err := checkAxis(v.Int("dim", 0), len(first))
	if err != nil {
		return Type{}, err
	}
	out := first.Clone()
	for _, a := range args[1:] {
		s := a.Shape
		if len(s) != len(first) {
			return Type{}, fmt.Errorf("concatenate: %s and %s differ in rank", first, s)
		}
		for i := range s {
			if i == d {
				continue
			}
			if err := r.eq(first[i], s[i], func() error {
				return fmt.Errorf("concatenate along dim %d: %s and %s differ in dim %d", d, first, s, i)
			}); err != nil {
				return Type{}, err
			}
		}
		if out[d], err = AddDimChecked(out[d], s[d]); err != nil {
			return Type{}, fmt.Errorf("concatenate along dim %d: %v", d, err)
		}
	}
	return F32Of(out), nil
}

func inferUpsample(r *rules, args []Type, v *Value) (Type, error) {
	if err := needRank("upsample input", args[0], 4); err != nil {
		return Type{}, err
	}
	if v.Upsample().Mode == 0 {
		return Type{}, fmt.Errorf("upsample mode %q is not one of %v", v.Str("mode", ""), upsampleModeNames[1:])
	}
	x := args[0].Shape
	if _, given := v.Attr("size"); !given {
		// The size is the declared result's: a resize to sizes known at run time
		// (h*2, or another tensor's height).
		y := v.Type.Shape
		if len(y) != 4 {
			return Type{}, fmt.Errorf("upsample without a size attribute takes its size from its declared result, which must be [n, c, h, w], got %s", y)
		}
		for i := 2; i < 4; i++ {
			if err := r.atLeast(y[i], D(1), func() error { return fmt.Errorf("upsample size %s must be positive", y[2:]) }); err != nil {
				return Type{}, err
			}
		}
		return F32Of(Shape{x[0], x[1], y[2], y[3]}), nil
	}
	size, err := pair(v, "size")
	if err != nil {
		return Type{}, err
	}
	if size[0] < 1 || size[1] < 1 {
		return Type{}, fmt.Errorf("upsample size %v must be positive", size)
	}
	return F32Of(Shape{x[0], x[1], D(size[0]), D(size[1])}), nil
}

func inferPad(r *rules, args []Type, v *Value) (Type, error) {
	x := args[0].Shape
	p := v.Pad()
	pads, mode := p.Pads, p.Mode
	if len(pads)%2 != 0 || len(pads) > 2*len(x) {
		return Type{}, fmt.Errorf("pad needs pairs (low, high) for at most %d dims, got %v", len(x), pads)
	}
	if mode == 0 {
		return Type{}, fmt.Errorf("pad mode %q is not one of %v", v.Str("mode", ""), padModeNames[1:])
	}
	out := x.Clone()
	for i := 0; i < len(pads)/2; i++ {
		d := len(x) - 1 - i
		lo, hi := pads[2*i], pads[2*i+1]
		if mode != PadConstant && (lo < 0 || hi < 0) {
			return Type{}, fmt.Errorf("%s padding must be ≥ 0, got %v", mode, pads)
		}
		if !x[d].Static() {
			if lo < -(1<<30) || lo > 1<<30 || hi < -(1<<30) || hi > 1<<30 {
				return Type{}, fmt.Errorf("padding %v overflows dim %d of %s", pads, d, x)
			}
			if mode == PadReflect {
				if err := r.atLeast(x[d], D(max(lo, hi)+1), func() error {
					return fmt.Errorf("reflect padding %v must be smaller than dim %d of %s", pads, d, x)
				}); err != nil {
					return Type{}, err
				}
			}
			n, err := AddDimChecked(x[d], D(lo+hi))
			if err != nil {
				return Type{}, err
			}
			if err := r.atLeast(n, D(1), func() error { return fmt.Errorf("padding %v empties dim %d of %s", pads, d, x) }); err != nil {
				return Type{}, err
			}
			out[d] = n
			continue
		}
		if mode == PadReflect && (lo >= x[d].N || hi >= x[d].N) {
			return Type{}, fmt.Errorf("reflect padding %v must be smaller than dim %d of %s", pads, d, x)
		}
		n, ok := sizeExpr(x[d].N, int64(lo)+int64(hi))
		switch {
		case !ok || n > math.MaxInt:
			return Type{}, fmt.Errorf("padding %v overflows dim %d of %s", pads, d, x)
		case n < 1:
			return Type{}, fmt.Errorf("padding %v empties dim %d of %s", pads, d, x)
		}
		out[d] = D(int(n))
	}
	return F32Of(out), nil
}

func inferPixelUnshuffle(r *rules, args []Type, v *Value) (Type, error) {
	if err := needRank("pixel_unshuffle input", args[0], 4); err != nil {
		return Type{}, err
	}
	x, f := args[0].Shape, v.Factor()
	fail := func() error {
		return fmt.Errorf("pixel_unshuffle by %d needs height and width divisible by it, got %s", f, x)
	}
	if f < 1 || f > 1<<30 {
		return Type{}, fail()
	}
	out := Shape{x[0], {}, {}, {}}
	for i := 2; i < 4; i++ {
		q, err := FloorDivDim(x[i], f)
		if err != nil {
			return Type{}, fail()
		}
		back, err := MulDimChecked(q, D(f))
		if err != nil {
			return Type{}, fail()
		}
		if err := r.eq(back, x[i], fail); err != nil {
			return Type{}, err
		}
		if err := r.atLeast(q, D(1), fail); err != nil {
			return Type{}, err
		}
		out[i] = q
	}
	// f divides the height, so f·f fits; the channels times it may not.
	c, err := MulDimChecked(x[1], D(f*f))
	if err != nil {
		return Type{}, fmt.Errorf("pixel_unshuffle by %d of %s: %v", f, x, err)
	}
	out[1] = c
	return F32Of(out), nil
}

func inferPixelShuffle(r *rules, args []Type, v *Value) (Type, error) {
	if err := needRank("pixel_shuffle input", args[0], 4); err != nil {
		return Type{}, err
	}
	x, f := args[0].Shape, v.Factor()
	ff, ok := MulChecked(f, f)
	if f < 1 || !ok || !x[1].Static() || x[1].N%ff != 0 {
		return Type{}, fmt.Errorf("pixel_shuffle by %d needs channels divisible by %d², got %s", f, f, x)
	}
	h, err := MulDimChecked(x[2], D(f))
	if err != nil {
		return Type{}, fmt.Errorf("pixel_shuffle by %d of %s: %v", f, x, err)
	}
	w, err := MulDimChecked(x[3], D(f))
	if err != nil {
		return Type{}, fmt.Errorf("pixel_shuffle by %d of %s: %v", f, x, err)
	}
	return F32Of(Shape{x[0], D(x[1].N / ff), h, w}), nil
}

func inferGLU(r *rules, args []Type, v *Value) (Type, error) {
	x := args[0].Shape
	if !slices.Contains(Activations, v.GLUActivation()) {
		return Type{}, fmt.Errorf("glu activation %q is not one of %v", v.Str("activation", ""), Activations)
	}
	if len(x) == 0 || !x[len(x)-1].Static() || x[len(x)-1].N%2 != 0 {
		return Type{}, fmt.Errorf("glu needs an even last dim, got %s", x)
	}
	out := x.Clone()
	out[len(out)-1] = D(x[len(x)-1].N / 2)
	return F32Of(out), nil
}

// inferArange: a constant [n] of the declared dtype, n = ⌈(end−start)/step⌉ ≥ 1.
func inferArange(_ *rules, _ []Type, v *Value) (Type, error) {
	p := v.Arange()
	switch p.DType {
	case F32, I32, I64:
	default:
		return Type{}, fmt.Errorf("arange dtype %q is not one of f32, i32, i64", v.Str("dtype", ""))
	}
	n, err := p.Len()
	if err != nil {
		return Type{}, err
	}
	// i32 values must fit 32 bits (f32 ones round as torch rounds them: its start + i·step
	// is computed in float64, then rounded).
	if p.DType == I32 {
		last := new(big.Int).Mul(big.NewInt(int64(n-1)), big.NewInt(int64(p.Step)))
		last.Add(last, big.NewInt(int64(p.Start)))
		if p.Start < math.MinInt32 || p.Start > math.MaxInt32 || !last.IsInt64() || last.Int64() < math.MinInt32 || last.Int64() > math.MaxInt32 {
			return Type{}, fmt.Errorf("arange(start=%d, end=%d, step=%d) has values beyond what i32 holds", p.Start, p.End, p.Step)
		}
	}
	return Type{DType: p.DType, Shape: Shape{D(n)}}, nil
}
