package codegen

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/rfc-project/rfc/ir"
)

// weightsFile writes weights.go: the table of checkpoint tensors and the loaders. Its
// messages are those of interp.LoadWeights, so both engines report a bad checkpoint alike.
func (g *generator) weightsFile() ([]byte, error) {
	f := jen.NewFile(g.pkg)
	g.header(f)
	id := jen.Id
	WeightSpecs(f, g.m.Params)
	f.Comment(Comment("WeightSpecs returns the checkpoint tensors the model reads, in the order of the index LoadOptions.Patch receives: a program matches adapter files (LoRA keys) to them before loading. The slice is a copy; the shapes and layout maps it holds must not be modified."))
	f.Func().Id("WeightSpecs").Params().Index().Qual(runtimePath, "WeightSpec").Block(
		jen.Return(jen.Append(jen.Index().Qual(runtimePath, "WeightSpec").Call(jen.Nil()), id("weightSpecs").Op("..."))),
	)
	f.Line()
	f.Comment("weightOffsets are the places of the weightSpecs in the weight slab, in float32 elements; −1 for a weight Load packs (weightPacks).")
	f.Var().Id("weightOffsets").Op("=").Index().Int().ValuesFunc(func(gr *jen.Group) {
		for _, p := range g.m.Params {
			gr.Lit(g.weightAt[p])
		}
	})
	f.Line()
	if len(g.packed) > 0 {
		f.Comment("weightPacks gives, for each weight Load packs in the kernels' panels (kernels.PackWeights, in the checkpoint's precision when it holds the values exactly), its slot in Model.packed and the matrix [out, in] it is packed as.")
		f.Var().Id("weightPacks").Op("=").Map(jen.Int()).Index(jen.Lit(3)).Int().Values(jen.DictFunc(func(d jen.Dict) {
			for i, p := range g.m.Params {
				if pw, ok := g.packed[p]; ok {
					d[jen.Lit(i)] = jen.Values(jen.Lit(pw.slot), jen.Lit(pw.out), jen.Lit(pw.in))
				}
			}
		}))
		f.Line()
	}

	LoadWrappers(f)
	f.Comment(Comment("LoadFiles reads every parameter by its checkpoint key from files (f16 and bf16 tensors are converted to float32) and returns a ready Model. runtime.LocateWeights checks the whole set before any data is read and reports every problem at once, one line each (missing, extra, misshapen, duplicated or non-float tensors); on error there is no model at all."))
	f.Func().Id("LoadFiles").Params(id("files").Op("...").Op("*").Qual(runtimePath, "SafetensorsFile")).Params(jen.Op("*").Id("Model"), jen.Error()).Block(
		jen.Return(id("LoadFilesWith").Call(jen.Qual(runtimePath, "LoadOptions").Values(), id("files").Op("..."))),
	)
	f.Line()
	f.Comment(Comment("LoadFilesWith is LoadFiles with options: opts.Patch, when set, sees each weight as float32 once it is read, before Load computes anything from the weights (a LoRA merged at load time); its index is the weight's place in WeightSpecs."))
	f.Func().Id("LoadFilesWith").Params(id("opts").Qual(runtimePath, "LoadOptions"), id("files").Op("...").Op("*").Qual(runtimePath, "SafetensorsFile")).Params(jen.Op("*").Id("Model"), jen.Error()).Block(
		jen.List(id("set"), jen.Err()).Op(":=").Qual(runtimePath, "LocateWeights").Call(id("ModelName"), id("weightSpecs"), id("files").Op("...")),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
		g.memoryCheck(),
		id("m").Op(":=").Id("newModel").Call(),
		jen.If(jen.Err().Op(":=").Id("set").Dot("Fill").Call(id("opts"), id("m").Dot("weights"), id("weightOffsets"), g.packedTables()), jen.Err().Op("!=").Nil()).Block(
			jen.Return(jen.Nil(), jen.Err()),
		),
		g.callPrepare(),
		jen.Return(id("m"), jen.Nil()),
	)
	return render(f)
}

// packedTables are Fill's arguments for the packed weights: the model's slots and the
// table of what goes in them, or none.
func (g *generator) packedTables() jen.Code {
	if len(g.packed) == 0 {
		return jen.List(jen.Nil(), jen.Nil())
	}
	return jen.List(jen.Id("m").Dot("packed"), jen.Id("weightPacks"))
}

// WeightSpecs declares weightSpecs, the checkpoint tensors a generated package reads (key,
// parameter name, shape, keys in the model's named layouts), in the module's order: the table runtime.LocateWeights checks files
// against. The CUDA target uses it too.
func WeightSpecs(f *jen.File, params []*ir.Value) {
	id := jen.Id
	f.Comment("weightSpecs lists the checkpoint tensors the model reads, in the module's order.")
	f.Var().Id("weightSpecs").Op("=").Index().Qual(runtimePath, "WeightSpec").ValuesFunc(func(gr *jen.Group) {
		for _, p := range params {
			dims := p.Type.Shape.Ints()
			lits := make([]jen.Code, len(dims))
			for j, d := range dims {
				lits[j] = jen.Lit(d)
			}
			d := jen.Dict{
				id("Key"):   jen.Lit(p.Key),
				id("Param"): jen.Lit(p.Name),
				id("Shape"): jen.Index().Int().Values(lits...),
			}
			if len(p.LayoutKeys) > 0 {
				keys := jen.Dict{}
				for _, l := range ir.Layouts(p.LayoutKeys) {
					keys[jen.Lit(l)] = jen.Lit(p.LayoutKeys[l])
				}
				d[id("Layouts")] = jen.Map(jen.String()).String().Values(keys)
			}
			gr.Line().Values(d)
		}
		gr.Line()
	})
	f.Line()
}

// LoadWrappers adds Load (paths) and LoadReaderAt (one file through an io.ReaderAt), which
// open safetensors files and hand them to the package's LoadFiles. The CUDA target uses it too.
func LoadWrappers(f *jen.File) {
	id := jen.Id
	f.Comment(Comment("Load opens the safetensors files at paths (memory-mapped where the platform allows; a folder, such as a diffusers folder, stands for the .safetensors files in it and its subfolders) and loads the weights from them as LoadFiles does. The files are closed before it returns."))
	f.Func().Id("Load").Params(id("paths").Op("...").String()).Params(jen.Op("*").Id("Model"), jen.Error()).Block(
		jen.Return(jen.Qual(runtimePath, "OpenAndLoad").Call(id("LoadFiles"), id("paths").Op("..."))),
	)
	f.Line()
	f.Comment(Comment("LoadReaderAt loads the weights from one safetensors file of size bytes read through r; name identifies it in errors."))
	f.Func().Id("LoadReaderAt").Params(id("r").Qual("io", "ReaderAt"), id("size").Int64(), id("name").String()).Params(jen.Op("*").Id("Model"), jen.Error()).Block(
		jen.Return(jen.Qual(runtimePath, "ReadAndLoad").Call(id("LoadFiles"), id("r"), id("size"), id("name"))),
	)
	f.Line()
}

// memoryCheck is LoadFiles' check that the planned memory (arena, weights, values Load
// computes) fits what the machine can give, before anything is allocated: an error stating
// the size rather than a crash of the Go runtime.
func (g *generator) memoryCheck() jen.Code {
	total := jen.Id("ActivationBytes").Op("+").Id("WeightBytes")
	if g.sym != nil {
		// The arena is checked as each set of sizes plans it (use, in model.go).
		total = jen.Id("WeightBytes")
	}
	check := jen.Null()
	if g.loadTimeBytes > 0 {
		total = total.Op("+").Lit(g.loadTimeBytes)
		check = jen.Comment(fmt.Sprintf("%d bytes of values computed by Load besides the arena and the weights", g.loadTimeBytes)).Line()
	}
	return check.If(
		jen.Err().Op(":=").Qual(runtimePath, "CheckMemory").Call(jen.Lit("model ").Op("+").Id("ModelName"), total),
		jen.Err().Op("!=").Nil(),
	).Block(jen.Return(jen.Nil(), jen.Err()))
}
