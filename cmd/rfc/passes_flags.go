package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/passes"
)

// passFlags drive the optimization passes: --dump PASS prints the IR after a pass (all:
// after each), --enable PASS runs one that is off by default, --disable PASS skips an
// optional one. All repeat and take comma lists.
type passFlags struct {
	dump, enable, disable listFlags
}

func (p *passFlags) register(fs *flag.FlagSet) {
	names := strings.Join(passes.Names(), ", ")
	fs.Var(&p.dump, "dump", "print the IR after `PASS` ("+passes.DumpAll+": after every pass that runs; repeatable, comma-separated); passes: "+names)
	fs.Var(&p.enable, "enable", "run `PASS`, which is off by default (repeatable, comma-separated): "+strings.Join(offByDefault(), ", "))
	fs.Var(&p.disable, "disable", "skip the optional `PASS` (repeatable, comma-separated); passes: "+names)
}

func offByDefault() []string {
	var out []string
	for _, p := range passes.Passes() {
		if p.Disabled {
			out = append(out, p.Name)
		}
	}
	return out
}

// given reports whether any of the flags was used.
func (p *passFlags) given() bool { return len(p.dump) > 0 || len(p.enable) > 0 || len(p.disable) > 0 }

// config is the passes configuration the flags ask for, dumping to w.
func (p *passFlags) config(w io.Writer) passes.Config {
	return passes.Config{Disable: splitNames(p.disable), Enable: splitNames(p.enable), Dump: splitNames(p.dump), DumpTo: w}
}

// check is cfg.Check, which says what is wrong, with what to type about it: a pass that is
// off by default is dumped only with --enable.
func (p *passFlags) check(cfg passes.Config) error {
	var hints []error
	for _, n := range cfg.Dump {
		if slices.Contains(offByDefault(), n) && !slices.Contains(cfg.Enable, n) {
			hints = append(hints, fmt.Errorf("cannot dump after pass %s: it is off by default; add --enable %s to run it", n, n))
		}
	}
	if len(hints) > 0 {
		return errors.Join(hints...)
	}
	return cfg.Check()
}

// commandLine is the flags as they were given, for the command recorded in generated code
// (--dump prints only, and is left out).
func (p *passFlags) commandLine() string {
	var b strings.Builder
	for _, n := range splitNames(p.enable) {
		b.WriteString(" --enable " + n)
	}
	for _, n := range splitNames(p.disable) {
		b.WriteString(" --disable " + n)
	}
	return b.String()
}

func splitNames(values []string) []string {
	var out []string
	for _, v := range values {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				out = append(out, n)
			}
		}
	}
	return out
}
