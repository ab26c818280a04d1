// Package codegen turns a compiled ir.Module into Go source: a package with a Model type
// that loads its weights from safetensors files and runs the module's ops as straight-line
// calls into package kernels, every intermediate placed in a planned arena. Shapes fixed at
// compile time give one plan and constant sizes; sizes chosen at run time (batch, height)
// are read from Forward's inputs, with a plan made per set of sizes at its first use
// (sizes.go). The generated code imports only rfc's runtime and kernels packages (and the
// standard library), never the compiler.
//
// Each op is emitted as the interpreter (package interp) runs it, with the same kernel and
// the same arguments, so a generated model computes exactly what the interpreter does.
package codegen

import (
	"bytes"
	"errors"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/rfc-project/rfc/codegen/memplan"
	"github.com/rfc-project/rfc/ir"
)

// Options configure Generate.
type Options struct {
	// Package is the Go package name; "" derives it from the model's name (vit for ViT).
	Package string
	// Source is the .rfn path to record in the package documentation, as the user gave it;
	// "" records the module's own Source.
	Source string
	// Command is the command that regenerates the package, recorded in its documentation
	// when not empty (rfc compile writes its own command line here).
	Command string
}

// File is one generated source file.
type File struct {
	Name string
	Data []byte
}

// Port is an input or an output of the generated Forward, in the order of its parameters
// or results.
type Port struct {
	Name   string  // the input's name in the model; y, or y0, y1, … for outputs
	Export string  // prefix of the package's exported XLen and XShape ("X", "MyEmbed", "Y")
	Type   ir.Type // []float32 for floating-point types, []int64 for integer ones
	// Sized: the shape holds sizes chosen at run time, so Forward takes the input's shape
	// after its data ([]int), or returns the output's after its data.
	Sized bool
}

// Result is a generated package.
type Result struct {
	Package string
	Files   []File
	Inputs  []Port
	Outputs []Port
	// ActivationBytes is the size of the planned arena: the peak memory of intermediates
	// and outputs during a forward pass (0 when Sizes are chosen at run time: each set of
	// sizes has its plan).
	ActivationBytes int
	// Sizes are the names of the sizes Forward reads from its inputs' shapes, in the
	// order of their first appearance; none when every shape is static.
	Sizes []string
	// WeightBytes is the memory the weights take once loaded as float32.
	WeightBytes int
}

// Generate writes the Go package of m. Symbolic dims (sizes chosen at run time) are read
// from the shapes Forward is given (sizes.go); static shapes give a package specialized to
// them. Errors name what is wrong: a size generated code cannot read or compute, an op the
// generator does not know, an invalid package name.
func Generate(m *ir.Module, opts Options) (*Result, error) {
	if m == nil {
		return nil, errors.New("codegen: nil module")
	}
	if err := ir.Verify(m); err != nil {
		return nil, fmt.Errorf("codegen: module %s does not verify:\n%w", m.Name, err)
	}
	var unknown []string
	for _, v := range m.Body {
		if !Supported(v.Op) && !slices.Contains(unknown, v.Op) {
			unknown = append(unknown, v.Op)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("codegen: module %s uses ops the Go code generator does not support: %s", m.Name, strings.Join(unknown, ", "))
	}
	pkg := opts.Package
	if pkg == "" {
		pkg = PackageName(m.Name)
	}
	if !ValidPackageName(pkg) {
		return nil, fmt.Errorf("codegen: %q is not a valid Go package name", pkg)
	}
	if opts.Source == "" {
		opts.Source = m.Source
	}
	g, err := newGenerator(m, opts, pkg)
	if err != nil {
		return nil, err
	}
	model, err := g.modelFile()
	if err != nil {
		return nil, err
	}
	weights, err := g.weightsFile()
	if err != nil {
		return nil, err
	}
	res := &Result{
		Package:         pkg,
		Files:           []File{{Name: "model.go", Data: model}, {Name: "weights.go", Data: weights}},
		ActivationBytes: g.activationBytes,
		WeightBytes:     g.weightBytes,
	}
	if g.sym != nil {
		res.Sizes = g.sym.names
	}
	for _, v := range m.Inputs {
		res.Inputs = append(res.Inputs, Port{Name: v.Name, Export: g.inputExport[v], Type: v.Type, Sized: g.sym != nil && !v.Type.Shape.Static()})
	}
	for i, v := range m.Outputs {
		res.Outputs = append(res.Outputs, Port{Name: g.outputArg[i], Export: g.outputExport[i], Type: v.Type, Sized: g.sym != nil && !v.Type.Shape.Static()})
	}
	return res, nil
}

type generator struct {
	// hoisted are the weight-only ops computed once by Load (see loadTimeValues);
	// keptHoisted those Forward reads, which keep their memory.
	hoisted, keptHoisted map[*ir.Value]bool

	m    *ir.Module
	opts Options
	pkg  string
	plan *memplan.Plan

	globals    *namer // package-level identifiers
	fieldNames *namer // fields of Model

	inputArg     map[*ir.Value]string // parameter of Forward
	inputExport  map[*ir.Value]string // prefix of XShape, XLen
	outputExport []string             // prefix of YShape, YLen
	outputArg    []string             // how the docs call each output

	weightField map[*ir.Value]string
	weightAt    map[*ir.Value]int // offset in the weight slab; −1 for packed weights
	weightsLen  int
	packed      map[*ir.Value]*packedWeight
	valueField  map[*ir.Value]string
	copyField   map[*memplan.OutputCopy]string

	intVars     map[string]string
	intVarDefs  []jen.Code
	helpers     map[string]jen.Code
	helperOrder []string
	extraFields []jen.Code
	extraInits  []jen.Code
	inPrepare   bool // emitting prepare, whose only result is an error

	// The sizes in bytes of the arena, the weights and the values Load computes, checked
	// against overflow.
	activationBytes, weightBytes, loadTimeBytes int

	// sym holds the sizes chosen at run time (sizes.go); nil when every shape is static.
	sym              *sizes
	forwardLocals    *namer               // Forward's parameters and locals
	planFields       *namer               // fields of shapePlan
	inputShapeArg    map[*ir.Value]string // Forward's parameter with a sized input's shape
	outputShapeField []string             // shapePlan's field with a sized output's shape
}

// fixedGlobals are the package-level names the generated files always define or import.
var fixedGlobals = []string{
	"ActivationBytes", "WeightBytes", "Model", "Load", "LoadFiles", "LoadFilesWith", "LoadReaderAt", "ModelName", "WeightSpecs",
	"newModel", "arenaLen", "weightsLen", "weightSpec", "weightSpecs", "fileName", "formatInts",
	"fmt", "errors", "io", "math", "slices", "strconv", "strings", "kernels", "runtime",
}

func newGenerator(m *ir.Module, opts Options, pkg string) (*generator, error) {
	g := &generator{
		m: m, opts: opts, pkg: pkg,
		globals:     newNamer(fixedGlobals...),
		fieldNames:  newNamer("arena", "weights", "packed"),
		inputArg:    map[*ir.Value]string{},
		inputExport: map[*ir.Value]string{},
		weightField: map[*ir.Value]string{},
		weightAt:    map[*ir.Value]int{},
		valueField:  map[*ir.Value]string{},
		copyField:   map[*memplan.OutputCopy]string{},
		intVars:     map[string]string{},
		helpers:     map[string]jen.Code{},
	}
	g.hoisted = loadTimeValues(m)
	g.keptHoisted = keptLoadTime(m, g.hoisted)
	var err error
	if symbolicModule(m) {
		if g.sym, err = newSizes(m); err != nil {
			return nil, err
		}
		for _, name := range []string{"shapePlan", "newShapePlan", "sizeNames", "bufferFirst", "bufferLast"} {
			g.globals.used[name] = true
		}
		g.fieldNames.used["plan"], g.fieldNames.used["plans"] = true, true
		g.planFields = newNamer("key", "dims", "offsets", "arenaLen")
		g.inputShapeArg = map[*ir.Value]string{}
	}
	if g.plan, err = planMemory(m, g.hoisted, g.sym != nil); err != nil {
		return nil, fmt.Errorf("codegen: %w", err)
	}
	// Forward's parameters must not shadow what its body refers to: the receiver, the
	// loop and error variables, imported packages and package-level names (reserved in
	// globals, where the helpers and shape tables made later will avoid them in turn).
	locals := newNamer(append([]string{"m", "i", "err", "offA", "offB", "geluExact", "p", "key", "d", "c"}, fixedGlobals...)...)
	g.forwardLocals = locals
	for _, v := range m.Inputs {
		arg := locals.take(camel(v.Name, false, "in"))
		g.inputArg[v] = arg
		g.globals.used[arg] = true
		if g.sym != nil && !v.Type.Shape.Static() {
			g.inputShapeArg[v] = locals.take(arg + "Shape")
			g.globals.used[g.inputShapeArg[v]] = true
		}
		g.inputExport[v] = g.globals.take(camel(v.Name, true, "in"))
		g.globals.used[g.inputExport[v]+"Shape"] = true
		g.globals.used[g.inputExport[v]+"Len"] = true
	}
	g.globals.used["geluExact"] = true
	for i := range m.Outputs {
		want := "Y"
		if len(m.Outputs) > 1 {
			want = "Y" + strconv.Itoa(i)
		}
		name := g.globals.take(want)
		g.globals.used[name+"Shape"] = true
		g.globals.used[name+"Len"] = true
		g.outputExport = append(g.outputExport, name)
		g.outputArg = append(g.outputArg, strings.ToLower(want))
		if g.sym != nil {
			g.outputShapeField = append(g.outputShapeField, g.planFields.take(strings.ToLower(want)+"Shape"))
		}
	}
	g.packed = packableWeights(m, g.hoisted)
	for _, p := range m.Params {
		g.weightField[p] = g.fieldNames.take(camel(p.Name, false, "w"))
		if _, ok := g.packed[p]; ok {
			g.weightAt[p] = -1 // packed by Load, outside the slab
			continue
		}
		g.weightAt[p] = g.weightsLen
		n, ok := ir.AddChecked(g.weightsLen, alignUp(numElements(p.Type.Shape)))
		if !ok {
			return nil, fmt.Errorf("codegen: module %s: the weights overflow an int at parameter %s (key %q)", m.Name, p.Ref(), p.Key)
		}
		g.weightsLen = n
	}
	if err := g.sizes(); err != nil {
		return nil, err
	}
	for _, v := range m.Body {
		switch {
		case g.plan.BufferOf[v] != nil:
			g.valueField[v] = g.fieldNames.take("v" + strconv.Itoa(v.ID))
		case g.hoisted[v] && (v.Op != "reshape" || !g.hoisted[v.Args[0]]):
			g.valueField[v] = g.fieldNames.take("load" + strconv.Itoa(v.ID))
		}
	}
	for i, c := range g.plan.Copies {
		g.copyField[c] = g.fieldNames.take("out" + strconv.Itoa(i))
	}
	if g.sym != nil {
		// Each buffer's size: that of its first member (views and in-place results have
		// the same element count), or of the output it copies.
		for _, v := range m.Body {
			if b := g.plan.BufferOf[v]; b != nil {
				if _, ok := g.sym.bufSize[b]; !ok {
					g.sym.bufSize[b] = prod(v.Type.Shape)
				}
			}
		}
		for _, c := range g.plan.Copies {
			if c.Buf != nil {
				g.sym.bufSize[c.Buf] = prod(c.Value.Type.Shape)
			}
		}
	}
	return g, nil
}

// sizes computes the byte sizes of the plan, refusing any that overflows an int: they
// become constants of the generated package and its memory check.
func (g *generator) sizes() error {
	mul := func(a, b int) int {
		n, ok := ir.MulChecked(a, b)
		if !ok {
			return -1
		}
		return n
	}
	add := func(a, b int) int {
		n, ok := ir.AddChecked(a, b)
		if !ok {
			return -1
		}
		return n
	}
	if g.sym == nil {
		g.activationBytes = add(mul(4, g.plan.ArenaLen), mul(8, g.intCopyElements()))
	}
	// Packed weights count as float32, padded to whole panels of 32 rows: the most they
	// take (a float16 checkpoint's take half).
	g.weightBytes = mul(4, g.weightsLen)
	for _, pw := range g.packed {
		g.weightBytes = add(g.weightBytes, mul(4, mul(alignUp32(pw.out), pw.in)))
	}
	g.loadTimeBytes = 0
	for v, own := range g.hoisted {
		if own && v.Op != "reshape" { // a hoisted reshape is a view of its operand's slice
			g.loadTimeBytes = add(g.loadTimeBytes, mul(v.Type.DType.StorageSize(), numElements(v.Type.Shape)))
		}
	}
	if g.activationBytes < 0 || g.weightBytes < 0 || g.loadTimeBytes < 0 || add(add(g.activationBytes, g.weightBytes), g.loadTimeBytes) < 0 {
		return fmt.Errorf("codegen: module %s: its memory (%d float32 elements of arena, %d of weights) overflows an int", g.m.Name, g.plan.ArenaLen, g.weightsLen)
	}
	return nil
}

func (g *generator) intCopyElements() int {
	n := 0
	for _, c := range g.plan.Copies {
		if c.Buf == nil {
			n += numElements(c.Value.Type.Shape)
		}
	}
	return n
}

// alignUp32 rounds n up to whole panels of the widest micro-kernel (32 rows).
func alignUp32(n int) int { return (n + 31) / 32 * 32 }

// ref is the Go expression of a value's data inside Forward.
func (g *generator) ref(v *ir.Value) *jen.Statement {
	switch v.Kind {
	case ir.KindInput:
		return jen.Id(g.inputArg[v])
	case ir.KindParam:
		return jen.Id("m").Dot(g.weightField[v])
	}
	if root, ok := g.plan.External[v]; ok {
		return g.ref(root)
	}
	if g.hoisted[v] && v.Op == "reshape" && g.hoisted[v.Args[0]] {
		return g.ref(v.Args[0]) // a view: same data, another shape
	}
	return jen.Id("m").Dot(g.valueField[v])
}

// isArgument reports whether v is data the caller passes to Forward (or a view of it).
func (g *generator) isArgument(v *ir.Value) bool {
	if root, ok := g.plan.External[v]; ok {
		v = root
	}
	return v.Kind == ir.KindInput
}

// fail is the error return of the method being emitted: Forward's, or prepare's.
func (g *generator) fail(err jen.Code) jen.Code {
	if g.inPrepare {
		return jen.Return(err)
	}
	vals := make([]jen.Code, 0, 2*len(g.m.Outputs)+1)
	for _, v := range g.m.Outputs {
		vals = append(vals, jen.Nil())
		if g.sym != nil && !v.Type.Shape.Static() {
			vals = append(vals, jen.Nil())
		}
	}
	return jen.Return(append(vals, err)...)
}

func goType(t ir.Type) jen.Code {
	if t.DType.IsFloat() {
		return jen.Index().Float32()
	}
	return jen.Index().Int64()
}

func (g *generator) header(f *jen.File) {
	f.HeaderComment("Code generated by rfc. DO NOT EDIT.")
	f.ImportName(kernelsPath, "kernels")
	f.ImportName(runtimePath, "runtime")
}

func (g *generator) settings() string {
	parts := make([]string, len(g.m.Settings))
	for i, s := range g.m.Settings {
		parts[i] = s.Name + "=" + s.Value
	}
	return strings.Join(parts, ", ")
}

func (g *generator) modelFile() ([]byte, error) {
	m, p := g.m, g.plan
	f := jen.NewFile(g.pkg)
	g.header(f)
	var doc strings.Builder
	fmt.Fprintf(&doc, "Package %s is the model %s of %s, compiled ahead of time by rfc.\n", g.pkg, m.Name, g.opts.Source)
	if len(m.Settings) > 0 {
		fmt.Fprintf(&doc, "\nSettings: %s.\n", g.settings())
	}
	if g.opts.Command != "" {
		fmt.Fprintf(&doc, "\nRegenerate with:\n\n\t%s\n", g.opts.Command)
	}
	doc.WriteString("\nInputs (arguments of Model.Forward, in order):\n\n")
	for _, v := range m.Inputs {
		fmt.Fprintf(&doc, "\t%s %s\n", v.Name, v.Type)
	}
	doc.WriteString("\nOutputs (results of Model.Forward):\n\n")
	for i, v := range m.Outputs {
		fmt.Fprintf(&doc, "\t%s %s\n", g.outputArg[i], v.Type)
	}
	if g.sym != nil {
		fmt.Fprintf(&doc, "\nSizes chosen at run time: %s. Forward reads them from the shapes of its inputs, checks every rule of the model they must follow, and keeps a memory plan per set of sizes, made at the first call with it.\n", strings.Join(g.sym.names, ", "))
		fmt.Fprintf(&doc, "\nMemory: %d bytes of weights at most, as float32 (WeightBytes; a float16 checkpoint's packed weights take half); an arena of activations planned for each set of sizes, which grows to the largest one met.", g.weightBytes)
	} else {
		fmt.Fprintf(&doc, "\nMemory: %d bytes of activations in one planned arena (ActivationBytes), %d bytes of weights at most, as float32 (WeightBytes; a float16 checkpoint's packed weights take half).", g.activationBytes, g.weightBytes)
	}
	f.PackageComment(Comment(doc.String()))

	if g.sym != nil {
		f.Const().Defs(
			jen.Comment("ModelName is the model this package was compiled from."),
			jen.Id("ModelName").Op("=").Lit(m.Name),
			jen.Comment("WeightBytes is the most memory the weights take once loaded: as float32 (a float16 checkpoint's packed weights take half)."),
			jen.Id("WeightBytes").Op("=").Lit(g.weightBytes),
			jen.Line(),
			jen.Id("weightsLen").Op("=").Lit(g.weightsLen).Comment("float32 elements"),
		)
	} else {
		f.Const().Defs(
			jen.Comment("ModelName is the model this package was compiled from."),
			jen.Id("ModelName").Op("=").Lit(m.Name),
			jen.Comment(Comment("ActivationBytes is the planned peak memory of intermediates and outputs during Forward: the size of the model's arena.")),
			jen.Id("ActivationBytes").Op("=").Lit(g.activationBytes),
			jen.Comment("WeightBytes is the most memory the weights take once loaded: as float32 (a float16 checkpoint's packed weights take half)."),
			jen.Id("WeightBytes").Op("=").Lit(g.weightBytes),
			jen.Line(),
			jen.Id("arenaLen").Op("=").Lit(p.ArenaLen).Comment("float32 elements"),
			jen.Id("weightsLen").Op("=").Lit(g.weightsLen).Comment("float32 elements"),
		)
	}
	for _, v := range m.Inputs {
		ShapeDecls(f, "input "+v.Name, g.inputExport[v], v.Type)
	}
	for i, v := range m.Outputs {
		ShapeDecls(f, "output "+g.outputArg[i], g.outputExport[i], v.Type)
	}

	forward, err := g.forward()
	if err != nil {
		return nil, err
	}
	prepare, err := g.prepare()
	if err != nil {
		return nil, err
	}
	// The model type and its constructor come after Forward and prepare are built: emitting
	// ops adds fields (concatenation operand lists) and package-level tables.
	fieldDefs := []jen.Code{
		jen.Id("arena").Op("*").Qual(runtimePath, "Arena").Comment("activations, at the offsets of the memory plan"),
		jen.Id("weights").Index().Float32().Comment("all weights, one after the other"),
		jen.Line(),
	}
	inits := []jen.Code{
		jen.Id("m").Op(":=").Op("&").Id("Model").Values(jen.Dict{
			jen.Id("arena"):   jen.Qual(runtimePath, "NewArena").Call(jen.Id("arenaLen")),
			jen.Id("weights"): jen.Make(jen.Index().Float32(), jen.Id("weightsLen")),
		}),
	}
	if g.sym != nil {
		fieldDefs = []jen.Code{
			jen.Id("arena").Op("*").Qual(runtimePath, "Arena").Comment("activations, at the offsets of the current plan; grows to the largest"),
			jen.Id("weights").Index().Float32().Comment("all weights, one after the other"),
			jen.Id("plans").Map(g.keyType()).Op("*").Id("shapePlan").Comment("by sizes, made at their first use"),
			jen.Id("plan").Op("*").Id("shapePlan").Comment("of the last call"),
			jen.Line(),
		}
		inits = []jen.Code{
			jen.Id("m").Op(":=").Op("&").Id("Model").Values(jen.Dict{
				jen.Id("arena"):   jen.Qual(runtimePath, "NewArena").Call(jen.Lit(0)),
				jen.Id("weights"): jen.Make(jen.Index().Float32(), jen.Id("weightsLen")),
				jen.Id("plans"):   jen.Map(g.keyType()).Op("*").Id("shapePlan").Values(),
			}),
		}
	}
	var packedFields []jen.Code
	for _, w := range m.Params {
		if pw, ok := g.packed[w]; ok {
			fieldDefs = append(fieldDefs, jen.Id(g.weightField[w]).Qual(kernelsPath, "Weights").Comment(fmt.Sprintf("%q %s, packed as [%d, %d]", w.Key, w.Type, pw.out, pw.in)))
			packedFields = append(packedFields, jen.Op("&").Id("m").Dot(g.weightField[w]))
			continue
		}
		fieldDefs = append(fieldDefs, jen.Id(g.weightField[w]).Index().Float32().Comment(fmt.Sprintf("%q %s", w.Key, w.Type)))
		off, n := g.weightAt[w], numElements(w.Type.Shape)
		inits = append(inits, jen.Id("m").Dot(g.weightField[w]).Op("=").Id("m").Dot("weights").Index(jen.Lit(off).Op(":").Lit(off+n).Op(":").Lit(off+n)))
	}
	if len(packedFields) > 0 {
		fieldDefs = append(fieldDefs, jen.Id("packed").Index().Op("*").Qual(kernelsPath, "Weights").Comment("the packed weights, by slot, for Load to fill"))
		inits = append(inits, jen.Id("m").Dot("packed").Op("=").Index().Op("*").Qual(kernelsPath, "Weights").Values(packedFields...))
	}
	if len(m.Params) > 0 {
		fieldDefs = append(fieldDefs, jen.Line())
	}
	for _, v := range m.Body {
		name, ok := g.valueField[v]
		if !ok {
			continue
		}
		if g.hoisted[v] {
			what := "computed by Load from the weights"
			if len(v.Args) == 0 {
				what = "a constant computed by Load"
			}
			if !g.keptHoisted[v] {
				what += ", then freed"
			}
			fieldDefs = append(fieldDefs, jen.Id(name).Add(goType(v.Type)).Comment(fmt.Sprintf("%s: %s, %s, %s", v.Ref(), v.Type, scopeName(v), what)))
			continue
		}
		b := p.BufferOf[v]
		fieldDefs = append(fieldDefs, jen.Id(name).Index().Float32().Comment(fmt.Sprintf("%s: %s, %s", v.Ref(), v.Type, scopeName(v))))
		if g.sym == nil {
			inits = append(inits, jen.Id("m").Dot(name).Op("=").Id("m").Dot("arena").Dot("Slice").Call(jen.Lit(b.Offset), jen.Lit(numElements(v.Type.Shape))))
		}
	}
	for _, c := range p.Copies {
		name := g.copyField[c]
		fieldDefs = append(fieldDefs, jen.Id(name).Add(goType(c.Value.Type)).Comment(fmt.Sprintf("a copy of %s, returned as an output", c.From.Ref())))
		if g.sym != nil {
			continue // cut with each plan
		}
		n := numElements(c.Value.Type.Shape)
		if c.Buf != nil {
			inits = append(inits, jen.Id("m").Dot(name).Op("=").Id("m").Dot("arena").Dot("Slice").Call(jen.Lit(c.Buf.Offset), jen.Lit(n)))
		} else {
			inits = append(inits, jen.Id("m").Dot(name).Op("=").Make(jen.Index().Int64(), jen.Lit(n)))
		}
	}
	fieldDefs = append(fieldDefs, g.extraFields...)
	inits = append(inits, g.extraInits...)
	inits = append(inits, jen.Return(jen.Id("m")))

	f.Comment(Comment(fmt.Sprintf("Model is %s with its weights and the buffers of one forward pass. Build it with Load, LoadFiles, LoadFilesWith or LoadReaderAt. A Model is not safe for concurrent use: give each goroutine its own.", m.Name)))
	f.Type().Id("Model").Struct(fieldDefs...)
	f.Line()
	if g.sym != nil {
		f.Comment("newModel allocates the weight slab and slices it; the arena grows with the plans Forward makes.")
	} else {
		f.Comment("newModel allocates the arena and the weight slab and slices them at the planned offsets.")
	}
	f.Func().Id("newModel").Params().Op("*").Id("Model").Block(inits...)
	f.Line()
	f.Add(forward)
	if prepare != nil {
		f.Line()
		f.Add(prepare)
	}
	if g.sym != nil {
		f.Line()
		if err := g.symbolicDecls(f); err != nil {
			return nil, err
		}
	}
	if len(g.intVarDefs) > 0 {
		f.Line()
		f.Comment("Shapes, permutations, paddings and offsets that kernels take as slices.")
		f.Var().Defs(g.intVarDefs...)
	}
	for _, name := range g.helperOrder {
		f.Line()
		f.Add(g.helpers[name])
	}
	return render(f)
}

// ShapeDecls declares XLen and XShape for one input or output of a generated package (X
// is export); XShape alone, with −1 for the sizes chosen at run time, when the shape holds
// some. The CUDA target's host code declares its shapes with it too.
func ShapeDecls(f *jen.File, what, export string, t ir.Type) {
	dims := shapeOfType(t)
	lits := make([]jen.Code, len(dims))
	for i, d := range dims {
		lits[i] = jen.Lit(d)
	}
	if !t.Shape.Static() {
		f.Comment(Comment(fmt.Sprintf("%sShape is the shape of %s, %s, outermost first (row-major), with −1 for the sizes chosen at run time: Forward takes (or returns) the actual shape. Do not modify it.", export, what, t)))
		f.Var().Id(export + "Shape").Op("=").Index(jen.Lit(len(dims))).Int().Values(lits...)
		return
	}
	f.Comment(fmt.Sprintf("%sLen is the element count of %s, %s.", export, what, t))
	f.Const().Id(export + "Len").Op("=").Lit(ir.Prod(dims))
	f.Line()
	f.Comment(Comment(fmt.Sprintf("%sShape is the shape of %s, %s, outermost first (row-major). Do not modify it.", export, what, t)))
	f.Var().Id(export + "Shape").Op("=").Index(jen.Lit(len(dims))).Int().Values(lits...)
}

func shapeOfType(t ir.Type) []int { return t.Shape.Ints() }

// forward builds Forward: length checks (with sizes chosen at run time: the shapes read
// and the plan of their sizes taken), then one statement (or small block) per op in body
// order, each under a comment naming its layer, then the copies of outputs that are inputs
// or weights.
func (g *generator) forward() (jen.Code, error) {
	m := g.m
	var doc strings.Builder
	fmt.Fprintf(&doc, "Forward runs %s on ", m.Name)
	var params []jen.Code
	for i, v := range m.Inputs {
		if i > 0 {
			doc.WriteString(", ")
		}
		params = append(params, jen.Id(g.inputArg[v]).Add(goType(v.Type)))
		if shape, ok := g.inputShapeArg[v]; ok {
			fmt.Fprintf(&doc, "%s (%s, of shape %s)", g.inputArg[v], v.Type, shape)
			params = append(params, jen.Id(shape).Index().Int())
			continue
		}
		fmt.Fprintf(&doc, "%s (%s, %sShape)", g.inputArg[v], v.Type, g.inputExport[v])
	}
	if len(m.Inputs) == 0 {
		doc.WriteString("no input")
	}
	doc.WriteString(" and returns ")
	results := make([]jen.Code, 0, 2*len(m.Outputs)+1)
	for i, v := range m.Outputs {
		if i > 0 {
			doc.WriteString(", ")
		}
		results = append(results, goType(v.Type))
		if g.sym != nil && !v.Type.Shape.Static() {
			fmt.Fprintf(&doc, "%s (%s) with its shape", g.outputArg[i], v.Type)
			results = append(results, jen.Index().Int())
			continue
		}
		fmt.Fprintf(&doc, "%s (%s, %sShape)", g.outputArg[i], v.Type, g.outputExport[i])
	}
	results = append(results, jen.Error())
	doc.WriteString(", all row-major.\n\nThe outputs are slices of the model's own memory: they stay valid until the next call of Forward, which overwrites them (copy them to keep them). Inputs must not share memory with them. A slice of the wrong length is an error.")
	if g.sym != nil {
		fmt.Fprintf(&doc, " The sizes %s come from the input shapes; sizes the model cannot take (a rule of a layer broken) are an error naming them, their inputs and the rule. The first call with a set of sizes plans its memory (and may grow the arena); later calls with sizes already seen allocate nothing.", strings.Join(g.sym.names, ", "))
	} else {
		doc.WriteString(" Forward allocates no buffers: every intermediate lives in the model's arena.")
	}

	var body []jen.Code
	if g.sym != nil {
		body = append(body, g.bindSizes()...)
	}
	for _, v := range m.Inputs {
		if _, sized := g.inputShapeArg[v]; sized {
			n := prod(v.Type.Shape)
			msg := fmt.Sprintf("%s: Forward: input %s has %%d elements, want %%d (shape %%v)", g.pkg, v.Name)
			body = append(body, jen.If(jen.Len(jen.Id(g.inputArg[v])).Op("!=").Id("p").Dot("dims").Index(jen.Lit(g.sym.add(n)))).Block(
				g.fail(jen.Qual("fmt", "Errorf").Call(jen.Lit(msg), jen.Len(jen.Id(g.inputArg[v])), jen.Id("p").Dot("dims").Index(jen.Lit(g.sym.add(n))), jen.Id(g.inputShapeArg[v]))),
			))
			continue
		}
		n := ir.Prod(shapeOfType(v.Type))
		msg := fmt.Sprintf("%s: Forward: input %s has %%d elements, want %d (%s)", g.pkg, v.Name, n, v.Type)
		body = append(body, jen.If(jen.Len(jen.Id(g.inputArg[v])).Op("!=").Id(g.inputExport[v]+"Len")).Block(
			g.fail(jen.Qual("fmt", "Errorf").Call(jen.Lit(msg), jen.Len(jen.Id(g.inputArg[v])))),
		))
	}
	var ops []jen.Code
	for _, v := range m.Body {
		if g.hoisted[v] {
			continue
		}
		if g.sym != nil {
			if err := g.sizeChecks(v); err != nil {
				return nil, err
			}
		}
		stmts, err := emitters[v.Op](g, v)
		if err != nil {
			return nil, fmt.Errorf("codegen: %s: %v", ir.FormatValue(v), err)
		}
		ops = append(ops, jen.Line(), jen.Comment(g.opComment(v)))
		ops = append(ops, stmts...)
	}
	if g.sym != nil {
		if locals := g.sizeLocals(); len(locals) > 0 {
			body = append(body, jen.Line(), jen.Comment("The sizes of this call."))
			body = append(body, locals...)
		}
	}
	body = append(body, ops...)
	if len(g.plan.Copies) > 0 {
		body = append(body, jen.Line(), jen.Comment("Outputs that are inputs or weights are copied, so that the caller cannot write to those."))
		for _, c := range g.plan.Copies {
			body = append(body, jen.Copy(jen.Id("m").Dot(g.copyField[c]), g.ref(c.From)))
		}
	}
	rets := make([]jen.Code, 0, 2*len(m.Outputs)+1)
	for i, v := range m.Outputs {
		rets = append(rets, g.outputRef(v))
		if g.sym != nil && !v.Type.Shape.Static() {
			rets = append(rets, jen.Id("p").Dot(g.outputShapeField[i]).Index(jen.Op(":")))
		}
	}
	body = append(body, jen.Line(), jen.Return(append(rets, jen.Nil())...))
	return jen.Comment(Comment(doc.String())).Line().
		Func().Params(jen.Id("m").Op("*").Id("Model")).Id("Forward").Params(params...).Params(results...).Block(body...), nil
}

func (g *generator) outputRef(v *ir.Value) jen.Code {
	for _, c := range g.plan.Copies {
		if c.Value == v {
			return jen.Id("m").Dot(g.copyField[c])
		}
	}
	return g.ref(v)
}

// opComment names the layer and shows the op as the IR text prints it, plus what the
// memory plan did with it.
func (g *generator) opComment(v *ir.Value) string {
	// The op as the IR prints it, with parameters named relative to the op's layer.
	args := make([]string, len(v.Args))
	prefix := v.Scope.Path() + "."
	for i, a := range v.Args {
		args[i] = a.Ref()
		if a.Kind == ir.KindParam && strings.HasPrefix(a.Name, prefix) {
			args[i] = "@" + strings.TrimPrefix(a.Name, prefix)
		}
	}
	c := fmt.Sprintf("%s: %s = %s(%s)", scopeName(v), v.Ref(), v.Op, strings.Join(args, ", "))
	if len(v.Attrs) > 0 {
		attrs := make([]string, len(v.Attrs))
		for i, a := range v.Attrs {
			attrs[i] = a.Name + "=" + ir.FormatAttr(a.Value)
		}
		c += " {" + strings.Join(attrs, ", ") + "}"
	}
	c += " -> " + v.Type.String()
	switch {
	case v.Op == "reshape":
		c += " (a view: no code)"
	default:
		if j, ok := g.plan.InPlace[v]; ok {
			c += " (in place over " + v.Args[j].Ref() + ")"
		}
	}
	return c
}

// Comment turns text into "//" lines, its paragraphs wrapped at about 100 columns; lines
// that start with a tab (commands, lists) are kept as they are. Jennifer writes a comment
// that starts with "//" verbatim, where it would make a multi-line one a /* */ block. The
// CUDA target's host code uses it too.
func Comment(text string) string {
	var out []string
	for _, para := range strings.Split(text, "\n") {
		if strings.HasPrefix(para, "\t") || para == "" {
			out = append(out, strings.TrimRight("// "+para, " "))
			continue
		}
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len(line)+1+len(w) > 96 {
				out = append(out, "// "+line)
				line = w
				continue
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		out = append(out, "// "+line)
	}
	return strings.Join(out, "\n")
}

func render(f *jen.File) ([]byte, error) {
	var buf bytes.Buffer
	if err := f.Render(&buf); err != nil {
		return nil, fmt.Errorf("codegen: %v", err)
	}
	src, err := format.Source(GroupImports(buf.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("codegen: %v", err)
	}
	return src, nil
}

// GroupImports puts the standard library's imports before the others, with a blank line
// between them, as goimports does (jennifer writes them in one sorted block). Blank
// imports (`_ "embed"`) are grouped by their path too. The CUDA target uses it as well.
func GroupImports(src []byte) []byte {
	start := bytes.Index(src, []byte("\nimport (\n"))
	if start < 0 {
		return src
	}
	start += len("\nimport (\n")
	end := bytes.Index(src[start:], []byte("\n)\n"))
	if end < 0 {
		return src
	}
	var std, other []string
	for _, line := range strings.Split(string(src[start:start+end]), "\n") {
		path := strings.Trim(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "_ ")), `"`)
		if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
			other = append(other, line)
		} else {
			std = append(std, line)
		}
	}
	block := strings.Join(std, "\n")
	if len(std) > 0 && len(other) > 0 {
		block += "\n\n"
	}
	block += strings.Join(other, "\n")
	out := append([]byte(nil), src[:start]...)
	out = append(out, block...)
	return append(out, src[start+end:]...)
}

// Write writes the files into dir (created if missing). A file whose content is already
// byte-identical is left untouched, so re-running on unchanged input changes nothing, not
// even modification times. It returns the names of the files it wrote.
func Write(dir string, files []File) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, f.Data) {
			continue
		}
		// Write beside the target and rename, so that an interrupted run never leaves a
		// half-written file.
		tmp, err := os.CreateTemp(dir, "."+f.Name+".tmp*")
		if err != nil {
			return written, err
		}
		_, err = tmp.Write(f.Data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(tmp.Name(), 0o644)
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return written, err
		}
		written = append(written, f.Name)
	}
	return written, nil
}
