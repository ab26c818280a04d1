package interp

import (
	"fmt"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/kernels"
	"github.com/rfc-project/rfc/runtime"
)

// opFunc computes one op. Operands and the result type have been checked against the op
// catalogue's rule (ir.Infer) before the run, so implementations read shapes and attributes
// without re-validating them.
type opFunc func(c *call) (*runtime.Tensor, error)

// opTable holds every op the interpreter knows, by the catalogue's name.
var opTable map[string]opFunc

func init() {
	opTable = map[string]opFunc{
		"relu":             opActivation,
		"silu":             opActivation,
		"sigmoid":          opActivation,
		"tanh":             opActivation,
		"sin":              opActivation,
		"cos":              opActivation,
		"exp":              opActivation,
		"gelu":             opActivation,
		"clamp":            opClamp,
		"scale":            opScale,
		"add":              binary(kernels.OpAdd),
		"sub":              binary(kernels.OpSub),
		"mul":              binary(kernels.OpMul),
		"div":              binary(kernels.OpDiv),
		"linear":           opLinear,
		"matmul":           opMatmul,
		"conv2d":           opConv2d,
		"conv_transpose2d": opConvTranspose2d,
		"layer_norm":       opLayerNorm,
		"group_norm":       opGroupNorm,
		"layer_norm2d":     channelNorm(kernels.LayerNorm2d),
		"instance_norm2d":  channelNorm(kernels.InstanceNorm2d),
		"embedding":        opEmbedding,
		"batch_param":      opBatchParam,
		"sdpa":             opSDPA,
		"softmax":          opSoftmax,
		"reshape":          func(c *call) (*runtime.Tensor, error) { return c.view(0), nil },
		"permute":          opPermute,
		"slice":            opSlice,
		"concat":           opConcat,
		"upsample":         opUpsample,
		"pad":              opPad,
		"pixel_unshuffle":  opPixelUnshuffle,
		"pixel_shuffle":    opPixelShuffle,
		"glu":              opGLU,
		"conv2d_fused":     opConv2dFused,
		"linear_fused":     opLinearFused,
		"group_norm_act":   opGroupNormAct,
		"layer_norm_act":   opLayerNormAct,
		"linear_glu":       opLinearGLU,
		"arange":           opArange,
	}
}

// elementwise are the kernels of the activations (ir.AllActivations) as element-wise
// functions: what activation ops and GLU's gate compute. ActNone (fused ops only) has none.
var elementwise = map[ir.Activation]func(y, x []float32){
	ir.ActReLU:        kernels.ReLU,
	ir.ActSiLU:        kernels.SiLU,
	ir.ActSigmoid:     kernels.Sigmoid,
	ir.ActTanh:        kernels.Tanh,
	ir.ActSin:         kernels.Sin,
	ir.ActCos:         kernels.Cos,
	ir.ActExp:         kernels.Exp,
	ir.ActGeLU:        gelu(kernels.GeLUExact),
	ir.ActGeLUTanh:    gelu(kernels.GeLUTanh),
	ir.ActGeLUSigmoid: gelu(kernels.GeLUSigmoid),
}

func gelu(approx kernels.GeLUApprox) func(y, x []float32) {
	return func(y, x []float32) { kernels.GeLU(y, x, approx) }
}

// epilogueActs are the kernels' activations of the act attribute of fused ops
// (ir.FusedActivations).
var epilogueActs = map[ir.Activation]kernels.Activation{
	ir.ActNone:        kernels.ActNone,
	ir.ActReLU:        kernels.ActReLU,
	ir.ActSiLU:        kernels.ActSiLU,
	ir.ActSigmoid:     kernels.ActSigmoid,
	ir.ActTanh:        kernels.ActTanh,
	ir.ActGeLU:        kernels.ActGeLU,
	ir.ActGeLUTanh:    kernels.ActGeLUTanh,
	ir.ActGeLUSigmoid: kernels.ActGeLUSigmoid,
}

// elementwiseOf is the kernel of activation a (an activation op's, or GLU's gate's).
func elementwiseOf(a ir.Activation) (func(y, x []float32), error) {
	if k, ok := elementwise[a]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("the interpreter has no kernel for activation %s", a)
}

// epilogueAct is the kernels' activation of a fused op's act.
func epilogueAct(v *ir.Value) (kernels.Activation, error) {
	if k, ok := epilogueActs[v.FusedAct()]; ok {
		return k, nil
	}
	return 0, fmt.Errorf("the interpreter has no fused kernel for activation %s", v.FusedAct())
}

// opActivation runs an activation op (relu, …, exp, gelu).
func opActivation(c *call) (*runtime.Tensor, error) {
	a, _ := c.v.ActivationOp()
	k, err := elementwiseOf(a)
	if err != nil {
		return nil, err
	}
	y := c.outOver(0)
	k(y.F32, c.args[0].F32)
	return y, nil
}

func opClamp(c *call) (*runtime.Tensor, error) {
	y := c.outOver(0)
	lo, hi := c.v.ClampRange()
	kernels.Clamp(y.F32, c.args[0].F32, float32(lo), float32(hi))
	return y, nil
}

func opScale(c *call) (*runtime.Tensor, error) {
	y := c.outOver(0)
	s, b := c.v.ScaleBias()
	kernels.ScaleBias(y.F32, c.args[0].F32, float32(s), float32(b))
	return y, nil
}

func binary(op kernels.BinaryOp) opFunc {
	return func(c *call) (*runtime.Tensor, error) {
		a, b := c.args[0], c.args[1]
		var y *runtime.Tensor
		switch {
		case c.reusable(0):
			y = c.outOver(0)
		case c.reusable(1):
			y = c.outOver(1)
		default:
			y = c.newOut()
		}
		kernels.Binary(op, y.F32, y.Shape, a.F32, a.Shape, b.F32, b.Shape)
		return y, nil
	}
}

// optional returns the data of operand j, or nil when the op has fewer operands.
func (c *call) optional(j int) []float32 {
	if j < len(c.args) {
		return c.args[j].F32
	}
	return nil
}

func opLinear(c *call) (*runtime.Tensor, error) {
	x, w := c.args[0], c.args[1]
	out, in := w.Shape[0], w.Shape[1]
	y := c.newOut()
	kernels.Linear(y.F32, x.F32, len(x.F32)/max(in, 1), in, out, w.F32, c.optional(2))
	return y, nil
}

// opMatmul multiplies the trailing matrices of a [..., m, k] and b [..., k, n], broadcasting
// their batch dims.
func opMatmul(c *call) (*runtime.Tensor, error) {
	a, b := c.args[0], c.args[1]
	y := c.newOut()
	mm := ir.MatmulOf(a.Shape, b.Shape, y.Shape)
	m, k, n := mm.M, mm.K, mm.N
	if mm.Uniform {
		kernels.BatchedMatMul(y.F32, a.F32, b.F32, mm.Batch, m, k, n, mm.StrideA, mm.StrideB)
		return y, nil
	}
	offsets := mm.Offsets()
	for i := range mm.Batch {
		offA, offB := offsets[2*i], offsets[2*i+1]
		kernels.BatchedMatMul(y.F32[i*m*n:(i+1)*m*n], a.F32[offA:offA+m*k], b.F32[offB:offB+k*n], 1, m, k, n, 0, 0)
	}
	return y, nil
}

// convParams is the kernels' description of the conv2d (or conv2d_fused) v on x and w.
func convParams(v *ir.Value, x, w *runtime.Tensor) kernels.Conv2dParams {
	p := v.Conv()
	return kernels.Conv2dParams{
		N: x.Shape[0], C: x.Shape[1], H: x.Shape[2], W: x.Shape[3],
		K: w.Shape[0], KH: w.Shape[2], KW: w.Shape[3],
		StrideH: p.Stride[0], StrideW: p.Stride[1],
		PadH: p.Padding[0], PadW: p.Padding[1],
		DilH: p.Dilation[0], DilW: p.Dilation[1],
		Groups: p.Groups,
	}
}

func opConv2d(c *call) (*runtime.Tensor, error) {
	x, w := c.args[0], c.args[1]
	y := c.newOut()
	kernels.Conv2d(y.F32, x.F32, w.F32, c.optional(2), convParams(c.v, x, w))
	return y, nil
}

func opConvTranspose2d(c *call) (*runtime.Tensor, error) {
	x, w := c.args[0], c.args[1]
	p := c.v.Conv()
	y := c.newOut()
	kernels.ConvTranspose2d(y.F32, x.F32, w.F32, c.optional(2), kernels.ConvTranspose2dParams{
		N: x.Shape[0], C: x.Shape[1], H: x.Shape[2], W: x.Shape[3],
		K: w.Shape[1] * p.Groups, KH: w.Shape[2], KW: w.Shape[3],
		StrideH: p.Stride[0], StrideW: p.Stride[1],
		PadH: p.Padding[0], PadW: p.Padding[1],
		OutPadH: p.OutputPadding[0], OutPadW: p.OutputPadding[1],
		DilH: p.Dilation[0], DilW: p.Dilation[1],
		Groups: p.Groups,
	})
	return y, nil
}

func opLayerNorm(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	p := c.v.Norm()
	cols := ir.Prod(x.Shape[len(x.Shape)-p.Axes:])
	y := c.newOut()
	kernels.LayerNorm(y.F32, x.F32, len(x.F32)/max(cols, 1), cols, c.optional(1), c.optional(2), float32(p.Eps))
	return y, nil
}

func opGroupNorm(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	p := c.v.Norm()
	kernels.GroupNorm(y.F32, x.F32, x.Shape[0], x.Shape[1], ir.Prod(x.Shape[2:]), p.Groups, c.optional(1), c.optional(2), float32(p.Eps))
	return y, nil
}

func channelNorm(k func(y, x []float32, n, c, hw int, w, b []float32, eps float32)) opFunc {
	return func(c *call) (*runtime.Tensor, error) {
		x := c.args[0]
		y := c.newOut()
		k(y.F32, x.F32, x.Shape[0], x.Shape[1], ir.Prod(x.Shape[2:]), c.optional(1), c.optional(2), float32(c.v.Norm().Eps))
		return y, nil
	}
}

func opEmbedding(c *call) (*runtime.Tensor, error) {
	idx, w := c.args[0], c.args[1]
	if idx.DType != runtime.I64 {
		return nil, fmt.Errorf("embedding indices must be an I64 tensor, got %s", idx.DType)
	}
	y := c.newOut()
	if err := kernels.Embedding(y.F32, idx.I64, w.F32, w.Shape[1]); err != nil {
		return nil, fmt.Errorf("embedding table %s: %w", runtime.FormatInts(w.Shape), err)
	}
	return y, nil
}

// opBatchParam repeats a parameter once per batch entry of its first operand.
func opBatchParam(c *call) (*runtime.Tensor, error) {
	p := c.args[1].F32
	y := c.newOut()
	for i := 0; i < len(y.F32); i += len(p) {
		copy(y.F32[i:i+len(p)], p)
	}
	return y, nil
}

func opSDPA(c *call) (*runtime.Tensor, error) {
	q, k, v := c.args[0], c.args[1], c.args[2]
	p := c.v.Attention()
	y := c.newOut()
	kernels.Attention(y.F32, q.F32, k.F32, v.F32, q.Shape[0], p.Heads, q.Shape[1], k.Shape[1], q.Shape[2]/p.Heads, v.Shape[2]/p.Heads, p.Causal)
	return y, nil
}

func opSoftmax(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	d := c.v.Axis()
	y := c.newOut()
	kernels.Softmax(y.F32, x.F32, ir.Prod(x.Shape[:d]), x.Shape[d], ir.Prod(x.Shape[d+1:]))
	return y, nil
}

func opPermute(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	kernels.Permute(y.F32, x.F32, x.Shape, c.v.Perm())
	return y, nil
}

func opSlice(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	p := c.v.Slice()
	kernels.Slice(y.F32, x.F32, x.Shape, p.Dim, p.Start, p.End, p.Step)
	return y, nil
}

func opConcat(c *call) (*runtime.Tensor, error) {
	xs := make([][]float32, len(c.args))
	shapes := make([][]int, len(c.args))
	for i, a := range c.args {
		xs[i], shapes[i] = a.F32, a.Shape
	}
	y := c.newOut()
	kernels.Concat(y.F32, xs, shapes, c.v.Axis())
	return y, nil
}

func opUpsample(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	n, ch, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	oh, ow := y.Shape[2], y.Shape[3]
	switch p := c.v.Upsample(); p.Mode {
	case ir.UpsampleNearest:
		kernels.UpsampleNearest(y.F32, x.F32, n, ch, h, w, oh, ow)
	case ir.UpsampleBilinear:
		kernels.UpsampleBilinear(y.F32, x.F32, n, ch, h, w, oh, ow, p.AlignCorners)
	default:
		return nil, fmt.Errorf("the interpreter has no kernel for upsample mode %s", p.Mode)
	}
	return y, nil
}

var padModes = map[ir.PadMode]kernels.PadMode{ir.PadConstant: kernels.PadConstant, ir.PadReflect: kernels.PadReflect, ir.PadReplicate: kernels.PadReplicate}

func opPad(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	p := c.v.Pad()
	mode, ok := padModes[p.Mode]
	if !ok {
		return nil, fmt.Errorf("the interpreter has no kernel for pad mode %s", p.Mode)
	}
	y := c.newOut()
	kernels.Pad(y.F32, x.F32, x.Shape, p.Pads, mode, float32(p.Value))
	return y, nil
}

func opPixelUnshuffle(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	kernels.PixelUnshuffle(y.F32, x.F32, x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], c.v.Factor())
	return y, nil
}

func opPixelShuffle(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	kernels.PixelShuffle(y.F32, x.F32, x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], c.v.Factor())
	return y, nil
}

func opGLU(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	act, err := elementwiseOf(c.v.GLUActivation())
	if err != nil {
		return nil, err
	}
	y := c.newOut()
	last := x.Shape[len(x.Shape)-1]
	kernels.GLU(y.F32, x.F32, len(x.F32)/max(last, 1), last, 1, act)
	return y, nil
}

// epilogue reads the epilogue attributes of a fused conv2d or linear, and its residual (the
// last operand when residual is true). It also returns the number of operands before the
// residual.
func epilogue(c *call) (kernels.Epilogue, int, error) {
	act, err := epilogueAct(c.v)
	if err != nil {
		return kernels.Epilogue{}, 0, err
	}
	ep := kernels.Epilogue{Act: act}
	p := c.v.Epilogue()
	if p.Affine() {
		ep.Affine, ep.Scale, ep.Shift = true, float32(p.Scale), float32(p.Shift)
	}
	n := len(c.args)
	if p.Residual {
		n--
		ep.Residual = c.args[n].F32
	}
	return ep, n, nil
}

// bias is operand 2 when the op has it before its residual.
func (c *call) bias(n int) []float32 {
	if n == 3 {
		return c.args[2].F32
	}
	return nil
}

func opConv2dFused(c *call) (*runtime.Tensor, error) {
	ep, n, err := epilogue(c)
	if err != nil {
		return nil, err
	}
	x, w := c.args[0], c.args[1]
	y := c.newOut()
	kernels.Conv2dFused(y.F32, x.F32, w.F32, c.bias(n), convParams(c.v, x, w), ep)
	return y, nil
}

func opLinearFused(c *call) (*runtime.Tensor, error) {
	ep, n, err := epilogue(c)
	if err != nil {
		return nil, err
	}
	x, w := c.args[0], c.args[1]
	out, in := w.Shape[0], w.Shape[1]
	y := c.newOut()
	kernels.LinearFused(y.F32, x.F32, len(x.F32)/max(in, 1), in, out, w.F32, c.bias(n), ep)
	return y, nil
}

func opGroupNormAct(c *call) (*runtime.Tensor, error) {
	act, err := epilogueAct(c.v)
	if err != nil {
		return nil, err
	}
	x := c.args[0]
	p := c.v.Norm()
	y := c.newOut()
	kernels.GroupNormAct(y.F32, x.F32, x.Shape[0], x.Shape[1], ir.Prod(x.Shape[2:]), p.Groups, c.optional(1), c.optional(2), float32(p.Eps), act)
	return y, nil
}

func opLayerNormAct(c *call) (*runtime.Tensor, error) {
	act, err := epilogueAct(c.v)
	if err != nil {
		return nil, err
	}
	x := c.args[0]
	p := c.v.Norm()
	cols := ir.Prod(x.Shape[len(x.Shape)-p.Axes:])
	y := c.newOut()
	kernels.LayerNormAct(y.F32, x.F32, len(x.F32)/max(cols, 1), cols, c.optional(1), c.optional(2), float32(p.Eps), act)
	return y, nil
}

func opLinearGLU(c *call) (*runtime.Tensor, error) {
	act, err := elementwiseOf(c.v.GLUActivation())
	if err != nil {
		return nil, err
	}
	x, w := c.args[0], c.args[1]
	out, in := w.Shape[0], w.Shape[1]
	y := c.newOut()
	kernels.LinearGLU(y.F32, x.F32, len(x.F32)/max(in, 1), in, out, w.F32, c.optional(2), act)
	return y, nil
}

// opArange fills the constant [n]: start + i·step, computed in float64 and rounded for
// f32 as torch.arange does; integer types are held as int64.
func opArange(c *call) (*runtime.Tensor, error) {
	p := c.v.Arange()
	if p.DType.IsFloat() {
		y := c.newOut()
		kernels.Arange(y.F32, float64(p.Start), float64(p.Step))
		return y, nil
	}
	y := runtime.FromI64(make([]int64, c.outShape()[0]), c.outShape()...)
	kernels.ArangeInt(y.I64, int64(p.Start), int64(p.Step))
	return y, nil
}
