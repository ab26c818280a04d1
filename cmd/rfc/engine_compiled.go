package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/format"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// runCompiled is rfc run --engine compiled: it generates the Go package of m (whose shapes
// the inputs have fixed), builds it with a small main in a temporary module that requires
// rfc from its source tree, and runs that program, which loads the weights and the inputs,
// calls Forward and writes the outputs as the interpreter path does. It needs a Go toolchain
// (the go command on PATH) and the rfc source tree (found beside this binary's sources, or
// named by $RFC_ROOT).
func runCompiled(m *ir.Module, weights []string, inputs map[string]*runtime.Tensor, input, output string, verbose bool, stderr io.Writer) int {
	if err := checkInputTypes(m, inputs); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res, err := codegen.Generate(m, codegen.Options{Package: "model", Source: m.Source})
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
	dir, err := os.MkdirTemp("", "rfc-run-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := writeRunModule(dir, root, m, res); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	start := time.Now()
	bin := filepath.Join(dir, "rfc-run")
	build := exec.Command(goCmd, "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"))
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(stderr, "rfc run: building the compiled model failed (%v):\n%s", err, out)
		return 1
	}
	if verbose {
		fmt.Fprintf(stderr, "build %v\n", time.Since(start).Round(time.Millisecond))
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
// model/ and a main that runs it.
func writeRunModule(dir, root string, m *ir.Module, res *codegen.Result) error {
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
	if _, err := codegen.Write(filepath.Join(dir, "model"), res.Files); err != nil {
		return err
	}
	main, err := runMain(m, res)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "main.go"), main, 0o644)
}

// runMain is the program of rfc run --engine compiled: os.Args are the output file, the
// input file, whether to print timings, then the weight files.
func runMain(m *ir.Module, res *codegen.Result) ([]byte, error) {
	var args, results, named []string
	for _, in := range res.Inputs {
		field := "F32"
		if !in.Type.DType.IsFloat() {
			field = "I64"
		}
		args = append(args, fmt.Sprintf("in[%q].%s", in.Name, field))
	}
	for i, out := range res.Outputs {
		name := "y"
		if len(res.Outputs) > 1 {
			name = "y" + strconv.Itoa(i)
		}
		ctor := "FromF32"
		if !out.Type.DType.IsFloat() {
			ctor = "FromI64"
		}
		results = append(results, "out"+strconv.Itoa(i))
		named = append(named, fmt.Sprintf("%q: runtime.%s(out%d, model.%sShape[:]...),", name, ctor, i, out.Export))
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
	f, err := runtime.OpenSafetensors(input)
	if err != nil {
		fail(err)
	}
	in := map[string]*runtime.Tensor{}
	for _, name := range f.Names() {
		if in[name], err = f.Tensor(name); err != nil {
			fail(err)
		}
	}
	f.Close()
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
`, strings.Join(results, ", "), strings.Join(args, ", "), strings.Join(named, "\n\t\t"), m.Name, m.Source)
	out, err := format.Source([]byte(src))
	if err != nil {
		return nil, fmt.Errorf("rfc run: internal error: the runner does not parse: %v", err)
	}
	return out, nil
}
