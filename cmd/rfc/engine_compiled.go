package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/format"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// runCompiled is rfc run --engine compiled: it generates the Go package of code (m's
// module with the sizes of its input lines chosen at run time, or m itself, whose shapes
// the inputs have fixed, when code cannot have such sizes), builds it with a small main in
// a module that requires rfc from its source tree, and runs that program, which loads the
// weights and the inputs, calls Forward and writes the outputs as the interpreter path
// does. The program is kept in rfc's cache (compiledRunner): a later run of the same model
// with the same settings reuses it, whatever the size of its inputs. It needs a Go
// toolchain (the go command on PATH) and the rfc source tree (found beside this binary's
// sources, or named by $RFC_ROOT).
func runCompiled(m, code *ir.Module, weights []string, inputs map[string]*runtime.Tensor, input, output string, verbose bool, stderr io.Writer) int {
	if err := checkInputTypes(m, inputs); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res, err := codegen.Generate(code, codegen.Options{Package: "model", Source: m.Source})
	if err != nil && code != m {
		// A model whose code cannot take its sizes at run time (a broadcast over batch
		// dims of such sizes, say) is compiled for these inputs' sizes.
		code = m
		res, err = codegen.Generate(code, codegen.Options{Package: "model", Source: m.Source})
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", m.Source, err)
		return 1
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(stderr, "rfc run: --engine compiled builds Go code and needs the go command on PATH: %v\n", err)
		return 1
	}
	root, err := rfcSourceRoot(goCmd)
	if err != nil {
		fmt.Fprintf(stderr, "rfc run: --engine compiled: %v\n", err)
		return 1
	}
	main, err := runMain(code, res)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	start := time.Now()
	bin, built, cleanup, err := compiledRunner(goCmd, root, res.Files, main)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer cleanup()
	if verbose {
		if built {
			fmt.Fprintf(stderr, "build %v\n", time.Since(start).Round(time.Millisecond))
		} else {
			fmt.Fprintf(stderr, "build: reused %s\n", bin)
		}
	}
	args := []string{output, input, strconv.FormatBool(verbose)}
	run := exec.Command(bin, append(args, weights...)...)
	run.Stdout, run.Stderr = stderr, stderr
	if err := run.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintf(stderr, "rfc run: %v\n", err)
		return 1
	}
	return 0
}

// compiledRunner returns the program of a generated package and its main: from rfc's
// cache (os.UserCacheDir()/rfc/run) when a program of the same sources was built before,
// else built now and put there. The key hashes everything the program is made of: the
// generated files and the main, the sources of the rfc packages they link (runtime,
// kernels and the module files of the tree at root), the go command's version and
// target, and this rfc's own version. A program is built in a folder of its own and moved
// into place by a rename, so concurrent runs never see half a program (two that build
// the same one at once both succeed; the last rename wins, with the same content). Without
// a cache folder the program is built in a temporary one, removed by cleanup.
func compiledRunner(goCmd, root string, files []codegen.File, main []byte) (bin string, built bool, cleanup func(), err error) {
	cleanup = func() {}
	key, err := runnerKey(goCmd, root, files, main)
	if err != nil {
		return "", false, cleanup, err
	}
	cacheDir := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(dir, "rfc", "run")
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			cacheDir = ""
		}
	}
	if cacheDir != "" {
		bin = filepath.Join(cacheDir, key)
		if info, err := os.Stat(bin); err == nil && info.Mode().IsRegular() {
			return bin, false, cleanup, nil
		}
	}
	buildRoot := cacheDir
	if buildRoot == "" {
		buildRoot = os.TempDir()
	}
	dir, err := os.MkdirTemp(buildRoot, "build-")
	if err != nil {
		return "", false, cleanup, err
	}
	if err := writeRunModule(dir, root, files, main); err != nil {
		os.RemoveAll(dir)
		return "", false, cleanup, err
	}
	out := filepath.Join(dir, "rfc-run")
	build := exec.Command(goCmd, "build", "-o", out, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"))
	if msg, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", false, cleanup, fmt.Errorf("rfc run: building the compiled model failed (%v):\n%s", err, msg)
	}
	if cacheDir == "" {
		return out, true, func() { os.RemoveAll(dir) }, nil
	}
	defer os.RemoveAll(dir)
	if err := os.Rename(out, bin); err != nil {
		// Another run may have put the same program there meanwhile (a rename over a
		// file fails on some systems): use it.
		if info, statErr := os.Stat(bin); statErr == nil && info.Mode().IsRegular() {
			return bin, true, cleanup, nil
		}
		return "", false, cleanup, fmt.Errorf("rfc run: caching the compiled model: %v", err)
	}
	return bin, true, cleanup, nil
}

// runnerKey is the cache key of a program: a hex SHA-256 of what it is built from.
func runnerKey(goCmd, root string, files []codegen.File, main []byte) (string, error) {
	h := sha256.New()
	field := func(name string, data []byte) {
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	field("rfc", []byte(rfcVersion()))
	env, err := exec.Command(goCmd, "env", "GOVERSION", "GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOFLAGS", "CGO_ENABLED").Output()
	if err != nil {
		return "", fmt.Errorf("rfc run: go env: %v", err)
	}
	field("go env", env)
	field("GOFLAGS", []byte(os.Getenv("GOFLAGS")))
	for _, f := range files {
		field("generated "+f.Name, f.Data)
	}
	field("main.go", main)
	// The rfc packages the program links, as the source tree has them now.
	for _, name := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		field(name, data)
	}
	for _, pkg := range []string{"runtime", "kernels"} {
		err := filepath.WalkDir(filepath.Join(root, pkg), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			name := d.Name()
			if strings.HasSuffix(name, "_test.go") || !(strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".s") || strings.HasSuffix(name, ".h")) {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			field(filepath.ToSlash(rel), data)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("rfc run: reading the rfc sources at %s: %v", root, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// rfcVersion is this binary's module version and VCS revision, as Go recorded them.
func rfcVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Path + " " + info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			v += " " + s.Key + "=" + s.Value
		}
	}
	return v
}

// checkInputTypes refuses inputs whose data type does not fit the declared one, with the
// interpreter's message (shapes have been checked when the dims were bound): float types
// want F32 data, integer types I64 data.
func checkInputTypes(m *ir.Module, inputs map[string]*runtime.Tensor) error {
	var problems []string
	for _, in := range m.Inputs {
		t := inputs[in.Name]
		want := runtime.F32
		if !in.Type.DType.IsFloat() {
			want = runtime.I64
		}
		if t != nil && t.DType != want {
			problems = append(problems, fmt.Sprintf("input %s: declared %s, got %s data of shape %s (%s values need %s data)", in.Ref(), in.Type, t.DType, t.ShapeString(), in.Type.DType, want))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// rfcSourceRoot finds the directory of the rfc module: $RFC_ROOT, else the tree this
// binary was built from (when it is still there), else what the go command resolves from
// the current directory.
func rfcSourceRoot(goCmd string) (string, error) {
	isRoot := func(dir string) bool {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		return err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module github.com/rfc-project/rfc\n"))
	}
	if dir := os.Getenv("RFC_ROOT"); dir != "" {
		if !isRoot(dir) {
			return "", fmt.Errorf("RFC_ROOT=%s is not the rfc source tree (no go.mod of github.com/rfc-project/rfc)", dir)
		}
		return dir, nil
	}
	if _, file, _, ok := goruntime.Caller(0); ok && filepath.IsAbs(file) {
		if dir := filepath.Dir(filepath.Dir(filepath.Dir(file))); isRoot(dir) {
			return dir, nil
		}
	}
	out, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Dir}}", "github.com/rfc-project/rfc").Output()
	if dir := strings.TrimSpace(string(out)); err == nil && dir != "" && isRoot(dir) {
		return dir, nil
	}
	return "", errors.New("cannot find the rfc source tree to build against: set RFC_ROOT to it")
}

// writeRunModule writes a module requiring rfc from root: the generated package under
// model/ and the main that runs it.
func writeRunModule(dir, root string, files []codegen.File, main []byte) error {
	goVersion := "1.26"
	if data, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
				goVersion = v
			}
		}
	}
	mod := fmt.Sprintf("module rfcrun\n\ngo %s\n\nrequire github.com/rfc-project/rfc v0.0.0\n\nreplace github.com/rfc-project/rfc => %s\n", goVersion, strconv.Quote(root))
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	if sum, err := os.ReadFile(filepath.Join(root, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
			return err
		}
	}
	if _, err := codegen.Write(filepath.Join(dir, "model"), files); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "main.go"), main, 0o644)
}

// runMain is the program of rfc run --engine compiled: os.Args are the output file, the
// input file, whether to print timings, then the weight files.
func runMain(m *ir.Module, res *codegen.Result) ([]byte, error) {
	call := res.ForwardCall("model", "in")
	var named []string
	for i, out := range call.Outputs {
		name := "y"
		if len(call.Outputs) > 1 {
			name = "y" + strconv.Itoa(i)
		}
		named = append(named, fmt.Sprintf("%q: %s,", name, out))
	}
	src := fmt.Sprintf(`package main

import (
	"fmt"
	"os"
	"time"

	"github.com/rfc-project/rfc/runtime"

	"rfcrun/model"
)

func main() {
	output, input, verbose, weights := os.Args[1], os.Args[2], os.Args[3] == "true", os.Args[4:]
	start := time.Now()
	m, err := model.Load(weights...)
	if err != nil {
		fail(err)
	}
	loaded := time.Now()
	in, err := runtime.ReadTensors(input)
	if err != nil {
		fail(err)
	}
	started := time.Now()
	%s, err := m.Forward(%s)
	if err != nil {
		fail(err)
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "load %%v, run %%v\n", loaded.Sub(start).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	}
	named := map[string]*runtime.Tensor{
		%s
	}
	if err := runtime.WriteSafetensors(output, named, map[string]string{"model": %q, "source": %q}); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
`, strings.Join(call.Results, ", "), strings.Join(call.Args, ", "), strings.Join(named, "\n\t\t"), m.Name, m.Source)
	out, err := format.Source([]byte(src))
	if err != nil {
		return nil, fmt.Errorf("rfc run: internal error: the runner does not parse: %v", err)
	}
	return out, nil
}
