package fuzzgen

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// Job is one module for a back end to compile and run.
type Job struct {
	Module  *ir.Module
	Weights map[string]*runtime.Tensor // by checkpoint key (the unnamed layout)
	Inputs  map[string]*runtime.Tensor
	// Layout, when not empty, writes the weight file with the keys of that named layout,
	// so that the generated loader must pick it.
	Layout string
	// F16Weights asks a back end that can (HalfWeights) to store the weights as float16;
	// the reference is then the interpreter on the weights rounded so.
	F16Weights bool
	// More are input sets to run after Inputs, on the same loaded model: a sized
	// package at other sizes.
	More []map[string]*runtime.Tensor
}

// SizedPackages is implemented by back ends that compile modules whose sizes are chosen
// at run time.
type SizedPackages interface {
	SizedPackages() bool
}

// HalfWeights is implemented by back ends that can store weights as float16.
type HalfWeights interface {
	HalfWeights() bool
}

// Result is what one job gave: its outputs, or the error of the stage that failed
// (generate, build, run).
type Result struct {
	Outputs []*runtime.Tensor
	More    [][]*runtime.Tensor // the outputs of Job.More
	Stage   string
	Err     error
}

// GoBackend compiles modules with the Go code generator, many packages to one driver
// program built with one go build, which is what makes it fast.
type GoBackend struct {
	Root string // the rfc module's directory (for the replace directive)
	Dir  string // a scratch directory; each Run rewrites it
	// RunTimeout bounds one run of the driver (a generated Forward that loops forever).
	RunTimeout time.Duration
}

// Name is "go".
func (b *GoBackend) Name() string { return "go" }

// Ops are the ops the Go code generator implements: the passes may fuse for it.
func (b *GoBackend) Ops(op string) bool { return codegen.Supported(op) }

// SizedPackages: the Go target compiles modules with sizes chosen at run time.
func (b *GoBackend) SizedPackages() bool { return true }

// Tolerance: the generated code calls the interpreter's kernels with the same arguments,
// so only fusions that round differently could tell them apart.
func (b *GoBackend) Tolerance() float64 { return 1e-5 }

// Run generates, builds and runs every case. Errors are per case; the error returned is
// for problems of the harness itself (the go command missing, the disk full).
func (b *GoBackend) Run(cases []*Job) ([]Result, error) {
	res := make([]Result, len(cases))
	if err := os.RemoveAll(b.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(b.Dir, "driver"), 0o755); err != nil {
		return nil, err
	}
	sum, err := os.ReadFile(filepath.Join(b.Root, "go.sum"))
	if err != nil {
		return nil, err
	}
	mod := fmt.Sprintf("module rfcfuzz\n\ngo 1.26\n\nrequire github.com/rfc-project/rfc v0.0.0\n\nreplace github.com/rfc-project/rfc => %s\n", b.Root)
	if err := os.WriteFile(filepath.Join(b.Dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "go.sum"), sum, 0o644); err != nil {
		return nil, err
	}
	gens := make([]*codegen.Result, len(cases))
	var live []int
	for i, c := range cases {
		pkg := "m" + strconv.Itoa(i)
		r, err := codegen.Generate(c.Module, codegen.Options{Package: pkg})
		if err != nil {
			res[i] = Result{Stage: "generate", Err: err}
			continue
		}
		for _, f := range r.Files {
			if formatted, err := format.Source(f.Data); err != nil || !bytes.Equal(formatted, f.Data) {
				res[i] = Result{Stage: "generate", Err: fmt.Errorf("%s is not gofmt-clean (%v)", f.Name, err)}
				break
			}
		}
		if res[i].Err != nil {
			continue
		}
		if _, err := codegen.Write(filepath.Join(b.Dir, pkg), r.Files); err != nil {
			return nil, err
		}
		if err := writeCaseData(filepath.Join(b.Dir, "data", pkg), c); err != nil {
			return nil, err
		}
		gens[i] = r
		live = append(live, i)
	}
	// Build; a package that does not compile is that case's failure, and the others are
	// built again without it.
	bin := filepath.Join(b.Dir, "driver.bin")
	failed := regexp.MustCompile(`(?m)^#? ?\.?/?(?:rfcfuzz/)?m(\d+)\b`)
	live, err = BuildWithout(res, live, "build", func(live []int) (map[int]error, error) {
		if err := os.WriteFile(filepath.Join(b.Dir, "driver", "main.go"), driverSource(live, gens, cases), 0o644); err != nil {
			return nil, err
		}
		// The generated packages without optimization (-N -l): they compile in two
		// thirds of the time, and the kernels they call keep theirs.
		out, err := b.goCmd("build", "-o", bin, "-gcflags=rfcfuzz/...=-N -l", "./driver")
		if err == nil {
			return nil, nil
		}
		blame := map[int]error{}
		for _, m := range failed.FindAllStringSubmatch(out, -1) {
			if i, _ := strconv.Atoi(m[1]); slices.Contains(live, i) {
				blame[i] = fmt.Errorf("%s", packageErrors(out, i))
			}
		}
		return blame, fmt.Errorf("go build of the driver: %v\n%s", err, out)
	})
	if err != nil {
		return nil, err
	}
	// Run; a case that crashes the driver (a panic in a kernel's goroutine, a fault) is
	// that case's failure, and the driver runs again on the cases after it.
	timeout := b.RunTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	read := func(i int) Result {
		var r Result
		dir := filepath.Join(b.Dir, "data", "m"+strconv.Itoa(i))
		for k := range 1 + len(cases[i].More) {
			outs, err := readOutputs(filepath.Join(dir, fmt.Sprintf("out%d.safetensors", k)), len(gens[i].Outputs))
			if err != nil {
				return Result{Stage: "run", Err: err}
			}
			if k == 0 {
				r.Outputs = outs
			} else {
				r.More = append(r.More, outs)
			}
		}
		return r
	}
	if err := RunDriver(res, live, timeout, read, bin, filepath.Join(b.Dir, "data")); err != nil {
		return nil, err
	}
	return res, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// packageErrors picks the compiler's lines about package m<i>.
func packageErrors(out string, i int) string {
	prefix := "m" + strconv.Itoa(i) + "/"
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, prefix) || strings.Contains(l, "rfcfuzz/m"+strconv.Itoa(i)) {
			lines = append(lines, l)
		}
	}
	return tail(strings.Join(lines, "\n"), 20)
}

func (b *GoBackend) goCmd(args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = b.Dir
	// Everything the build needs is in the rfc tree and the module cache.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeCaseData(dir string, c *Job) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	weights := map[string]*runtime.Tensor{}
	for _, p := range c.Module.Params {
		key := p.Key
		if k, ok := p.LayoutKeys[c.Layout]; ok {
			key = k // parameters an adapter added have the unnamed key in every layout
		}
		weights[key] = c.Weights[p.Key]
	}
	if err := runtime.WriteSafetensors(filepath.Join(dir, "weights.safetensors"), weights, nil); err != nil {
		return err
	}
	for k, set := range append([]map[string]*runtime.Tensor{c.Inputs}, c.More...) {
		in := map[string]*runtime.Tensor{}
		for _, v := range c.Module.Inputs {
			in[v.Name] = set[v.Name]
		}
		if err := runtime.WriteSafetensors(filepath.Join(dir, fmt.Sprintf("in%d.safetensors", k)), in, nil); err != nil {
			return err
		}
	}
	return nil
}

func readOutputs(path string, n int) ([]*runtime.Tensor, error) {
	f, err := runtime.OpenSafetensors(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	outs := make([]*runtime.Tensor, n)
	for i := range outs {
		if outs[i], err = f.Tensor("y" + strconv.Itoa(i)); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// driverSource is a main package that runs the cases named on its command line, each
// under recover, printing "begin I" before and "ok I" or "fail I MESSAGE" after.
func driverSource(live []int, gens []*codegen.Result, jobs []*Job) []byte {
	var b bytes.Buffer
	b.WriteString("package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"path/filepath\"\n\t\"strconv\"\n\n\t\"github.com/rfc-project/rfc/runtime\"\n\n")
	for _, i := range live {
		fmt.Fprintf(&b, "\t\"rfcfuzz/m%d\"\n", i)
	}
	b.WriteString(`)

func main() {
	dir := os.Args[1]
	for _, a := range os.Args[2:] {
		i, _ := strconv.Atoi(a)
		fmt.Printf("begin %d\n", i)
		if err := safe(cases[i], filepath.Join(dir, "m"+a)); err != nil {
			fmt.Printf("fail %d %q\n", i, err.Error())
		} else {
			fmt.Printf("ok %d\n", i)
		}
	}
}

func safe(run func(string) error, dir string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return run(dir)
}

func write(dir string, k int, outs ...*runtime.Tensor) error {
	named := map[string]*runtime.Tensor{}
	for i, o := range outs {
		named[fmt.Sprint("y", i)] = o
	}
	return runtime.WriteSafetensors(filepath.Join(dir, fmt.Sprintf("out%d.safetensors", k)), named, nil)
}

`)
	fmt.Fprintf(&b, "var cases = map[int]func(string) error{\n")
	for _, i := range live {
		pkg := "m" + strconv.Itoa(i)
		call := gens[i].ForwardCall(pkg, "in")
		fmt.Fprintf(&b, `	%d: func(dir string) error {
		m, err := %s.Load(filepath.Join(dir, "weights.safetensors"))
		if err != nil {
			return err
		}
		for k := range %d {
			in, err := runtime.ReadTensors(filepath.Join(dir, fmt.Sprintf("in%%d.safetensors", k)))
			if err != nil {
				return err
			}
			_ = in
			%s, err := m.Forward(%s)
			if err != nil {
				return err
			}
			if err := write(dir, k, %s); err != nil {
				return err
			}
		}
		return nil
	},
`, i, pkg, 1+len(jobs[i].More), strings.Join(call.Results, ", "), strings.Join(call.Args, ", "), strings.Join(call.Outputs, ", "))
	}
	b.WriteString("}\n")
	return b.Bytes()
}
