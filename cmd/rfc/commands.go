package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/parser"
	"github.com/rfc-project/rfc/passes"
)

// elaborate loads FILE and builds the chosen entry point; errors are printed with carets.
func elaborate(file string, mf modelFlags, dims map[string]int, stderr io.Writer) (*ir.Module, bool) {
	prog, err := dsl.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, dsl.Detail(err))
		return nil, false
	}
	m, err := prog.Elaborate(dsl.Options{Model: mf.model, Set: mf.set, Dims: dims})
	if err != nil {
		fmt.Fprintln(stderr, dsl.Detail(err))
		return nil, false
	}
	return m, true
}

func oneFile(name string, fs []string, stderr io.Writer) (string, bool) {
	if len(fs) != 1 {
		fmt.Fprintf(stderr, "rfc %s: want one FILE, got %d\n", name, len(fs))
		return "", false
	}
	return fs[0], true
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	var mf modelFlags
	mf.register(fs)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "rfc check: no files")
		return 2
	}
	failed := false
	for _, file := range files {
		prog, err := dsl.Load(file)
		if err != nil {
			fmt.Fprintln(stderr, dsl.Detail(err))
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
				fmt.Fprintln(stderr, dsl.Detail(err))
				failed = true
			}
		}
	}
	if failed {
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func cmdTree(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tree", stderr)
	var mf modelFlags
	mf.register(fs)
	var af adapterFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	file, ok := oneFile("tree", pos, stderr)
	if !ok {
		return 2
	}
	m, ok := elaborate(file, mf, nil, stderr)
	if !ok {
		return 1
	}
	if m, ok = af.applyFile(file, m, stderr); !ok {
		return 1
	}
	fmt.Fprint(stdout, ir.FormatTree(m))
	return 0
}

// cmdIR prints the elaborated IR; with --dump PASS it runs the passes and prints the IR
// after PASS instead, and with --disable alone the IR after the whole pipeline.
func cmdIR(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ir", stderr)
	var mf modelFlags
	mf.register(fs)
	var pf passFlags
	pf.register(fs)
	var af adapterFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	file, ok := oneFile("ir", pos, stderr)
	if !ok {
		return 2
	}
	cfg := pf.config(stdout)
	if err := cfg.Check(); err != nil {
		fmt.Fprintf(stderr, "rfc ir: %v\n", err)
		return 2
	}
	cfg.Ops = codegen.Supported // the passes as rfc compile runs them for the Go target
	m, ok := elaborate(file, mf, nil, stderr)
	if !ok {
		return 1
	}
	if m, ok = af.applyFile(file, m, stderr); !ok {
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

func cmdFmt(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("fmt", stderr)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "rfc fmt: no files")
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
			fmt.Fprintln(stderr, dsl.Detail(parseErr(err, src)))
			status = 1
			continue
		}
		if upgraded {
			fmt.Fprintf(stderr, "%s: // comments converted to # comments\n", file)
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
