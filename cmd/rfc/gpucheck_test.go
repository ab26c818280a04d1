package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const gpucheckPackages = "../rfc-gpucheck/internal"

// gpucheckGenerate is the go:generate line of each package of the GPU check.
const gpucheckGenerate = "//go:generate go run ../../../rfc compile "

// TestGPUCheckPackagesAreCurrent regenerates the CUDA packages that cmd/rfc-gpucheck
// commits (their generate.go lines, run in memory with this tree's compiler) and compares:
// every file rfc writes must equal the committed one, and the committed model.ptx, which
// only nvcc makes, must be listed in ptx.sum as compiled from the committed model.cu
// (scripts/gpucheck-generate.sh rewrites both on a machine with nvcc). So a change to the
// code generators or the models cannot leave the GPU check running stale code.
func TestGPUCheckPackagesAreCurrent(t *testing.T) {
	sums := readPTXSums(t, filepath.Join(gpucheckPackages, "ptx.sum"))
	dirs, err := filepath.Glob(filepath.Join(gpucheckPackages, "*", "generate.go"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no packages under %s (%v)", gpucheckPackages, err)
	}
	abs, err := filepath.Abs(gpucheckPackages)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, gen := range dirs {
		names = append(names, filepath.Base(filepath.Dir(gen)))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(abs, name)
			args := generateArgs(t, filepath.Join(dir, "generate.go"))
			t.Chdir(dir) // the line's paths are relative to the package, as go generate runs it
			fs := newFlagSet("compile", os.Stderr)
			var o compileOptions
			o.register(fs)
			pos, status, done := parseArgs(compileCommand, fs, args, os.Stderr, os.Stderr)
			if done || len(pos) != 1 || o.outDir != "." {
				t.Fatalf("generate.go's line %q does not parse as rfc compile FILE -o . (status %d)", args, status)
			}
			o.noNVCC = true
			var stderr bytes.Buffer
			plan, _ := o.plan(pos[0], &stderr)
			if plan == nil {
				t.Fatalf("rfc compile %s failed:\n%s", strings.Join(args, " "), stderr.String())
			}
			keep := map[string]bool{"model.ptx": true}
			for _, f := range plan.files {
				keep[f.Name] = true
				committed, err := os.ReadFile(f.Name)
				if err != nil {
					t.Errorf("%s/%s is missing: regenerate with scripts/gpucheck-generate.sh (%v)", name, f.Name, err)
				} else if !bytes.Equal(committed, f.Data) {
					t.Errorf("%s/%s is not what rfc compile makes now: regenerate with scripts/gpucheck-generate.sh", name, f.Name)
				}
			}
			if stale := staleOutputs(".", keep); len(stale) > 0 {
				t.Errorf("%s holds generated files rfc compile no longer makes: %v", name, stale)
			}
			cu, err1 := os.ReadFile("model.cu")
			ptx, err2 := os.ReadFile("model.ptx")
			if err1 != nil || err2 != nil {
				t.Fatalf("model.cu or model.ptx missing: %v %v", err1, err2)
			}
			want, listed := sums[name]
			got := ptxSum{cu: sha256Hex(cu), ptx: sha256Hex(ptx)}
			switch {
			case !listed:
				t.Errorf("ptx.sum has no line for %s", name)
			case got.cu != want.cu:
				t.Errorf("%s/model.ptx was compiled from another model.cu (ptx.sum lists %.12s…, model.cu is %.12s…): run scripts/gpucheck-generate.sh on a machine with nvcc", name, want.cu, got.cu)
			case got.ptx != want.ptx:
				t.Errorf("%s/model.ptx is not the one ptx.sum lists: run scripts/gpucheck-generate.sh on a machine with nvcc", name)
			}
		})
	}
	for name := range sums {
		if !slices.Contains(names, name) {
			t.Errorf("ptx.sum lists %s, which is not a package", name)
		}
	}
}

// generateArgs returns the arguments after "rfc compile" of the go:generate line of path.
func generateArgs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, gpucheckGenerate); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("%s has no line %q", path, gpucheckGenerate+"…")
	return nil
}

type ptxSum struct{ cu, ptx string }

// readPTXSums reads ptx.sum: per package, "SHA256(model.cu) SHA256(model.ptx) PACKAGE".
func readPTXSums(t *testing.T, path string) map[string]ptxSum {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]ptxSum{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 || len(fields[0]) != 64 || len(fields[1]) != 64 {
			t.Fatalf("%s:%d: want SHA256(model.cu) SHA256(model.ptx) PACKAGE, got %q", path, n, line)
		}
		sums[fields[2]] = ptxSum{cu: fields[0], ptx: fields[1]}
	}
	return sums
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
