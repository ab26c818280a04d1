package codegen

import (
	"github.com/rfc-project/rfc/ir"
)

// packedWeight is a weight that Load lays out once in the GEMM micro-kernel's panels
// (kernels.PackWeights), in the checkpoint's precision when every value fits it: a float16
// checkpoint stays float16 in memory, and no call packs it again.
type packedWeight struct {
	slot    int // its index among the packed weights
	out, in int // the matrix it is packed as
}

// packedOps are the ops whose weight operand (argument 1) the kernels take as
// kernels.Weights, with their W entry points.
var packedOps = map[string]string{
	"linear":       "LinearW",
	"linear_fused": "LinearFusedW",
	"linear_glu":   "LinearGLUW",
	"conv2d":       "Conv2dW",
	"conv2d_fused": "Conv2dFusedW",
}

// packableWeights finds the parameters read only as the weight of linear layers and
// one-group convolutions computed by Forward: those Load packs. A weight that anything else
// reads (a merged LoRA computed at load time, an output) stays a float32 slice.
func packableWeights(m *ir.Module, hoisted map[*ir.Value]bool) map[*ir.Value]*packedWeight {
	out := map[*ir.Value]*packedWeight{}
	ok := map[*ir.Value]bool{}
	for _, p := range m.Params {
		ok[p] = p.Type.Shape.Static() && len(p.Type.Shape) >= 2
	}
	for _, o := range m.Outputs {
		ok[o] = false
	}
	for _, v := range m.Body {
		for i, a := range v.Args {
			if a.Kind != ir.KindParam {
				continue
			}
			_, packs := packedOps[v.Op]
			if !packs || i != 1 || hoisted[v] || (isConv(v.Op) && v.Conv().Groups != 1) {
				ok[a] = false
			}
		}
	}
	used := map[*ir.Value]bool{}
	for _, v := range m.Body {
		if _, packs := packedOps[v.Op]; packs && len(v.Args) > 1 {
			used[v.Args[1]] = true
		}
	}
	for _, p := range m.Params {
		if !ok[p] || !used[p] {
			continue
		}
		dims := p.Type.Shape.Ints()
		in := 1
		for _, d := range dims[1:] {
			in *= d
		}
		out[p] = &packedWeight{slot: len(out), out: dims[0], in: in}
	}
	return out
}

func isConv(op string) bool { return op == "conv2d" || op == "conv2d_fused" }
