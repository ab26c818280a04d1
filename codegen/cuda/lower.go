package cuda

import (
	"fmt"
	"math"
	"strings"

	"github.com/rfc-project/rfc/ir"
)

// blockSize is the thread count of element-wise kernels and of the tiled ones (GEMM tiles
// are shaped to use 256 threads too).
const blockSize = 256

// cparam is a parameter of a kernel: a device pointer.
type cparam struct {
	ctype string // element type: float, rfc_half, long long
	name  string
	out   bool // written by the kernel
}

// kernel is one __global__ function of model.cu. Kernels whose parameters and body are
// equal are one kernel, launched from several places.
type kernel struct {
	name     string
	block    int
	params   []cparam
	body     string
	sections []string
	restrict bool      // no parameter aliases another (false for kernels that may run in place)
	first    *ir.Value // the first op that launches it
}

// arg is a kernel argument: a place on the device.
type arg struct {
	at    loc
	bytes int64 // added to at.offset
}

// launch is one kernel launch.
type launch struct {
	k    *kernel
	grid [3]int
	args []arg
}

// opCode is what an op of the body becomes: its launches (none for a view).
type opCode struct {
	v        *ir.Value
	launches []launch
}

// lowerer turns the ops of a module into kernels and launches.
type lowerer struct {
	m       *ir.Module
	plan    *plan
	f16     bool
	kernels []*kernel
	byKey   map[string]*kernel
	code    []opCode
}

func lower(m *ir.Module, p *plan, f16 bool) (*lowerer, error) {
	l := &lowerer{m: m, plan: p, f16: f16, byKey: map[string]*kernel{}}
	for _, v := range m.Body {
		low, ok := lowerings[v.Op]
		if !ok {
			return nil, fmt.Errorf("cuda: %s: the CUDA target has no kernel for op %q", ir.FormatValue(v), v.Op)
		}
		oc := opCode{v: v}
		if err := low(l, v, &oc); err != nil {
			return nil, fmt.Errorf("cuda: %s: %v", ir.FormatValue(v), err)
		}
		l.code = append(l.code, oc)
	}
	return l, nil
}

// ctype is the element type of a value on the device.
func (l *lowerer) ctype(v *ir.Value) string {
	switch {
	case v.Kind == ir.KindParam || (v.Op == "reshape" && l.plan.at[v].space == weights):
		if l.f16 {
			return "rfc_half"
		}
		return "float"
	case !v.Type.DType.IsFloat():
		return "long long"
	}
	return "float"
}

// elemSize is the size in bytes of one element of v on the device.
func (l *lowerer) elemSize(v *ir.Value) int64 {
	switch l.ctype(v) {
	case "rfc_half":
		return 2
	case "long long":
		return 8
	}
	return 4
}

// in is an input parameter of a kernel reading value v.
func (l *lowerer) in(v *ir.Value, name string) cparam {
	return cparam{ctype: l.ctype(v), name: name}
}

func out(name string) cparam { return cparam{ctype: "float", name: name, out: true} }

// at is the argument for value v, elems elements into it.
func (l *lowerer) at(v *ir.Value, elems int) arg {
	return arg{at: l.plan.at[v], bytes: int64(elems) * l.elemSize(v)}
}

// kernel returns the kernel with these parameters and body, making it on first use.
func (l *lowerer) kernel(op string, block int, sections []string, restrict bool, params []cparam, body string) *kernel {
	var key strings.Builder
	fmt.Fprintf(&key, "%d %v %t|", block, sections, restrict)
	for _, p := range params {
		fmt.Fprintf(&key, "%s %s %t,", p.ctype, p.name, p.out)
	}
	key.WriteString(body)
	if k, ok := l.byKey[key.String()]; ok {
		return k
	}
	k := &kernel{
		name:     fmt.Sprintf("k%d_%s", len(l.kernels), op),
		block:    block,
		params:   params,
		body:     body,
		sections: sections,
		restrict: restrict,
	}
	l.kernels = append(l.kernels, k)
	l.byKey[key.String()] = k
	return k
}

func (oc *opCode) add(k *kernel, grid [3]int, args ...arg) {
	if k.first == nil {
		k.first = oc.v
	}
	oc.launches = append(oc.launches, launch{k: k, grid: grid, args: args})
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// flat is the grid of an element-wise kernel over n elements.
func flat(n int) [3]int { return [3]int{ceilDiv(n, blockSize), 1, 1} }

func ints(t ir.Type) []int { return t.Shape.Ints() }

func numel(v *ir.Value) int { return ir.Prod(ints(v.Type)) }

type lowering func(l *lowerer, v *ir.Value, oc *opCode) error

var lowerings map[string]lowering

func init() {
	lowerings = map[string]lowering{
		"relu":             lowerActivation,
		"silu":             lowerActivation,
		"sigmoid":          lowerActivation,
		"tanh":             lowerActivation,
		"sin":              lowerActivation,
		"cos":              lowerActivation,
		"exp":              lowerActivation,
		"gelu":             lowerActivation,
		"clamp":            lowerClamp,
		"scale":            lowerScale,
		"add":              binaryOp("+"),
		"sub":              binaryOp("-"),
		"mul":              binaryOp("*"),
		"div":              binaryOp("/"),
		"linear":           lowerLinear,
		"matmul":           lowerMatmul,
		"conv2d":           lowerConv(false),
		"conv_transpose2d": lowerConv(true),
		"layer_norm":       lowerLayerNorm,
		"group_norm":       lowerGroupNorm,
		"layer_norm2d":     lowerLayerNorm2d,
		"instance_norm2d":  lowerGroupNorm,
		"embedding":        lowerEmbedding,
		"batch_param":      lowerBatchParam,
		"sdpa":             lowerSDPA,
		"softmax":          lowerSoftmax,
		"reshape":          func(*lowerer, *ir.Value, *opCode) error { return nil },
		"permute":          lowerPermute,
		"slice":            lowerSlice,
		"concat":           lowerConcat,
		"upsample":         lowerUpsample,
		"pad":              lowerPad,
		"pixel_unshuffle":  lowerPixelUnshuffle,
		"pixel_shuffle":    lowerPixelShuffle,
		"glu":              lowerGLU,
		"arange":           lowerArange,
	}
}

// deviceActivations are the device functions (kernels.cuh) of the activations that
// activation ops and GLU's gate compute. The fused ops' act has no lowering: the CUDA target
// leaves fused ops out.
var deviceActivations = map[ir.Activation]string{
	ir.ActReLU: "rfc_relu", ir.ActSiLU: "rfc_silu", ir.ActSigmoid: "rfc_sigmoid", ir.ActTanh: "rfc_tanh",
	ir.ActSin: "rfc_sin", ir.ActCos: "rfc_cos", ir.ActExp: "rfc_exp",
	ir.ActGeLU: "rfc_gelu", ir.ActGeLUTanh: "rfc_gelu_tanh", ir.ActGeLUSigmoid: "rfc_gelu_sigmoid",
}

// deviceActivation is the device function of a and the kernels.cuh sections that define it.
func deviceActivation(a ir.Activation) (fn string, sections []string, err error) {
	fn, ok := deviceActivations[a]
	if !ok {
		return "", nil, fmt.Errorf("the CUDA target has no device function for activation %s", a)
	}
	if a == ir.ActExp {
		return fn, []string{"act", "exp"}, nil
	}
	return fn, []string{"act"}, nil
}

// mapped emits y[i] = expr(x[i]) for an element-wise op of one operand; expr has one %s
// and needs the kernels.cuh sections given (act when none).
func mapped(l *lowerer, v *ir.Value, oc *opCode, expr string, sections ...string) error {
	x := v.Args[0]
	n := numel(v)
	body := indexCode(n, []iterDim{{n, []int{1}}}, []string{"ix"}, []int{0}) +
		fmt.Sprintf("  y[i] = %s;\n", fmt.Sprintf(expr, "rfc_ld(x, ix)"))
	if len(sections) == 0 {
		sections = []string{"act"}
	}
	k := l.kernel(v.Op, blockSize, sections, false, []cparam{out("y"), l.in(x, "x")}, body)
	oc.add(k, flat(n), l.at(v, 0), l.at(x, 0))
	return nil
}

// lowerActivation: an activation op (relu, …, exp, gelu) is its device function, mapped.
func lowerActivation(l *lowerer, v *ir.Value, oc *opCode) error {
	a, _ := v.ActivationOp()
	fn, sections, err := deviceActivation(a)
	if err != nil {
		return err
	}
	return mapped(l, v, oc, fn+"(%s)", sections...)
}

func lowerClamp(l *lowerer, v *ir.Value, oc *opCode) error {
	lo, hi := v.ClampRange()
	return mapped(l, v, oc, "rfc_clamp(%s, "+cFloat(float32(lo))+", "+cFloat(float32(hi))+")")
}

func lowerScale(l *lowerer, v *ir.Value, oc *opCode) error {
	s, b := v.ScaleBias()
	return mapped(l, v, oc, "%s * "+cFloat(float32(s))+" + "+cFloat(float32(b)))
}

// innermostFirst turns per-operand strides over the dims of shape (outermost first) into
// iteration dims, innermost first.
func innermostFirst(shape []int, strides ...[]int) []iterDim {
	dims := make([]iterDim, len(shape))
	for i := range shape {
		d := iterDim{size: shape[len(shape)-1-i]}
		for _, s := range strides {
			d.strides = append(d.strides, s[len(shape)-1-i])
		}
		dims[i] = d
	}
	return dims
}

func contiguousStrides(shape []int) []int {
	s := make([]int, len(shape))
	step := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = step
		step *= shape[i]
	}
	return s
}

func binaryOp(op string) lowering {
	return func(l *lowerer, v *ir.Value, oc *opCode) error {
		a, b := v.Args[0], v.Args[1]
		shape := ints(v.Type)
		n := ir.Prod(shape)
		dims := innermostFirst(shape, ir.BroadcastStrides(ints(a.Type), shape, 1), ir.BroadcastStrides(ints(b.Type), shape, 1))
		body := indexCode(n, dims, []string{"ia", "ib"}, []int{0, 0}) +
			fmt.Sprintf("  y[i] = rfc_ld(a, ia) %s rfc_ld(b, ib);\n", op)
		k := l.kernel(v.Op, blockSize, []string{"common"}, false, []cparam{out("y"), l.in(a, "a"), l.in(b, "b")}, body)
		oc.add(k, flat(n), l.at(v, 0), l.at(a, 0), l.at(b, 0))
		return nil
	}
}

// gemmTile is a tiling of rfc_gemm; all use 256 threads.
type gemmTile struct{ bm, bn, bk, tm, tn int }

var (
	tile128x128 = gemmTile{128, 128, 8, 8, 8}
	tile64x128  = gemmTile{64, 128, 8, 4, 8}
	tile32x128  = gemmTile{32, 128, 8, 2, 8}
	tile64x64   = gemmTile{64, 64, 16, 4, 4}
)

// enoughBlocks is the block count below which a larger tile leaves the GPU idle (about one
// block per multiprocessor of an H100).
const enoughBlocks = 132

// tuned holds choices that the generator otherwise makes from problem sizes; tests set
// them to run every kernel variant on small problems. Zero values mean "choose".
type tuned struct {
	tile       gemmTile
	attnD      int // padded head size of attention: 32, 64 or 128
	groupChunk int
	threads    int // block size of reductions
}

var tuning tuned

// pickTile chooses the tiling of an m×n GEMM repeated z times: the largest tile that the
// problem fills and that still gives enough blocks.
func pickTile(m, n, z int) gemmTile {
	if tuning.tile != (gemmTile{}) {
		return tuning.tile
	}
	blocks := func(t gemmTile) int { return ceilDiv(m, t.bm) * ceilDiv(n, t.bn) * z }
	switch {
	case n >= 128 && m > 64 && blocks(tile128x128) >= enoughBlocks:
		return tile128x128
	case n >= 128 && m > 32 && blocks(tile64x128) >= enoughBlocks:
		return tile64x128
	case n >= 128 && m <= 32:
		return tile32x128
	}
	return tile64x64
}

func (t gemmTile) call() string {
	return fmt.Sprintf("  rfc_gemm<%d, %d, %d, %d, %d>(p);\n", t.bm, t.bn, t.bk, t.tm, t.tn)
}

func (t gemmTile) grid(m, n, z int) ([3]int, error) {
	g := [3]int{ceilDiv(n, t.bn), ceilDiv(m, t.bm), z}
	if g[1] > 65535 || g[2] > 65535 {
		return g, fmt.Errorf("a GEMM of %d×%d (×%d) needs a grid of %v blocks, beyond CUDA's 65535 in y and z", m, n, z, g)
	}
	return g, nil
}

// optional is the C expression of operand j of v, or a null pointer of type float when
// the op has fewer operands; it also says the template type to use.
func (l *lowerer) optional(v *ir.Value, j int, name string) (expr, ctype string, params []cparam) {
	if j < len(v.Args) {
		return name, l.ctype(v.Args[j]), []cparam{l.in(v.Args[j], name)}
	}
	return "(const float*)0", "float", nil
}

func lowerLinear(l *lowerer, v *ir.Value, oc *opCode) error {
	x, w := v.Args[0], v.Args[1]
	outF, inF := ints(w.Type)[0], ints(w.Type)[1]
	rows := numel(x) / max(inF, 1)
	bias, bt, bp := l.optional(v, 2, "b")
	t := pickTile(rows, outF, 1)
	grid, err := t.grid(rows, outF, 1)
	if err != nil {
		return err
	}
	body := fmt.Sprintf("  const RfcLinear<%s, %s, %s> p{y, x, w, %s, %d, %d, %d};\n", l.ctype(x), l.ctype(w), bt, bias, rows, outF, inF) + t.call()
	params := append([]cparam{out("y"), l.in(x, "x"), l.in(w, "w")}, bp...)
	k := l.kernel("linear", blockSize, []string{"gemm"}, true, params, body)
	args := []arg{l.at(v, 0), l.at(x, 0), l.at(w, 0)}
	if len(v.Args) == 3 {
		args = append(args, l.at(v.Args[2], 0))
	}
	oc.add(k, grid, args...)
	return nil
}

// lowerMatmul multiplies the trailing matrices of a [..., m, k] and b [..., k, n],
// broadcasting their batch dims: one batched launch when each side has the whole batch or a
// single matrix, else one launch per batch entry (as the interpreter loops).
func lowerMatmul(l *lowerer, v *ir.Value, oc *opCode) error {
	a, b := v.Args[0], v.Args[1]
	mm := ir.MatmulOf(ints(a.Type), ints(b.Type), ints(v.Type))
	m, k, n, batch := mm.M, mm.K, mm.N, mm.Batch
	t := pickTile(m, n, batch)
	params := []cparam{out("y"), l.in(a, "a"), l.in(b, "b")}
	problem := func(sa, sb int) string {
		return fmt.Sprintf("  const RfcMatMul<%s, %s> p{y, a, b, %d, %d, %d, %d, %d};\n", l.ctype(a), l.ctype(b), m, n, k, sa, sb) + t.call()
	}
	if mm.Uniform {
		grid, err := t.grid(m, n, batch)
		if err != nil {
			return err
		}
		sa, sb := mm.StrideA, mm.StrideB
		if batch == 1 {
			sa, sb = 0, 0
		}
		kern := l.kernel("matmul", blockSize, []string{"gemm"}, true, params, problem(sa, sb))
		oc.add(kern, grid, l.at(v, 0), l.at(a, 0), l.at(b, 0))
		return nil
	}
	t = pickTile(m, n, 1)
	grid, err := t.grid(m, n, 1)
	if err != nil {
		return err
	}
	kern := l.kernel("matmul", blockSize, []string{"gemm"}, true, params, problem(0, 0))
	offsets := mm.Offsets()
	for i := range batch {
		oc.add(kern, grid, l.at(v, i*m*n), l.at(a, offsets[2*i]), l.at(b, offsets[2*i+1]))
	}
	return nil
}

// convGeometry is the shape of a 2-D convolution (transposed or not), as C literals.
type convGeometry struct {
	n, c, h, w, k, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow int
}

func (g convGeometry) fields() string {
	return fmt.Sprintf("%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d", g.c, g.h, g.w, g.k, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow)
}

func convOf(v *ir.Value) convGeometry {
	xs, ws, ys := ints(v.Args[0].Type), ints(v.Args[1].Type), ints(v.Type)
	p := v.Conv()
	return convGeometry{
		n: xs[0], c: xs[1], h: xs[2], w: xs[3], k: ys[1], kh: ws[2], kw: ws[3],
		sh: p.Stride[0], sw: p.Stride[1], ph: p.Padding[0], pw: p.Padding[1], dh: p.Dilation[0], dw: p.Dilation[1],
		groups: p.Groups, oh: ys[2], ow: ys[3],
	}
}

// lowerConv lowers conv2d, or with transposed conv_transpose2d, to an implicit GEMM
// (RfcConv2d); a convolution with one input channel per group (depthwise) to a direct
// kernel, one thread per output.
func lowerConv(transposed bool) lowering {
	return func(l *lowerer, v *ir.Value, oc *opCode) error {
		x, w := v.Args[0], v.Args[1]
		g := convOf(v)
		bias, bt, bp := l.optional(v, 2, "b")
		params := append([]cparam{out("y"), l.in(x, "x"), l.in(w, "w")}, bp...)
		args := []arg{l.at(v, 0), l.at(x, 0), l.at(w, 0)}
		if len(v.Args) == 3 {
			args = append(args, l.at(v.Args[2], 0))
		}
		if !transposed && g.c/g.groups == 1 {
			n := numel(v)
			body := fmt.Sprintf("  rfc_conv_direct(y, x, w, %s, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
				bias, n, g.c, g.h, g.w, g.k, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups, g.oh, g.ow)
			k := l.kernel(v.Op, blockSize, []string{"conv_direct"}, true, params, body)
			oc.add(k, flat(n), args...)
			return nil
		}
		gm, gn, gk := g.k/g.groups, g.n*g.oh*g.ow, g.c/g.groups*g.kh*g.kw
		t := pickTile(gm, gn, g.groups)
		grid, err := t.grid(gm, gn, g.groups)
		if err != nil {
			return err
		}
		body := fmt.Sprintf("  const RfcConv2d<%s, %s, %s, %t> p{y, x, w, %s, %s, %d, %d, %d};\n", l.ctype(x), l.ctype(w), bt, transposed, bias, g.fields(), gm, gn, gk) + t.call()
		k := l.kernel(v.Op, blockSize, []string{"gemm"}, true, params, body)
		oc.add(k, grid, args...)
		return nil
	}
}

// reductionThreads is the block size of a kernel that reduces n values per block: a power
// of two from 32 to 256, about n/2 so that every thread has work.
func reductionThreads(n int) int {
	if tuning.threads != 0 {
		return tuning.threads
	}
	t := 32
	for t < 256 && 2*t <= n/2 {
		t *= 2
	}
	return t
}

// affine returns the weight and bias operands (operands 1 and 2) of a normalization.
func (l *lowerer) affine(v *ir.Value) (wExpr, wType, bExpr, bType string, params []cparam, args []arg) {
	wExpr, wType, wp := l.optional(v, 1, "w")
	bExpr, bType, bp := l.optional(v, 2, "b")
	params = append(wp, bp...)
	for _, a := range v.Args[1:] {
		args = append(args, l.at(a, 0))
	}
	return
}

func lowerLayerNorm(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	xs := ints(x.Type)
	p := v.Norm()
	cols := ir.Prod(xs[len(xs)-p.Axes:])
	rows := numel(x) / max(cols, 1)
	nt := reductionThreads(cols)
	wE, wT, bE, bT, ap, aa := l.affine(v)
	body := fmt.Sprintf("  rfc_layer_norm<%d, %s, %s, %s>(y, x, %s, %s, %d, %s);\n", nt, l.ctype(x), wT, bT, wE, bE, cols, cFloat(float32(p.Eps)))
	k := l.kernel("layer_norm", nt, []string{"layer_norm"}, true, append([]cparam{out("y"), l.in(x, "x")}, ap...), body)
	oc.add(k, [3]int{rows, 1, 1}, append([]arg{l.at(v, 0), l.at(x, 0)}, aa...)...)
	return nil
}

// defaultGroupChunk is how many elements of a group one block of the group norm kernels
// takes.
const defaultGroupChunk = 4096

func groupChunk() int {
	if tuning.groupChunk != 0 {
		return tuning.groupChunk
	}
	return defaultGroupChunk
}

// groupNormShape is how the group norm kernels split x [N, C, …].
type groupNormShape struct {
	groups, cpg, hw, size, chunk, chunks, groupsTotal int
}

func groupNormGeometry(v *ir.Value) groupNormShape {
	xs := ints(v.Args[0].Type)
	c := xs[1]
	groups := c // instance_norm2d: a group per channel
	if v.Op == "group_norm" {
		groups = v.Norm().Groups
	}
	hw := ir.Prod(xs[2:])
	size := c / groups * hw
	return groupNormShape{groups: groups, cpg: c / groups, hw: hw, size: size, chunk: groupChunk(), chunks: ceilDiv(size, groupChunk()), groupsTotal: xs[0] * groups}
}

func lowerGroupNorm(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	g := groupNormGeometry(v)
	if g.groupsTotal > 65535 {
		return fmt.Errorf("%d groups over the batch exceed CUDA's grid limit of 65535", g.groupsTotal)
	}
	scratch := arg{at: l.plan.scratch[v]}
	nt := reductionThreads(min(g.size, g.chunk))
	grid := [3]int{g.chunks, g.groupsTotal, 1}
	stats := fmt.Sprintf("  rfc_group_stats<%d, %s>(stats, x, %d, %d, %d);\n", nt, l.ctype(x), g.size, g.chunk, g.chunks)
	ks := l.kernel(v.Op+"_stats", nt, []string{"group_norm"}, true, []cparam{out("stats"), l.in(x, "x")}, stats)
	oc.add(ks, grid, scratch, l.at(x, 0))
	wE, wT, bE, bT, ap, aa := l.affine(v)
	apply := fmt.Sprintf("  rfc_group_apply<%d, %s, %s, %s>(y, x, %s, %s, stats, %d, %d, %d, %d, %d, %d, %s);\n",
		nt, l.ctype(x), wT, bT, wE, bE, g.size, g.chunk, g.chunks, g.groups, g.cpg, g.hw, cFloat(float32(v.Norm().Eps)))
	params := append([]cparam{out("y"), l.in(x, "x")}, ap...)
	params = append(params, cparam{ctype: "float", name: "stats"})
	ka := l.kernel(v.Op, nt, []string{"group_norm"}, true, params, apply)
	args := append([]arg{l.at(v, 0), l.at(x, 0)}, aa...)
	oc.add(ka, grid, append(args, scratch)...)
	return nil
}

func lowerLayerNorm2d(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	xs := ints(x.Type)
	n, c, hw := xs[0], xs[1], ir.Prod(xs[2:])
	wE, wT, bE, bT, ap, aa := l.affine(v)
	body := fmt.Sprintf("  rfc_layer_norm2d<%s, %s, %s>(y, x, %s, %s, %d, %d, %d, %s);\n", l.ctype(x), wT, bT, wE, bE, n, c, hw, cFloat(float32(v.Norm().Eps)))
	k := l.kernel("layer_norm2d", blockSize, []string{"layer_norm2d"}, true, append([]cparam{out("y"), l.in(x, "x")}, ap...), body)
	oc.add(k, flat(n*hw), append([]arg{l.at(v, 0), l.at(x, 0)}, aa...)...)
	return nil
}

func lowerEmbedding(l *lowerer, v *ir.Value, oc *opCode) error {
	idx, w := v.Args[0], v.Args[1]
	if l.ctype(idx) != "long long" {
		return fmt.Errorf("embedding indices must be integers, got %s", idx.Type)
	}
	vocab, dim := ints(w.Type)[0], ints(w.Type)[1]
	n := numel(v)
	body := fmt.Sprintf("  const int i = blockIdx.x * %d + threadIdx.x;\n  if (i >= %d) return;\n"+
		"  const long long t = idx[i / %d];\n"+
		"  // Forward checks the indices on the host; NaN marks one that got past it.\n"+
		"  y[i] = (t >= 0 && t < %d) ? rfc_ld(w, (int)t * %d + i %% %d) : rfc_bits(0x7fc00000u);\n", blockSize, n, dim, vocab, dim, dim)
	k := l.kernel("embedding", blockSize, []string{"common"}, true, []cparam{out("y"), l.in(idx, "idx"), l.in(w, "w")}, body)
	oc.add(k, flat(n), l.at(v, 0), l.at(idx, 0), l.at(w, 0))
	return nil
}

func lowerBatchParam(l *lowerer, v *ir.Value, oc *opCode) error {
	p := v.Args[1]
	size := numel(p)
	n := numel(v)
	body := indexCode(n, []iterDim{{size, []int{1}}, {n / max(size, 1), []int{0}}}, []string{"ip"}, []int{0}) +
		"  y[i] = rfc_ld(p, ip);\n"
	k := l.kernel("batch_param", blockSize, []string{"common"}, true, []cparam{out("y"), l.in(p, "p")}, body)
	oc.add(k, flat(n), l.at(v, 0), l.at(p, 0))
	return nil
}

func lowerSDPA(l *lowerer, v *ir.Value, oc *opCode) error {
	q, kk, vv := v.Args[0], v.Args[1], v.Args[2]
	qs, ks, vs := ints(q.Type), ints(kk.Type), ints(vv.Type)
	p := v.Attention()
	heads := p.Heads
	b, lq, lk, dk, dv := qs[0], qs[1], ks[1], qs[2]/heads, vs[2]/heads
	var d, bq int
	need := max(dk, dv)
	if tuning.attnD >= need {
		need = tuning.attnD
	}
	switch {
	case need <= 32:
		d, bq = 32, 32
	case need <= 64:
		d, bq = 64, 32
	case need <= 128:
		d, bq = 128, 16
	default:
		return fmt.Errorf("attention head size %d is above the 128 the CUDA kernel supports", need)
	}
	if b*heads > 65535 {
		return fmt.Errorf("%d batch×heads exceed CUDA's grid limit of 65535", b*heads)
	}
	scale := float32(1 / math.Sqrt(float64(dk)))
	body := fmt.Sprintf("  rfc_attention<%d, %d, 32, %s, %s, %s>(y, q, k, v, %d, %d, %d, %d, %d, %s, %t);\n",
		d, bq, l.ctype(q), l.ctype(kk), l.ctype(vv), heads, lq, lk, dk, dv, cFloat(scale), p.Causal)
	k := l.kernel("sdpa", 128, []string{"attention"}, true, []cparam{out("y"), l.in(q, "q"), l.in(kk, "k"), l.in(vv, "v")}, body)
	oc.add(k, [3]int{ceilDiv(lq, bq), b * heads, 1}, l.at(v, 0), l.at(q, 0), l.at(kk, 0), l.at(vv, 0))
	return nil
}

func lowerSoftmax(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	xs := ints(x.Type)
	d := v.Axis()
	outer, dim, inner := ir.Prod(xs[:d]), xs[d], ir.Prod(xs[d+1:])
	if inner == 1 {
		nt := reductionThreads(dim)
		body := fmt.Sprintf("  rfc_softmax_rows<%d, %s>(y, x, %d);\n", nt, l.ctype(x), dim)
		k := l.kernel("softmax", nt, []string{"softmax"}, true, []cparam{out("y"), l.in(x, "x")}, body)
		oc.add(k, [3]int{outer, 1, 1}, l.at(v, 0), l.at(x, 0))
		return nil
	}
	body := fmt.Sprintf("  rfc_softmax_strided<%s>(y, x, %d, %d, %d);\n", l.ctype(x), outer, dim, inner)
	k := l.kernel("softmax", blockSize, []string{"softmax"}, true, []cparam{out("y"), l.in(x, "x")}, body)
	oc.add(k, flat(outer*inner), l.at(v, 0), l.at(x, 0))
	return nil
}

// gather emits y[i] = x[offset of i] over the index space dims (y contiguous along it).
func gather(l *lowerer, v *ir.Value, oc *opCode, x *ir.Value, dims []iterDim, base int) {
	n := numel(v)
	body := indexCode(n, dims, []string{"ix"}, []int{base}) + "  y[i] = rfc_ld(x, ix);\n"
	k := l.kernel(v.Op, blockSize, []string{"common"}, true, []cparam{out("y"), l.in(x, "x")}, body)
	oc.add(k, flat(n), l.at(v, 0), l.at(x, 0))
}

func lowerPermute(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	xs := ints(x.Type)
	perm := v.Perm()
	in := contiguousStrides(xs)
	shape := make([]int, len(perm))
	strides := make([]int, len(perm))
	for i, p := range perm {
		shape[i], strides[i] = xs[p], in[p]
	}
	gather(l, v, oc, x, innermostFirst(shape, strides), 0)
	return nil
}

func lowerSlice(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	xs := ints(x.Type)
	p := v.Slice()
	d := p.Dim
	strides := contiguousStrides(xs)
	shape := ints(v.Type)
	s := make([]int, len(xs))
	copy(s, strides)
	s[d] = strides[d] * p.Step
	gather(l, v, oc, x, innermostFirst(shape, s), p.Start*strides[d])
	return nil
}

// lowerConcat copies each operand into its place along dim, one launch per operand.
func lowerConcat(l *lowerer, v *ir.Value, oc *opCode) error {
	ys := ints(v.Type)
	d := v.Axis()
	outer, inner := ir.Prod(ys[:d]), ir.Prod(ys[d+1:])
	total := ys[d]
	off := 0
	for _, x := range v.Args {
		blk := ints(x.Type)[d] * inner
		n := outer * blk
		dims := []iterDim{{blk, []int{1, 1}}, {outer, []int{total * inner, blk}}}
		body := indexCode(n, dims, []string{"iy", "ix"}, []int{off * inner, 0}) + "  y[iy] = rfc_ld(x, ix);\n"
		k := l.kernel("concat", blockSize, []string{"common"}, true, []cparam{out("y"), l.in(x, "x")}, body)
		oc.add(k, flat(n), l.at(v, 0), l.at(x, 0))
		off += ints(x.Type)[d]
	}
	return nil
}

func lowerUpsample(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	xs, ys := ints(x.Type), ints(v.Type)
	h, w, oh, ow := xs[2], xs[3], ys[2], ys[3]
	n := numel(v)
	head := fmt.Sprintf("  const int i = blockIdx.x * %d + threadIdx.x;\n  if (i >= %d) return;\n"+
		"  const int ox = i %% %d, oy = (i / %d) %% %d, plane = i / %d;\n", blockSize, n, ow, ow, oh, oh*ow)
	var body string
	switch p := v.Upsample(); p.Mode {
	case ir.UpsampleNearest:
		body = head + fmt.Sprintf("  y[i] = rfc_ld(x, plane * %d + rfc_nearest(oy, %d, %d) * %d + rfc_nearest(ox, %d, %d));\n", h*w, h, oh, w, w, ow)
	case ir.UpsampleBilinear:
		align := p.AlignCorners
		body = head + fmt.Sprintf("  int y0, y1, x0, x1;\n  float ly0, ly1, lx0, lx1;\n"+
			"  rfc_linear_src(oy, %d, %d, %t, &y0, &y1, &ly0, &ly1);\n"+
			"  rfc_linear_src(ox, %d, %d, %t, &x0, &x1, &lx0, &lx1);\n"+
			"  const int r0 = plane * %d + y0 * %d, r1 = plane * %d + y1 * %d;\n"+
			"  y[i] = ly0 * (lx0 * rfc_ld(x, r0 + x0) + lx1 * rfc_ld(x, r0 + x1)) + ly1 * (lx0 * rfc_ld(x, r1 + x0) + lx1 * rfc_ld(x, r1 + x1));\n",
			h, oh, align, w, ow, align, h*w, w, h*w, w)
	default:
		return fmt.Errorf("the CUDA target has no kernel for upsample mode %s", p.Mode)
	}
	k := l.kernel("upsample", blockSize, []string{"resample"}, true, []cparam{out("y"), l.in(x, "x")}, body)
	oc.add(k, flat(n), l.at(v, 0), l.at(x, 0))
	return nil
}

// lowerPad maps every output coordinate to its source, dim by dim, as kernels.Pad: pads
// lists (before, after) from the last dim backwards; constant borders get the value.
func lowerPad(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	xs, ys := ints(x.Type), ints(v.Type)
	p := v.Pad()
	pads, mode := p.Pads, p.Mode
	switch mode {
	case ir.PadConstant, ir.PadReflect, ir.PadReplicate:
	default:
		return fmt.Errorf("the CUDA target has no kernel for pad mode %s", mode)
	}
	value := cFloat(float32(p.Value))
	n := numel(v)
	var b strings.Builder
	fmt.Fprintf(&b, "  const int i = blockIdx.x * %d + threadIdx.x;\n  if (i >= %d) return;\n", blockSize, n)
	if len(ys) == 0 {
		b.WriteString("  y[i] = rfc_ld(x, 0);\n")
	} else {
		b.WriteString("  int r = i, ix = 0;\n")
		stride := 1
		for d := len(ys) - 1; d >= 0; d-- {
			k := len(ys) - 1 - d
			lo := 0
			if 2*k+1 < len(pads) {
				lo = pads[2*k]
			}
			outermost := d == 0
			fmt.Fprintf(&b, "  {\n")
			if outermost {
				fmt.Fprintf(&b, "    int s = r - %d;\n", lo)
			} else {
				fmt.Fprintf(&b, "    int s = r %% %d - %d;\n    r /= %d;\n", ys[d], lo, ys[d])
			}
			if lo != 0 || ys[d] != xs[d] {
				switch mode {
				case ir.PadConstant:
					fmt.Fprintf(&b, "    if (s < 0 || s >= %d) {\n      y[i] = %s;\n      return;\n    }\n", xs[d], value)
				case ir.PadReflect:
					fmt.Fprintf(&b, "    if (s < 0) s = -s;\n    if (s >= %d) s = %d - s;\n", xs[d], 2*(xs[d]-1))
				case ir.PadReplicate:
					fmt.Fprintf(&b, "    s = rfc_imin(rfc_imax(s, 0), %d);\n", xs[d]-1)
				}
			}
			if stride == 1 {
				b.WriteString("    ix += s;\n  }\n")
			} else {
				fmt.Fprintf(&b, "    ix += s * %d;\n  }\n", stride)
			}
			stride *= xs[d]
		}
		b.WriteString("  y[i] = rfc_ld(x, ix);\n")
	}
	k := l.kernel("pad", blockSize, []string{"common"}, true, []cparam{out("y"), l.in(x, "x")}, b.String())
	oc.add(k, flat(n), l.at(v, 0), l.at(x, 0))
	return nil
}

// lowerPixelUnshuffle: y[n, ch·f²+i·f+j, oy, ox] = x[n, ch, oy·f+i, ox·f+j], walking y as
// (n, ch, i, j, oy, ox).
func lowerPixelUnshuffle(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	xs := ints(x.Type)
	n, c, h, w, f := xs[0], xs[1], xs[2], xs[3], v.Factor()
	oh, ow := h/f, w/f
	shape := []int{n, c, f, f, oh, ow}
	strides := []int{c * h * w, h * w, w, 1, f * w, f}
	gather(l, v, oc, x, innermostFirst(shape, strides), 0)
	return nil
}

// lowerPixelShuffle: y[n, o, iy·f+i, ix·f+j] = x[n, o·f²+i·f+j, iy, ix], walking y as
// (n, o, iy, i, ix, j).
func lowerPixelShuffle(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	xs := ints(x.Type)
	n, c, h, w, f := xs[0], xs[1], xs[2], xs[3], v.Factor()
	o := c / (f * f)
	shape := []int{n, o, h, f, w, f}
	strides := []int{c * h * w, f * f * h * w, w, f * h * w, 1, h * w}
	gather(l, v, oc, x, innermostFirst(shape, strides), 0)
	return nil
}

// lowerGLU: x [outer, 2·half] → y [outer, half] = x[:, :half] · act(x[:, half:]).
func lowerGLU(l *lowerer, v *ir.Value, oc *opCode) error {
	x := v.Args[0]
	act, sections, err := deviceActivation(v.GLUActivation())
	if err != nil {
		return err
	}
	xs := ints(x.Type)
	last := xs[len(xs)-1]
	half := last / 2
	outer := numel(x) / max(last, 1)
	n := outer * half
	dims := []iterDim{{half, []int{1, 1}}, {outer, []int{last, last}}}
	body := indexCode(n, dims, []string{"ia", "ig"}, []int{0, half}) +
		fmt.Sprintf("  y[i] = %s(rfc_ld(x, ig)) * rfc_ld(x, ia);\n", act)
	k := l.kernel("glu", blockSize, sections, true, []cparam{out("y"), l.in(x, "x")}, body)
	oc.add(k, flat(n), l.at(v, 0), l.at(x, 0))
	return nil
}

// lowerArange fills the constant [n] = start + i·step: in double rounded to float as
// torch does, or as long long for integer dtypes. It runs on every Forward: one tiny launch.
func lowerArange(l *lowerer, v *ir.Value, oc *opCode) error {
	p := v.Arange()
	n := numel(v)
	y := cparam{ctype: l.ctype(v), name: "y", out: true}
	value := fmt.Sprintf("(float)(%d.0 + (double)i * %d.0)", p.Start, p.Step)
	if !p.DType.IsFloat() {
		value = fmt.Sprintf("%dLL + (long long)i * %dLL", p.Start, p.Step)
	}
	body := fmt.Sprintf("  const int i = blockIdx.x * %d + threadIdx.x;\n  if (i >= %d) return;\n  y[i] = %s;\n", blockSize, n, value)
	k := l.kernel("arange", blockSize, []string{"common"}, true, []cparam{y}, body)
	oc.add(k, flat(n), l.at(v, 0))
	return nil
}
