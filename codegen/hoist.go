package codegen

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/rfc-project/rfc/ir"
)

// loadTimeValues are the ops that read only parameters (directly or through other such ops):
// weight-only computations such as a merged LoRA's W + s·up·down, and constants (ops
// without operands, such as arange). Their results do not depend on Forward's inputs, so
// the generated Load computes them once, after reading the weights, and Forward reads them
// like weights: the forward pass costs nothing extra. (A constant also needs no room in
// the float32 arena when it holds integers: it gets a slice of its own type.)
func loadTimeValues(m *ir.Module) map[*ir.Value]bool {
	h := map[*ir.Value]bool{}
	for _, v := range m.Body {
		all := true
		for _, a := range v.Args {
			if a.Kind != ir.KindParam && !h[a] {
				all = false
				break
			}
		}
		// A reshape of a plain parameter stays a view of the weight slab: nothing to
		// compute ahead.
		if all && !(v.Op == "reshape" && v.Args[0].Kind == ir.KindParam) {
			h[v] = true
		}
	}
	return h
}

// kept are the load-time values that Forward (or an output) reads, directly or through a
// reshape: they keep their memory after Load; the others are freed once computed.
func keptLoadTime(m *ir.Module, h map[*ir.Value]bool) map[*ir.Value]bool {
	kept := map[*ir.Value]bool{}
	for _, v := range m.Outputs {
		if h[v] {
			kept[v] = true
		}
	}
	for _, v := range m.Body {
		if h[v] && !(v.Op == "reshape" && h[v.Args[0]]) {
			continue // computed by Load: what it reads is Load's business
		}
		for _, a := range v.Args {
			for h[a] {
				kept[a] = true
				if a.Op != "reshape" {
					break
				}
				a = a.Args[0] // a view keeps the data it shows
			}
		}
	}
	return kept
}

// prepare builds the method Load calls after reading the weights: the load-time ops in body
// order, each into a buffer of its own; those Forward does not read are freed at the end.
// It is nil when the module has no load-time op.
func (g *generator) prepare() (jen.Code, error) {
	g.inPrepare = true
	defer func() { g.inPrepare = false }()
	var body []jen.Code
	var freed []*ir.Value
	for _, v := range g.m.Body {
		if !g.hoisted[v] {
			continue
		}
		field, own := g.valueField[v]
		if own {
			body = append(body, jen.Line(), jen.Comment(g.opComment(v)))
			body = append(body, jen.Id("m").Dot(field).Op("=").Make(goType(v.Type), jen.Lit(numElements(v.Type.Shape))))
			if !g.keptHoisted[v] {
				freed = append(freed, v)
			}
		}
		stmts, err := emitters[v.Op](g, v)
		if err != nil {
			return nil, fmt.Errorf("codegen: %s: %v", ir.FormatValue(v), err)
		}
		body = append(body, stmts...)
	}
	if len(body) == 0 {
		return nil, nil
	}
	if len(freed) > 0 {
		body = append(body, jen.Line(), jen.Comment("Intermediates of the weight computations are not needed any more."))
		for _, v := range freed {
			body = append(body, jen.Id("m").Dot(g.valueField[v]).Op("=").Nil())
		}
	}
	body = append(body, jen.Return(jen.Nil()))
	return jen.Comment(Comment("prepare computes the values that depend on the weights alone (a merged adapter's weight, say) or on nothing (a constant such as a range) once, so that Forward only reads them. Load calls it after reading the weights; its error is that of a kernel that checks its operands (an embedding's indices).")).Line().
		Func().Params(jen.Id("m").Op("*").Id("Model")).Id("prepare").Params().Error().Block(body...), nil
}

// callPrepare is Load's call of prepare, or nothing when there is no load-time op.
func (g *generator) callPrepare() jen.Code {
	if len(g.hoisted) == 0 {
		return jen.Null()
	}
	return jen.If(jen.Err().Op(":=").Id("m").Dot("prepare").Call(), jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err()))
}
