package passes

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/ir"
)

const smallIR = `module Small
scope "" Small key "" {
  scope "Linear" Linear key "fc"
}
input %x: f32[2, 3, 4]
param @Linear.weight: f32[5, 4] key "fc.weight" in "Linear"
param @Linear.bias: f32[5] key "fc.bias" in "Linear"
%0: f32[2, 3, 5] = linear(%x, @Linear.weight, @Linear.bias) in "Linear"
%1: f32[2, 3, 5] = relu(%0) in ""
%2: f32[2, 3, 5] = relu(%0) in ""
%3: f32[2, 3, 5] = scale(%1) {scale=1.0, bias=0.0} in ""
%4: f32[2, 3, 5] = add(%3, %2) in ""
%5: f32[2, 3, 5] = tanh(%0) in ""
output %4
`

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func nop(*ir.Module, Config) error { return nil }

func TestNames(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"lora_merge", "fold", "cse", "pack_qkv", "fuse_geglu", "fuse_norm_act", "fuse_epilogue", "dce"}) {
		t.Errorf("Names() = %v", got)
	}
	for _, p := range Passes() {
		if p.Doc == "" {
			t.Errorf("pass %s has no doc", p.Name)
		}
	}
}

func TestCheckOrder(t *testing.T) {
	table := []pass{{name: "a", fn: nop}, {name: "b", fn: nop}}
	if err := checkOrder(table, []constraint{{"a", "b", "why"}}); err != nil {
		t.Errorf("good order refused: %v", err)
	}
	wantErr(t, checkOrder(table, []constraint{{"b", "a", "b feeds a"}}), "b must run before a", "b feeds a")
	wantErr(t, checkOrder(table, []constraint{{"a", "c", "why"}}), "not in the table")
	wantErr(t, checkOrder(table, []constraint{{"a", "b", ""}}), "no reason")
	wantErr(t, checkOrder(append(table, pass{name: "a", fn: nop}), nil), `"a" appears twice`)
	wantErr(t, checkOrder([]pass{{name: "all", fn: nop}}, nil), "reserves")
	// The real table passes its own constraints (init would have panicked otherwise), and
	// every constraint names real passes.
	if err := checkOrder(pipeline[:], passOrder[:]); err != nil {
		t.Error(err)
	}
}

func TestConfigErrors(t *testing.T) {
	wantErr(t, Config{Disable: []string{"nope"}}.Check(), `"nope"`, "fold, cse, pack_qkv")
	wantErr(t, Config{Dump: []string{"nope"}}.Check(), `"nope"`, "fold, cse, pack_qkv", "all")
	wantErr(t, Config{Disable: []string{"cse"}, Dump: []string{"cse"}}.Check(), "cse", "disabled")
	if err := (Config{Disable: []string{"cse", "fold"}, Dump: []string{"dce", "all"}}).Check(); err != nil {
		t.Errorf("good config refused: %v", err)
	}

	table := []pass{{name: "lower", fn: nop, required: true}, {name: "opt", fn: nop}, {name: "later", fn: nop, disabled: true}}
	wantErr(t, checkConfig(table, Config{Disable: []string{"lower"}}), "lower", "required", "optional passes: opt, later")
	wantErr(t, checkConfig(table, Config{Dump: []string{"later"}}), "later", "disabled by default")
	// Run refuses a bad config before touching the module.
	m := testutil.ParseIR(t, smallIR)
	wantErr(t, Run(m, Config{Disable: []string{"nope"}}), "nope")
	if ir.Print(m) != smallIR {
		t.Error("Run changed the module despite a bad config")
	}
}

func TestRunSkipsDisabledPasses(t *testing.T) {
	var ran []string
	record := func(name string) func(*ir.Module, Config) error {
		return func(*ir.Module, Config) error { ran = append(ran, name); return nil }
	}
	table := []pass{{name: "lower", fn: record("lower"), required: true}, {name: "opt", fn: record("opt")}, {name: "later", fn: record("later"), disabled: true}}
	if err := run(table, testutil.ParseIR(t, smallIR), Config{Disable: []string{"opt"}}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ran, []string{"lower"}) {
		t.Errorf("ran %v, want [lower]", ran)
	}
}

func TestVerifierNamesTheBrokenPass(t *testing.T) {
	breaker := func(m *ir.Module, _ Config) error {
		m.Body[1].Type = ir.F32Of(ir.StaticShape(9)) // a relu whose type is not its operand's
		return nil
	}
	table := []pass{{name: "fine", fn: nop}, {name: "breaker", fn: breaker}, {name: "never", fn: func(*ir.Module, Config) error { t.Error("ran after a broken pass"); return nil }}}
	wantErr(t, run(table, testutil.ParseIR(t, smallIR), Config{}), "pass breaker left module Small invalid", "relu")

	failing := func(*ir.Module, Config) error { return errors.New("cannot do it") }
	wantErr(t, run([]pass{{name: "failing", fn: failing}}, testutil.ParseIR(t, smallIR), Config{}), "pass failing", "cannot do it")

	bad := testutil.ParseIR(t, strings.Replace(smallIR, "%1: f32[2, 3, 5] = relu", "%1: f32[2, 3, 6] = relu", 1))
	wantErr(t, Run(bad, Config{}), "before the first pass")
	wantErr(t, Run(nil, Config{}), "nil module")
}

func TestDump(t *testing.T) {
	var buf bytes.Buffer
	m := testutil.ParseIR(t, smallIR)
	if err := Run(m, Config{Dump: []string{"fold"}, DumpTo: &buf}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "// after fold\nmodule Small\n") || strings.Count(out, "// after") != 1 {
		t.Fatalf("dump:\n%s", out)
	}
	// The dump is the IR after fold, before cse and dce: the identity scale is gone, the
	// duplicate relu and the dead tanh are still there. It parses back.
	if strings.Contains(out, "scale(") || strings.Count(out, "relu(") != 2 || !strings.Contains(out, "tanh(") {
		t.Errorf("dump is not the IR after fold:\n%s", out)
	}
	if _, err := ir.Parse(out); err != nil {
		t.Errorf("dump does not parse: %v", err)
	}

	buf.Reset()
	if err := Run(testutil.ParseIR(t, smallIR), Config{Dump: []string{DumpAll}, Disable: []string{"cse"}, DumpTo: &buf}); err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, p := range pipeline {
		if !p.disabled && p.name != "cse" {
			ran++
		}
	}
	if got := strings.Count(buf.String(), "// after "); got != ran || !strings.Contains(buf.String(), "// after dce\n") || strings.Contains(buf.String(), "// after cse") {
		t.Errorf("dump all without cse:\n%s", buf.String())
	}
}

// TestPipeline pins what the whole pipeline makes of a small module.
func TestPipeline(t *testing.T) {
	m := testutil.ParseIR(t, smallIR)
	before := clone(t, m)
	if err := Run(m, Config{}); err != nil {
		t.Fatal(err)
	}
	want := `module Small
scope "" Small key "" {
  scope "Linear" Linear key "fc"
}
input %x: f32[2, 3, 4]
param @Linear.weight: f32[5, 4] key "fc.weight" in "Linear"
param @Linear.bias: f32[5] key "fc.bias" in "Linear"
%0: f32[2, 3, 5] = linear(%x, @Linear.weight, @Linear.bias) in "Linear"
%1: f32[2, 3, 5] = relu(%0) in ""
%2: f32[2, 3, 5] = add(%1, %1) in ""
output %2
`
	if got := ir.Print(m); got != want {
		t.Errorf("got\n%s", got)
	}
	checkEquivalent(t, before, m, 7)
}
