package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/parser"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

// maxListedErrors is how many errors a command prints before it counts the rest.
const maxListedErrors = runtime.MaxListedProblems

// errorPrinter prints a command's errors, the first maxListedErrors of them in full, and
// the count of the rest at the end (flush).
type errorPrinter struct {
	w      io.Writer
	listed int
	more   int
}

// add prints err (a dsl error list counts as its errors).
func (p *errorPrinter) add(err error) {
	var details []string
	if list, ok := err.(dsl.ErrorList); ok {
		for _, e := range list {
			details = append(details, e.Detail())
		}
	} else {
		details = []string{dsl.Detail(err)}
	}
	for _, d := range details {
		if p.listed < maxListedErrors {
			fmt.Fprintln(p.w, d)
			p.listed++
		} else {
			p.more++
		}
	}
}

func (p *errorPrinter) flush() {
	if p.more > 0 {
		fmt.Fprintf(p.w, "and %d more errors (%d in all)\n", p.more, p.listed+p.more)
	}
}

// printErrors prints err as errorPrinter does.
func printErrors(w io.Writer, err error) {
	p := &errorPrinter{w: w}
	p.add(err)
	p.flush()
}

// loadProgram loads FILE with its imports. The rule for files that declare nothing (empty,
// or only comments and imports) is the same for every command: it is an error, "no model in
// FILE". A file of adapters only is fine for check and fmt; the commands that need an entry
// point (needModel: tree, ir, run, compile) refuse it with the same message.
func loadProgram(file string, needModel bool) (*dsl.Program, error) {
	prog, err := dsl.Load(file)
	if err != nil {
		return nil, err
	}
	if len(prog.ModelNames()) > 0 {
		return prog, nil
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	f, err := parser.ParseFile(file, src)
	if err != nil {
		return nil, parseErr(err, src)
	}
	var adapters []string
	for _, d := range f.Decls {
		if d.IsAdapter {
			adapters = append(adapters, d.Name)
		}
	}
	switch {
	case len(f.Imports) > 0 && len(adapters) > 0:
		// Adapters for the models of an imported file: --model names the entry point.
		return prog, nil
	case len(adapters) == 0:
		return nil, noModel(file, "the file declares nothing")
	case needModel:
		return nil, noModel(file, "it declares only adapters: "+strings.Join(adapters, ", "))
	}
	return prog, nil
}

func noModel(file, why string) error {
	return fmt.Errorf("%s: no model in %s (%s)", file, file, why)
}

// elaborate loads FILE, builds the chosen entry point and injects the adapters of af;
// errors are printed with carets.
func elaborate(file string, mf modelFlags, af *adapterFlags, stderr io.Writer) (*ir.Module, bool) {
	prog, err := loadProgram(file, true)
	if err != nil {
		printErrors(stderr, err)
		return nil, false
	}
	m, err := prog.Elaborate(dsl.Options{Model: mf.model, Set: mf.set})
	if err != nil {
		printErrors(stderr, err)
		return nil, false
	}
	return af.apply(prog, m, stderr)
}

func oneFile(name string, fs []string, stderr io.Writer) (string, bool) {
	if len(fs) != 1 {
		fmt.Fprintf(stderr, "rfc %s: want one FILE, got %d (rfc help %s)\n", name, len(fs), name)
		return "", false
	}
	return fs[0], true
}

const fileRule = `A file that declares nothing (empty, or only comments and imports) is an error for every
command: "FILE: no model in FILE". A file of adapters only passes check and fmt; tree, ir,
run and compile need a model.`

var checkCommand = &command{
	name:    "check",
	args:    "FILE… [--model M] [--set k=v]…",
	summary: "check files: print ok, or every error with file:line:col and a caret",
	about: `Parses each FILE with its imports and elaborates every model that declares inputs, with its
default parameters (or only --model M, with --set values). Prints ok, or the errors: the
first ten in full, then how many more.

` + fileRule,
	examples: []string{
		"rfc check models/vit.rfn models/taesd.rfn",
		"rfc check models/vit.rfn --model ViT --set num_layers=2",
	},
	define: func(fs *flag.FlagSet) runFunc {
		var mf modelFlags
		mf.register(fs)
		return func(files []string, stdout, stderr io.Writer) int {
			if len(files) == 0 {
				fmt.Fprintln(stderr, "rfc check: no files (rfc help check)")
				return 2
			}
			errs := &errorPrinter{w: stderr}
			failed := false
			for _, file := range files {
				prog, err := loadProgram(file, false)
				if err != nil {
					errs.add(err)
					failed = true
					continue
				}
				// Every model that declares inputs can be an entry point: check each with its
				// defaults, or only the one chosen.
				names := prog.ModelNames()
				if mf.model != "" || len(mf.set) > 0 {
					names = []string{mf.model}
				}
				for _, name := range names {
					if name != "" && mf.model == "" && !prog.HasInputs(name) {
						continue
					}
					if _, err := prog.Elaborate(dsl.Options{Model: name, Set: mf.set}); err != nil {
						errs.add(err)
						failed = true
					}
				}
			}
			errs.flush()
			if failed {
				return 1
			}
			fmt.Fprintln(stdout, "ok")
			return 0
		}
	},
}

var treeCommand = &command{
	name:    "tree",
	args:    "FILE [--model M] [--set k=v]… [adapter flags]",
	summary: "print the layer tree with shapes and parameter counts",
	about: `Prints the layer tree of the entry point (the last model of FILE, or --model M): each
layer's Refiners path, class, output shapes and parameter count, ending with "total
parameters: N". Adapter flags (--lora, --adapter, --select, --merge) show the tree with the
adapters injected.`,
	examples: []string{
		"rfc tree models/vit.rfn --set num_layers=2",
		"rfc tree models/taesd.rfn --model TAEF2Decoder",
		"rfc tree models/vit.rfn --model ViT --set embedding_dim=18 --set image_size=12 --set num_heads=3 --set num_layers=2 --set patch_size=4 --lora testdata/golden/lora_a_kohya.safetensors",
	},
	define: func(fs *flag.FlagSet) runFunc {
		var mf modelFlags
		mf.register(fs)
		var af adapterFlags
		af.register(fs)
		return func(pos []string, stdout, stderr io.Writer) int {
			file, ok := oneFile("tree", pos, stderr)
			if !ok {
				return 2
			}
			m, ok := elaborate(file, mf, &af, stderr)
			if !ok {
				return 1
			}
			fmt.Fprint(stdout, ir.FormatTree(m))
			return 0
		}
	},
}

var irCommand = &command{
	name:    "ir",
	args:    "FILE [--model M] [--set k=v]… [--dump PASS]… [--enable PASS]… [--disable PASS]… [adapter flags]",
	summary: "print the IR text (after the passes with --dump, --enable or --disable)",
	about: `Prints the SSA IR of the entry point as elaborated. With --dump PASS it runs the passes as
rfc compile does for the Go target and prints the IR after PASS (--dump all: after each);
with --enable or --disable alone it prints the IR after the whole pipeline. Passes that are
off by default (pack_qkv, lora_merge) run only with --enable PASS (--merge enables
lora_merge).`,
	examples: []string{
		"rfc ir models/vit.rfn --set num_layers=1",
		"rfc ir models/vit.rfn --set num_layers=1 --set batch=1 --dump fold",
		"rfc ir models/vit.rfn --set num_layers=1 --set batch=1 --enable pack_qkv --dump pack_qkv",
		"rfc ir models/vit.rfn --set num_layers=1 --set batch=1 --disable cse",
	},
	define: func(fs *flag.FlagSet) runFunc {
		var mf modelFlags
		mf.register(fs)
		var pf passFlags
		pf.register(fs)
		var af adapterFlags
		af.register(fs)
		return func(pos []string, stdout, stderr io.Writer) int {
			file, ok := oneFile("ir", pos, stderr)
			if !ok {
				return 2
			}
			cfg := pf.config(stdout)
			if err := pf.check(cfg); err != nil {
				fmt.Fprintf(stderr, "rfc ir: %v\n", err)
				return 2
			}
			cfg.Ops = codegen.Supported // the passes as rfc compile runs them for the Go target
			m, ok := elaborate(file, mf, &af, stderr)
			if !ok {
				return 1
			}
			if pf.given() {
				if err := passes.Run(m, cfg); err != nil {
					fmt.Fprintf(stderr, "%s: %v\n", file, err)
					return 1
				}
				if len(cfg.Dump) > 0 {
					return 0
				}
			}
			fmt.Fprint(stdout, ir.Print(m))
			return 0
		}
	},
}

var fmtCommand = &command{
	name:    "fmt",
	args:    "FILE…",
	summary: "rewrite files in canonical form (idempotent)",
	about: `Rewrites each FILE in the canonical layout of the language (indentation, spacing, line
breaks); a file already canonical is not touched. Files with syntax errors are reported and
left as they are. A file written with the old // comments (before # comments) is converted:
its // comments become # comments.

` + fileRule,
	examples: []string{"rfc fmt models/*.rfn"},
	define: func(fs *flag.FlagSet) runFunc {
		return func(files []string, stdout, stderr io.Writer) int {
			if len(files) == 0 {
				fmt.Fprintln(stderr, "rfc fmt: no files (rfc help fmt)")
				return 2
			}
			status := 0
			for _, file := range files {
				src, err := os.ReadFile(file)
				if err != nil {
					fmt.Fprintln(stderr, err)
					status = 1
					continue
				}
				f, upgraded, err := parser.ParseUpgrading(file, src)
				if err != nil {
					printErrors(stderr, parseErr(err, src))
					status = 1
					continue
				}
				if upgraded {
					fmt.Fprintf(stderr, "%s: // comments converted to # comments\n", file)
				}
				if len(f.Decls) == 0 {
					fmt.Fprintln(stderr, noModel(file, "the file declares nothing"))
					status = 1
					continue
				}
				out := parser.Format(f)
				if bytes.Equal(out, src) {
					continue
				}
				info, err := os.Stat(file)
				if err == nil {
					err = os.WriteFile(file, out, info.Mode().Perm())
				}
				if err != nil {
					fmt.Fprintln(stderr, err)
					status = 1
				}
			}
			return status
		}
	},
}

// parseErr gives parser errors the caret rendering of dsl errors.
func parseErr(err error, src []byte) error {
	var out dsl.ErrorList
	add := func(e *parser.Error) {
		out = append(out, &dsl.Error{Pos: e.Pos, Msg: e.Msg, Line: parser.Caret(src, e.Pos)})
	}
	switch e := err.(type) {
	case *parser.Error:
		add(e)
	default:
		return err
	}
	return out
}
