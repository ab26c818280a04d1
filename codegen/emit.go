package codegen

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

const (
	kernelsPath = "github.com/rfc-project/rfc/kernels"
	runtimePath = "github.com/rfc-project/rfc/runtime"
)

// opEmitter writes the statements of one op. Each mirrors the interpreter's op of the same
// name (interp/ops.go): same kernel, same arguments, so results agree bit for bit.
type opEmitter func(g *generator, v *ir.Value) ([]jen.Code, error)

var emitters map[string]opEmitter

func init() {
	emitters = map[string]opEmitter{
		"relu":             emitActivation,
		"silu":             emitActivation,
		"sigmoid":          emitActivation,
		"tanh":             emitActivation,
		"sin":              emitActivation,
		"cos":              emitActivation,
		"exp":              emitActivation,
		"gelu":             emitActivation,
		"clamp":            emitClamp,
		"scale":            emitScale,
		"add":              binary("OpAdd"),
		"sub":              binary("OpSub"),
		"mul":              binary("OpMul"),
		"div":              binary("OpDiv"),
		"linear":           emitLinear,
		"matmul":           emitMatmul,
		"conv2d":           emitConv2d,
		"conv_transpose2d": emitConvTranspose2d,
		"layer_norm":       emitLayerNorm,
		"group_norm":       emitGroupNorm,
		"layer_norm2d":     channelNorm("LayerNorm2d"),
		"instance_norm2d":  channelNorm("InstanceNorm2d"),
		"embedding":        emitEmbedding,
		"batch_param":      emitBatchParam,
		"sdpa":             emitSDPA,
		"softmax":          emitSoftmax,
		"reshape":          func(*generator, *ir.Value) ([]jen.Code, error) { return nil, nil },
		"permute":          emitPermute,
		"slice":            emitSlice,
		"concat":           emitConcat,
		"upsample":         emitUpsample,
		"pad":              emitPad,
		"pixel_unshuffle":  emitPixelUnshuffle,
		"pixel_shuffle":    emitPixelShuffle,
		"glu":              emitGLU,
		"conv2d_fused":     emitConv2dFused,
		"linear_fused":     emitLinearFused,
		"group_norm_act":   emitNormAct("GroupNormAct"),
		"layer_norm_act":   emitNormAct("LayerNormAct"),
		"linear_glu":       emitLinearGLU,
		"arange":           emitArange,
	}
}

// Supported reports whether the code generator knows op.
func Supported(op string) bool {
	_, ok := emitters[op]
	return ok
}

func kernel(name string, args ...jen.Code) *jen.Statement {
	return jen.Qual(kernelsPath, name).Call(args...)
}

// weightKernel is kernel for an op whose weight (argument 1 of v) Load may have packed:
// then the W entry point, which takes kernels.Weights.
func (g *generator) weightKernel(v *ir.Value, name string, args ...jen.Code) *jen.Statement {
	if _, ok := g.packed[v.Args[1]]; ok {
		name = packedOps[v.Op]
	}
	return kernel(name, args...)
}

// f32 is a float32 literal. NaN, infinities and −0 have no Go literal: they are built from
// their bits, or math.Inf, so the constant is exactly the one the interpreter uses.
func f32(x float64) jen.Code {
	v := float32(x)
	switch {
	case math.IsInf(float64(v), 1):
		return jen.Float32().Call(jen.Qual("math", "Inf").Call(jen.Lit(1)))
	case math.IsInf(float64(v), -1):
		return jen.Float32().Call(jen.Qual("math", "Inf").Call(jen.Lit(-1)))
	case v != v, v == 0 && math.Signbit(float64(v)):
		return jen.Qual("math", "Float32frombits").Call(jen.Lit(int(math.Float32bits(v))))
	}
	return jen.Lit(v)
}

func shapeOf(v *ir.Value) []int { return v.Type.Shape.Ints() }

// dimsOf is v's shape, whose dims may be sizes chosen at run time.
func dimsOf(v *ir.Value) ir.Shape { return v.Type.Shape }

// prod is the product of dims (1 for none).
func prod(ds ir.Shape) ir.Dim {
	n := ir.D(1)
	for _, d := range ds {
		n = ir.MulDim(n, d)
	}
	return n
}

// quo is a / k for a count that k divides (rows of a matrix of k columns); max(k, 1) as
// the static code had it, so an empty tensor does not divide by zero.
func quo(a, k ir.Dim) ir.Dim {
	if a.Static() && k.Static() {
		return ir.D(a.N / max(k.N, 1))
	}
	if q, ok := ir.DivExact(a, k); ok {
		return q
	}
	if k.Static() {
		if q, err := ir.FloorDivDim(a, max(k.N, 1)); err == nil {
			return q
		}
	}
	return ir.Dim{Sym: "?(" + a.String() + ")/(" + k.String() + ")"}
}

// optional is operand j, or nil when the op has fewer operands.
func (g *generator) optional(v *ir.Value, j int) jen.Code {
	if j < len(v.Args) {
		return g.ref(v.Args[j])
	}
	return jen.Nil()
}

// ints names a package-level []int holding xs (a shape, a permutation, paddings): kernels
// that take slices then get the same backing array on every call, and nothing escapes to
// the heap per call. Equal lists share one variable.
func (g *generator) ints(kind string, xs []int) jen.Code {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
		if x < 0 {
			parts[i] = "m" + strconv.Itoa(-x)
		}
	}
	sep := "x"
	if kind != "shape" {
		sep = "_"
	}
	key := kind + ":" + strings.Join(parts, ",")
	if name, ok := g.intVars[key]; ok {
		return jen.Id(name)
	}
	want := kind + strings.Join(parts, sep)
	if len(xs) == 0 {
		want = kind + "Scalar"
	}
	name := g.globals.take(want)
	g.intVars[key] = name
	lits := make([]jen.Code, len(xs))
	for i, x := range xs {
		lits[i] = jen.Lit(x)
	}
	g.intVarDefs = append(g.intVarDefs, jen.Id(name).Op("=").Index().Int().Values(lits...))
	return jen.Id(name)
}

// helper adds a package-level function once.
func (g *generator) helper(name string, def func() jen.Code) jen.Code {
	if _, ok := g.helpers[name]; !ok {
		g.helpers[name] = def()
		g.helperOrder = append(g.helperOrder, name)
	}
	return jen.Id(name)
}

// elementwiseKernels are the element-wise kernels (func(y, x []float32)) of the activations
// that have one; the GeLUs are kernels.GeLU with a mode (geluModes).
var elementwiseKernels = map[ir.Activation]string{
	ir.ActReLU: "ReLU", ir.ActSiLU: "SiLU", ir.ActSigmoid: "Sigmoid", ir.ActTanh: "Tanh",
	ir.ActSin: "Sin", ir.ActCos: "Cos", ir.ActExp: "Exp",
}

// geluModes are kernels.GeLU's modes by approximation.
var geluModes = map[ir.GeLUApprox]string{ir.GeLUExact: "GeLUExact", ir.GeLUTanh: "GeLUTanh", ir.GeLUSigmoid: "GeLUSigmoid"}

// emitActivation writes an activation op (relu, …, exp, gelu): its element-wise kernel.
func emitActivation(g *generator, v *ir.Value) ([]jen.Code, error) {
	a, _ := v.ActivationOp()
	if approx, ok := a.GeLU(); ok {
		mode, ok := geluModes[approx]
		if !ok {
			return nil, fmt.Errorf("the Go code generator has no GeLU kernel mode for %s", a)
		}
		return []jen.Code{kernel("GeLU", g.ref(v), g.ref(v.Args[0]), jen.Qual(kernelsPath, mode))}, nil
	}
	name, ok := elementwiseKernels[a]
	if !ok {
		return nil, fmt.Errorf("the Go code generator has no kernel for activation %s", a)
	}
	return []jen.Code{kernel(name, g.ref(v), g.ref(v.Args[0]))}, nil
}

func emitClamp(g *generator, v *ir.Value) ([]jen.Code, error) {
	lo, hi := v.ClampRange()
	return []jen.Code{kernel("Clamp", g.ref(v), g.ref(v.Args[0]), f32(lo), f32(hi))}, nil
}

func emitScale(g *generator, v *ir.Value) ([]jen.Code, error) {
	s, b := v.ScaleBias()
	return []jen.Code{kernel("ScaleBias", g.ref(v), g.ref(v.Args[0]), f32(s), f32(b))}, nil
}

func binary(op string) opEmitter {
	return func(g *generator, v *ir.Value) ([]jen.Code, error) {
		a, b := v.Args[0], v.Args[1]
		return []jen.Code{kernel("Binary", jen.Qual(kernelsPath, op),
			g.ref(v), g.shapeList(dimsOf(v)),
			g.ref(a), g.shapeList(dimsOf(a)),
			g.ref(b), g.shapeList(dimsOf(b)))}, nil
	}
}

func emitLinear(g *generator, v *ir.Value) ([]jen.Code, error) {
	x, w := dimsOf(v.Args[0]), dimsOf(v.Args[1])
	out, in := w[0], w[1]
	rows := quo(prod(x), in)
	return []jen.Code{g.weightKernel(v, "Linear", g.ref(v), g.ref(v.Args[0]), g.dim(rows), g.dim(in), g.dim(out), g.ref(v.Args[1]), g.optional(v, 2))}, nil
}

// emitMatmul multiplies the trailing matrices of a [..., m, k] and b [..., k, n],
// broadcasting their batch dims: one batched call when each side has the full batch or a
// single matrix, else a loop over a table of operand offsets computed here.
func emitMatmul(g *generator, v *ir.Value) ([]jen.Code, error) {
	if !v.Type.Shape.Static() || !v.Args[0].Type.Shape.Static() || !v.Args[1].Type.Shape.Static() {
		return emitMatmulSized(g, v)
	}
	mm := ir.MatmulOf(shapeOf(v.Args[0]), shapeOf(v.Args[1]), shapeOf(v))
	m, k, n, batch := mm.M, mm.K, mm.N, mm.Batch
	if mm.Uniform {
		return []jen.Code{kernel("BatchedMatMul", g.ref(v), g.ref(v.Args[0]), g.ref(v.Args[1]),
			jen.Lit(batch), jen.Lit(m), jen.Lit(k), jen.Lit(n), jen.Lit(mm.StrideA), jen.Lit(mm.StrideB))}, nil
	}
	offsets := mm.Offsets()
	table := g.ints("matmulOffsets", offsets)
	mn, mk, kn := m*n, m*k, k*n
	return []jen.Code{
		jen.Comment("The batch dims broadcast both ways: the table holds each entry's offsets in a and b."),
		jen.For(jen.Id("i").Op(":=").Lit(0), jen.Id("i").Op("<").Lit(batch), jen.Id("i").Op("++")).Block(
			jen.List(jen.Id("offA"), jen.Id("offB")).Op(":=").Add(table).Index(jen.Lit(2).Op("*").Id("i")).Op(",").Add(table).Index(jen.Lit(2).Op("*").Id("i").Op("+").Lit(1)),
			kernel("BatchedMatMul",
				g.ref(v).Index(jen.Id("i").Op("*").Lit(mn).Op(":").Parens(jen.Id("i").Op("+").Lit(1)).Op("*").Lit(mn)),
				g.ref(v.Args[0]).Index(jen.Id("offA").Op(":").Id("offA").Op("+").Lit(mk)),
				g.ref(v.Args[1]).Index(jen.Id("offB").Op(":").Id("offB").Op("+").Lit(kn)),
				jen.Lit(1), jen.Lit(m), jen.Lit(k), jen.Lit(n), jen.Lit(0), jen.Lit(0)),
		),
	}, nil
}

// emitMatmulSized is emitMatmul for sizes chosen at run time: one batched call, each side
// having the full batch or a single matrix (a broadcast over batch dims that differ in
// shape needs them static, for its table of offsets).
func emitMatmulSized(g *generator, v *ir.Value) ([]jen.Code, error) {
	a, b, y := dimsOf(v.Args[0]), dimsOf(v.Args[1]), dimsOf(v)
	ra, rb, ro := len(a), len(b), len(y)
	m, k, n := a[ra-2], a[ra-1], b[rb-1]
	batch := prod(y[:ro-2])
	stride := func(count, size ir.Dim) (ir.Dim, bool) {
		switch count {
		case batch:
			return size, true
		case ir.D(1):
			return ir.D(0), true
		}
		return ir.Dim{}, false
	}
	sa, okA := stride(prod(a[:ra-2]), ir.MulDim(m, k))
	sb, okB := stride(prod(b[:rb-2]), ir.MulDim(k, n))
	if !okA || !okB {
		return nil, fmt.Errorf("matmul of %s and %s broadcasts batch dims of sizes chosen at run time: fix them with --set", a, b)
	}
	return []jen.Code{kernel("BatchedMatMul", g.ref(v), g.ref(v.Args[0]), g.ref(v.Args[1]),
		g.dim(batch), g.dim(m), g.dim(k), g.dim(n), g.dim(sa), g.dim(sb))}, nil
}

// fields is a keyed struct literal of kernels' parameter types, in the order given; a
// value is a literal, or a dim (a size chosen at run time, or a static one).
func (g *generator) fields(typ string, kv ...any) jen.Code {
	dict := make([]jen.Code, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		var val jen.Code
		if d, ok := kv[i+1].(ir.Dim); ok {
			val = g.dim(d)
		} else {
			val = jen.Lit(kv[i+1])
		}
		dict = append(dict, jen.Id(kv[i].(string)).Op(":").Add(val))
	}
	return jen.Qual(kernelsPath, typ).Values(dict...)
}

// convParams is the kernels.Conv2dParams literal of a conv2d or conv2d_fused.
func (g *generator) convParams(v *ir.Value) jen.Code {
	x, w := dimsOf(v.Args[0]), dimsOf(v.Args[1])
	p := v.Conv()
	return g.fields("Conv2dParams",
		"N", x[0], "C", x[1], "H", x[2], "W", x[3],
		"K", w[0], "KH", w[2], "KW", w[3],
		"StrideH", p.Stride[0], "StrideW", p.Stride[1],
		"PadH", p.Padding[0], "PadW", p.Padding[1],
		"DilH", p.Dilation[0], "DilW", p.Dilation[1],
		"Groups", p.Groups)
}

func emitConv2d(g *generator, v *ir.Value) ([]jen.Code, error) {
	return []jen.Code{g.weightKernel(v, "Conv2d", g.ref(v), g.ref(v.Args[0]), g.ref(v.Args[1]), g.optional(v, 2), g.convParams(v))}, nil
}

func emitConvTranspose2d(g *generator, v *ir.Value) ([]jen.Code, error) {
	x, w := dimsOf(v.Args[0]), dimsOf(v.Args[1])
	p := v.Conv()
	params := g.fields("ConvTranspose2dParams",
		"N", x[0], "C", x[1], "H", x[2], "W", x[3],
		"K", ir.MulDim(w[1], ir.D(p.Groups)), "KH", w[2], "KW", w[3],
		"StrideH", p.Stride[0], "StrideW", p.Stride[1],
		"PadH", p.Padding[0], "PadW", p.Padding[1],
		"OutPadH", p.OutputPadding[0], "OutPadW", p.OutputPadding[1],
		"DilH", p.Dilation[0], "DilW", p.Dilation[1],
		"Groups", p.Groups)
	return []jen.Code{kernel("ConvTranspose2d", g.ref(v), g.ref(v.Args[0]), g.ref(v.Args[1]), g.optional(v, 2), params)}, nil
}

func emitLayerNorm(g *generator, v *ir.Value) ([]jen.Code, error) {
	x := dimsOf(v.Args[0])
	p := v.Norm()
	cols := prod(x[len(x)-p.Axes:])
	rows := quo(prod(x), cols)
	return []jen.Code{kernel("LayerNorm", g.ref(v), g.ref(v.Args[0]), g.dim(rows), g.dim(cols),
		g.optional(v, 1), g.optional(v, 2), f32(p.Eps))}, nil
}

func emitGroupNorm(g *generator, v *ir.Value) ([]jen.Code, error) {
	x := dimsOf(v.Args[0])
	p := v.Norm()
	return []jen.Code{kernel("GroupNorm", g.ref(v), g.ref(v.Args[0]), g.dim(x[0]), g.dim(x[1]), g.dim(prod(x[2:])),
		jen.Lit(p.Groups), g.optional(v, 1), g.optional(v, 2), f32(p.Eps))}, nil
}

func channelNorm(name string) opEmitter {
	return func(g *generator, v *ir.Value) ([]jen.Code, error) {
		x := dimsOf(v.Args[0])
		return []jen.Code{kernel(name, g.ref(v), g.ref(v.Args[0]), g.dim(x[0]), g.dim(x[1]), g.dim(prod(x[2:])),
			g.optional(v, 1), g.optional(v, 2), f32(v.Norm().Eps))}, nil
	}
}

func emitEmbedding(g *generator, v *ir.Value) ([]jen.Code, error) {
	w := shapeOf(v.Args[1])
	msg := fmt.Sprintf("%s: %s: embedding table %s: %%w", g.pkg, scopeName(v), runtime.FormatInts(w))
	return []jen.Code{
		jen.If(jen.Err().Op(":=").Add(kernel("Embedding", g.ref(v), g.ref(v.Args[0]), g.ref(v.Args[1]), jen.Lit(w[1]))), jen.Err().Op("!=").Nil()).Block(
			g.fail(jen.Qual("fmt", "Errorf").Call(jen.Lit(msg), jen.Err())),
		),
	}, nil
}

// emitBatchParam repeats a parameter once per batch entry of its first operand.
func emitBatchParam(g *generator, v *ir.Value) ([]jen.Code, error) {
	n, p := prod(dimsOf(v)), prod(dimsOf(v.Args[1]))
	if n == ir.D(0) || p == ir.D(0) {
		return nil, nil
	}
	return []jen.Code{
		jen.For(jen.Id("i").Op(":=").Lit(0), jen.Id("i").Op("<").Add(g.dim(n)), jen.Id("i").Op("+=").Add(g.dim(p))).Block(
			jen.Copy(g.ref(v).Index(jen.Id("i").Op(":").Id("i").Op("+").Add(g.dim(p))), g.ref(v.Args[1])),
		),
	}, nil
}

func emitSDPA(g *generator, v *ir.Value) ([]jen.Code, error) {
	q, k, val := dimsOf(v.Args[0]), dimsOf(v.Args[1]), dimsOf(v.Args[2])
	p := v.Attention()
	return []jen.Code{kernel("Attention", g.ref(v), g.ref(v.Args[0]), g.ref(v.Args[1]), g.ref(v.Args[2]),
		g.dim(q[0]), jen.Lit(p.Heads), g.dim(q[1]), g.dim(k[1]), jen.Lit(q[2].N/p.Heads), jen.Lit(val[2].N/p.Heads),
		jen.Lit(p.Causal))}, nil
}

func emitSoftmax(g *generator, v *ir.Value) ([]jen.Code, error) {
	x := dimsOf(v.Args[0])
	d := v.Axis()
	return []jen.Code{kernel("Softmax", g.ref(v), g.ref(v.Args[0]), g.dim(prod(x[:d])), g.dim(x[d]), g.dim(prod(x[d+1:])))}, nil
}

func emitPermute(g *generator, v *ir.Value) ([]jen.Code, error) {
	return []jen.Code{kernel("Permute", g.ref(v), g.ref(v.Args[0]), g.shapeList(dimsOf(v.Args[0])), g.ints("perm", v.Perm()))}, nil
}

func emitSlice(g *generator, v *ir.Value) ([]jen.Code, error) {
	x := dimsOf(v.Args[0])
	p := v.Slice()
	return []jen.Code{kernel("Slice", g.ref(v), g.ref(v.Args[0]), g.shapeList(x), jen.Lit(p.Dim),
		jen.Lit(p.Start), jen.Lit(p.End), jen.Lit(p.Step))}, nil
}

// emitConcat passes the operands as a [][]float32 kept in the model, so the call builds no
// slice. Operands that are arguments of Forward are stored for the call and cleared after
// it, so the model does not keep the caller's memory alive.
func emitConcat(g *generator, v *ir.Value) ([]jen.Code, error) {
	field := g.fieldNames.take("concat" + strconv.Itoa(v.ID) + "Operands")
	g.extraFields = append(g.extraFields, jen.Id(field).Index().Index().Float32().Comment(fmt.Sprintf("operands of %s", v.Ref())))
	shapes := make([]jen.Code, len(v.Args))
	fixed := make([]jen.Code, len(v.Args))
	var set, clear []jen.Code
	for i, a := range v.Args {
		shapes[i] = g.shapeList(dimsOf(a))
		// A value Load computes (a merged LoRA weight that pack_qkv concatenates) has
		// no buffer yet when the model is built: it is stored for the call too, and
		// cleared after a call in prepare, whose intermediates are freed.
		if g.isArgument(a) || g.hoisted[a] {
			fixed[i] = jen.Nil()
			slot := jen.Id("m").Dot(field).Index(jen.Lit(i))
			set = append(set, slot.Clone().Op("=").Add(g.ref(a)))
			if g.isArgument(a) || g.inPrepare {
				clear = append(clear, slot.Clone().Op("=").Nil())
			}
			continue
		}
		fixed[i] = g.ref(a)
	}
	var shapeList jen.Code
	// A concatenation in prepare (weights only) has static shapes, and runs before Forward
	// has made any plan: its lists are the model's, built once.
	if g.sym == nil || g.inPrepare {
		g.extraInits = append(g.extraInits, jen.Id("m").Dot(field).Op("=").Index().Index().Float32().Values(fixed...))
		name := g.globals.take("concat" + strconv.Itoa(v.ID) + "Shapes")
		g.intVarDefs = append(g.intVarDefs, jen.Id(name).Op("=").Index().Index().Int().Values(shapes...))
		shapeList = jen.Id(name)
	} else {
		// The operands' slices and shapes change with the sizes: the list is set with
		// each plan, in place.
		g.extraInits = append(g.extraInits, jen.Id("m").Dot(field).Op("=").Make(jen.Index().Index().Float32(), jen.Lit(len(v.Args))))
		for i, a := range v.Args {
			if !g.isArgument(a) && !g.hoisted[a] {
				g.sym.operandLists = append(g.sym.operandLists, jen.Id("m").Dot(field).Index(jen.Lit(i)).Op("=").Add(fixed[i]))
			}
		}
		shapeList = g.planShapes("concat"+strconv.Itoa(v.ID)+"Shapes", shapes)
	}
	out := append(set, kernel("Concat", g.ref(v), jen.Id("m").Dot(field), shapeList, jen.Lit(v.Axis())))
	return append(out, clear...), nil
}

func emitUpsample(g *generator, v *ir.Value) ([]jen.Code, error) {
	x, y := dimsOf(v.Args[0]), dimsOf(v)
	args := []jen.Code{g.ref(v), g.ref(v.Args[0]), g.dim(x[0]), g.dim(x[1]), g.dim(x[2]), g.dim(x[3]), g.dim(y[2]), g.dim(y[3])}
	switch p := v.Upsample(); p.Mode {
	case ir.UpsampleNearest:
		return []jen.Code{kernel("UpsampleNearest", args...)}, nil
	case ir.UpsampleBilinear:
		return []jen.Code{kernel("UpsampleBilinear", append(args, jen.Lit(p.AlignCorners))...)}, nil
	default:
		return nil, fmt.Errorf("the Go code generator has no kernel for upsample mode %s", p.Mode)
	}
}

var padModes = map[ir.PadMode]string{ir.PadConstant: "PadConstant", ir.PadReflect: "PadReflect", ir.PadReplicate: "PadReplicate"}

func emitPad(g *generator, v *ir.Value) ([]jen.Code, error) {
	p := v.Pad()
	mode, ok := padModes[p.Mode]
	if !ok {
		return nil, fmt.Errorf("the Go code generator has no kernel for pad mode %s", p.Mode)
	}
	return []jen.Code{kernel("Pad", g.ref(v), g.ref(v.Args[0]), g.shapeList(dimsOf(v.Args[0])), g.ints("pads", p.Pads),
		jen.Qual(kernelsPath, mode), f32(p.Value))}, nil
}

func emitPixelUnshuffle(g *generator, v *ir.Value) ([]jen.Code, error) {
	x := dimsOf(v.Args[0])
	return []jen.Code{kernel("PixelUnshuffle", g.ref(v), g.ref(v.Args[0]), g.dim(x[0]), g.dim(x[1]), g.dim(x[2]), g.dim(x[3]), jen.Lit(v.Factor()))}, nil
}

func emitPixelShuffle(g *generator, v *ir.Value) ([]jen.Code, error) {
	x := dimsOf(v.Args[0])
	return []jen.Code{kernel("PixelShuffle", g.ref(v), g.ref(v.Args[0]), g.dim(x[0]), g.dim(x[1]), g.dim(x[2]), g.dim(x[3]), jen.Lit(v.Factor()))}, nil
}

// gluAct is the element-wise kernel a GLU applies to its gate.
func (g *generator) gluAct(a ir.Activation) (jen.Code, error) {
	switch k, ok := elementwiseKernels[a]; {
	case ok:
		return jen.Qual(kernelsPath, k), nil
	case a == ir.ActGeLU:
		// The interpreter's GLU uses exact GeLU; kernels.GeLU takes the mode as a third
		// argument, so a named function adapts it.
		return g.helper("geluExact", func() jen.Code {
			return jen.Comment("geluExact is kernels.GeLU without approximation, as an element-wise kernel.").Line().
				Func().Id("geluExact").Params(jen.List(jen.Id("y"), jen.Id("x")).Index().Float32()).Block(
				kernel("GeLU", jen.Id("y"), jen.Id("x"), jen.Qual(kernelsPath, "GeLUExact")))
		}), nil
	}
	return nil, fmt.Errorf("the Go code generator has no kernel for glu activation %s", a)
}

func emitGLU(g *generator, v *ir.Value) ([]jen.Code, error) {
	act, err := g.gluAct(v.GLUActivation())
	if err != nil {
		return nil, err
	}
	x := dimsOf(v.Args[0])
	last := x[len(x)-1]
	return []jen.Code{kernel("GLU", g.ref(v), g.ref(v.Args[0]), g.dim(quo(prod(x), last)), g.dim(last), jen.Lit(1), act)}, nil
}

// fusedActs are the kernels' names of the act attribute of fused ops (ir.FusedActivations).
var fusedActs = map[ir.Activation]string{
	ir.ActNone: "ActNone", ir.ActReLU: "ActReLU", ir.ActSiLU: "ActSiLU", ir.ActSigmoid: "ActSigmoid", ir.ActTanh: "ActTanh",
	ir.ActGeLU: "ActGeLU", ir.ActGeLUTanh: "ActGeLUTanh", ir.ActGeLUSigmoid: "ActGeLUSigmoid",
}

func fusedAct(v *ir.Value) (jen.Code, error) {
	name, ok := fusedActs[v.FusedAct()]
	if !ok {
		return nil, fmt.Errorf("the Go code generator has no fused kernel for activation %s", v.FusedAct())
	}
	return jen.Qual(kernelsPath, name), nil
}

// epilogue is the kernels.Epilogue literal of a fused conv2d or linear (the fields it
// needs only), and the number of operands before its residual.
func (g *generator) epilogue(v *ir.Value) (jen.Code, int, error) {
	act, err := fusedAct(v)
	if err != nil {
		return nil, 0, err
	}
	var fields []jen.Code
	p := v.Epilogue()
	if p.Affine() {
		fields = append(fields, jen.Id("Affine").Op(":").True(), jen.Id("Scale").Op(":").Add(f32(p.Scale)), jen.Id("Shift").Op(":").Add(f32(p.Shift)))
	}
	n := len(v.Args)
	if p.Residual {
		n--
		fields = append(fields, jen.Id("Residual").Op(":").Add(g.ref(v.Args[n])))
	}
	if p.Act != ir.ActNone {
		fields = append(fields, jen.Id("Act").Op(":").Add(act))
	}
	return jen.Qual(kernelsPath, "Epilogue").Values(fields...), n, nil
}

// bias is operand 2 when the fused op has it before its residual (n operands).
func (g *generator) bias(v *ir.Value, n int) jen.Code {
	if n == 3 {
		return g.ref(v.Args[2])
	}
	return jen.Nil()
}

func emitConv2dFused(g *generator, v *ir.Value) ([]jen.Code, error) {
	ep, n, err := g.epilogue(v)
	if err != nil {
		return nil, err
	}
	return []jen.Code{g.weightKernel(v, "Conv2dFused", g.ref(v), g.ref(v.Args[0]), g.ref(v.Args[1]), g.bias(v, n), g.convParams(v), ep)}, nil
}

func emitLinearFused(g *generator, v *ir.Value) ([]jen.Code, error) {
	ep, n, err := g.epilogue(v)
	if err != nil {
		return nil, err
	}
	x, w := dimsOf(v.Args[0]), dimsOf(v.Args[1])
	out, in := w[0], w[1]
	rows := quo(prod(x), in)
	return []jen.Code{g.weightKernel(v, "LinearFused", g.ref(v), g.ref(v.Args[0]), g.dim(rows), g.dim(in), g.dim(out), g.ref(v.Args[1]), g.bias(v, n), ep)}, nil
}

func emitNormAct(name string) opEmitter {
	return func(g *generator, v *ir.Value) ([]jen.Code, error) {
		act, err := fusedAct(v)
		if err != nil {
			return nil, err
		}
		x := dimsOf(v.Args[0])
		p := v.Norm()
		eps := f32(p.Eps)
		if v.Op == "layer_norm_act" {
			cols := prod(x[len(x)-p.Axes:])
			return []jen.Code{kernel(name, g.ref(v), g.ref(v.Args[0]), g.dim(quo(prod(x), cols)), g.dim(cols),
				g.optional(v, 1), g.optional(v, 2), eps, act)}, nil
		}
		return []jen.Code{kernel(name, g.ref(v), g.ref(v.Args[0]), g.dim(x[0]), g.dim(x[1]), g.dim(prod(x[2:])),
			jen.Lit(p.Groups), g.optional(v, 1), g.optional(v, 2), eps, act)}, nil
	}
}

func emitLinearGLU(g *generator, v *ir.Value) ([]jen.Code, error) {
	act, err := g.gluAct(v.GLUActivation())
	if err != nil {
		return nil, err
	}
	x, w := dimsOf(v.Args[0]), dimsOf(v.Args[1])
	out, in := w[0], w[1]
	return []jen.Code{g.weightKernel(v, "LinearGLU", g.ref(v), g.ref(v.Args[0]), g.dim(quo(prod(x), in)), g.dim(in), g.dim(out),
		g.ref(v.Args[1]), g.optional(v, 2), act)}, nil
}

// emitArange fills the constant: Load computes it once (arange has no operand, so it is a
// load-time value: hoist.go), in float64 rounded to float32 as torch does, or as int64.
func emitArange(g *generator, v *ir.Value) ([]jen.Code, error) {
	p := v.Arange()
	if p.DType.IsFloat() {
		return []jen.Code{kernel("Arange", g.ref(v), jen.Lit(float64(p.Start)), jen.Lit(float64(p.Step)))}, nil
	}
	return []jen.Code{kernel("ArangeInt", g.ref(v), jen.Lit(p.Start), jen.Lit(p.Step))}, nil
}

// scopeName is the Refiners path of the layer a value belongs to, for comments and errors.
func scopeName(v *ir.Value) string {
	if p := v.Scope.Path(); p != "" {
		return p
	}
	return "(model)"
}
