// Package passes rewrites an ir.Module between elaboration and code generation. The passes
// run in the fixed order of a table, as the Go compiler's SSA backend does
// (cmd/compile/internal/ssa/compile.go): each entry says whether it may be switched off,
// ordering constraints between entries are written down with their reasons and checked at
// init, the verifier runs after every pass (so the pass that breaks the IR is named), and
// the IR can be printed after any pass.
//
// Every pass keeps the module's meaning: same inputs, same outputs, numerically equal
// results under the interpreter. A pass never looks at weight or input values.
package passes

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/ir"
)

// pass is one entry of the pipeline.
type pass struct {
	name     string
	fn       func(*ir.Module, Config) error
	required bool // the back ends rely on it: Config.Disable refuses it
	disabled bool // off unless a later change turns it on
	doc      string
}

// pipeline lists the passes in the order they run.
//
// Extension point: later passes take their place in this table, each in a file of its own,
// with the constraints their order needs added to passOrder. Planned: memory planning
// (buffer offsets for every value, now done by the code generators), last, as it must see
// the final graph.
var pipeline = [...]pass{
	{name: "lora_merge", fn: plain(LoraMerge), disabled: true, doc: "fold LoRA branches into their target's weight at load time (W + scale·alpha/rank·up·down); the scales become fixed; off unless enabled (rfc --merge)"},
	{name: "fold", fn: plain(fold), doc: "fold shape and scale chains: reshape∘reshape, permute∘permute, scale∘scale; drop identity reshape, permute, slice, scale, concat"},
	{name: "cse", fn: plain(cse), doc: "merge ops with the same op, operands, attributes and type; the first keeps its scope"},
	{name: "pack_qkv", fn: packQKV, disabled: true, doc: "one linear over concatenated weights (built at load time) for linears that read the same tokens into one attention, then slices; off unless enabled: on the CPU it does not pay"},
	{name: "fuse_geglu", fn: fuseGEGLU, doc: "linear → glu as one linear_glu (GEGLU): the linear's result never takes arena memory"},
	{name: "fuse_norm_act", fn: fuseNormAct, doc: "group_norm/layer_norm → activation as one group_norm_act/layer_norm_act"},
	{name: "fuse_epilogue", fn: fuseEpilogue, doc: "conv2d/linear → scale → add (residual) → activation as one conv2d_fused/linear_fused that applies them per tile"},
	{name: "dce", fn: plain(dce), doc: "remove ops no output depends on, and parameters nothing reads"},
}

// plain adapts a pass that needs no configuration.
func plain(fn func(*ir.Module) error) func(*ir.Module, Config) error {
	return func(m *ir.Module, _ Config) error { return fn(m) }
}

// constraint says that pass before must run before pass after.
type constraint struct {
	before, after string
	reason        string
}

var passOrder = [...]constraint{
	{"lora_merge", "fold", "the merge leaves the adapter's side branch without readers and adds weight-only chains, which the later passes clean up"},
	{"fold", "cse", "fold rewrites chains into single canonical ops, so equal computations written differently become equal ops that cse can merge"},
	{"fold", "dce", "fold redirects uses past the ops of a chain and leaves them without readers"},
	{"cse", "dce", "dce sweeps up after every pass that redirects uses, and cse redirects the readers of each duplicate it merges"},
	{"fold", "pack_qkv", "fold turns identity reshapes and permutes between the tokens and the projections into the tokens themselves, so the projections read one value"},
	{"cse", "pack_qkv", "cse makes the projections' shared input one value (Parallel{Identity, Identity, Identity} elaborates to three reads of it, but equal computations written twice only become one there)"},
	{"fold", "fuse_epilogue", "fold merges scale∘scale into one scale, which is what the epilogue can take (one affine step)"},
	{"cse", "fuse_epilogue", "fusion needs an op's result to have one reader; cse first merges duplicate readers (two equal relus of one conv, say) into one"},
	{"cse", "fuse_norm_act", "as for the epilogue: one reader per norm once duplicates are merged"},
	{"cse", "fuse_geglu", "as for the epilogue: one reader per linear once duplicates are merged"},
	{"fuse_epilogue", "dce", "fusion counts only the readers some output depends on (fold and cse leave others for dce) and removes only those that read what it removed; dce sweeps the rest"},
	{"fuse_norm_act", "dce", "as for the epilogue fusion"},
	{"fuse_geglu", "dce", "as for the epilogue fusion"},
	{"pack_qkv", "dce", "as for the epilogue fusion: packing counts only live readers and leaves the dead ones to dce"},
}

func init() {
	if err := checkOrder(pipeline[:], passOrder[:]); err != nil {
		panic("passes: " + err.Error())
	}
}

// checkOrder verifies that every constraint names passes of the table, in the right order,
// and that pass names are unique.
func checkOrder(table []pass, order []constraint) error {
	index := map[string]int{}
	var errs []error
	for i, p := range table {
		if p.name == "" || p.fn == nil {
			errs = append(errs, fmt.Errorf("pass %d has no name or no function", i))
		}
		if p.name == "all" {
			errs = append(errs, fmt.Errorf("pass %d is named %q, which Dump reserves", i, p.name))
		}
		if _, dup := index[p.name]; dup {
			errs = append(errs, fmt.Errorf("pass %q appears twice", p.name))
		}
		index[p.name] = i
	}
	for _, c := range order {
		b, okB := index[c.before]
		a, okA := index[c.after]
		switch {
		case !okB || !okA:
			errs = append(errs, fmt.Errorf("ordering constraint %s < %s names a pass that is not in the table", c.before, c.after))
		case b >= a:
			errs = append(errs, fmt.Errorf("pass %s must run before %s: %s", c.before, c.after, c.reason))
		case c.reason == "":
			errs = append(errs, fmt.Errorf("ordering constraint %s < %s gives no reason", c.before, c.after))
		}
	}
	return errors.Join(errs...)
}

// DumpAll in Config.Dump prints the IR after every pass that runs.
const DumpAll = "all"

// Config selects what Run does beyond the default pipeline.
type Config struct {
	// Disable names optional passes to skip.
	Disable []string
	// Enable names passes that are off by default to run.
	Enable []string
	// Dump names passes after which the IR is printed; DumpAll prints it after each.
	Dump []string
	// DumpTo receives the dumps (os.Stderr when nil). Each starts with a line
	// `// after PASS`, which ir.Parse skips, so a dump parses back as a module.
	DumpTo io.Writer
	// Ops reports whether the back end that will run the module implements an op. Passes
	// that rewrite into fused ops (ir.OpInfo.Fused: made by passes only, and not every
	// back end has them) apply such a rewrite only when Ops accepts the fused op. nil
	// accepts none of them, so a caller that does not name its back end gets a module every
	// back end runs. rfc compile gives the Go code generator's codegen.Supported.
	Ops func(op string) bool
}

// supports reports whether a pass may introduce op.
func (c Config) supports(op string) bool {
	if info, ok := ir.Lookup(op); !ok || !info.Fused {
		return ok
	}
	return c.Ops != nil && c.Ops(op)
}

// Info describes one pass, for help texts.
type Info struct {
	Name     string
	Required bool
	Disabled bool // off by default
	Doc      string
}

// Names lists the passes in the order they run.
func Names() []string { return names(pipeline[:]) }

func names(table []pass) []string {
	out := make([]string, len(table))
	for i, p := range table {
		out[i] = p.name
	}
	return out
}

// Passes describes the passes in the order they run.
func Passes() []Info {
	out := make([]Info, len(pipeline))
	for i, p := range pipeline {
		out[i] = Info{Name: p.name, Required: p.required, Disabled: p.disabled, Doc: p.doc}
	}
	return out
}

// Check validates a configuration without running anything: every name must be a pass,
// a required pass cannot be disabled, and a disabled pass cannot be dumped. Callers that
// take the names from a command line can report a usage error before any work.
func (c Config) Check() error { return checkConfig(pipeline[:], c) }

func checkConfig(table []pass, c Config) error {
	byName := map[string]*pass{}
	for i := range table {
		byName[table[i].name] = &table[i]
	}
	valid := strings.Join(names(table), ", ")
	var errs []error
	for _, n := range c.Disable {
		switch p := byName[n]; {
		case p == nil:
			errs = append(errs, fmt.Errorf("cannot disable %q: no such pass (passes: %s)", n, valid))
		case p.required:
			errs = append(errs, fmt.Errorf("cannot disable pass %s: it is required (optional passes: %s)", n, strings.Join(optional(table), ", ")))
		}
	}
	for _, n := range c.Enable {
		switch p := byName[n]; {
		case p == nil:
			errs = append(errs, fmt.Errorf("cannot enable %q: no such pass (passes: %s)", n, valid))
		case slices.Contains(c.Disable, n):
			errs = append(errs, fmt.Errorf("pass %s is both enabled and disabled", n))
		}
	}
	for _, n := range c.Dump {
		switch p := byName[n]; {
		case n == DumpAll:
		case p == nil:
			errs = append(errs, fmt.Errorf("cannot dump after %q: no such pass (passes: %s, or %s)", n, valid, DumpAll))
		case p.disabled && !slices.Contains(c.Enable, n):
			errs = append(errs, fmt.Errorf("cannot dump after pass %s: it is disabled by default", n))
		case slices.Contains(c.Disable, n):
			errs = append(errs, fmt.Errorf("cannot dump after pass %s: it is disabled", n))
		}
	}
	return errors.Join(errs...)
}

func optional(table []pass) []string {
	var out []string
	for _, p := range table {
		if !p.required {
			out = append(out, p.name)
		}
	}
	return out
}

// Run rewrites m in place with every enabled pass, in order. It verifies m first, then
// after each pass; a pass that leaves invalid IR is named in the error.
func Run(m *ir.Module, c Config) error { return run(pipeline[:], m, c) }

func run(table []pass, m *ir.Module, c Config) error {
	if err := checkConfig(table, c); err != nil {
		return err
	}
	if m == nil {
		return errors.New("passes: nil module")
	}
	if err := ir.Verify(m); err != nil {
		return fmt.Errorf("passes: module %s does not verify before the first pass:\n%w", m.Name, err)
	}
	out := c.DumpTo
	if out == nil {
		out = os.Stderr
	}
	dumpAll := slices.Contains(c.Dump, DumpAll)
	for _, p := range table {
		if (p.disabled && !slices.Contains(c.Enable, p.name)) || slices.Contains(c.Disable, p.name) {
			continue
		}
		if err := p.fn(m, c); err != nil {
			return fmt.Errorf("pass %s on module %s: %w", p.name, m.Name, err)
		}
		if err := ir.Verify(m); err != nil {
			return fmt.Errorf("pass %s left module %s invalid:\n%w", p.name, m.Name, err)
		}
		if dumpAll || slices.Contains(c.Dump, p.name) {
			if _, err := fmt.Fprintf(out, "// after %s\n%s", p.name, ir.Print(m)); err != nil {
				return fmt.Errorf("dumping after pass %s: %w", p.name, err)
			}
		}
	}
	return nil
}
