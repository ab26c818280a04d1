package codegen

import (
	"github.com/dave/jennifer/jen"
)

// weightsFile writes weights.go: the table of checkpoint tensors and the loaders. Its
// messages are those of interp.LoadWeights, so both engines report a bad checkpoint alike.
func (g *generator) weightsFile() ([]byte, error) {
	f := jen.NewFile(g.pkg)
	g.header(f)
	id := jen.Id
	specs := make([]jen.Code, len(g.m.Params))
	for i, p := range g.m.Params {
		dims := p.Type.Shape.Ints()
		lits := make([]jen.Code, len(dims))
		for j, d := range dims {
			lits[j] = jen.Lit(d)
		}
		off := g.weightAt[p]
		specs[i] = jen.Line().Values(jen.Lit(p.Key), jen.Lit(p.Name), jen.Index().Int().Values(lits...), jen.Lit(off), jen.Lit(numElements(p.Type.Shape)))
	}
	f.Comment(comment("weightSpec is one checkpoint tensor the model reads: its key, the IR parameter it fills, its shape, and its place in the weight slab."))
	f.Type().Id("weightSpec").Struct(
		jen.List(id("key"), id("param")).String(),
		id("shape").Index().Int(),
		jen.List(id("offset"), id("size")).Int(),
	)
	f.Line()
	f.Comment("weightSpecs lists the parameters in the module's order.")
	f.Var().Id("weightSpecs").Op("=").Index().Id("weightSpec").ValuesFunc(func(gr *jen.Group) {
		for _, s := range specs {
			gr.Add(s)
		}
		gr.Line()
	})
	f.Line()

	f.Comment(comment("Load opens the safetensors files at paths (memory-mapped where the platform allows) and loads the weights from them as LoadFiles does. The files are closed before it returns."))
	f.Func().Id("Load").Params(id("paths").Op("...").String()).Params(jen.Op("*").Id("Model"), jen.Error()).Block(
		id("files").Op(":=").Make(jen.Index().Op("*").Qual(runtimePath, "SafetensorsFile"), jen.Lit(0), jen.Len(id("paths"))),
		jen.Defer().Func().Params().Block(
			jen.For(jen.List(id("_"), id("f")).Op(":=").Range().Id("files")).Block(
				id("f").Dot("Close").Call(),
			),
		).Call(),
		jen.For(jen.List(id("_"), id("path")).Op(":=").Range().Id("paths")).Block(
			jen.List(id("f"), jen.Err()).Op(":=").Qual(runtimePath, "OpenSafetensors").Call(id("path")),
			jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
			id("files").Op("=").Append(id("files"), id("f")),
		),
		jen.Return(id("LoadFiles").Call(id("files").Op("..."))),
	)
	f.Line()

	f.Comment(comment("LoadReaderAt loads the weights from one safetensors file of size bytes read through r; name identifies it in errors."))
	f.Func().Id("LoadReaderAt").Params(id("r").Qual("io", "ReaderAt"), id("size").Int64(), id("name").String()).Params(jen.Op("*").Id("Model"), jen.Error()).Block(
		jen.List(id("f"), jen.Err()).Op(":=").Qual(runtimePath, "ReadSafetensors").Call(id("r"), id("size"), id("name")),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
		jen.Return(id("LoadFiles").Call(id("f"))),
	)
	f.Line()

	f.Comment(comment("LoadFiles reads every parameter by its checkpoint key from files (f16 and bf16 tensors are converted to float32) and returns a ready Model. It checks the whole set before reading any data and reports every problem at once, one line each: a key the model needs that no file has, a key of a file that the model does not have, a shape that differs from the model's (both shown), a key present in two files, a tensor that is not floating point. On error it returns no model at all."))
	loc := func(s string) *jen.Statement { return id("loc").Dot(s) }
	sprintf := func(args ...jen.Code) *jen.Statement { return jen.Qual("fmt", "Sprintf").Call(args...) }
	addProblem := func(args ...jen.Code) jen.Code {
		return id("problems").Op("=").Append(id("problems"), sprintf(args...))
	}
	f.Func().Id("LoadFiles").Params(id("files").Op("...").Op("*").Qual(runtimePath, "SafetensorsFile")).Params(jen.Op("*").Id("Model"), jen.Error()).Block(
		jen.Type().Id("location").Struct(
			id("file").Op("*").Qual(runtimePath, "SafetensorsFile"),
			id("info").Qual(runtimePath, "TensorInfo"),
		),
		id("wanted").Op(":=").Make(jen.Map(jen.String()).Bool(), jen.Len(id("weightSpecs"))),
		jen.For(jen.List(id("_"), id("s")).Op(":=").Range().Id("weightSpecs")).Block(
			id("wanted").Index(id("s").Dot("key")).Op("=").True(),
		),
		jen.Var().Id("problems").Index().String(),
		id("found").Op(":=").Map(jen.String()).Id("location").Values(),
		jen.For(jen.List(id("_"), id("f")).Op(":=").Range().Id("files")).Block(
			jen.If(id("f").Op("==").Nil()).Block(
				id("problems").Op("=").Append(id("problems"), jen.Lit("a nil safetensors file was passed")),
				jen.Continue(),
			),
			jen.For(jen.List(id("_"), id("name")).Op(":=").Range().Id("f").Dot("Names").Call()).Block(
				jen.List(id("info"), id("ok")).Op(":=").Id("f").Dot("Info").Call(id("name")),
				jen.If(jen.Op("!").Id("ok")).Block(jen.Continue()),
				jen.If(jen.List(id("prev"), id("dup")).Op(":=").Id("found").Index(id("name")), id("dup")).Block(
					addProblem(jen.Lit("key %q is in both %s and %s"), id("name"), id("fileName").Call(id("prev").Dot("file")), id("fileName").Call(id("f"))),
					jen.Continue(),
				),
				id("found").Index(id("name")).Op("=").Id("location").Values(id("f"), id("info")),
				jen.If(jen.Op("!").Id("wanted").Index(id("name"))).Block(
					addProblem(jen.Lit("%s: key %q (%s %s) is not a parameter of module %s"), id("fileName").Call(id("f")), id("name"), id("info").Dot("DType"), id("formatInts").Call(id("info").Dot("Shape")), id("ModelName")),
				),
			),
		),
		jen.For(jen.List(id("_"), id("s")).Op(":=").Range().Id("weightSpecs")).Block(
			jen.List(id("loc"), id("ok")).Op(":=").Id("found").Index(id("s").Dot("key")),
			jen.Switch().Block(
				jen.Case(jen.Op("!").Id("ok")).Block(
					addProblem(jen.Lit("missing weight %q (parameter @%s, expected shape %s)"), id("s").Dot("key"), id("s").Dot("param"), id("formatInts").Call(id("s").Dot("shape"))),
				),
				jen.Case(jen.Op("!").Add(loc("info").Dot("DType").Dot("IsFloat").Call())).Block(
					addProblem(jen.Lit("%s: key %q has dtype %s; parameters need a floating-point dtype"), id("fileName").Call(loc("file")), id("s").Dot("key"), loc("info").Dot("DType")),
				),
				jen.Case(jen.Op("!").Qual("slices", "Equal").Call(loc("info").Dot("Shape"), id("s").Dot("shape"))).Block(
					addProblem(jen.Lit("%s: key %q has shape %s, the model wants %s (parameter @%s)"), id("fileName").Call(loc("file")), id("s").Dot("key"), id("formatInts").Call(loc("info").Dot("Shape")), id("formatInts").Call(id("s").Dot("shape")), id("s").Dot("param")),
				),
			),
		),
		jen.If(jen.Len(id("problems")).Op(">").Lit(0)).Block(
			jen.Return(jen.Nil(), jen.Qual("errors", "New").Call(jen.Qual("strings", "Join").Call(id("problems"), jen.Lit("\n")))),
		),
		id("m").Op(":=").Id("newModel").Call(),
		jen.For(jen.List(id("_"), id("s")).Op(":=").Range().Id("weightSpecs")).Block(
			id("dst").Op(":=").Id("m").Dot("weights").Index(id("s").Dot("offset").Op(":").Id("s").Dot("offset").Op("+").Id("s").Dot("size")),
			jen.If(jen.Err().Op(":=").Id("found").Index(id("s").Dot("key")).Dot("file").Dot("ReadF32Shape").Call(id("s").Dot("key"), id("dst"), id("s").Dot("shape").Op("...")), jen.Err().Op("!=").Nil()).Block(
				jen.Return(jen.Nil(), jen.Qual("fmt", "Errorf").Call(jen.Lit("reading weight %q: %w"), id("s").Dot("key"), jen.Err())),
			),
		),
		jen.Return(id("m"), jen.Nil()),
	)
	f.Line()
	f.Func().Id("fileName").Params(id("f").Op("*").Qual(runtimePath, "SafetensorsFile")).String().Block(
		jen.If(id("p").Op(":=").Id("f").Dot("Path").Call(), id("p").Op("!=").Lit("")).Block(jen.Return(id("p"))),
		jen.Return(jen.Lit("<safetensors>")),
	)
	f.Line()
	f.Comment("formatInts writes a shape as the IR prints it: [2, 3, 4].")
	f.Func().Id("formatInts").Params(id("s").Index().Int()).String().Block(
		id("parts").Op(":=").Make(jen.Index().String(), jen.Len(id("s"))),
		jen.For(jen.List(id("i"), id("d")).Op(":=").Range().Id("s")).Block(
			id("parts").Index(id("i")).Op("=").Qual("strconv", "Itoa").Call(id("d")),
		),
		jen.Return(jen.Lit("[").Op("+").Qual("strings", "Join").Call(id("parts"), jen.Lit(", ")).Op("+").Lit("]")),
	)
	return render(f)
}
