package cuda

import (
	"bytes"
	"fmt"
	"go/format"
	"go/token"
	"strconv"
	"strings"
	"unicode"

	"github.com/dave/jennifer/jen"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/ir"
)

const (
	runtimePath = "github.com/rfc-project/rfc/runtime"
	cudaPath    = "github.com/rfc-project/rfc/runtime/cuda"
)

// port is an input or output of Forward.
type port struct {
	v      *ir.Value
	arg    string // Forward's parameter, or the Model field of an output
	export string // prefix of XLen / XShape
	doc    string // the name the docs use
}

type generator struct {
	m    *ir.Module
	opts Options
	arch string
	plan *plan
	low  *lowerer

	inputs  []port
	outputs []port
	// vocab is, for integer inputs that feed embeddings, the smallest table size: Forward
	// checks the indices against it on the host.
	vocab map[*ir.Value]int
}

func newGenerator(m *ir.Module, opts Options) (*generator, error) {
	g := &generator{m: m, opts: opts, arch: opts.Arch, vocab: map[*ir.Value]int{}}
	if g.arch == "" {
		g.arch = DefaultArch
	}
	var err error
	if g.plan, err = planMemory(m, opts.F16Weights); err != nil {
		return nil, err
	}
	if g.low, err = lower(m, g.plan, opts.F16Weights); err != nil {
		return nil, err
	}
	for _, v := range m.Body {
		if v.Op != "embedding" {
			continue
		}
		root := v.Args[0]
		for root.Op == "reshape" {
			root = root.Args[0]
		}
		n := ints(v.Args[1].Type)[0]
		if root.Kind == ir.KindOp && root.Op == "arange" {
			// Constant indices (CLIP's position ids) are checked here, once.
			lo, hi := root.Arange().Bounds()
			if lo < 0 || hi >= n {
				return nil, fmt.Errorf("cuda: %s: the indices %s range over [%d, %d], outside the table's %d rows", ir.FormatValue(v), root.Ref(), lo, hi, n)
			}
			continue
		}
		if root.Kind != ir.KindInput {
			return nil, fmt.Errorf("cuda: %s: embedding indices must come from an input or an arange (Forward checks an input's on the host)", ir.FormatValue(v))
		}
		if old, ok := g.vocab[root]; !ok || n < old {
			g.vocab[root] = n
		}
	}
	used := map[string]bool{}
	for _, w := range []string{"m", "s", "a", "w", "i", "t", "err", "ptx", "kernelNames", "weightSpecs", "Model", "Load", "LoadFiles",
		"LoadReaderAt", "WeightShapes", "ModelName", "ActivationBytes", "WeightBytes", "weightElems", "weightOffsets", "fileName", "formatInts",
		"newModel", "fmt", "errors", "io", "slices", "strconv", "strings", "runtime", "cuda", "embed"} {
		used[w] = true
	}
	take := func(want string) string {
		name := want
		for i := 2; used[name] || token.IsKeyword(name) || predeclared(name); i++ {
			name = want + strconv.Itoa(i)
		}
		used[name] = true
		return name
	}
	for _, v := range m.Inputs {
		p := port{v: v, arg: take(camel(v.Name, false, "in")), doc: v.Name}
		p.export = take(camel(v.Name, true, "In"))
		used[p.export+"Len"], used[p.export+"Shape"] = true, true
		g.inputs = append(g.inputs, p)
	}
	for i, v := range m.Outputs {
		want := "Y"
		if len(m.Outputs) > 1 {
			want += strconv.Itoa(i)
		}
		p := port{v: v, export: take(want), doc: strings.ToLower(want)}
		used[p.export+"Len"], used[p.export+"Shape"] = true, true
		p.arg = "out" + strconv.Itoa(i)
		g.outputs = append(g.outputs, p)
	}
	return g, nil
}

func predeclared(s string) bool {
	switch s {
	case "any", "append", "bool", "byte", "cap", "clear", "close", "comparable", "complex", "complex128", "complex64",
		"copy", "delete", "error", "false", "float32", "float64", "imag", "int", "int16", "int32", "int64", "int8",
		"iota", "len", "make", "max", "min", "new", "nil", "panic", "print", "println", "real", "recover", "rune",
		"string", "true", "uint", "uint16", "uint32", "uint64", "uint8", "uintptr":
		return true
	}
	return false
}

// camel joins the letter-and-digit runs of s in camel case; a result that would start with
// a digit gets prefix.
func camel(s string, upper bool, prefix string) string {
	parts := strings.FieldsFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	})
	var b strings.Builder
	for i, w := range parts {
		if i == 0 && !upper {
			b.WriteString(strings.ToLower(w[:1]) + w[1:])
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	out := b.String()
	if out == "" || unicode.IsDigit(rune(out[0])) {
		out = prefix + out
	}
	return out
}

func (g *generator) settings() string {
	parts := make([]string, len(g.m.Settings))
	for i, s := range g.m.Settings {
		parts[i] = s.Name + "=" + s.Value
	}
	return strings.Join(parts, ", ")
}

func goType(t ir.Type) jen.Code {
	if t.DType.IsFloat() {
		return jen.Index().Float32()
	}
	return jen.Index().Int64()
}

func render(f *jen.File, buildTag bool) ([]byte, error) {
	var buf bytes.Buffer
	if err := f.Render(&buf); err != nil {
		return nil, fmt.Errorf("cuda: %v", err)
	}
	src := codegen.GroupImports(buf.Bytes())
	if buildTag {
		src = append([]byte("//go:build cuda\n\n"), src...)
	}
	out, err := format.Source(src)
	if err != nil {
		return nil, fmt.Errorf("cuda: formatting generated Go: %v", err)
	}
	return out, nil
}

// shapesFile writes shapes.go: the package documentation, the go:generate line that
// compiles model.cu, and what needs no GPU (names, sizes, shapes).
func (g *generator) shapesFile() ([]byte, error) {
	m, p := g.m, g.plan
	f := jen.NewFile(g.opts.Package)
	f.HeaderComment("Code generated by rfc. DO NOT EDIT.")
	var doc strings.Builder
	fmt.Fprintf(&doc, "Package %s is the model %s of %s, compiled ahead of time by rfc for NVIDIA GPUs (CUDA).\n", g.opts.Package, m.Name, g.opts.Source)
	if s := g.settings(); s != "" {
		fmt.Fprintf(&doc, "\nSettings: %s.\n", s)
	}
	if g.opts.Command != "" {
		fmt.Fprintf(&doc, "\nRegenerate with:\n\n\t%s\n", g.opts.Command)
	}
	doc.WriteString("\nThe Model (model.go, weights.go) is built with -tags cuda, which needs cgo, the CUDA driver API headers and libcuda (gorgonia.org/cu); without the tag the package holds only this file. model.ptx is model.cu compiled by nvcc (go generate remakes it) and is embedded in the binary; the driver compiles it for the GPU at load time.\n")
	doc.WriteString("\nInputs (arguments of Model.Forward, in order):\n\n")
	for _, in := range g.inputs {
		fmt.Fprintf(&doc, "\t%s %s\n", in.doc, in.v.Type)
	}
	doc.WriteString("\nOutputs (results of Model.Forward):\n\n")
	for _, o := range g.outputs {
		fmt.Fprintf(&doc, "\t%s %s\n", o.doc, o.v.Type)
	}
	wdt := "float32"
	if g.opts.F16Weights {
		wdt = "float16"
	}
	fmt.Fprintf(&doc, "\nDevice memory: %d bytes of activations in one planned arena (ActivationBytes), %d bytes of weights stored as %s (WeightBytes); %d kernels.", p.arenaBytes, p.weightBytes, wdt, len(g.low.kernels))
	f.PackageComment(codegen.Comment(doc.String()))
	f.Comment("//go:generate " + strings.Join(nvccCommand("nvcc", g.arch, "model.cu", "model.ptx"), " "))
	f.Line()
	f.Const().Defs(
		jen.Comment("ModelName is the model this package was compiled from."),
		jen.Id("ModelName").Op("=").Lit(m.Name),
		jen.Comment("ActivationBytes is the device memory of inputs, intermediates and outputs: the planned arena."),
		jen.Id("ActivationBytes").Op("=").Lit(int(p.arenaBytes)),
		jen.Comment(fmt.Sprintf("WeightBytes is the device memory of the weights, stored as %s.", wdt)),
		jen.Id("WeightBytes").Op("=").Lit(int(p.weightBytes)),
	)
	for _, in := range g.inputs {
		codegen.ShapeDecls(f, "input "+in.doc, in.export, in.v.Type)
	}
	for _, o := range g.outputs {
		codegen.ShapeDecls(f, "output "+o.doc, o.export, o.v.Type)
	}
	return render(f, false)
}

// devicePtr is the Go expression of an argument: a+offset or w+offset.
func devicePtr(a arg) jen.Code {
	base := "a"
	if a.at.space == weights {
		base = "w"
	}
	off := a.at.offset + a.bytes
	if off == 0 {
		return jen.Id(base)
	}
	return jen.Id(base).Op("+").Lit(int(off))
}

// modelFile writes model.go: the Model, its construction, Forward, Replay and Close.
func (g *generator) modelFile() ([]byte, error) {
	m, p := g.m, g.plan
	f := jen.NewFile(g.opts.Package)
	f.HeaderComment("Code generated by rfc. DO NOT EDIT.")
	f.ImportName(cudaPath, "cuda")
	f.Anon("embed")
	f.Comment("ptx is model.cu compiled by nvcc (see shapes.go).")
	f.Comment("//")
	f.Comment("//go:embed model.ptx")
	f.Var().Id("ptx").String()
	f.Line()
	names := make([]jen.Code, len(g.low.kernels))
	index := map[*kernel]int{}
	for i, k := range g.low.kernels {
		names[i] = jen.Line().Lit(k.name)
		index[k] = i
	}
	f.Comment("kernelNames are the kernels of model.cu; launches refer to them by index.")
	f.Var().Id("kernelNames").Op("=").Index().String().Values(append(names, jen.Line())...)
	f.Line()

	fields := []jen.Code{jen.Id("e").Op("*").Qual(cudaPath, "Engine").Comment("context, stream, kernels, arena and weights")}
	for _, o := range g.outputs {
		fields = append(fields, jen.Id(o.arg).Add(goType(o.v.Type)).Comment("output "+o.doc+" on the host"))
	}
	f.Comment(codegen.Comment(fmt.Sprintf("Model is %s on a GPU: its kernels, its weights in device memory and the device buffers of one forward pass. Build it with Load, LoadFiles or LoadReaderAt and release it with Close. A Model is not safe for concurrent use.", m.Name)))
	f.Type().Id("Model").Struct(fields...)
	f.Line()

	// newModel: engine + host output buffers.
	inits := []jen.Code{
		jen.List(jen.Id("e"), jen.Err()).Op(":=").Qual(cudaPath, "NewEngine").Call(jen.Id("ptx"), jen.Id("kernelNames"), jen.Id("ActivationBytes"), jen.Id("WeightBytes")),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
		jen.Id("m").Op(":=").Op("&").Id("Model").Values(jen.Id("e").Op(":").Id("e")),
	}
	for _, o := range g.outputs {
		elem := jen.Float32()
		if !o.v.Type.DType.IsFloat() {
			elem = jen.Int64()
		}
		inits = append(inits, jen.Id("m").Dot(o.arg).Op("=").Make(jen.Index().Add(elem), jen.Id(o.export+"Len")))
	}
	inits = append(inits, jen.Return(jen.Id("m"), jen.Nil()))
	f.Comment("newModel opens the device, loads the kernels and allocates the planned device memory.")
	f.Func().Id("newModel").Params().Params(jen.Op("*").Id("Model"), jen.Error()).Block(inits...)
	f.Line()

	// Forward.
	var doc strings.Builder
	fmt.Fprintf(&doc, "Forward runs %s on ", m.Name)
	params := make([]jen.Code, len(g.inputs))
	for i, in := range g.inputs {
		if i > 0 {
			doc.WriteString(", ")
		}
		fmt.Fprintf(&doc, "%s (%s, %sShape)", in.arg, in.v.Type, in.export)
		params[i] = jen.Id(in.arg).Add(goType(in.v.Type))
	}
	if len(g.inputs) == 0 {
		doc.WriteString("no input")
	}
	doc.WriteString(" and returns ")
	var results, fails, rets []jen.Code
	for i, o := range g.outputs {
		if i > 0 {
			doc.WriteString(", ")
		}
		fmt.Fprintf(&doc, "%s (%s, %sShape)", o.doc, o.v.Type, o.export)
		results = append(results, goType(o.v.Type))
		fails = append(fails, jen.Nil())
		rets = append(rets, jen.Id("m").Dot(o.arg))
	}
	results = append(results, jen.Error())
	doc.WriteString(", all row-major. It uploads the inputs, launches the kernels on the model's stream and waits for them, then downloads the outputs.\n\nThe outputs are host slices of the model: they stay valid until the next call of Forward, which overwrites them (copy them to keep them). A slice of the wrong length is an error, as is an embedding index out of range.")
	fail := func(err jen.Code) jen.Code { return jen.Return(append(append([]jen.Code{}, fails...), err)...) }

	var body []jen.Code
	for _, in := range g.inputs {
		msg := fmt.Sprintf("%s: Forward: input %s has %%d elements, want %d (%s)", g.opts.Package, in.doc, numel(in.v), in.v.Type)
		body = append(body, jen.If(jen.Len(jen.Id(in.arg)).Op("!=").Id(in.export+"Len")).Block(
			fail(jen.Qual("fmt", "Errorf").Call(jen.Lit(msg), jen.Len(jen.Id(in.arg)))),
		))
		if vocab, ok := g.vocab[in.v]; ok {
			msg := fmt.Sprintf("%s: Forward: input %s: embedding index %%d at position %%d is out of range [0, %d)", g.opts.Package, in.doc, vocab)
			body = append(body, jen.For(jen.List(jen.Id("i"), jen.Id("t")).Op(":=").Range().Id(in.arg)).Block(
				jen.If(jen.Id("t").Op("<").Lit(0).Op("||").Id("t").Op(">=").Lit(vocab)).Block(
					fail(jen.Qual("fmt", "Errorf").Call(jen.Lit(msg), jen.Id("t"), jen.Id("i"))),
				),
			))
		}
	}
	var run []jen.Code
	run = append(run, jen.List(jen.Id("a"), jen.Id("w")).Op(":=").Id("m").Dot("e").Dot("Arena").Call().Op(",").Id("m").Dot("e").Dot("Weights").Call())
	for _, in := range g.inputs {
		up := "UploadF32"
		if !in.v.Type.DType.IsFloat() {
			up = "UploadI64"
		}
		run = append(run, jen.Id("s").Dot(up).Call(devicePtr(arg{at: p.at[in.v]}), jen.Id(in.arg)))
	}
	run = append(run, jen.Id("m").Dot("launch").Call(jen.Id("s"), jen.Id("a"), jen.Id("w")))
	var hostCopies []jen.Code
	for _, o := range g.outputs {
		root := o.v
		for root.Op == "reshape" {
			root = root.Args[0]
		}
		switch {
		case root.Kind == ir.KindInput:
			for _, in := range g.inputs {
				if in.v == root {
					hostCopies = append(hostCopies, jen.Copy(jen.Id("m").Dot(o.arg), jen.Id(in.arg)))
				}
			}
		case g.plan.at[o.v].space == weights && g.opts.F16Weights:
			run = append(run, jen.Id("s").Dot("DownloadF16").Call(jen.Id("m").Dot(o.arg), devicePtr(arg{at: p.at[o.v]})))
		default:
			run = append(run, jen.Id("s").Dot("DownloadF32").Call(jen.Id("m").Dot(o.arg), devicePtr(arg{at: p.at[o.v]})))
		}
	}
	body = append(body,
		jen.Err().Op(":=").Id("m").Dot("e").Dot("Run").Call(jen.Func().Params(jen.Id("s").Op("*").Qual(cudaPath, "Stream")).Block(run...)),
		jen.If(jen.Err().Op("!=").Nil()).Block(fail(jen.Qual("fmt", "Errorf").Call(jen.Lit(g.opts.Package+": Forward: %w"), jen.Err()))),
	)
	if len(hostCopies) > 0 {
		body = append(body, jen.Comment("Outputs that are inputs are copied on the host."))
		body = append(body, hostCopies...)
	}
	body = append(body, jen.Return(append(rets, jen.Nil())...))
	f.Comment(codegen.Comment(doc.String()))
	f.Func().Params(jen.Id("m").Op("*").Id("Model")).Id("Forward").Params(params...).Params(results...).Block(body...)
	f.Line()

	// launch: the ops in order.
	var launches []jen.Code
	for _, oc := range g.low.code {
		launches = append(launches, jen.Comment(oneLine(opSummary(oc.v))))
		if len(oc.launches) == 0 {
			launches = append(launches, jen.Comment("(a view: no kernel)"))
		}
		for _, l := range oc.launches {
			args := []jen.Code{jen.Lit(index[l.k]), jen.Lit(l.grid[0]), jen.Lit(l.grid[1]), jen.Lit(l.grid[2]), jen.Lit(l.k.block)}
			for _, a := range l.args {
				args = append(args, devicePtr(a))
			}
			launches = append(launches, jen.Id("s").Dot("Launch").Call(args...))
		}
	}
	f.Comment("launch queues the model's kernels: a is the arena, w the weights. Launch(kernel, grid x, y, z, block, pointers…).")
	f.Func().Params(jen.Id("m").Op("*").Id("Model")).Id("launch").Params(jen.Id("s").Op("*").Qual(cudaPath, "Stream"), jen.List(jen.Id("a"), jen.Id("w")).Qual(cudaPath, "DevicePtr")).Block(launches...)
	f.Line()
	f.Comment(codegen.Comment("Replay launches the kernels again on the inputs of the last Forward and waits for them, without copies: for timing the GPU work."))
	f.Func().Params(jen.Id("m").Op("*").Id("Model")).Id("Replay").Params().Error().Block(
		jen.Return(jen.Id("m").Dot("e").Dot("Run").Call(jen.Func().Params(jen.Id("s").Op("*").Qual(cudaPath, "Stream")).Block(
			jen.Id("m").Dot("launch").Call(jen.Id("s"), jen.Id("m").Dot("e").Dot("Arena").Call(), jen.Id("m").Dot("e").Dot("Weights").Call()),
		))),
	)
	f.Line()
	f.Comment(codegen.Comment("ReplayTime is Replay timed on the device with CUDA events, in milliseconds."))
	f.Func().Params(jen.Id("m").Op("*").Id("Model")).Id("ReplayTime").Params().Params(jen.Float64(), jen.Error()).Block(
		jen.Return(jen.Id("m").Dot("e").Dot("Elapsed").Call(jen.Func().Params(jen.Id("s").Op("*").Qual(cudaPath, "Stream")).Block(
			jen.Id("m").Dot("launch").Call(jen.Id("s"), jen.Id("m").Dot("e").Dot("Arena").Call(), jen.Id("m").Dot("e").Dot("Weights").Call()),
		))),
	)
	f.Line()
	f.Comment("DeviceName names the GPU the model runs on.")
	f.Func().Params(jen.Id("m").Op("*").Id("Model")).Id("DeviceName").Params().String().Block(jen.Return(jen.Id("m").Dot("e").Dot("DeviceName").Call()))
	f.Line()
	f.Comment("Close frees the model's device memory and releases the GPU context.")
	f.Func().Params(jen.Id("m").Op("*").Id("Model")).Id("Close").Params().Error().Block(jen.Return(jen.Id("m").Dot("e").Dot("Close").Call()))
	return render(f, true)
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
