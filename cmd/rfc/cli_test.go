package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/runtime"
)

// Every command has full help, the same from rfc help CMD, rfc CMD --help and rfc CMD -h:
// every flag, and examples whose flags the command accepts. The overview names every flag
// of every command.
func TestHelp(t *testing.T) {
	overview, _, status := rfc(t, "--help")
	if status != 0 {
		t.Fatalf("rfc --help: status %d", status)
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			words := strings.Fields(c.name)
			helpText, stderr, status := rfc(t, append([]string{"help"}, words...)...)
			if status != 0 || stderr != "" {
				t.Fatalf("rfc help %s: status %d, stderr %q", c.name, status, stderr)
			}
			for _, form := range []string{"--help", "-h"} {
				out, _, status := rfc(t, append(slices.Clone(words), form)...)
				if status != 0 || out != helpText {
					t.Errorf("rfc %s %s: status %d, and not the text of rfc help %s:\n%s", c.name, form, status, c.name, out)
				}
			}
			if !strings.HasPrefix(helpText, "usage: rfc "+c.name+" ") {
				t.Errorf("help does not start with its usage line:\n%s", helpText)
			}
			for _, name := range flagNames(c) {
				if !strings.Contains(helpText, "\n  "+name) {
					t.Errorf("help lacks flag %s:\n%s", name, helpText)
				}
				if !strings.Contains(overview, " "+name) {
					t.Errorf("rfc --help lacks %s of %s", name, c.name)
				}
			}
			if len(c.examples) == 0 || !strings.Contains(helpText, "\nexamples:\n") {
				t.Fatalf("no examples")
			}
			for _, e := range c.examples {
				args := strings.Fields(e)
				if len(args) < len(words)+1 || args[0] != "rfc" {
					t.Errorf("example %q is not an rfc command line", e)
					continue
				}
				if args[1] == "--version" {
					continue
				}
				if ex, rest := findCommand(args[1:]); ex == nil || ex.name != c.name && c.name != "run" {
					t.Errorf("example %q is not of rfc %s", e, c.name)
				} else {
					// The example's flags must parse (nothing is run).
					fs := newFlagSet(ex.name, io.Discard)
					ex.define(fs)
					if _, status, done := parseArgs(ex, fs, rest, io.Discard, io.Discard); done {
						t.Errorf("example %q: its flags do not parse (status %d)", e, status)
					}
				}
			}
		})
	}
	for _, args := range [][]string{{"help", "image"}, {"image", "--help"}} {
		out, _, status := rfc(t, args...)
		if status != 0 || !strings.Contains(out, "usage: rfc image to-tensor") || !strings.Contains(out, "usage: rfc image to-png") {
			t.Errorf("rfc %v: status %d\n%s", args, status, out)
		}
	}
	for _, args := range [][]string{{"help", "frobnicate"}, {"image"}, {"image", "to-gif"}, {"run", "--frobnicate"}} {
		_, stderr, status := rfc(t, args...)
		if status != 2 || stderr == "" {
			t.Errorf("rfc %v: status %d, stderr %q", args, status, stderr)
		}
	}
	_, stderr, _ := rfc(t, "run", "--frobnicate")
	if !strings.Contains(stderr, "rfc help run") || strings.Contains(stderr, "examples:") {
		t.Errorf("a bad flag wants one line and a pointer to the help, not the help:\n%s", stderr)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, stderr, status := rfc(t, args...)
		if status != 0 || !strings.HasPrefix(out, "rfc ") || strings.Count(out, "\n") != 1 {
			t.Errorf("rfc %v: status %d, stdout %q, stderr %q", args, status, out, stderr)
		}
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/rfc-project/rfc", Version: "v0.3.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2025-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got, want := versionString(info, true), "rfc v0.3.0 (git 0123456789ab + local changes, 2025-01-02T03:04:05Z) go1.26.0"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	info.Main.Version, info.Settings = "(devel)", nil
	if got, want := versionString(info, true), "rfc (devel) go1.26.0"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := versionString(nil, false); !strings.Contains(got, "unknown version") {
		t.Errorf("no build info: %q", got)
	}
}

// --enable runs a pass that is off by default, in rfc ir and rfc compile; dumping such a
// pass without it says what to add.
func TestEnablePass(t *testing.T) {
	small := append([]string{"--set", "batch=1"}, vitSmall...)
	out, stderr, status := rfc(t, append([]string{"ir", "../../models/vit.rfn", "--enable", "pack_qkv", "--dump", "pack_qkv"}, small...)...)
	if status != 0 || !strings.HasPrefix(out, "// after pack_qkv\n") || !strings.Contains(out, "= concat(") {
		t.Fatalf("--enable pack_qkv --dump pack_qkv: status %d\n%s%s", status, stderr, lastLines(out, 5))
	}
	out, stderr, status = rfc(t, append([]string{"ir", "../../models/vit.rfn", "--dump", "pack_qkv"}, small...)...)
	if status != 2 || out != "" || !strings.Contains(stderr, "add --enable pack_qkv") {
		t.Errorf("--dump of a pass off by default: status %d, stderr %q", status, stderr)
	}
	dir := t.TempDir()
	packed, plain := filepath.Join(dir, "packed"), filepath.Join(dir, "plain")
	for _, c := range []struct {
		dir  string
		args []string
	}{{packed, []string{"--enable", "pack_qkv"}}, {plain, nil}} {
		args := append(append([]string{"compile", "../../models/vit.rfn", "-o", c.dir, "--pkg", "vit"}, small...), c.args...)
		if _, stderr, status := rfc(t, args...); status != 0 {
			t.Fatalf("rfc %v: status %d\n%s", args, status, stderr)
		}
	}
	a, _ := os.ReadFile(filepath.Join(packed, "model.go"))
	b, _ := os.ReadFile(filepath.Join(plain, "model.go"))
	if string(a) == string(b) || !strings.Contains(string(a), "--enable pack_qkv") {
		t.Errorf("compile --enable pack_qkv made the same package, or its regenerate line lacks the flag")
	}
}

// A compile into a folder that holds another target's package removes the files the
// earlier compile wrote (the old package would no longer build: ModelName redeclared), and
// only those: the user's files stay.
func TestCompileRemovesStaleOutputs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "vit")
	base := append([]string{"compile", "../../models/vit.rfn", "--set", "batch=1", "-o", dir, "--pkg", "vit"}, vitSmall...)
	t.Setenv("PATH", "") // no nvcc: the CUDA package has no model.ptx; one is planted below
	if _, stderr, status := rfc(t, append(base, "--target", "cuda")...); status != 0 {
		t.Fatalf("cuda: status %d\n%s", status, stderr)
	}
	userFiles := map[string]string{
		"model.ptx.orig": "not rfc's",
		"notes.go":       "package vit\n\n// Code generated by rfc. DO NOT EDIT.\n", // the header is not on the first line
		"other_gen.go":   "// Code generated by stringer. DO NOT EDIT.\n\npackage vit\n",
		"kernel.cu":      "// my kernel\n",
		"README.md":      "notes\n",
	}
	for name, data := range userFiles {
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "model.ptx"), []byte("// nvcc output\n"), 0o644)
	stdout, stderr, status := rfc(t, base...)
	if status != 0 {
		t.Fatalf("go: status %d\n%s", status, stderr)
	}
	if !strings.Contains(stdout, "removed stale model.cu, model.ptx, shapes.go") {
		t.Errorf("stdout does not list the removed files:\n%s", stdout)
	}
	want := []string{"README.md", "kernel.cu", "model.go", "model.ptx.orig", "notes.go", "other_gen.go", "weights.go"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("folder holds %v, want %v", got, want)
	}
	// And back: the Go package's files are replaced or kept, the user's stay.
	if _, stderr, status := rfc(t, append(base, "--target", "cuda")...); status != 0 {
		t.Fatalf("cuda again: status %d\n%s", status, stderr)
	}
	want = []string{"README.md", "kernel.cu", "model.cu", "model.go", "model.ptx.orig", "notes.go", "other_gen.go", "shapes.go", "weights.go"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("folder holds %v, want %v", got, want)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// LoRA weights written beside a package are rfc's too: compiling without the LoRA removes them.
func TestCompileRemovesStaleAdapterWeights(t *testing.T) {
	set, _, _ := loraGolden(t)
	dir := t.TempDir()
	args := append([]string{"compile", "../../models/vit.rfn", "--set", "batch=2", "-o", dir, "--pkg", "vit"}, set...)
	if _, stderr, status := rfc(t, append(args, "--lora", goldenDir+"lora_a_kohya.safetensors")...); status != 0 {
		t.Fatalf("status %d\n%s", status, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, adapterWeightsFile)); err != nil {
		t.Fatal(err)
	}
	if _, stderr, status := rfc(t, args...); status != 0 {
		t.Fatalf("status %d\n%s", status, stderr)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"model.go", "weights.go"}) {
		t.Errorf("folder holds %v", got)
	}
}

// Every command makes the folders of its outputs, and its errors name the file the user
// gave, never a temporary file.
func TestOutputPaths(t *testing.T) {
	dir := t.TempDir()
	runArgs := func(out string) []string {
		return append(append([]string{"run", "../../models/vit.rfn"}, vitSmall...), "--weights", goldenDir+"vit_weights.safetensors", "--input", goldenDir+"vit_input.safetensors", "--output", out)
	}
	nested := filepath.Join(dir, "a", "b", "y.safetensors")
	if _, stderr, status := rfc(t, runArgs(nested)...); status != 0 {
		t.Fatalf("run --output a/b/y: status %d\n%s", status, stderr)
	}
	png := filepath.Join(dir, "c", "d", "x.png")
	if _, stderr, status := rfc(t, "image", "to-png", nested, "-o", png); status != 1 || !strings.Contains(stderr, `tensor "y" is F32 [2, 64, 4, 4]`) {
		t.Errorf("a ViT output is not an image: status %d\n%s", status, stderr)
	}
	x := filepath.Join(dir, "e", "f", "x.safetensors")
	if _, stderr, status := rfc(t, "image", "to-tensor", "../../testdata/images/astronaut.png", "-o", x); status != 0 {
		t.Fatalf("to-tensor into a new folder: status %d\n%s", status, stderr)
	}
	if _, stderr, status := rfc(t, "image", "to-png", x, "-o", png); status != 0 {
		t.Fatalf("to-png into a new folder: status %d\n%s", status, stderr)
	}
	blocker := filepath.Join(dir, "blocker")
	os.WriteFile(blocker, nil, 0o644)
	for _, out := range []string{filepath.Join(dir, "a"), filepath.Join(blocker, "y.safetensors")} {
		_, stderr, status := rfc(t, runArgs(out)...)
		if status != 1 || !strings.HasPrefix(stderr, out+": ") || strings.Contains(stderr, ".tmp") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("--output %s: status %d, want one line naming it and no temporary file:\n%s", out, status, stderr)
		}
	}
	_, stderr, status := rfc(t, "compile", "../../models/vit.rfn", "--set", "batch=1", "-o", blocker)
	if status != 1 || !strings.Contains(stderr, blocker+": is a file") {
		t.Errorf("compile -o FILE: status %d\n%s", status, stderr)
	}
	for _, e := range dirNames(t, dir) {
		if strings.Contains(e, ".tmp") {
			t.Errorf("temporary file %s left behind", e)
		}
	}
}

// The rule for files that declare nothing is the same for every command; a file of
// adapters only passes check and fmt and is refused where a model is needed.
func TestEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.rfn")
	os.WriteFile(empty, nil, 0o644)
	blank := filepath.Join(dir, "blank.rfn")
	os.WriteFile(blank, []byte("\n\n   \n"), 0o644)
	adapters := filepath.Join(dir, "adapters.rfn")
	os.WriteFile(adapters, []byte("adapter Scale(target: Linear, factor: float = 2.0) : Chain {\n    target()\n    Multiply(factor)\n}\n"), 0o644)
	in := goldenDir + "vit_input.safetensors"
	commandsOn := func(file string) map[string][]string {
		return map[string][]string{
			"check":   {"check", file},
			"fmt":     {"fmt", file},
			"tree":    {"tree", file},
			"ir":      {"ir", file},
			"run":     {"run", file, "--input", in, "--output", filepath.Join(dir, "y.safetensors")},
			"compile": {"compile", file, "-o", filepath.Join(dir, "pkg")},
		}
	}
	for _, file := range []string{empty, blank} {
		for name, args := range commandsOn(file) {
			_, stderr, status := rfc(t, args...)
			if want := file + ": no model in " + file + " (the file declares nothing)\n"; status != 1 || stderr != want {
				t.Errorf("rfc %s on %s: status %d, stderr %q, want %q", name, filepath.Base(file), status, stderr, want)
			}
		}
	}
	src, _ := os.ReadFile(adapters)
	for name, args := range commandsOn(adapters) {
		stdout, stderr, status := rfc(t, args...)
		switch name {
		case "check", "fmt":
			if status != 0 {
				t.Errorf("rfc %s on a file of adapters: status %d\n%s", name, status, stderr)
			}
			if name == "check" && stdout != "ok\n" {
				t.Errorf("rfc check: %q", stdout)
			}
		default:
			if status != 1 || !strings.Contains(stderr, "no model in "+adapters+" (it declares only adapters: Scale)") {
				t.Errorf("rfc %s on a file of adapters: status %d\n%s", name, status, stderr)
			}
		}
	}
	if now, _ := os.ReadFile(adapters); string(now) != string(src) {
		t.Errorf("fmt changed the canonical file:\n%s", now)
	}
	if entries := dirNames(t, dir); len(entries) != 3 {
		t.Errorf("failed commands wrote %v", entries)
	}
}

// rfc check lists ten errors, then how many more.
func TestCheckSummarizesErrors(t *testing.T) {
	var b strings.Builder
	for i := range 15 {
		fmt.Fprintf(&b, "model M%d(n: int = 1) {\n    input x: f32[1, 4]\n    Linear(4, nope%d)\n}\n\n", i, i)
	}
	file := filepath.Join(t.TempDir(), "many.rfn")
	os.WriteFile(file, []byte(b.String()), 0o644)
	_, stderr, status := rfc(t, "check", file)
	if status != 1 {
		t.Fatalf("status %d", status)
	}
	if !strings.HasSuffix(stderr, "\nand 5 more errors (15 in all)\n") || strings.Count(stderr, file+":") != 10 {
		t.Errorf("want ten errors and a count:\n%s", stderr)
	}
	if !strings.Contains(stderr, "nope0") || strings.Contains(stderr, "nope10") {
		t.Errorf("want the first ten errors in order:\n%s", stderr)
	}
}

// A checkpoint of another model gives a screenful: a headline, ten problems, a count.
func TestRunWrongCheckpoint(t *testing.T) {
	out := filepath.Join(t.TempDir(), "y.safetensors")
	args := append(append([]string{"run", "../../models/vit.rfn"}, vitSmall...), "--weights", "../../testdata/taef2/encoder.safetensors", "--input", goldenDir+"vit_input.safetensors", "--output", out)
	_, stderr, status := rfc(t, args...)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if status != 1 || len(lines) != 12 {
		t.Fatalf("status %d, %d lines, want 12:\n%s", status, len(lines), stderr)
	}
	if !strings.Contains(lines[0], "is a parameter of module ViT: is it the checkpoint of another model?") || !strings.HasPrefix(lines[11], "and ") {
		t.Errorf("want a headline and a count:\n%s", stderr)
	}
}

// A model with one input takes a file's only tensor whatever its name: the encoder's output
// feeds the decoder.
func TestRunSingleInputAnyName(t *testing.T) {
	dir := t.TempDir()
	x := testutil.Tensor(t, goldenDir+"vit_input.safetensors", "x")
	renamed := filepath.Join(dir, "image.safetensors")
	if err := runtime.WriteSafetensors(renamed, map[string]*runtime.Tensor{"image": x}, nil); err != nil {
		t.Fatal(err)
	}
	engines := []string{"interp"}
	if !testing.Short() {
		engines = append(engines, "compiled")
	}
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			if engine == "compiled" {
				needGo(t)
			}
			out := filepath.Join(dir, engine+".safetensors")
			args := append(append([]string{"run", "../../models/vit.rfn"}, vitSmall...), "--weights", goldenDir+"vit_weights.safetensors", "--input", renamed, "--output", out, "--engine", engine)
			if _, stderr, status := rfc(t, args...); status != 0 {
				t.Fatalf("status %d\n%s", status, stderr)
			}
			d, s := maxDiff(t, readY(t, out), readY(t, goldenDir+"vit_output.safetensors"))
			if d > 1e-4*s {
				t.Errorf("max|Δ| = %g", d)
			}
		})
	}
	// Two inputs are matched by name: a file with one tensor of another name is refused.
	extra := append([]string{"run", "../../models/vit.rfn", "--model", "ViTCross", "--set", "context_dim=48", "--set", "context_len=5"}, vitSmall...)
	_, stderr, status := rfc(t, append(extra, "--weights", goldenDir+"vitcross_weights.safetensors", "--input", renamed, "--output", filepath.Join(dir, "cross.safetensors"))...)
	if status != 1 || !strings.Contains(stderr, "missing input") {
		t.Errorf("ViTCross with one unnamed tensor: status %d\n%s", status, stderr)
	}
}

// An error on a long line (generated files hold megabytes on one) shows a window of it, with the caret in place.
func TestLongLineErrorExcerpt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "long.rfn")
	src := "model A(n: int = 2) {\n    input x: f32[1, 4]\n    let k = " + strings.Repeat("1 + ", 5000) + "zz\n    Linear(4, 4)\n}\n"
	os.WriteFile(file, []byte(src), 0o644)
	_, stderr, status := rfc(t, "check", file)
	if status != 1 || len(stderr) > 1000 || !strings.Contains(stderr, file+":3:") {
		t.Fatalf("status %d, %d bytes of errors:\n%.2000s", status, len(stderr), stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[2], "^") {
		t.Errorf("want a message, an excerpt and a caret:\n%s", stderr)
	}
}
