package main

import (
	"fmt"
	"io"
	"time"

	"github.com/rfc-project/rfc/adapters"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/runtime"
)

// cmdRun runs a model on inputs from a safetensors file and writes its outputs: a single
// output as "y", several as "y0", "y1", …. Nothing is written when anything is wrong.
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	var mf modelFlags
	mf.register(fs)
	var af adapterFlags
	af.register(fs)
	var weights listFlags
	fs.Var(&weights, "weights", "safetensors file with the weights, by checkpoint key (repeatable)")
	input := fs.String("input", "", "safetensors file with the inputs, by input name")
	output := fs.String("output", "", "safetensors file to write the outputs to")
	engine := fs.String("engine", "interp", "interp (the reference interpreter) or compiled (generated Go, built with the go command)")
	verbose := fs.Bool("v", false, "print timings to stderr")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	file, ok := oneFile("run", pos, stderr)
	if !ok {
		return 2
	}
	if *input == "" || *output == "" {
		fmt.Fprintln(stderr, "rfc run: --input and --output are required")
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
	// Sizes written as names in the input lines (batch, height, a parameter) come from the
	// actual tensors; then every shape is static.
	prog, err := dsl.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, dsl.Detail(err))
		return 1
	}
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
		fmt.Fprintln(stderr, dsl.Detail(err))
		return 1
	}
	if m, ok = af.apply(prog, m, stderr); !ok {
		return 1
	}
	inputs = af.inputs(m, inputs)
	if _, err := interp.BindDims(m.Inputs, inputs); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *input, err)
		return 1
	}
	if *engine == "compiled" {
		extra, in, cleanup, err := af.compiledFiles(m, inputs, *input)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer cleanup()
		return runCompiled(m, append(weights, extra...), inputs, in, *output, *verbose, stderr)
	}
	files, err := runtime.OpenAll(weights...)
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
