package main

import (
	"flag"
	"io"
	"strings"

	"github.com/rfc-project/rfc/passes"
)

// passFlags drive the optimization passes: --dump PASS prints the IR after a pass (all:
// after each), --disable PASS skips an optional one. Both repeat and take comma lists.
type passFlags struct {
	dump, disable listFlags
}

func (p *passFlags) register(fs *flag.FlagSet) {
	names := strings.Join(passes.Names(), ", ")
	fs.Var(&p.dump, "dump", "print the IR after `PASS` ("+passes.DumpAll+": after every pass; repeatable, comma-separated); passes: "+names)
	fs.Var(&p.disable, "disable", "skip the optional `PASS` (repeatable, comma-separated); passes: "+names)
}

// given reports whether either flag was used.
func (p *passFlags) given() bool { return len(p.dump) > 0 || len(p.disable) > 0 }

// config is the passes configuration the flags ask for, dumping to w.
func (p *passFlags) config(w io.Writer) passes.Config {
	return passes.Config{Disable: splitNames(p.disable), Dump: splitNames(p.dump), DumpTo: w}
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
