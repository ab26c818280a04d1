package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// gpucheckDir is the GPU check's program; its packages are generated into its folders when it
// is built (scripts/cuda-build-check.sh), never committed.
const gpucheckDir = "../rfc-gpucheck/_cuda"

// gpucheckGenerate starts each go:generate line of gpucheckDir/main.go.
const gpucheckGenerate = "//go:generate go run ../../rfc compile "

const rfcModule = "github.com/rfc-project/rfc"

// TestGPUCheckGenerates keeps the GPU check from rotting where nvcc and the CUDA headers are
// missing (CI): every go:generate line of its main.go must compile its model with this
// tree's rfc (in memory, without nvcc), the lines and main.go's imports must name the same
// packages, and main.go with the generated Go must type-check, as built with -tags cuda,
// against this tree's runtime/cuda. What only nvcc and cgo can check, the kernels compiling
// and the binary linking, scripts/cuda-build-check.sh does where they are installed.
func TestGPUCheckGenerates(t *testing.T) {
	dir, err := filepath.Abs(gpucheckDir)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(dir)))
	mainPath := filepath.Join(dir, "main.go")
	src, err := os.ReadFile(mainPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := gpucheckLines(t, mainPath, src)

	fset := token.NewFileSet()
	mainFile, err := parser.ParseFile(fset, mainPath, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	prefix := rfcModule + "/cmd/rfc-gpucheck/_cuda/"
	var imported []string
	for _, spec := range mainFile.Imports {
		path, _ := strconv.Unquote(spec.Path.Value)
		if name, ok := strings.CutPrefix(path, prefix); ok {
			imported = append(imported, name)
			if _, ok := lines[name]; !ok {
				t.Errorf("main.go imports %s, which no go:generate line of main.go makes", path)
			}
		}
	}
	for name := range lines {
		if !slices.Contains(imported, name) {
			t.Errorf("main.go has a go:generate line for %s but does not import it: drop the line or check the package", name)
		}
	}

	// The lines' paths are relative to main.go's folder, where go generate runs them.
	t.Chdir(dir)
	generated := map[string][]*ast.File{} // import path → the Go files rfc writes
	for name, args := range lines {
		fs := newFlagSet("compile", io.Discard)
		var o compileOptions
		o.register(fs)
		pos, _, done := parseArgs(compileCommand, fs, args, io.Discard, io.Discard)
		if done || len(pos) != 1 || o.outDir != name || o.pkg != name || o.target != "cuda" {
			t.Errorf("main.go's line for %s, rfc compile %s, is not rfc compile FILE --target cuda -o %[1]s --pkg %[1]s", name, strings.Join(args, " "))
			continue
		}
		o.noNVCC = true
		var stderr bytes.Buffer
		plan, _ := o.plan(pos[0], &stderr)
		if plan == nil {
			t.Errorf("main.go's line for %s: rfc compile %s failed:\n%s", name, strings.Join(args, " "), stderr.String())
			continue
		}
		for _, f := range plan.files {
			if !strings.HasSuffix(f.Name, ".go") {
				continue
			}
			file, err := parser.ParseFile(fset, filepath.Join(dir, name, f.Name), f.Data, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				t.Fatalf("rfc compile %s wrote Go that does not parse: %v", strings.Join(args, " "), err)
			}
			generated[prefix+name] = append(generated[prefix+name], file)
		}
	}
	if t.Failed() {
		return
	}
	typeCheckCUDA(t, root, fset, generated, mainFile)
}

// gpucheckLines returns the arguments after "rfc compile" of each go:generate line of
// main.go, by the package (-o) they make.
func gpucheckLines(t *testing.T, path string, src []byte) map[string][]string {
	t.Helper()
	lines := map[string][]string{}
	for i, line := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(line, "//go:generate ") {
			continue
		}
		rest, ok := strings.CutPrefix(line, gpucheckGenerate)
		if !ok {
			t.Errorf("%s:%d: a go:generate line that does not start %q", path, i+1, gpucheckGenerate)
			continue
		}
		args := strings.Fields(rest)
		out := ""
		if k := slices.Index(args, "-o"); k >= 0 && k+1 < len(args) {
			out = args[k+1]
		}
		if out == "" || lines[out] != nil {
			t.Errorf("%s:%d: want a package folder of its own after -o, got %q", path, i+1, out)
			continue
		}
		lines[out] = args
	}
	if len(lines) == 0 {
		t.Fatalf("%s has no line %q", path, gpucheckGenerate+"…")
	}
	return lines
}

// typeCheckCUDA type-checks mainFile (package main) and the generated packages as go build
// -tags cuda would, without cgo: the packages they import are type-checked from source,
// gorgonia.org/cu with `import "C"` faked (go/types' FakeImportC), whose C types and
// constants are then unknown, and errors there are not counted; the standard library comes
// from the go command's export data. Every error in this module's packages fails the test.
func typeCheckCUDA(t *testing.T, root string, fset *token.FileSet, generated map[string][]*ast.File, mainFile *ast.File) {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to find the packages to type-check: %v", err)
	}
	goList := func(env []string, args ...string) []string {
		cmd := exec.Command(goCmd, append([]string{"list"}, args...)...)
		cmd.Dir = root
		cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=readonly"), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s(gorgonia.org/cu missing? go mod download fetches it)", strings.Join(args, " "), err, stderr.String())
		}
		return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	}

	tags := map[string]bool{"cuda": true, "cgo": true, "gc": true, goruntime.GOOS: true, goruntime.GOARCH: true, "unix": true}
	keep := func(f *ast.File) bool {
		for _, group := range f.Comments {
			if group.Pos() > f.Package {
				break
			}
			for _, c := range group.List {
				if constraint.IsGoBuild(c.Text) {
					expr, err := constraint.Parse(c.Text)
					return err == nil && expr.Eval(func(tag string) bool { return tags[tag] })
				}
			}
		}
		return true
	}
	type pkg struct {
		path  string
		files []*ast.File
		ours  bool // this module's: its errors count
	}
	var order []pkg
	imports := map[string]bool{} // of the packages to check: the standard library's get export data
	var outside []string         // what the generated code and main.go import from outside them
	noteImports := func(files []*ast.File) {
		for _, f := range files {
			for _, spec := range f.Imports {
				path, _ := strconv.Unquote(spec.Path.Value)
				if generated[path] == nil && path != "C" && !slices.Contains(outside, path) {
					outside = append(outside, path)
				}
			}
		}
	}
	var genPaths []string
	for path, files := range generated {
		var kept []*ast.File
		for _, f := range files {
			if keep(f) {
				kept = append(kept, f)
			}
		}
		generated[path] = kept
		genPaths = append(genPaths, path)
	}
	slices.Sort(genPaths)
	for _, path := range genPaths {
		noteImports(generated[path])
	}
	noteImports([]*ast.File{mainFile})

	// go list -deps prints each package after the packages it imports.
	format := "{{.ImportPath}}\t{{.Standard}}\t{{.Dir}}\t{{join .GoFiles \",\"}},{{join .CgoFiles \",\"}}\t{{join .Imports \",\"}}\t{{with .Module}}{{.Path}}{{end}}"
	// cgo's files must be listed, as a cuda build sees them; nothing is compiled.
	for _, line := range goList([]string{"CGO_ENABLED=1"}, append([]string{"-deps", "-tags", "cuda", "-f", format}, outside...)...) {
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("go list printed %q", line)
		}
		if f[1] == "true" {
			continue
		}
		p := pkg{path: f[0], ours: f[5] == rfcModule}
		for _, name := range strings.Split(f[3], ",") {
			if name == "" {
				continue
			}
			file, err := parser.ParseFile(fset, filepath.Join(f[2], name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			p.files = append(p.files, file)
		}
		for _, imp := range strings.Split(f[4], ",") {
			imports[imp] = true
		}
		order = append(order, p)
	}
	for _, path := range genPaths {
		order = append(order, pkg{path: path, files: generated[path], ours: true})
	}
	order = append(order, pkg{path: "main", files: []*ast.File{mainFile}, ours: true})
	for _, path := range outside {
		imports[path] = true
	}
	var stdPaths []string
	nonStd := map[string]bool{}
	for _, p := range order {
		nonStd[p.path] = true
	}
	for path := range imports {
		if path != "" && path != "C" && path != "unsafe" && !nonStd[path] && generated[path] == nil {
			stdPaths = append(stdPaths, path)
		}
	}
	slices.Sort(stdPaths)
	exports := map[string]string{}
	// The export data is compiled (or found in the build cache) as this machine builds: cgo
	// or not, the standard library's API is the same.
	for _, line := range goList(nil, append([]string{"-export", "-f", "{{.ImportPath}}\t{{.Export}}"}, stdPaths...)...) {
		path, file, _ := strings.Cut(line, "\t")
		exports[path] = file
	}
	gc := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		if exports[path] == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(exports[path])
	})
	checked := map[string]*types.Package{}
	imp := importerFunc(func(path string) (*types.Package, error) {
		if p, ok := checked[path]; ok {
			return p, nil
		}
		if nonStd[path] {
			return nil, fmt.Errorf("%s is not type-checked yet", path)
		}
		return gc.Import(path)
	})
	for _, p := range order {
		var errs []string
		conf := types.Config{
			Importer:    imp,
			FakeImportC: true,
			Error: func(err error) {
				errs = append(errs, err.Error())
			},
		}
		checked[p.path], _ = conf.Check(p.path, fset, p.files, nil)
		if !p.ours {
			continue
		}
		for i, e := range errs {
			if i == 20 {
				t.Errorf("%s: and %d more errors", p.path, len(errs)-i)
				break
			}
			t.Errorf("%s", e)
		}
	}
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
