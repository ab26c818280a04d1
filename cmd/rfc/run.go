package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rfc-project/rfc/adapters"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/parser"
	"github.com/rfc-project/rfc/runtime"
)

var runCommand = &command{
	name:    "run",
	args:    "FILE --weights W… --input IN --output OUT [--model M] [--set k=v]… [--engine interp|compiled] [adapter flags]",
	summary: "run a model on tensors from a safetensors file; write its outputs to another",
	about: `Runs the entry point on the tensors of IN (a safetensors file) with the weights of the --weights
files (by checkpoint key, as published) and writes the outputs to OUT: a single output as
"y", several as "y0", "y1", …. OUT's folder is created as needed; nothing is written when
anything is wrong.

Inputs are matched by name. A model with one input takes a file that holds one tensor
whatever its name, so one run's output "y" feeds the next run's input "x". Sizes written as
names in the input lines (batch, height, a parameter) come from the tensors given.

--engine interp (the default) is the reference interpreter; --engine compiled generates the
Go package, builds it with the go command and runs it (same results, needs Go and the rfc
source tree). The package leaves the sizes of the input lines (batch, height) to run time,
and the built program is kept in rfc's cache (the user cache folder, under rfc/run), keyed
by the generated code, the rfc sources it links, the go toolchain and rfc's version: a
later run of the model with the same settings reuses it at any input size. rfc image
to-tensor and to-png turn images into input tensors and back.`,
	examples: []string{
		"rfc run models/taesd.rfn --model TAEF2Encoder --weights testdata/taef2/encoder.safetensors --input testdata/golden/taef2_encoder_input.safetensors --output latent.safetensors",
		"rfc run models/taesd.rfn --model TAEF2Decoder --weights testdata/taef2/decoder.safetensors --input latent.safetensors --output y.safetensors -v",
		"rfc run models/vit.rfn --model ViT --set embedding_dim=18 --set image_size=12 --set num_heads=3 --set num_layers=2 --set patch_size=4 --weights testdata/golden/lora_weights.safetensors --input testdata/golden/lora_input.safetensors --lora testdata/golden/lora_a_kohya.safetensors:0.8 --merge --output out/y_lora.safetensors",
	},
	define: defineRun,
}

func defineRun(fs *flag.FlagSet) runFunc {
	var mf modelFlags
	mf.register(fs)
	var af adapterFlags
	af.register(fs)
	var weights listFlags
	fs.Var(&weights, "weights", "safetensors `FILE` with the weights, by checkpoint key (repeatable)")
	input := fs.String("input", "", "safetensors `FILE` with the inputs, by input name")
	output := fs.String("output", "", "safetensors `FILE` to write the outputs to (its folder is created)")
	engine := fs.String("engine", "interp", "`ENGINE`: interp (the reference interpreter) or compiled (generated Go, built with the go command)")
	verbose := fs.Bool("v", false, "print timings to stderr")
	return func(pos []string, stdout, stderr io.Writer) int {
		file, ok := oneFile("run", pos, stderr)
		if !ok {
			return 2
		}
		if *input == "" || *output == "" {
			fmt.Fprintln(stderr, "rfc run: --input and --output are required (rfc help run)")
			return 2
		}
		if *engine != "interp" && *engine != "compiled" {
			fmt.Fprintf(stderr, "rfc run: unknown engine %q (interp, compiled)\n", *engine)
			return 2
		}
		inFile, err := runtime.OpenSafetensors(*input)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer inFile.Close()
		inputs := map[string]*runtime.Tensor{}
		for _, name := range inFile.Names() {
			t, err := inFile.Tensor(name)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			inputs[name] = t
		}
		prog, err := loadProgram(file, true)
		if err != nil {
			printErrors(stderr, err)
			return 1
		}
		renamed := false
		inputs, renamed = matchSingleInput(file, mf.model, prog, inputs)
		// Sizes written as names in the input lines (batch, height, a parameter) come from
		// the actual tensors; then every shape is static.
		shapes := map[string][]int{}
		for name, t := range inputs {
			shapes[name] = t.Shape
		}
		opts, err := prog.BindInputs(dsl.Options{Model: mf.model, Set: mf.set}, shapes)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *input, err)
			return 1
		}
		m, err := prog.Elaborate(opts)
		if err != nil {
			printErrors(stderr, err)
			return 1
		}
		af.shapes = shapes
		if m, ok = af.apply(prog, m, stderr); !ok {
			return 1
		}
		inputs = af.inputs(m, inputs)
		dims, err := interp.BindDims(m.Inputs, inputs)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *input, err)
			return 1
		}
		// The sizes of inputs that adapters add (an IP-Adapter's image tokens) are known
		// only now: elaborate again with them, so that every shape is static.
		if late := lateDims(m, dims, opts.Dims); len(late) > 0 {
			for k, n := range late {
				opts.Dims[k] = n
			}
			if m, err = prog.Elaborate(opts); err != nil {
				printErrors(stderr, err)
				return 1
			}
			if m, ok = af.apply(prog, m, io.Discard); !ok {
				return 1
			}
		}
		if *engine == "compiled" {
			// The package is generated with the sizes of the input lines chosen at run
			// time, so that one build serves every input size; m, bound to these
			// inputs, checks them first.
			code := m
			if sized, err := prog.Elaborate(dsl.Options{Model: opts.Model, Set: opts.Set}); err == nil {
				// The adapters' tensors (LoRA files) are the same as for m.
				tensors := af.tensors
				if sized, ok = af.apply(prog, sized, io.Discard); ok {
					code = sized
				} else {
					af.tensors = tensors
				}
			}
			extra, in, cleanup, err := af.compiledFiles(m, inputs, *input, renamed)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			defer cleanup()
			return runCompiled(m, code, append(weights, extra...), inputs, in, *output, *verbose, stderr)
		}
		files, err := runtime.OpenWeights(weights...)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer runtime.CloseAll(files)
		start := time.Now()
		w, err := adapters.Weights(m, af.tensors, files...)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		loaded := time.Now()
		outs, err := interp.Run(m, w, inputs)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if *verbose {
			fmt.Fprintf(stderr, "load %v, run %v\n", loaded.Sub(start).Round(time.Millisecond), time.Since(loaded).Round(time.Millisecond))
		}
		named := map[string]*runtime.Tensor{}
		if len(outs) == 1 {
			named["y"] = outs[0]
		} else {
			for i, o := range outs {
				named[fmt.Sprintf("y%d", i)] = o
			}
		}
		if err := runtime.WriteSafetensors(*output, named, map[string]string{"model": m.Name, "source": m.Source}); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
}

// matchSingleInput gives the only tensor of an input file the name of the entry point's
// only input (declared at the top of its body in FILE), so that outputs ("y") feed inputs
// ("x"). Any other case is left to matching by name.
func matchSingleInput(file, model string, prog *dsl.Program, inputs map[string]*runtime.Tensor) (map[string]*runtime.Tensor, bool) {
	if len(inputs) != 1 {
		return inputs, false
	}
	if model == "" {
		model = prog.DefaultModel()
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return inputs, false
	}
	f, err := parser.ParseFile(file, src)
	if err != nil {
		return inputs, false
	}
	var declared []string
	for _, d := range f.Decls {
		if d.Name != model || d.IsAdapter {
			continue
		}
		for _, s := range d.Body.Stmts {
			if in, ok := s.(*parser.InputStmt); ok {
				declared = append(declared, in.Name)
			}
		}
	}
	if len(declared) != 1 {
		return inputs, false
	}
	for name, t := range inputs {
		if name == declared[0] {
			return inputs, false
		}
		return map[string]*runtime.Tensor{declared[0]: t}, true
	}
	return inputs, false
}

// lateDims are the sizes named in m's input shapes that elaboration left symbolic (the
// inputs of adapters, injected after it), with their values in dims.
func lateDims(m *ir.Module, dims, known map[string]int) map[string]int {
	out := map[string]int{}
	for _, in := range m.Inputs {
		for _, d := range in.Type.Shape {
			if n, ok := dims[d.Sym]; ok && !d.Static() && ir.IsIdent(d.Sym) {
				if _, had := known[d.Sym]; !had {
					out[d.Sym] = n
				}
			}
		}
	}
	return out
}
