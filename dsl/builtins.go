package dsl

import (
	"fmt"
	"math"
	"strings"

	"github.com/rfc-project/rfc/ir"
)

// argKind is what a layer argument accepts.
type argKind uint8

const (
	kInt        argKind = iota + 1
	kFloat              // ints are accepted and widened
	kBool               //
	kString             //
	kPair               // an int, or a list of two ints
	kInts               // an int or a list of ints
	kVarInts            // the rest of the positional arguments, each an int (Parameter(*dims))
	kIntList            // a list of ints: a parameter of type [int]
	kFloatList          // a list of numbers, widened to floats: [float]
	kBoolList           // [bool]
	kStringList         // [string]
	kSizes              // a size (an int, or a size known at run time such as h) or a list of them
	kVarSizes           // the rest of the positional arguments, each a size (Reshape(*shape))
	kSize               // one size: an int ≥ 0, or a size known at run time (a `size` parameter)
)

func (k argKind) String() string {
	return [...]string{"?", "int", "float", "bool", "string", "int or [int, int]", "int or [int, …]", "int…", "[int]", "[float]", "[bool]", "[string]", "size or [size, …]", "size…", "size"}[k]
}

// elemKind is the kind of a list kind's elements.
func (k argKind) elemKind() (argKind, bool) {
	switch k {
	case kIntList:
		return kInt, true
	case kFloatList:
		return kFloat, true
	case kBoolList:
		return kBool, true
	case kStringList:
		return kString, true
	}
	return 0, false
}

// none marks an optional argument left unset (Python's None).
type noneType struct{}

var none = noneType{}

// required marks an argument without default.
type requiredType struct{}

var required = requiredType{}

type argSpec struct {
	Name    string
	Kind    argKind
	Default any // required, none, or a value of the kind
}

// builtin is one layer of the catalogue.
type builtin struct {
	Name      string
	Args      []argSpec
	Container bool // takes a block of children
	// Inputs is how many inputs the layer takes; -1 any number.
	Inputs int
	// Show lists the arguments printed in the tree (all required ones plus these when set
	// to something other than their default).
	build func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error)
}

// args are a layer's evaluated arguments, by name.
type args map[string]any

func (a args) int(n string) int         { return a[n].(int) }
func (a args) float(n string) float64   { return toFloat(a[n]) }
func (a args) bool(n string) bool       { return a[n].(bool) }
func (a args) str(n string) string      { return a[n].(string) }
func (a args) ints(n string) []int      { return a[n].([]int) }
func (a args) sizes(n string) []ir.Dim  { return a[n].([]ir.Dim) }
func (a args) isNone(n string) bool     { _, ok := a[n].(noneType); return ok }
func (a args) pair(n string) [2]int     { p := a[n].([]int); return [2]int{p[0], p[1]} }
func (a args) pairSlice(n string) []int { p := a.pair(n); return []int{p[0], p[1]} }

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	return math.NaN()
}

var builtins = map[string]*builtin{}

func def(b *builtin) { builtins[b.Name] = b }

// one runs a single-input, single-output op.
func one(op string, attrs func(a args) []ir.Attr) func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
	return func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
		var at []ir.Attr
		if attrs != nil {
			at = attrs(a)
		}
		v, err := c.op(op, ins, at...)
		return []*ir.Value{v}, err
	}
}

func init() {
	def(&builtin{Name: "Identity", Inputs: -1, build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) { return ins, nil }})
	// GetArg picks one of its inputs, as Refiners' fl.GetArg does: (key_value, query) →
	// query in the perceiver resampler.
	def(&builtin{Name: "GetArg", Inputs: -1, Args: []argSpec{{"index", kInt, required}}, build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
		i := a.int("index")
		if i < 0 || i >= len(ins) {
			return nil, fmt.Errorf("index %d is out of range for %d inputs", i, len(ins))
		}
		return ins[i : i+1], nil
	}})
	for name, op := range map[string]string{"ReLU": "relu", "SiLU": "silu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Sin": "sin", "Cos": "cos", "Exp": "exp"} {
		def(&builtin{Name: name, Inputs: 1, build: one(op, nil)})
	}
	def(&builtin{Name: "GeLU", Inputs: 1, Args: []argSpec{{"approximation", kString, "none"}}, build: one("gelu", func(a args) []ir.Attr {
		return []ir.Attr{{Name: "approximate", Value: a.str("approximation")}}
	})})
	def(&builtin{Name: "Clamp", Inputs: 1, Args: []argSpec{{"min", kFloat, math.Inf(-1)}, {"max", kFloat, math.Inf(1)}}, build: one("clamp", func(a args) []ir.Attr {
		return []ir.Attr{{Name: "min", Value: a.float("min")}, {Name: "max", Value: a.float("max")}}
	})})
	def(&builtin{Name: "Multiply", Inputs: 1, Args: []argSpec{{"scale", kFloat, 1.0}, {"bias", kFloat, 0.0}}, build: one("scale", func(a args) []ir.Attr {
		return []ir.Attr{{Name: "scale", Value: a.float("scale")}, {Name: "bias", Value: a.float("bias")}}
	})})
	def(&builtin{Name: "Softmax", Inputs: 1, Args: []argSpec{{"dim", kInt, -1}}, build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
		d, err := c.axis(a.int("dim"), ins[0])
		if err != nil {
			return nil, err
		}
		v, err := c.op("softmax", ins, ir.Attr{Name: "dim", Value: d})
		return []*ir.Value{v}, err
	}})
	def(&builtin{Name: "Linear", Inputs: 1, Args: []argSpec{{"in_features", kInt, required}, {"out_features", kInt, required}, {"bias", kBool, true}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			operands := []*ir.Value{ins[0], c.param("weight", a.int("out_features"), a.int("in_features"))}
			if a.bool("bias") {
				operands = append(operands, c.param("bias", a.int("out_features")))
			}
			v, err := c.op("linear", operands)
			return []*ir.Value{v}, err
		}})
	convArgs := []argSpec{{"in_channels", kInt, required}, {"out_channels", kInt, required}, {"kernel_size", kPair, required}, {"stride", kPair, 1}, {"padding", kPair, 0}}
	def(&builtin{Name: "Conv2d", Inputs: 1, Args: append(append([]argSpec{}, convArgs...), argSpec{"groups", kInt, 1}, argSpec{"use_bias", kBool, true}, argSpec{"dilation", kPair, 1}, argSpec{"padding_mode", kString, "zeros"}),
		build: buildConv2d})
	def(&builtin{Name: "ConvTranspose2d", Inputs: 1, Args: append(append([]argSpec{}, convArgs...), argSpec{"output_padding", kPair, 0}, argSpec{"groups", kInt, 1}, argSpec{"use_bias", kBool, true}, argSpec{"dilation", kPair, 1}),
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			in, out, g, k := a.int("in_channels"), a.int("out_channels"), a.int("groups"), a.pair("kernel_size")
			if g < 1 || out%g != 0 {
				return nil, fmt.Errorf("out_channels %d is not divisible by groups %d", out, g)
			}
			operands := []*ir.Value{ins[0], c.param("weight", in, out/g, k[0], k[1])}
			if a.bool("use_bias") {
				operands = append(operands, c.param("bias", out))
			}
			v, err := c.op("conv_transpose2d", operands, ir.Attr{Name: "stride", Value: a.pairSlice("stride")}, ir.Attr{Name: "padding", Value: a.pairSlice("padding")},
				ir.Attr{Name: "output_padding", Value: a.pairSlice("output_padding")}, ir.Attr{Name: "dilation", Value: a.pairSlice("dilation")}, ir.Attr{Name: "groups", Value: g})
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "LayerNorm", Inputs: 1, Args: []argSpec{{"normalized_shape", kInts, required}, {"eps", kFloat, 1e-5}, {"elementwise_affine", kBool, true}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			shape := a.ints("normalized_shape")
			operands := []*ir.Value{ins[0]}
			if a.bool("elementwise_affine") {
				operands = append(operands, c.param("weight", shape...), c.param("bias", shape...))
			}
			x := ins[0].Type.Shape
			if len(x) < len(shape) || !x[len(x)-len(shape):].Equal(ir.StaticShape(shape...)) {
				return nil, fmt.Errorf("input %s does not end with the normalized shape %v", x, shape)
			}
			v, err := c.op("layer_norm", operands, ir.Attr{Name: "axes", Value: len(shape)}, ir.Attr{Name: "eps", Value: a.float("eps")})
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "GroupNorm", Inputs: 1, Args: []argSpec{{"channels", kInt, required}, {"num_groups", kInt, required}, {"eps", kFloat, 1e-5}, {"affine", kBool, true}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			if err := c.wantChannels(ins[0], a.int("channels")); err != nil {
				return nil, err
			}
			operands := []*ir.Value{ins[0]}
			if a.bool("affine") {
				operands = append(operands, c.param("weight", a.int("channels")), c.param("bias", a.int("channels")))
			}
			v, err := c.op("group_norm", operands, ir.Attr{Name: "groups", Value: a.int("num_groups")}, ir.Attr{Name: "eps", Value: a.float("eps")})
			return []*ir.Value{v}, err
		}})
	for _, n := range []struct {
		name, op, first string
		eps             float64
		affine          bool
	}{{"LayerNorm2d", "layer_norm2d", "channels", 1e-6, true}, {"InstanceNorm2d", "instance_norm2d", "num_features", 1e-5, false}} {
		def(&builtin{Name: n.name, Inputs: 1, Args: []argSpec{{n.first, kInt, required}, {"eps", kFloat, n.eps}, {"affine", kBool, n.affine}},
			build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
				ch := a.int(n.first)
				if err := c.wantChannels(ins[0], ch); err != nil {
					return nil, err
				}
				operands := []*ir.Value{ins[0]}
				if a.bool("affine") {
					operands = append(operands, c.param("weight", ch), c.param("bias", ch))
				}
				v, err := c.op(n.op, operands, ir.Attr{Name: "eps", Value: a.float("eps")})
				return []*ir.Value{v}, err
			}})
	}
	def(&builtin{Name: "Embedding", Inputs: 1, Args: []argSpec{{"num_embeddings", kInt, required}, {"embedding_dim", kInt, required}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			v, err := c.op("embedding", []*ir.Value{ins[0], c.param("weight", a.int("num_embeddings"), a.int("embedding_dim"))})
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Parameter", Inputs: 1, Args: []argSpec{{"dims", kVarInts, required}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			v, err := c.op("batch_param", []*ir.Value{ins[0], c.param("weight", a.ints("dims")...)})
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "ScaledDotProductAttention", Inputs: 3, Args: []argSpec{{"num_heads", kInt, 1}, {"is_causal", kBool, false}},
		build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
			v, err := c.op("sdpa", ins, ir.Attr{Name: "heads", Value: a.int("num_heads")}, ir.Attr{Name: "causal", Value: a.bool("is_causal")})
			return []*ir.Value{v}, err
		}})
	def(&builtin{Name: "Matmul", Inputs: 2, build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
		v, err := c.op("matmul", ins)
		return []*ir.Value{v}, err
	}})
	def(&builtin{Name: "GLU", Inputs: 1, Args: []argSpec{{"activation", kString, required}}, build: func(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
		act := strings.ToLower(a.str("activation"))
		v, err := c.op("glu", ins, ir.Attr{Name: "activation", Value: act})
		return []*ir.Value{v}, err
	}})
	// Arange is a constant: it ignores its inputs, as Refiners' Lambda(lambda x: arange(…))
	// does, and returns [start, start+step, …) up to end excluded. end comes first so that
	// Arange(77) reads as torch.arange(77); the default dtype is torch's for int arguments.
	def(&builtin{Name: "Arange", Inputs: -1, Args: []argSpec{{"end", kInt, required}, {"start", kInt, 0}, {"step", kInt, 1}, {"dtype", kString, "i64"}},
		build: func(c *layerCtx, a args, _ []*ir.Value) ([]*ir.Value, error) {
			dtype, ok := ir.ParseDType(a.str("dtype"))
			if !ok {
				return nil, fmt.Errorf("dtype %q is not one of f32, i32, i64", a.str("dtype"))
			}
			v, err := c.op("arange", nil, ir.ArangeAttrs(ir.ArangeParams{Start: a.int("start"), End: a.int("end"), Step: a.int("step"), DType: dtype})...)
			return []*ir.Value{v}, err
		}})
	defShapeLayers()
	defContainers()
}

func buildConv2d(c *layerCtx, a args, ins []*ir.Value) ([]*ir.Value, error) {
	in, out, g, k := a.int("in_channels"), a.int("out_channels"), a.int("groups"), a.pair("kernel_size")
	if g < 1 || in%g != 0 || out%g != 0 {
		return nil, fmt.Errorf("in_channels %d and out_channels %d must be divisible by groups %d", in, out, g)
	}
	if err := c.wantChannels(ins[0], in); err != nil {
		return nil, err
	}
	x := ins[0]
	pad := a.pairSlice("padding")
	switch mode := a.str("padding_mode"); mode {
	case "zeros":
	case "reflect", "replicate", "circular":
		if mode == "circular" {
			return nil, fmt.Errorf("padding_mode %q is not supported (zeros, reflect, replicate)", mode)
		}
		var err error
		if x, err = c.op("pad", []*ir.Value{x}, ir.Attr{Name: "pads", Value: []int{pad[1], pad[1], pad[0], pad[0]}}, ir.Attr{Name: "mode", Value: mode}, ir.Attr{Name: "value", Value: 0.0}); err != nil {
			return nil, err
		}
		pad = []int{0, 0}
	default:
		return nil, fmt.Errorf("padding_mode %q is not one of zeros, reflect, replicate", mode)
	}
	operands := []*ir.Value{x, c.param("weight", out, in/g, k[0], k[1])}
	if a.bool("use_bias") {
		operands = append(operands, c.param("bias", out))
	}
	v, err := c.op("conv2d", operands, ir.Attr{Name: "stride", Value: a.pairSlice("stride")}, ir.Attr{Name: "padding", Value: pad},
		ir.Attr{Name: "dilation", Value: a.pairSlice("dilation")}, ir.Attr{Name: "groups", Value: g})
	return []*ir.Value{v}, err
}
