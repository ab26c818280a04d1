package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/codegen/cuda"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

// cmdCompile writes the Go package of a model: rfc compile FILE [--model M] [--set k=v]…
// -o DIR [--pkg NAME]. Files whose content would not change are not touched, so running it
// from go generate on unchanged input leaves the tree as it was.
func cmdCompile(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("compile", stderr)
	var mf modelFlags
	mf.register(fs)
	outDir := fs.String("o", "", "directory to write the Go package into (required)")
	pkg := fs.String("pkg", "", "Go package name (default: the model's name in lower case)")
	var pf passFlags
	pf.register(fs)
	var af adapterFlags
	af.register(fs)
	target := fs.String("target", "go", "go (CPU) or cuda (CUDA kernels and Go host code behind //go:build cuda)")
	f16 := fs.Bool("f16-weights", false, "cuda target: keep weights in float16 on the device (f32 accumulation)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	file, ok := oneFile("compile", pos, stderr)
	if !ok {
		return 2
	}
	if *outDir == "" {
		fmt.Fprintln(stderr, "rfc compile: -o DIR is required")
		return 2
	}
	if *target != "go" && *target != "cuda" {
		fmt.Fprintf(stderr, "rfc compile: unknown --target %q (go, cuda)\n", *target)
		return 2
	}
	if *f16 && *target != "cuda" {
		fmt.Fprintln(stderr, "rfc compile: --f16-weights is for --target cuda")
		return 2
	}
	cfg := pf.config(stderr)
	if err := cfg.Check(); err != nil {
		fmt.Fprintln(stderr, "rfc compile:", err)
		return 2
	}
	if *target == "go" {
		// The fusion passes make the fused ops the Go code generator implements; the CUDA
		// target gets the plain ops it has kernels for.
		cfg.Ops = codegen.Supported
	}
	m, ok := elaborate(file, mf, nil, stderr)
	if !ok {
		return 1
	}
	if m, ok = af.applyFile(file, m, stderr); !ok {
		return 1
	}
	if err := passes.Run(m, cfg); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 1
	}
	if *target == "cuda" {
		opts := cuda.Options{Package: *pkg, F16Weights: *f16, Command: compileCommand(file, mf, *outDir, *pkg) + " --target cuda"}
		if *f16 {
			opts.Command += " --f16-weights"
		}
		if opts.Package == "" {
			opts.Package = strings.ToLower(m.Name)
		}
		if err := compileCUDAWith(m, *outDir, opts, stderr); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", file, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: CUDA package %s (model %s)\n", *outDir, opts.Package, m.Name)
		return 0
	}
	res, err := codegen.Generate(m, codegen.Options{
		Package: *pkg,
		Source:  recordedSource(file, *outDir),
		Command: compileCommand(file, mf, *outDir, *pkg),
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 1
	}
	written, err := codegen.Write(*outDir, res.Files)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	status := "unchanged"
	if len(written) > 0 {
		status = "wrote " + strings.Join(written, ", ")
	}
	fmt.Fprintf(stdout, "%s: package %s (model %s): %s\n", *outDir, res.Package, m.Name, status)
	fmt.Fprintf(stdout, "planned peak activation memory: %s\nweights: %s\n", formatBytes(res.ActivationBytes), formatBytes(res.WeightBytes))
	if len(af.tensors) > 0 {
		// The package loads adapter tensors under the model's keys for them: write the ones
		// read from LoRA files (PEFT or kohya names) under those keys, beside the package.
		path := filepath.Join(*outDir, "adapter_weights.safetensors")
		if err := runtime.WriteSafetensors(path, af.tensors, map[string]string{"model": m.Name}); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "adapter weights: %s (pass it to Load with the base weights)\n", path)
	}
	return 0
}

// recordedSource is the .rfn path the generated package names: as given when relative (go
// generate runs in the package directory, so it is relative to it there), relative to the
// output directory when absolute, so that the generated code does not depend on where
// the tree lies.
func recordedSource(file, outDir string) string {
	if !filepath.IsAbs(file) {
		return filepath.ToSlash(file)
	}
	if absOut, err := filepath.Abs(outDir); err == nil {
		if rel, err := filepath.Rel(absOut, file); err == nil {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.ToSlash(file)
}

// compileCommand is the command line that regenerates the package, with the --set values
// sorted so that it does not depend on their order.
func compileCommand(file string, mf modelFlags, outDir, pkg string) string {
	parts := []string{"rfc", "compile", recordedSource(file, outDir)}
	if mf.model != "" {
		parts = append(parts, "--model", mf.model)
	}
	keys := make([]string, 0, len(mf.set))
	for k := range mf.set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, "--set", k+"="+mf.set[k])
	}
	parts = append(parts, "-o", filepath.ToSlash(outDir))
	if pkg != "" {
		parts = append(parts, "--pkg", pkg)
	}
	return strings.Join(parts, " ")
}

func formatBytes(n int) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%d bytes (%.1f GiB)", n, float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d bytes (%.1f KiB)", n, float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
