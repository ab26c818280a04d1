package interp

import (
	"fmt"

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
		"relu":             unary(kernels.ReLU),
		"silu":             unary(kernels.SiLU),
		"sigmoid":          unary(kernels.Sigmoid),
		"tanh":             unary(kernels.Tanh),
		"sin":              unary(kernels.Sin),
		"cos":              unary(kernels.Cos),
		"gelu":             opGeLU,
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
	}
}

// activations maps the names of ir.Activations to their kernels (GLU picks one by name).
var activations = map[string]func(y, x []float32){
	"relu":    kernels.ReLU,
	"silu":    kernels.SiLU,
	"sigmoid": kernels.Sigmoid,
	"tanh":    kernels.Tanh,
	"sin":     kernels.Sin,
	"cos":     kernels.Cos,
	"gelu":    func(y, x []float32) { kernels.GeLU(y, x, kernels.GeLUExact) },
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// axis resolves a possibly negative dim (the catalogue has checked its range).
func axis(d, rank int) int {
	if d < 0 {
		return d + rank
	}
	return d
}

func unary(k func(y, x []float32)) opFunc {
	return func(c *call) (*runtime.Tensor, error) {
		y := c.outOver(0)
		k(y.F32, c.args[0].F32)
		return y, nil
	}
}

func opGeLU(c *call) (*runtime.Tensor, error) {
	var approx kernels.GeLUApprox
	switch a := c.v.Str("approximate", ""); a {
	case "none":
		approx = kernels.GeLUExact
	case "tanh":
		approx = kernels.GeLUTanh
	case "sigmoid":
		approx = kernels.GeLUSigmoid
	default:
		return nil, fmt.Errorf("unknown gelu approximation %q", a)
	}
	y := c.outOver(0)
	kernels.GeLU(y.F32, c.args[0].F32, approx)
	return y, nil
}

func opClamp(c *call) (*runtime.Tensor, error) {
	y := c.outOver(0)
	kernels.Clamp(y.F32, c.args[0].F32, float32(c.v.Float("min", 0)), float32(c.v.Float("max", 0)))
	return y, nil
}

func opScale(c *call) (*runtime.Tensor, error) {
	y := c.outOver(0)
	kernels.ScaleBias(y.F32, c.args[0].F32, float32(c.v.Float("scale", 1)), float32(c.v.Float("bias", 0)))
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
	ra, rb, ro := len(a.Shape), len(b.Shape), len(y.Shape)
	m, k, n := a.Shape[ra-2], a.Shape[ra-1], b.Shape[rb-1]
	batchShape := y.Shape[:ro-2]
	batch := prod(batchShape)
	na, nb := prod(a.Shape[:ra-2]), prod(b.Shape[:rb-2])
	// Each side either has the full batch (its batch dims equal the result's, since each
	// differs only by 1s) or a single matrix: one batched call covers it.
	stride := func(count, size int) (int, bool) {
		switch count {
		case batch:
			return size, true
		case 1:
			return 0, true
		}
		return 0, false
	}
	sa, okA := stride(na, m*k)
	sb, okB := stride(nb, k*n)
	if okA && okB {
		kernels.BatchedMatMul(y.F32, a.F32, b.F32, batch, m, k, n, sa, sb)
		return y, nil
	}
	// General broadcast ([2, 1] with [1, 3] batches): walk the result's batch index.
	aStrides := broadcastStrides(a.Shape[:ra-2], batchShape, m*k)
	bStrides := broadcastStrides(b.Shape[:rb-2], batchShape, k*n)
	idx := make([]int, len(batchShape))
	for i := 0; i < batch; i++ {
		offA, offB := 0, 0
		for d := range idx {
			offA += idx[d] * aStrides[d]
			offB += idx[d] * bStrides[d]
		}
		kernels.BatchedMatMul(y.F32[i*m*n:(i+1)*m*n], a.F32[offA:offA+m*k], b.F32[offB:offB+k*n], 1, m, k, n, 0, 0)
		for d := len(idx) - 1; d >= 0; d-- {
			if idx[d]++; idx[d] < batchShape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return y, nil
}

// broadcastStrides gives, for each dim of out, the stride (in elements, with inner the size
// of one item) of the operand of shape s right-aligned to it; broadcast dims get 0.
func broadcastStrides(s, out []int, inner int) []int {
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

func opConv2d(c *call) (*runtime.Tensor, error) {
	x, w := c.args[0], c.args[1]
	stride, pad, dil := c.v.Ints("stride"), c.v.Ints("padding"), c.v.Ints("dilation")
	y := c.newOut()
	kernels.Conv2d(y.F32, x.F32, w.F32, c.optional(2), kernels.Conv2dParams{
		N: x.Shape[0], C: x.Shape[1], H: x.Shape[2], W: x.Shape[3],
		K: w.Shape[0], KH: w.Shape[2], KW: w.Shape[3],
		StrideH: stride[0], StrideW: stride[1],
		PadH: pad[0], PadW: pad[1],
		DilH: dil[0], DilW: dil[1],
		Groups: c.v.Int("groups", 1),
	})
	return y, nil
}

func opConvTranspose2d(c *call) (*runtime.Tensor, error) {
	x, w := c.args[0], c.args[1]
	stride, pad, dil := c.v.Ints("stride"), c.v.Ints("padding"), c.v.Ints("dilation")
	outPad := c.v.Ints("output_padding")
	groups := c.v.Int("groups", 1)
	y := c.newOut()
	kernels.ConvTranspose2d(y.F32, x.F32, w.F32, c.optional(2), kernels.ConvTranspose2dParams{
		N: x.Shape[0], C: x.Shape[1], H: x.Shape[2], W: x.Shape[3],
		K: w.Shape[1] * groups, KH: w.Shape[2], KW: w.Shape[3],
		StrideH: stride[0], StrideW: stride[1],
		PadH: pad[0], PadW: pad[1],
		OutPadH: outPad[0], OutPadW: outPad[1],
		DilH: dil[0], DilW: dil[1],
		Groups: groups,
	})
	return y, nil
}

func opLayerNorm(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	axes := c.v.Int("axes", 1)
	cols := prod(x.Shape[len(x.Shape)-axes:])
	y := c.newOut()
	kernels.LayerNorm(y.F32, x.F32, len(x.F32)/max(cols, 1), cols, c.optional(1), c.optional(2), float32(c.v.Float("eps", 1e-5)))
	return y, nil
}

func opGroupNorm(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	kernels.GroupNorm(y.F32, x.F32, x.Shape[0], x.Shape[1], prod(x.Shape[2:]), c.v.Int("groups", 1), c.optional(1), c.optional(2), float32(c.v.Float("eps", 1e-5)))
	return y, nil
}

func channelNorm(k func(y, x []float32, n, c, hw int, w, b []float32, eps float32)) opFunc {
	return func(c *call) (*runtime.Tensor, error) {
		x := c.args[0]
		y := c.newOut()
		k(y.F32, x.F32, x.Shape[0], x.Shape[1], prod(x.Shape[2:]), c.optional(1), c.optional(2), float32(c.v.Float("eps", 1e-5)))
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
		return nil, fmt.Errorf("embedding table %s: %w", formatInts(w.Shape), err)
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
	heads := c.v.Int("heads", 1)
	y := c.newOut()
	kernels.Attention(y.F32, q.F32, k.F32, v.F32, q.Shape[0], heads, q.Shape[1], k.Shape[1], q.Shape[2]/heads, v.Shape[2]/heads, c.v.Bool("causal", false))
	return y, nil
}

func opSoftmax(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	d := axis(c.v.Int("dim", -1), len(x.Shape))
	y := c.newOut()
	kernels.Softmax(y.F32, x.F32, prod(x.Shape[:d]), x.Shape[d], prod(x.Shape[d+1:]))
	return y, nil
}

func opPermute(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	kernels.Permute(y.F32, x.F32, x.Shape, c.v.Ints("perm"))
	return y, nil
}

func opSlice(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	d := axis(c.v.Int("dim", 0), len(x.Shape))
	kernels.Slice(y.F32, x.F32, x.Shape, d, c.v.Int("start", 0), c.v.Int("end", 0), c.v.Int("step", 1))
	return y, nil
}

func opConcat(c *call) (*runtime.Tensor, error) {
	xs := make([][]float32, len(c.args))
	shapes := make([][]int, len(c.args))
	for i, a := range c.args {
		xs[i], shapes[i] = a.F32, a.Shape
	}
	y := c.newOut()
	kernels.Concat(y.F32, xs, shapes, axis(c.v.Int("dim", 0), len(y.Shape)))
	return y, nil
}

func opUpsample(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	n, ch, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	oh, ow := y.Shape[2], y.Shape[3]
	switch mode := c.v.Str("mode", ""); mode {
	case "nearest":
		kernels.UpsampleNearest(y.F32, x.F32, n, ch, h, w, oh, ow)
	case "bilinear":
		kernels.UpsampleBilinear(y.F32, x.F32, n, ch, h, w, oh, ow, c.v.Bool("align_corners", false))
	default:
		return nil, fmt.Errorf("unknown upsample mode %q", mode)
	}
	return y, nil
}

func opPad(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	var mode kernels.PadMode
	switch m := c.v.Str("mode", ""); m {
	case "constant":
		mode = kernels.PadConstant
	case "reflect":
		mode = kernels.PadReflect
	case "replicate":
		mode = kernels.PadReplicate
	default:
		return nil, fmt.Errorf("unknown pad mode %q", m)
	}
	y := c.newOut()
	kernels.Pad(y.F32, x.F32, x.Shape, c.v.Ints("pads"), mode, float32(c.v.Float("value", 0)))
	return y, nil
}

func opPixelUnshuffle(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	kernels.PixelUnshuffle(y.F32, x.F32, x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], c.v.Int("factor", 1))
	return y, nil
}

func opPixelShuffle(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	y := c.newOut()
	kernels.PixelShuffle(y.F32, x.F32, x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], c.v.Int("factor", 1))
	return y, nil
}

func opGLU(c *call) (*runtime.Tensor, error) {
	x := c.args[0]
	name := c.v.Str("activation", "")
	act, ok := activations[name]
	if !ok {
		return nil, fmt.Errorf("unknown glu activation %q", name)
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
	name := c.v.Str("act", "")
	act, ok := kernels.ParseActivation(name)
	if !ok {
		return kernels.Epilogue{}, 0, fmt.Errorf("unknown activation %q", name)
	}
	ep := kernels.Epilogue{Act: act}
	if s, sh := c.v.Float("scale", 1), c.v.Float("shift", 0); s != 1 || sh != 0 {
		ep.Affine, ep.Scale, ep.Shift = true, float32(s), float32(sh)
	}
	n := len(c.args)
	if c.v.Bool("residual", false) {
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
	stride, pad, dil := c.v.Ints("stride"), c.v.Ints("padding"), c.v.Ints("dilation")
	y := c.newOut()
	kernels.Conv2dFused(y.F32, x.F32, w.F32, c.bias(n), kernels.Conv2dParams{
		N: x.Shape[0], C: x.Shape[1], H: x.Shape[2], W: x.Shape[3],
		K: w.Shape[0], KH: w.Shape[2], KW: w.Shape[3],
		StrideH: stride[0], StrideW: stride[1],
		PadH: pad[0], PadW: pad[1],
		DilH: dil[0], DilW: dil[1],
		Groups: c.v.Int("groups", 1),
	}, ep)
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

func actOf(c *call) (kernels.Activation, error) {
	name := c.v.Str("act", "")
	act, ok := kernels.ParseActivation(name)
	if !ok {
		return 0, fmt.Errorf("unknown activation %q", name)
	}
	return act, nil
}

func opGroupNormAct(c *call) (*runtime.Tensor, error) {
	act, err := actOf(c)
	if err != nil {
		return nil, err
	}
	x := c.args[0]
	y := c.newOut()
	kernels.GroupNormAct(y.F32, x.F32, x.Shape[0], x.Shape[1], prod(x.Shape[2:]), c.v.Int("groups", 1), c.optional(1), c.optional(2), float32(c.v.Float("eps", 1e-5)), act)
	return y, nil
}

func opLayerNormAct(c *call) (*runtime.Tensor, error) {
	act, err := actOf(c)
	if err != nil {
		return nil, err
	}
	x := c.args[0]
	axes := c.v.Int("axes", 1)
	cols := prod(x.Shape[len(x.Shape)-axes:])
	y := c.newOut()
	kernels.LayerNormAct(y.F32, x.F32, len(x.F32)/max(cols, 1), cols, c.optional(1), c.optional(2), float32(c.v.Float("eps", 1e-5)), act)
	return y, nil
}

func opLinearGLU(c *call) (*runtime.Tensor, error) {
	name := c.v.Str("activation", "")
	act, ok := activations[name]
	if !ok {
		return nil, fmt.Errorf("unknown glu activation %q", name)
	}
	x, w := c.args[0], c.args[1]
	out, in := w.Shape[0], w.Shape[1]
	y := c.newOut()
	kernels.LinearGLU(y.F32, x.F32, len(x.F32)/max(in, 1), in, out, w.F32, c.optional(2), act)
	return y, nil
}
