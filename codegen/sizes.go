package codegen

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/rfc-project/rfc/codegen/memplan"
	"github.com/rfc-project/rfc/ir"
)

// Sizes chosen at run time. A module whose shapes hold symbolic dims (batch, height, …)
// compiles to a package whose Forward reads those sizes from the shapes of its inputs. The
// first call with a new set of sizes makes a shapePlan: every size the ops use, computed
// from the input sizes with overflow checks; every check the shape rules could not decide
// at compile time (ir.InferChecks), each failing one an error naming the sizes, the
// inputs they come from and the rule; the shape lists kernels take; and the arena's
// layout, placed by the compiler's own algorithm (runtime.PlaceBuffers) for those sizes.
// The plan is kept per set of sizes and the arena grows to the largest, so that later calls
// at any size already seen allocate nothing. Kernels get the actual sizes as arguments, as
// a specialized package gives them as literals: the same code runs.
//
// Why plans per set of sizes rather than one symbolic plan (offsets as expressions of the
// sizes): the greedy placement depends on the order of buffer sizes, which changes with
// the sizes, so a symbolic plan would either be worse than the specialized one or need
// case splits; placing a few hundred buffers once per new size costs well under a
// millisecond, and a process meets few distinct sizes.

// sizes is the generator's state for a module with sizes chosen at run time.
type sizes struct {
	names []string // the sizes read from the inputs: the key of a plan, in order
	from  []string // where each is read ("dim 0 of input x"), for errors
	// dims is shapePlan.dims: the names, then every other dim the code uses.
	dims  []ir.Dim
	index map[ir.Dim]int
	// local is Forward's variable for dims[k], for those Forward uses.
	local map[int]string
	used  []int

	fields    []jen.Code // shapePlan's fields besides the fixed ones
	fills     []jen.Code // statements of newShapePlan that fill them
	listField map[string]string
	checks    []jen.Code // statements of newShapePlan: the rules' checks
	// reslice are statements of use, run when Forward switches plans: the value fields
	// re-sliced from the arena; then operandLists refreshed from them.
	reslice, operandLists []jen.Code
	// bufSize is the element count of each buffer of the memory plan.
	bufSize map[*memplan.Buffer]ir.Dim
}

// symbolicModule reports whether any shape of m holds a size chosen at run time.
func symbolicModule(m *ir.Module) bool {
	for _, vs := range [][]*ir.Value{m.Inputs, m.Body, m.Outputs} {
		for _, v := range vs {
			if !v.Type.Shape.Static() {
				return true
			}
		}
	}
	return false
}

// newSizes finds the names of m's run-time sizes in its inputs' shapes: each must appear
// there as a dim of its own (batch, not batch*2), where Forward reads it; every other
// symbolic dim must be an expression of them. Parameters must be static.
func newSizes(m *ir.Module) (*sizes, error) {
	s := &sizes{index: map[ir.Dim]int{}, local: map[int]string{}, listField: map[string]string{}, bufSize: map[*memplan.Buffer]ir.Dim{}}
	for _, v := range m.Inputs {
		for i, d := range v.Type.Shape {
			if d.Static() {
				continue
			}
			if !ir.IsIdent(d.Sym) {
				return nil, fmt.Errorf("codegen: module %s: dim %d of input %s is %s; generated code reads sizes chosen at run time from dims that are a name alone (batch, height)", m.Name, i, v.Ref(), d)
			}
			if !slices.Contains(s.names, d.Sym) {
				s.names = append(s.names, d.Sym)
				s.from = append(s.from, fmt.Sprintf("dim %d of input %s", i, v.Name))
				s.add(d)
			}
		}
	}
	for _, p := range m.Params {
		if !p.Type.Shape.Static() {
			return nil, fmt.Errorf("codegen: module %s: parameter %s (key %q) has the shape %s: weights need static shapes (fix the sizes with --set)", m.Name, p.Ref(), p.Key, p.Type.Shape)
		}
	}
	for _, v := range m.Body {
		for _, d := range v.Type.Shape {
			for _, name := range d.Symbols() {
				if !slices.Contains(s.names, name) {
					return nil, fmt.Errorf("codegen: module %s: %s has the size %s, which no input's shape gives", m.Name, ir.FormatValue(v), name)
				}
			}
		}
	}
	return s, nil
}

// add registers d in the table of the plan's dims and returns its index.
func (s *sizes) add(d ir.Dim) int {
	if k, ok := s.index[d]; ok {
		return k
	}
	s.index[d] = len(s.dims)
	s.dims = append(s.dims, d)
	return len(s.dims) - 1
}

// dim is a size as Forward computes with it: a literal when static, else the local that
// holds it in this call.
func (g *generator) dim(d ir.Dim) jen.Code {
	if d.Static() {
		return jen.Lit(d.N)
	}
	s := g.sym
	k := s.add(d)
	name, ok := s.local[k]
	if !ok {
		if k < len(s.names) {
			name = g.forwardLocals.take(camel(s.names[k], false, "n"))
		} else {
			name = g.forwardLocals.take("dim" + strconv.Itoa(k))
		}
		s.local[k] = name
		s.used = append(s.used, k)
	}
	return jen.Id(name)
}

// planDim is a size inside newShapePlan, where d points at the plan's dims.
func (g *generator) planDim(d ir.Dim) jen.Code {
	if d.Static() {
		return jen.Lit(d.N)
	}
	return jen.Id("d").Index(jen.Lit(g.sym.add(d)))
}

// useDim is a size inside use, which reads the plan p.
func (g *generator) useDim(d ir.Dim) jen.Code {
	if d.Static() {
		return jen.Lit(d.N)
	}
	return jen.Id("p").Dot("dims").Index(jen.Lit(g.sym.add(d)))
}

// shapeList is a shape as kernels take it ([]int): a package-level list when static, else
// a list of the plan, filled when the plan is made.
func (g *generator) shapeList(s ir.Shape) jen.Code {
	if g.sym == nil || s.Static() {
		return g.ints("shape", s.Ints())
	}
	key := s.String()
	field, ok := g.sym.listField[key]
	if !ok {
		field = g.planFields.take("shape" + strconv.Itoa(len(g.sym.listField)))
		g.sym.listField[key] = field
		lits := make([]jen.Code, len(s))
		for i, d := range s {
			lits[i] = g.planDim(d)
		}
		g.sym.fields = append(g.sym.fields, jen.Id(field).Index(jen.Lit(len(s))).Int().Comment(key))
		g.sym.fills = append(g.sym.fills, jen.Id("p").Dot(field).Op("=").Index(jen.Lit(len(s))).Int().Values(lits...))
	}
	return jen.Id("p").Dot(field).Index(jen.Op(":"))
}

// planShapes is a [][]int of the plan (a concatenation's operand shapes), from lists
// shapeList made.
func (g *generator) planShapes(name string, lists []jen.Code) jen.Code {
	field := g.planFields.take(name)
	g.sym.fields = append(g.sym.fields, jen.Id(field).Index().Index().Int())
	g.sym.fills = append(g.sym.fills, jen.Id("p").Dot(field).Op("=").Index().Index().Int().Values(lists...))
	return jen.Id("p").Dot(field)
}

// keyType is the type of a plan's key: the sizes read from the inputs.
func (g *generator) keyType() jen.Code { return jen.Index(jen.Lit(len(g.sym.names))).Int() }

// bindSizes are Forward's first statements for a symbolic module: each input's shape
// checked against its declaration (rank, static dims, a name read twice), the key of the
// sizes built, and the plan for it taken.
func (g *generator) bindSizes() []jen.Code {
	s := g.sym
	var body []jen.Code
	where := map[string]string{} // a name's first place, as Go code reads it
	keyElems := make([]jen.Code, len(s.names))
	for _, v := range g.m.Inputs {
		if v.Type.Shape.Static() {
			continue
		}
		shape := g.inputShapeArg[v]
		decl := v.Type.String()
		cond := jen.Len(jen.Id(shape)).Op("!=").Lit(len(v.Type.Shape))
		for i, d := range v.Type.Shape {
			if d.Static() {
				cond = cond.Op("||").Id(shape).Index(jen.Lit(i)).Op("!=").Lit(d.N)
			}
		}
		body = append(body, jen.If(cond).Block(
			g.fail(jen.Qual("fmt", "Errorf").Call(jen.Lit(fmt.Sprintf("%s: Forward: input %s has the shape %%v, want %s", g.pkg, v.Name, decl)), jen.Id(shape))),
		))
		for i, d := range v.Type.Shape {
			if d.Static() {
				continue
			}
			at := jen.Id(shape).Index(jen.Lit(i))
			k := s.index[d]
			if prev, seen := where[d.Sym]; seen {
				msg := fmt.Sprintf("%s: Forward: %s is %%d by %s but %%d by dim %d of input %s", g.pkg, d.Sym, prev, i, v.Name)
				body = append(body, jen.If(at.Clone().Op("!=").Id("key").Index(jen.Lit(k))).Block(
					g.fail(jen.Qual("fmt", "Errorf").Call(jen.Lit(msg), jen.Id("key").Index(jen.Lit(k)), at.Clone())),
				))
				continue
			}
			where[d.Sym] = fmt.Sprintf("dim %d of input %s", i, v.Name)
			keyElems[k] = at
			body = append(body, jen.Id("key").Index(jen.Lit(k)).Op("=").Add(at.Clone()))
		}
	}
	decl := []jen.Code{jen.Var().Id("key").Add(g.keyType())}
	body = append(decl, body...)
	return append(body,
		jen.If(jen.Id("m").Dot("plan").Op("==").Nil().Op("||").Id("m").Dot("plan").Dot("key").Op("!=").Id("key")).Block(
			jen.If(jen.Err().Op(":=").Id("m").Dot("use").Call(jen.Id("key")), jen.Err().Op("!=").Nil()).Block(g.fail(jen.Err())),
		),
		jen.Id("p").Op(":=").Id("m").Dot("plan"),
	)
}

// locals declares, after bindSizes, the Forward variables of the sizes the ops use.
func (g *generator) sizeLocals() []jen.Code {
	s := g.sym
	var out []jen.Code
	for _, k := range s.used {
		c := jen.Id(s.local[k]).Op(":=").Id("p").Dot("dims").Index(jen.Lit(k))
		if k >= len(s.names) {
			c = c.Comment(s.dims[k].String())
		}
		out = append(out, c)
	}
	return out
}

// sizeChecks adds the checks of v's rule that could not be decided at compile time, and
// requires every run-time size of v's shape to be at least 1 (kernels divide by sizes).
func (g *generator) sizeChecks(v *ir.Value) error {
	_, checks, err := ir.InferChecks(v)
	if err != nil {
		return fmt.Errorf("codegen: %s: %v", ir.FormatValue(v), err)
	}
	where := fmt.Sprintf("%s (%s)", scopeName(v), v.Ref())
	for _, c := range checks {
		g.addCheck(c.A, c.B, c.AtLeast, where+": "+c.Rule)
	}
	for i, d := range v.Type.Shape {
		if d.Static() {
			continue
		}
		if decided, holds := ir.Decide(d, ir.D(1), true); decided && holds {
			continue
		}
		g.addCheck(d, ir.D(1), true, fmt.Sprintf("%s: dim %d of the result %s must be at least 1", where, i, v.Type))
	}
	return nil
}

func (g *generator) addCheck(a, b ir.Dim, atLeast bool, rule string) {
	op, verb := "!=", "differs from"
	if atLeast {
		op, verb = "<", "is below"
	}
	msg := fmt.Sprintf("%%s: %s is %%d, which %s %s (%%d)", a, verb, b)
	g.sym.checks = append(g.sym.checks, jen.If(g.planDim(a).(*jen.Statement).Clone().Op(op).Add(g.planDim(b))).Block(
		jen.Return(jen.Nil(), sizesError(jen.Lit(msg), jen.Lit(rule), g.planDim(a), g.planDim(b))),
	))
}

// calc is the Go expression computing d inside newShapePlan from the names, with c a
// runtime.SizeCalc that records overflows.
func (g *generator) calc(d ir.Dim) (jen.Code, error) {
	s := g.sym
	return ir.FoldDim(d, ir.DimFolder[jen.Code]{
		Const: func(n int) jen.Code { return jen.Lit(n) },
		Sym:   func(name string) jen.Code { return jen.Id("d").Index(jen.Lit(s.index[ir.S(name)])) },
		Add:   func(a, b jen.Code) jen.Code { return jen.Id("c").Dot("Add").Call(a, b) },
		Mul:   func(a, b jen.Code) jen.Code { return jen.Id("c").Dot("Mul").Call(a, b) },
		FloorDiv: func(a jen.Code, k int) jen.Code {
			return jen.Id("c").Dot("Div").Call(a, jen.Lit(k))
		},
	})
}

// symbolicDecls writes what a symbolic module adds to model.go: the shapePlan type, the
// tables of the arena's buffers, newShapePlan, use and sizeNames.
func (g *generator) symbolicDecls(f *jen.File) error {
	s, p := g.sym, g.plan
	// Every buffer's size, every value's element count and the outputs' shapes are dims of
	// the plan: register them before newShapePlan computes the table.
	nbuf := len(p.Buffers)
	bufSizes := make([]jen.Code, nbuf)
	firsts := make([]jen.Code, nbuf)
	lasts := make([]jen.Code, nbuf)
	bufIndex := map[*memplan.Buffer]int{}
	for i, b := range p.Buffers {
		bufIndex[b] = i
		bufSizes[i] = g.planDim(s.bufSize[b])
		firsts[i] = jen.Lit(b.First)
		lasts[i] = jen.Lit(b.Last)
	}
	for _, v := range g.m.Body {
		name, ok := g.valueField[v]
		if !ok || g.hoisted[v] {
			continue
		}
		b := p.BufferOf[v]
		s.reslice = append(s.reslice, jen.Id("m").Dot(name).Op("=").Id("m").Dot("arena").Dot("Slice").Call(
			jen.Id("p").Dot("offsets").Index(jen.Lit(bufIndex[b])), g.useDim(prod(v.Type.Shape))))
	}
	var copyFills []jen.Code
	for _, c := range p.Copies {
		name := g.copyField[c]
		n := prod(c.Value.Type.Shape)
		if c.Buf != nil {
			s.reslice = append(s.reslice, jen.Id("m").Dot(name).Op("=").Id("m").Dot("arena").Dot("Slice").Call(
				jen.Id("p").Dot("offsets").Index(jen.Lit(bufIndex[c.Buf])), g.useDim(n)))
			continue
		}
		s.fields = append(s.fields, jen.Id(name).Index().Int64().Comment("integer output "+c.Value.Ref()))
		copyFills = append(copyFills, jen.Id("p").Dot(name).Op("=").Make(jen.Index().Int64(), g.planDim(n)))
		s.reslice = append(s.reslice, jen.Id("m").Dot(name).Op("=").Id("p").Dot(name))
	}
	for i, v := range g.m.Outputs {
		if v.Type.Shape.Static() {
			continue
		}
		field := g.outputShapeField[i]
		lits := make([]jen.Code, len(v.Type.Shape))
		for j, d := range v.Type.Shape {
			lits[j] = g.planDim(d)
		}
		s.fields = append(s.fields, jen.Id(field).Index(jen.Lit(len(lits))).Int().Comment("shape of output "+g.outputArg[i]))
		s.fills = append(s.fills, jen.Id("p").Dot(field).Op("=").Index(jen.Lit(len(lits))).Int().Values(lits...))
	}
	for _, v := range g.m.Inputs {
		if !v.Type.Shape.Static() {
			g.planDim(prod(v.Type.Shape)) // Forward checks the data's length against it
		}
	}
	// The table's derived dims, computed from the names (registered last: nothing adds
	// dims after this).
	var derived []jen.Code
	for k := len(s.names); k < len(s.dims); k++ {
		e, err := g.calc(s.dims[k])
		if err != nil {
			return fmt.Errorf("codegen: the size %s: %v", s.dims[k], err)
		}
		derived = append(derived, jen.Id("d").Index(jen.Lit(k)).Op("=").Add(e).Comment(s.dims[k].String()))
	}

	// shapePlan.
	var table strings.Builder
	for k, d := range s.dims {
		fmt.Fprintf(&table, "\t%d: %s\n", k, d)
	}
	f.Comment(Comment(fmt.Sprintf("shapePlan is what Forward needs at one set of sizes (%s): the sizes its ops use, the offsets of the arena's buffers and the shapes kernels take as slices. Forward makes one at the first call with those sizes and keeps it.\n\ndims holds:\n\n%s", strings.Join(s.names, ", "), strings.TrimRight(table.String(), "\n"))))
	fields := []jen.Code{
		jen.Id("key").Add(g.keyType()).Comment(strings.Join(s.names, ", ")),
		jen.Id("dims").Index(jen.Lit(len(s.dims))).Int(),
		jen.Id("offsets").Index(jen.Lit(nbuf)).Int().Comment("of each buffer in the arena, in float32 elements"),
		jen.Id("arenaLen").Int(),
	}
	f.Type().Id("shapePlan").Struct(append(fields, s.fields...)...)
	f.Line()
	f.Comment("bufferFirst and bufferLast are the first and last op that use each buffer of the arena (−1: before the first op; the op count: after the last).")
	f.Var().Defs(
		jen.Id("bufferFirst").Op("=").Index(jen.Lit(nbuf)).Int().Values(firsts...),
		jen.Id("bufferLast").Op("=").Index(jen.Lit(nbuf)).Int().Values(lasts...),
	)
	f.Line()

	// newShapePlan.
	body := []jen.Code{
		jen.Id("p").Op(":=").Op("&").Id("shapePlan").Values(jen.Dict{jen.Id("key"): jen.Id("key")}),
		jen.Id("d").Op(":=").Op("&").Id("p").Dot("dims"),
	}
	body = append(body,
		jen.If(jen.Err().Op(":=").Id("sizeNames").Dot("Check").Call(jen.Id("key").Index(jen.Op(":"))), jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
		jen.Copy(jen.Id("d").Index(jen.Op(":")), jen.Id("key").Index(jen.Op(":"))),
	)
	if len(derived) > 0 {
		body = append(body, jen.Line(), jen.Comment("The sizes the ops use, from the input sizes, with overflow checks."), jen.Var().Id("c").Qual(runtimePath, "SizeCalc"))
		body = append(body, derived...)
		body = append(body, jen.If(jen.Id("c").Dot("Err").Op("!=").Nil()).Block(
			jen.Return(jen.Nil(), sizesError(jen.Lit("%v"), jen.Id("c").Dot("Err"))),
		))
	}
	if len(s.checks) > 0 {
		body = append(body, jen.Line(), jen.Comment("What the shape rules need of these sizes, layer by layer."))
		body = append(body, s.checks...)
	}
	if len(s.fills)+len(copyFills) > 0 {
		body = append(body, jen.Line(), jen.Comment("The shapes kernels take as slices, the outputs' shapes, integer outputs."))
		body = append(body, s.fills...)
		body = append(body, copyFills...)
	}
	body = append(body,
		jen.Line(),
		jen.Comment("The arena at these sizes, placed as the compiler places a specialized package's."),
		jen.Id("sizes").Op(":=").Index().Int().Values(bufSizes...),
		jen.Var().Err().Error(),
		jen.If(jen.List(jen.Id("p").Dot("arenaLen"), jen.Err()).Op("=").Qual(runtimePath, "PlaceBuffers").Call(
			jen.Id("sizes"), jen.Id("bufferFirst").Index(jen.Op(":")), jen.Id("bufferLast").Index(jen.Op(":")), jen.Lit(arenaAlign), jen.Id("p").Dot("offsets").Index(jen.Op(":"))),
			jen.Err().Op("!=").Nil()).Block(
			jen.Return(jen.Nil(), sizesError(jen.Lit("%v"), jen.Err())),
		),
		jen.Return(jen.Id("p"), jen.Nil()),
	)
	f.Comment("newShapePlan computes the plan of one set of sizes, or says which rule of the model they break.")
	f.Func().Id("newShapePlan").Params(jen.Id("key").Add(g.keyType())).Params(jen.Op("*").Id("shapePlan"), jen.Error()).Block(body...)
	f.Line()

	// use.
	useBody := []jen.Code{
		jen.Id("p").Op(":=").Id("m").Dot("plans").Index(jen.Id("key")),
		jen.If(jen.Id("p").Op("==").Nil()).Block(
			jen.Var().Err().Error(),
			jen.If(jen.List(jen.Id("p"), jen.Err()).Op("=").Id("newShapePlan").Call(jen.Id("key")), jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Err())),
			jen.Comment("A larger set of sizes grows the arena, checked against the memory available."),
			jen.If(jen.Err().Op(":=").Id("sizeNames").Dot("GrowArena").Call(jen.Id("m").Dot("arena"), jen.Id("p").Dot("arenaLen"), jen.Id("key").Index(jen.Op(":"))), jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Err())),
			jen.Id("m").Dot("plans").Index(jen.Id("key")).Op("=").Id("p"),
		),
		jen.Id("m").Dot("plan").Op("=").Id("p"),
	}
	useBody = append(useBody, s.reslice...)
	useBody = append(useBody, s.operandLists...)
	useBody = append(useBody, jen.Return(jen.Nil()))
	f.Comment(Comment("use makes the plan of key current: made and kept at the first call with these sizes (the arena grows if they need more room), then the values' slices are cut from the arena at its offsets."))
	f.Func().Params(jen.Id("m").Op("*").Id("Model")).Id("use").Params(jen.Id("key").Add(g.keyType())).Error().Block(useBody...)
	f.Line()

	// sizeNames.
	from := make([]jen.Code, len(s.from))
	for k, where := range s.from {
		from[k] = jen.Lit(where)
	}
	names := make([]jen.Code, len(s.names))
	for k, name := range s.names {
		names[k] = jen.Lit(name)
	}
	f.Comment(Comment("sizeNames names the sizes of a plan's key and where Forward reads them, for the plans' checks and errors."))
	f.Var().Id("sizeNames").Op("=").Qual(runtimePath, "SizeNames").Values(
		jen.Line().Id("Package").Op(":").Lit(g.pkg),
		jen.Line().Id("Model").Op(":").Id("ModelName"),
		jen.Line().Id("Names").Op(":").Index().String().Values(names...),
		jen.Line().Id("From").Op(":").Index().String().Values(from...),
		jen.Line(),
	)
	return nil
}

// sizesError is an error of newShapePlan at the sizes of its key: "pkg: Forward: ", the
// sizes, ": " and the message (runtime.SizeNames.Errorf).
func sizesError(format jen.Code, args ...jen.Code) jen.Code {
	return jen.Id("sizeNames").Dot("Errorf").Call(append([]jen.Code{jen.Id("key").Index(jen.Op(":")), format}, args...)...)
}
