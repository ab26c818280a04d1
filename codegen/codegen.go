// Package codegen turns a compiled ir.Module into Go source: a package with a Model type
// that loads its weights from safetensors files and runs the module's ops as straight-line
// calls into package kernels, with every shape fixed at compile time and every
// intermediate placed in one planned arena. The generated code imports only rfc's runtime
// and kernels packages (and the standard library), never the compiler.
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
}

// Result is a generated package.
type Result struct {
	Package string
	Files   []File
	Inputs  []Port
	Outputs []Port
	// ActivationBytes is the size of the planned arena: the peak memory of intermediates
	// and outputs during a forward pass.
	ActivationBytes int
	// WeightBytes is the memory the weights take once loaded as float32.
	WeightBytes int
}

// Generate writes the Go package of m, whose shapes must all be static. Errors name what
// is wrong: a symbolic dim (and the --set that fixes it), an op the generator does not
// know, an invalid package name.
func Generate(m *ir.Module, opts Options) (*Result, error) {
	if m == nil {
		return nil, errors.New("codegen: nil module")
	}
	if err := ir.Verify(m); err != nil {
		return nil, fmt.Errorf("codegen: module %s does not verify:\n%w", m.Name, err)
	}
	if err := checkStatic(m); err != nil {
		return nil, err
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
		pkg = packageName(m.Name)
	}
	if !validPackageName(pkg) {
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
	for _, v := range m.Inputs {
		res.Inputs = append(res.Inputs, Port{Name: v.Name, Export: g.inputExport[v], Type: v.Type})
	}
	for i, v := range m.Outputs {
		res.Outputs = append(res.Outputs, Port{Name: g.outputArg[i], Export: g.outputExport[i], Type: v.Type})
	}
	return res, nil
}

// checkStatic refuses symbolic dims, naming each symbol and where it appears.
func checkStatic(m *ir.Module) error {
	var syms []string
	var where []string
	note := func(what string, t ir.Type) {
		if t.Shape.Static() {
			return
		}
		where = append(where, fmt.Sprintf("%s is %s", what, t))
		for _, d := range t.Shape {
			for _, f := range strings.FieldsFunc(d.Sym, func(r rune) bool { return r == '*' || r == '+' }) {
				if _, err := strconv.Atoi(f); err != nil && !slices.Contains(syms, f) {
					syms = append(syms, f)
				}
			}
		}
	}
	for _, v := range m.Inputs {
		note("input "+v.Ref(), v.Type)
	}
	for _, v := range m.Params {
		note(fmt.Sprintf("parameter %s (key %q)", v.Ref(), v.Key), v.Type)
	}
	if len(where) == 0 {
		for _, v := range m.Body {
			note(fmt.Sprintf("%s (%s in %s)", v.Ref(), v.Op, scopeName(v)), v.Type)
		}
	}
	if len(syms) == 0 {
		return nil
	}
	sets := make([]string, len(syms))
	for i, s := range syms {
		sets[i] = "--set " + s + "=N"
	}
	return fmt.Errorf("codegen: module %s has symbolic dims (%s); generated code needs static shapes: fix them with %s (e.g. --set %s=1)\n%s",
		m.Name, strings.Join(syms, ", "), strings.Join(sets, " "), syms[0], strings.Join(where, "\n"))
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
	weightAt    map[*ir.Value]int // offset in the weight slab
	weightsLen  int
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
		fieldNames:  newNamer("arena", "weights"),
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
	if g.plan, err = planMemory(m, g.hoisted); err != nil {
		return nil, fmt.Errorf("codegen: %w", err)
	}
	// Forward's parameters must not shadow what its body refers to: the receiver, the
	// loop and error variables, imported packages and package-level names (reserved in
	// globals, where the helpers and shape tables made later will avoid them in turn).
	locals := newNamer(append([]string{"m", "i", "err", "offA", "offB", "geluExact"}, fixedGlobals...)...)
	for _, v := range m.Inputs {
		arg := locals.take(camel(v.Name, false, "in"))
		g.inputArg[v] = arg
		g.globals.used[arg] = true
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
	}
	for _, p := range m.Params {
		g.weightField[p] = g.fieldNames.take(camel(p.Name, false, "w"))
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
	g.activationBytes = add(mul(4, g.plan.ArenaLen), mul(8, g.intCopyElements()))
	g.weightBytes = mul(4, g.weightsLen)
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
	vals := make([]jen.Code, 0, len(g.m.Outputs)+1)
	for range g.m.Outputs {
		vals = append(vals, jen.Nil())
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
	fmt.Fprintf(&doc, "\nMemory: %d bytes of activations in one planned arena (ActivationBytes), %d bytes of weights as float32 (WeightBytes).", g.activationBytes, g.weightBytes)
	f.PackageComment(Comment(doc.String()))

	f.Const().Defs(
		jen.Comment("ModelName is the model this package was compiled from."),
		jen.Id("ModelName").Op("=").Lit(m.Name),
		jen.Comment(Comment("ActivationBytes is the planned peak memory of intermediates and outputs during Forward: the size of the model's arena.")),
		jen.Id("ActivationBytes").Op("=").Lit(g.activationBytes),
		jen.Comment("WeightBytes is the memory the weights take once loaded as float32."),
		jen.Id("WeightBytes").Op("=").Lit(g.weightBytes),
		jen.Line(),
		jen.Id("arenaLen").Op("=").Lit(p.ArenaLen).Comment("float32 elements"),
		jen.Id("weightsLen").Op("=").Lit(g.weightsLen).Comment("float32 elements"),
	)
	for _, v := range m.Inputs {
		g.shapeDecls(f, "input "+v.Name, g.inputExport[v], v.Type)
	}
	for i, v := range m.Outputs {
		g.shapeDecls(f, "output "+g.outputArg[i], g.outputExport[i], v.Type)
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
	for _, w := range m.Params {
		fieldDefs = append(fieldDefs, jen.Id(g.weightField[w]).Index().Float32().Comment(fmt.Sprintf("%q %s", w.Key, w.Type)))
		off, n := g.weightAt[w], numElements(w.Type.Shape)
		inits = append(inits, jen.Id("m").Dot(g.weightField[w]).Op("=").Id("m").Dot("weights").Index(jen.Lit(off).Op(":").Lit(off+n).Op(":").Lit(off+n)))
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
		inits = append(inits, jen.Id("m").Dot(name).Op("=").Id("m").Dot("arena").Dot("Slice").Call(jen.Lit(b.Offset), jen.Lit(numElements(v.Type.Shape))))
	}
	for _, c := range p.Copies {
		name := g.copyField[c]
		n := numElements(c.Value.Type.Shape)
		fieldDefs = append(fieldDefs, jen.Id(name).Add(goType(c.Value.Type)).Comment(fmt.Sprintf("a copy of %s, returned as an output", c.From.Ref())))
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
	f.Comment("newModel allocates the arena and the weight slab and slices them at the planned offsets.")
	f.Func().Id("newModel").Params().Op("*").Id("Model").Block(inits...)
	f.Line()
	f.Add(forward)
	if prepare != nil {
		f.Line()
		f.Add(prepare)
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

// shapeDecls declares XLen and XShape for one input or output.
func (g *generator) shapeDecls(f *jen.File, what, export string, t ir.Type) {
	dims := shapeOfType(t)
	lits := make([]jen.Code, len(dims))
	for i, d := range dims {
		lits[i] = jen.Lit(d)
	}
	f.Comment(fmt.Sprintf("%sLen is the element count of %s, %s.", export, what, t))
	f.Const().Id(export + "Len").Op("=").Lit(ir.Prod(dims))
	f.Line()
	f.Comment(Comment(fmt.Sprintf("%sShape is the shape of %s, %s, outermost first (row-major). Do not modify it.", export, what, t)))
	f.Var().Id(export + "Shape").Op("=").Index(jen.Lit(len(dims))).Int().Values(lits...)
}

func shapeOfType(t ir.Type) []int { return t.Shape.Ints() }

// forward builds Forward: length checks, then one statement (or small block) per op in
// body order, each under a comment naming its layer, then the copies of outputs that are
// inputs or weights.
func (g *generator) forward() (jen.Code, error) {
	m := g.m
	var doc strings.Builder
	fmt.Fprintf(&doc, "Forward runs %s on ", m.Name)
	params := make([]jen.Code, len(m.Inputs))
	for i, v := range m.Inputs {
		if i > 0 {
			doc.WriteString(", ")
		}
		fmt.Fprintf(&doc, "%s (%s, %sShape)", g.inputArg[v], v.Type, g.inputExport[v])
		params[i] = jen.Id(g.inputArg[v]).Add(goType(v.Type))
	}
	if len(m.Inputs) == 0 {
		doc.WriteString("no input")
	}
	doc.WriteString(" and returns ")
	results := make([]jen.Code, 0, len(m.Outputs)+1)
	for i, v := range m.Outputs {
		if i > 0 {
			doc.WriteString(", ")
		}
		fmt.Fprintf(&doc, "%s (%s, %sShape)", g.outputArg[i], v.Type, g.outputExport[i])
		results = append(results, goType(v.Type))
	}
	results = append(results, jen.Error())
	doc.WriteString(", all row-major.\n\nThe outputs are slices of the model's own memory: they stay valid until the next call of Forward, which overwrites them (copy them to keep them). Inputs must not share memory with them. A slice of the wrong length is an error. Forward allocates no buffers: every intermediate lives in the model's arena.")

	var body []jen.Code
	for _, v := range m.Inputs {
		n := ir.Prod(shapeOfType(v.Type))
		msg := fmt.Sprintf("%s: Forward: input %s has %%d elements, want %d (%s)", g.pkg, v.Name, n, v.Type)
		body = append(body, jen.If(jen.Len(jen.Id(g.inputArg[v])).Op("!=").Id(g.inputExport[v]+"Len")).Block(
			g.fail(jen.Qual("fmt", "Errorf").Call(jen.Lit(msg), jen.Len(jen.Id(g.inputArg[v])))),
		))
	}
	for _, v := range m.Body {
		if g.hoisted[v] {
			continue
		}
		stmts, err := emitters[v.Op](g, v)
		if err != nil {
			return nil, fmt.Errorf("codegen: %s: %v", ir.FormatValue(v), err)
		}
		body = append(body, jen.Line(), jen.Comment(g.opComment(v)))
		body = append(body, stmts...)
	}
	if len(g.plan.Copies) > 0 {
		body = append(body, jen.Line(), jen.Comment("Outputs that are inputs or weights are copied, so that the caller cannot write to those."))
		for _, c := range g.plan.Copies {
			body = append(body, jen.Copy(jen.Id("m").Dot(g.copyField[c]), g.ref(c.From)))
		}
	}
	rets := make([]jen.Code, 0, len(m.Outputs)+1)
	for _, v := range m.Outputs {
		rets = append(rets, g.outputRef(v))
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
