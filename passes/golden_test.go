package passes

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
)

var update = flag.Bool("update", false, "rewrite the out.ir sections of testdata/PASS/*.txtar")

// A golden case is testdata/PASS/NAME.txtar with the input as `in.ir`, or as `in.rfn` with
// an optional `args` section (--model M --set k=v …), and the IR after PASS as `out.ir`.

func findPass(name string) (pass, bool) {
	for _, p := range pipeline {
		if p.name == name {
			return p, true
		}
	}
	return pass{}, false
}

// loadCase builds the case's input module.
func loadCase(t *testing.T, a archive) *ir.Module {
	t.Helper()
	if text, ok := a.get("in.ir"); ok {
		m, err := ir.Parse(text)
		if err != nil {
			t.Fatalf("in.ir: %v", err)
		}
		return m
	}
	src, ok := a.get("in.rfn")
	if !ok {
		t.Fatal("the case has neither in.ir nor in.rfn")
	}
	prog, err := dsl.LoadSource("in.rfn", []byte(src))
	if err != nil {
		t.Fatalf("in.rfn: %s", dsl.Detail(err))
	}
	opts := dsl.Options{Set: map[string]string{}}
	args, _ := a.get("args")
	fields := strings.Fields(args)
	for i := 0; i < len(fields); i++ {
		if i+1 == len(fields) {
			t.Fatalf("args: %s needs a value", fields[i])
		}
		switch fields[i] {
		case "--model":
			opts.Model = fields[i+1]
		case "--set":
			k, v, ok := strings.Cut(fields[i+1], "=")
			if !ok {
				t.Fatalf("args: --set wants k=v, got %q", fields[i+1])
			}
			opts.Set[k] = v
		default:
			t.Fatalf("args: unknown flag %q", fields[i])
		}
		i++
	}
	m, err := prog.Elaborate(opts)
	if err != nil {
		t.Fatalf("in.rfn: %s", dsl.Detail(err))
	}
	return m
}

type goldenCase struct {
	pass, name, path string
	archive          archive
}

func goldenCases(t *testing.T) []goldenCase {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	for _, dir := range dirs {
		name := filepath.Base(dir)
		if _, ok := findPass(name); !ok {
			t.Errorf("%s: no pass is called %s (passes: %s)", dir, name, strings.Join(Names(), ", "))
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.txtar"))
		for _, f := range files {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cases = append(cases, goldenCase{pass: name, name: strings.TrimSuffix(filepath.Base(f), ".txtar"), path: f, archive: parseArchive(string(text))})
		}
	}
	return cases
}

// TestGolden runs each case's pass alone, compares the IR with out.ir (rewritten under
// -update) and checks that the outputs did not change.
func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	perPass := map[string]int{}
	for i, c := range cases {
		perPass[c.pass]++
		t.Run(c.pass+"/"+c.name, func(t *testing.T) {
			p, _ := findPass(c.pass)
			m := loadCase(t, c.archive)
			before := clone(t, m)
			// A pass that is off by default runs here when enabled, as its case asks.
			if err := run([]pass{p}, m, Config{Enable: []string{p.name}, Ops: everyOp}); err != nil {
				t.Fatal(err)
			}
			got := ir.Print(m)
			if *update {
				c.archive.set("out.ir", got)
				if err := os.WriteFile(c.path, []byte(c.archive.format()), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, ok := c.archive.get("out.ir"); !ok {
				t.Errorf("no out.ir section (run go test ./passes -update to write it)")
			} else if got != want {
				t.Errorf("IR after %s differs:\n--- got\n%s--- want\n%s", c.pass, got, want)
			}
			e := checkEquivalent(t, before, m, uint64(i+1))
			t.Logf("max relative error %.3g", e)
		})
	}
	for _, p := range pipeline {
		// lora_merge needs more than IR text (it reads the scales recorded by injection):
		// its tests live with its feature (adapters/).
		if perPass[p.name] == 0 && p.name != "lora_merge" {
			t.Errorf("pass %s has no golden case under testdata/%s", p.name, p.name)
		}
	}
}

// pipelineConfigs are the configurations the whole-pipeline tests run: the default
// pipeline for a back end with every op, the same with each optional pass switched off,
// with the passes that are off by default switched on (but for lora_merge, which needs
// injected adapters), and for a back end without fused ops.
func pipelineConfigs() map[string]Config {
	configs := map[string]Config{"all passes": {Ops: everyOp}, "no fused ops": {}}
	var enable []string
	for _, p := range pipeline {
		if !p.required && !p.disabled {
			configs["without "+p.name] = Config{Disable: []string{p.name}, Ops: everyOp}
		}
		if p.disabled && p.name != "lora_merge" {
			enable = append(enable, p.name)
			configs["without "+p.name] = Config{Disable: []string{p.name}, Ops: everyOp}
		}
	}
	configs["all passes and "+strings.Join(enable, ", ")] = Config{Enable: enable, Ops: everyOp}
	return configs
}

// TestPipelineWithEachPassDisabled runs the whole pipeline over every golden input, as it
// is, with each optional pass switched off, and with the passes that are off by default
// on, and checks the outputs each time.
func TestPipelineWithEachPassDisabled(t *testing.T) {
	configs := pipelineConfigs()
	for i, c := range goldenCases(t) {
		for label, cfg := range configs {
			t.Run(c.pass+"/"+c.name+"/"+label, func(t *testing.T) {
				m := loadCase(t, c.archive)
				before := clone(t, m)
				if err := Run(m, cfg); err != nil {
					t.Fatal(err)
				}
				checkEquivalent(t, before, m, uint64(100+i))
			})
		}
	}
}
