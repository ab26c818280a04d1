package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sd15Packages = "../../pipeline/sd15/internal"

// sd15Generate is the go:generate line of each compiled model of package sd15.
const sd15Generate = "//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile "

// TestSD15PackagesAreCurrent regenerates the model packages that package sd15 links (their
// generate.go lines, run in memory with this tree's compiler) and requires every file to
// equal the committed one, so that a change to the generator or to models/sd15.rfn cannot
// leave the pipeline running stale code. go generate ./pipeline/sd15/... rewrites them.
func TestSD15PackagesAreCurrent(t *testing.T) {
	gens, err := filepath.Glob(filepath.Join(sd15Packages, "*", "*", "generate.go"))
	if err != nil || len(gens) < 8 {
		t.Fatalf("expected the full and tiny sets of four packages under %s, found %d (%v)", sd15Packages, len(gens), err)
	}
	for _, gen := range gens {
		dir, err := filepath.Abs(filepath.Dir(gen))
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(sd15Packages, filepath.Dir(gen))
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "generate.go"))
			if err != nil {
				t.Fatal(err)
			}
			var args []string
			for _, line := range strings.Split(string(data), "\n") {
				if rest, ok := strings.CutPrefix(line, sd15Generate); ok {
					args = strings.Fields(rest)
				}
			}
			if args == nil {
				t.Fatalf("generate.go has no line %q…", sd15Generate)
			}
			t.Chdir(dir) // the line's paths are relative to the package, as go generate runs it
			fs := newFlagSet("compile", os.Stderr)
			var o compileOptions
			o.register(fs)
			pos, status, done := parseArgs(compileCommand, fs, args, os.Stderr, os.Stderr)
			if done || len(pos) != 1 || o.outDir != "." {
				t.Fatalf("generate.go's line %q does not parse as rfc compile FILE -o . (status %d)", args, status)
			}
			var stderr bytes.Buffer
			plan, _ := o.plan(pos[0], &stderr)
			if plan == nil {
				t.Fatalf("rfc compile %s failed:\n%s", strings.Join(args, " "), stderr.String())
			}
			keep := map[string]bool{"generate.go": true}
			for _, f := range plan.files {
				keep[f.Name] = true
				committed, err := os.ReadFile(f.Name)
				if err != nil {
					t.Errorf("%s/%s is missing: run go generate ./pipeline/sd15/... (%v)", rel, f.Name, err)
				} else if !bytes.Equal(committed, f.Data) {
					t.Errorf("%s/%s is not what rfc compile makes now: run go generate ./pipeline/sd15/...", rel, f.Name)
				}
			}
			if stale := staleOutputs(".", keep); len(stale) > 0 {
				t.Errorf("%s holds generated files rfc compile no longer makes: %v", rel, stale)
			}
		})
	}
}
