package codegen

import (
	"bytes"
	"fmt"
	"go/format"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

// sizedRuns gives, for each entry point of models/*.rfn, the sizes a package compiled
// without fixing them is run at, one after the other in one process (a size met again
// last, to reuse its plan). The other settings come from smallSettings.
var sizedRuns = map[string][]map[string]int{
	"vit.rfn:ViT":                  {{"batch": 2}, {"batch": 1}, {"batch": 3}, {"batch": 2}},
	"vit.rfn:ViTCross":             {{"batch": 1}, {"batch": 3}},
	"taesd.rfn:TAESDEncoder":       {{"batch": 1, "height": 16, "width": 24}, {"batch": 2, "height": 13, "width": 8}},
	"taesd.rfn:TAESDDecoder":       {{"batch": 2, "height": 3, "width": 2}, {"batch": 1, "height": 2, "width": 5}},
	"taesd.rfn:TAEF2Encoder":       {{"batch": 2, "height": 8, "width": 16}, {"batch": 1, "height": 17, "width": 9}, {"batch": 2, "height": 8, "width": 16}},
	"taesd.rfn:TAEF2Decoder":       {{"batch": 1, "height": 2, "width": 3}, {"batch": 2, "height": 3, "width": 2}, {"batch": 1, "height": 4, "width": 4}},
	"clip.rfn:CLIPTextEncoderL":    {{"batch": 1}, {"batch": 3}},
	"sd15.rfn:SinusoidalEmbedding": {{"n": 3}, {"n": 1}},
	"sd15.rfn:SD1UNet": {{"batch": 2, "height": 16, "width": 8, "tokens": 5}, {"batch": 1, "height": 13, "width": 6, "tokens": 3},
		{"batch": 2, "height": 16, "width": 8, "tokens": 5}},
	"sd15.rfn:SD1Encoder": {{"batch": 1, "height": 16, "width": 24}, {"batch": 2, "height": 8, "width": 8}},
	"sd15.rfn:SD1Decoder": {{"batch": 2, "height": 3, "width": 2}, {"batch": 1, "height": 4, "width": 5}},
	"controlnet.rfn:SD1Controlnet": {{"batch": 2, "height": 4, "width": 2, "tokens": 5, "condition_height": 32, "condition_width": 16},
		{"batch": 1, "height": 5, "width": 3, "tokens": 3, "condition_height": 40, "condition_width": 24}},
	"t2i_adapter.rfn:Downsample2d":          {{"n": 2, "c": 3, "h": 8, "w": 6}, {"n": 1, "c": 2, "h": 4, "w": 10}},
	"t2i_adapter.rfn:ConditionEncoder":      {{"batch": 2, "height": 64, "width": 128}, {"batch": 1, "height": 128, "width": 64}},
	"t2i_adapter.rfn:ConditionEncoderLight": {{"batch": 1, "height": 128, "width": 64}, {"batch": 2, "height": 64, "width": 64}},
	"clip.rfn:CLIPImageEncoderH":            {{"batch": 1}, {"batch": 3}},
	"ip_adapter.rfn:ImageProjection":        {{"batch": 2}, {"batch": 1}},
	"ip_adapter.rfn:PerceiverResampler":     {{"batch": 1, "tokens": 26}, {"batch": 3, "tokens": 7}},
}

// unetSource is a small UNet: a stride-2 downsampling, an upsampling by 2 and the
// concatenation of the skip connection, so its height and width must be even; attention
// over the h·w tokens of the bottom; an upsampling to a saved tensor's size.
const unetSource = `
model UNet(c: int = 4) {
    input x: f32[batch, 3, height, width]
    Conv2d(3, c, 3, padding=1)
    SetContext("unet", "skip")
    Conv2d(c, c, 3, stride=2, padding=1)
    SelfAttention2d(c, num_heads=2)
    Upsample(scale_factor=2)
    Parallel {
        Identity()
        UseContext("unet", "skip")
    }
    Concatenate(dim=1) {
        Identity()
    }
    Conv2d(2 * c, c, 1)
    Conv2d(c, c, 3, stride=2, padding=1)
    Parallel {
        Identity()
        UseContext("unet", "skip")
    }
    Upsample()
}
`

// sizedCase is a module compiled with sizes chosen at run time, run at several sizes.
type sizedCase struct {
	pkg, what string
	module    *ir.Module   // symbolic
	fixed     []*ir.Module // the same, elaborated at each run's sizes
	weights   map[string]*runtime.Tensor
	inputs    []map[string]*runtime.Tensor // one set per run
	sizes     []map[string]int
	bad       []int // a shape Forward must refuse (the UNet's odd height)
	badWant   string
}

func sizedCases(t *testing.T) []*sizedCase {
	files, err := filepath.Glob("../models/*.rfn")
	if err != nil || len(files) == 0 {
		t.Fatalf("no models found: %v", err)
	}
	type entry struct {
		key  string
		prog *dsl.Program
		name string
	}
	var entries []entry
	for _, file := range files {
		prog, err := dsl.Load(file)
		if err != nil {
			t.Fatalf("%s: %v", file, dsl.Detail(err))
		}
		for _, name := range prog.ModelNames() {
			if prog.HasInputs(name) {
				entries = append(entries, entry{filepath.Base(file) + ":" + name, prog, name})
			}
		}
	}
	unet, err := dsl.LoadSource("unet.rfn", []byte(unetSource))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	entries = append(entries, entry{"unet", unet, "UNet"})
	runs := map[string][]map[string]int{"unet": {{"batch": 1, "height": 6, "width": 4}, {"batch": 2, "height": 8, "width": 10}}}
	for k, v := range sizedRuns {
		runs[k] = v
	}
	var cases []*sizedCase
	for _, e := range entries {
		sizes, ok := runs[e.key]
		if !ok {
			t.Errorf("no sizes for %s: add them to sizedRuns", e.key)
			continue
		}
		set := map[string]string{}
		for k, v := range smallSettings[e.key] {
			if _, isSize := sizes[0][k]; !isSize {
				set[k] = v
			}
		}
		elaborate := func(dims map[string]int) *ir.Module {
			m, err := e.prog.Elaborate(dsl.Options{Model: e.name, Set: set, Dims: dims})
			if err != nil {
				t.Fatalf("%s at %v: %v", e.key, dims, dsl.Detail(err))
			}
			if err := passes.Run(m, passes.Config{Ops: Supported}); err != nil {
				t.Fatalf("%s: %v", e.key, err)
			}
			return m
		}
		c := &sizedCase{pkg: packageName(e.name) + "sized", what: e.key + " (sizes chosen at run time)", module: elaborate(nil), sizes: sizes, weights: map[string]*runtime.Tensor{}}
		r := seeded(c.what)
		for _, p := range c.module.Params {
			shape := p.Type.Shape.Ints()
			fanIn := 1
			if len(shape) > 1 {
				fanIn = ir.Prod(shape[1:])
			}
			c.weights[p.Key] = randomTensor(r, p.Type, 1/math.Sqrt(float64(fanIn)), 0)
		}
		for _, dims := range sizes {
			m := elaborate(dims)
			c.fixed = append(c.fixed, m)
			in := map[string]*runtime.Tensor{}
			for _, v := range m.Inputs {
				in[v.Name] = randomTensor(r, v.Type, 1, indexLimit(m, v))
			}
			c.inputs = append(c.inputs, in)
		}
		if e.key == "unet" {
			c.bad, c.badWant = []int{1, 3, 7, 4}, "concatenate along dim 1"
		}
		cases = append(cases, c)
	}
	return cases
}

// TestSizedMatchesInterpreter compiles every model of models/ (and a small UNet) without
// fixing the sizes chosen at run time, runs each package at several sizes in one process,
// and compares every output with the interpreter's on the model elaborated at those
// sizes. After the first call at each size, Forward must allocate nothing, whichever size
// came last; a size that breaks a rule of the model must be an error naming the rule.
func TestSizedMatchesInterpreter(t *testing.T) {
	if testing.Short() {
		t.Skip("builds generated code with the go command")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cases := sizedCases(t)
	mod := tempModule(t)
	data := filepath.Join(mod, "data")
	results := map[string]*Result{}
	for _, c := range cases {
		res, err := Generate(c.module, Options{Package: c.pkg})
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if len(res.Sizes) == 0 {
			t.Fatalf("%s: the package has no size chosen at run time", c.what)
		}
		results[c.pkg] = res
		for _, f := range res.Files {
			if formatted, err := format.Source(f.Data); err != nil || !bytes.Equal(formatted, f.Data) {
				t.Errorf("%s: %s is not gofmt-clean (%v)", c.what, f.Name, err)
			}
		}
		if _, err := Write(filepath.Join(mod, c.pkg), res.Files); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(data, c.pkg)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := runtime.WriteSafetensors(filepath.Join(dir, "weights.safetensors"), c.weights, nil); err != nil {
			t.Fatal(err)
		}
		for k, in := range c.inputs {
			if err := runtime.WriteSafetensors(filepath.Join(dir, fmt.Sprintf("in%d.safetensors", k)), in, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(mod, "driver"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "driver", "main.go"), sizedDriver(t, cases, results), 0o644); err != nil {
		t.Fatal(err)
	}
	var escape []*compiledCase
	for _, c := range cases {
		escape = append(escape, &compiledCase{pkg: c.pkg, what: c.what})
	}
	checkNoEscapes(t, mod, escape)
	bin := filepath.Join(mod, "driver.bin")
	goCommand(t, mod, "build", "-o", bin, "./driver")
	goCommand(t, mod, "vet", "./...")
	out, err := exec.Command(bin, data).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("driver: %v\n%s", err, stderr)
	}
	report := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, rest, _ := strings.Cut(line, " ")
		report[name] = rest
	}
	for _, c := range cases {
		worst := 0.0
		for k, fixed := range c.fixed {
			w := interp.Weights{}
			for _, p := range fixed.Params {
				w[p] = c.weights[p.Key]
			}
			want, err := interp.Run(fixed, w, c.inputs[k])
			if err != nil {
				t.Errorf("%s: interpreter at %v: %v", c.what, c.sizes[k], err)
				continue
			}
			f, err := runtime.OpenSafetensors(filepath.Join(data, c.pkg, fmt.Sprintf("out%d.safetensors", k)))
			if err != nil {
				t.Errorf("%s: %v", c.what, err)
				continue
			}
			for i := range want {
				got, err := f.Tensor("y" + strconv.Itoa(i))
				if err != nil {
					t.Errorf("%s: %v", c.what, err)
					continue
				}
				d, err := compare(got, want[i])
				if err != nil {
					t.Errorf("%s at %v, output %d: %v", c.what, c.sizes[k], i, err)
				}
				worst = max(worst, d)
			}
			f.Close()
		}
		allocs, badErr, _ := strings.Cut(report[c.pkg], " ")
		t.Logf("%s at %v: max|Δ| vs interpreter %g, %s allocs/op after the first call of each size", c.what, c.sizes, worst, allocs)
		if allocs != "0" {
			t.Errorf("%s: Forward allocates %s times per call after the first call of each size, want 0", c.what, allocs)
		}
		if c.bad != nil {
			for _, want := range []string{c.badWant, "height=7 (dim 2 of input x)", "((height+1)//2)*2 is 8, which differs from height (7)"} {
				if !strings.Contains(badErr, want) {
					t.Errorf("%s: Forward at %v gave %q, want an error with %q", c.what, c.bad, badErr, want)
				}
			}
			t.Logf("%s at %v: %s", c.what, c.bad, badErr)
		}
	}
}

// sizedDriver is a main package that, for each case, loads the package's weights, runs
// Forward at each run's sizes (in<k>.safetensors → out<k>.safetensors), then measures the
// allocations of calls at each size in turn, and for a case with a bad shape, prints
// Forward's error for it.
func sizedDriver(t *testing.T, cases []*sizedCase, results map[string]*Result) []byte {
	var b bytes.Buffer
	b.WriteString("package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"path/filepath\"\n\tgoruntime \"runtime\"\n\t\"testing\"\n\n\t\"github.com/rfc-project/rfc/runtime\"\n\n")
	for _, c := range cases {
		fmt.Fprintf(&b, "\t%q\n", "rfctest/"+c.pkg)
	}
	b.WriteString(`)

func main() {
	dir := os.Args[1]
	for _, c := range cases {
		allocs, bad, err := c.run(filepath.Join(dir, c.name))
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, err)
			os.Exit(1)
		}
		fmt.Printf("%s %g %s\n", c.name, allocs, bad)
	}
}

func inputs(dir string, n int) ([]map[string]*runtime.Tensor, error) {
	var sets []map[string]*runtime.Tensor
	for k := range n {
		f, err := runtime.OpenSafetensors(filepath.Join(dir, fmt.Sprintf("in%d.safetensors", k)))
		if err != nil {
			return nil, err
		}
		set := map[string]*runtime.Tensor{}
		for _, name := range f.Names() {
			if set[name], err = f.Tensor(name); err != nil {
				return nil, err
			}
		}
		f.Close()
		sets = append(sets, set)
	}
	return sets, nil
}

func write(dir string, k int, outs ...*runtime.Tensor) error {
	named := map[string]*runtime.Tensor{}
	for i, o := range outs {
		named[fmt.Sprint("y", i)] = o
	}
	return runtime.WriteSafetensors(filepath.Join(dir, fmt.Sprintf("out%d.safetensors", k)), named, nil)
}

var cases = []struct {
	name string
	run  func(dir string) (float64, string, error)
}{
`)
	for _, c := range cases {
		res := results[c.pkg]
		var args, outs, wrap, discard []string
		for _, in := range res.Inputs {
			field := "F32"
			if !in.Type.DType.IsFloat() {
				field = "I64"
			}
			args = append(args, fmt.Sprintf("in[%q].%s", in.Name, field))
			if in.Sized {
				args = append(args, fmt.Sprintf("in[%q].Shape", in.Name))
			}
		}
		for i, out := range res.Outputs {
			ctor := "FromF32"
			if !out.Type.DType.IsFloat() {
				ctor = "FromI64"
			}
			outs = append(outs, "y"+strconv.Itoa(i))
			discard = append(discard, "_")
			shape := fmt.Sprintf("%s.%sShape[:]", c.pkg, out.Export)
			if out.Sized {
				outs = append(outs, "s"+strconv.Itoa(i))
				discard = append(discard, "_")
				shape = "s" + strconv.Itoa(i)
			}
			wrap = append(wrap, fmt.Sprintf("runtime.%s(y%d, %s...)", ctor, i, shape))
		}
		bad := `""`
		if c.bad != nil {
			// The first input gets the bad shape (and data of its length).
			in := res.Inputs[0]
			n := ir.Prod(c.bad)
			badArgs := slices.Clone(args)
			badArgs[0] = fmt.Sprintf("make([]float32, %d)", n)
			badArgs[1] = fmt.Sprintf("%#v", c.bad)
			_ = in
			bad = fmt.Sprintf("func() string { %s, err := m.Forward(%s); return fmt.Sprint(err) }()", strings.Join(discard, ", "), strings.Join(badArgs, ", "))
		}
		fmt.Fprintf(&b, `	{%q, func(dir string) (float64, string, error) {
		m, err := %s.Load(filepath.Join(dir, "weights.safetensors"))
		if err != nil {
			return 0, "", err
		}
		sets, err := inputs(dir, %d)
		if err != nil {
			return 0, "", err
		}
		for k, in := range sets {
			%s, err := m.Forward(%s)
			if err != nil {
				return 0, "", err
			}
			if err := write(dir, k, %s); err != nil {
				return 0, "", err
			}
		}
		goruntime.GC()
		// Every size in turn: each call switches plans.
		all := func() {
			for _, in := range sets {
				m.Forward(%s)
			}
		}
		for range 3 {
			all()
		}
		return testing.AllocsPerRun(5, all), %s, nil
	}},
`, c.pkg, c.pkg, len(c.inputs), strings.Join(outs, ", "), strings.Join(args, ", "), strings.Join(wrap, ", "), strings.Join(args, ", "), bad)
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		t.Fatalf("driver: %v\n%s", err, b.Bytes())
	}
	return src
}
