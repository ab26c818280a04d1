package codegen

import (
	"bytes"
	"fmt"
	"go/format"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
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

// sizedCase is a module compiled with sizes chosen at run time (its module is symbolic),
// run at several sizes: one input set per run.
type sizedCase struct {
	compiledCase
	fixed   []*ir.Module // the module elaborated at each run's sizes
	sizes   []map[string]int
	bad     []int // a shape Forward must refuse (the UNet's odd height)
	badWant string
}

// newSizedCase elaborates a model of prog with opts and runs the passes of cfg on it, with
// its sizes left to run time and at each of sizes; it gives the case random weights and
// one set of random inputs per size.
func newSizedCase(t *testing.T, pkg, what string, prog *dsl.Program, opts dsl.Options, cfg passes.Config, sizes []map[string]int) *sizedCase {
	t.Helper()
	elaborate := func(dims map[string]int) *ir.Module {
		opts.Dims = dims
		m, err := prog.Elaborate(opts)
		if err != nil {
			t.Fatalf("%s at %v: %v", what, dims, dsl.Detail(err))
		}
		if err := passes.Run(m, cfg); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return m
	}
	m := elaborate(nil)
	r := seeded(what)
	c := &sizedCase{compiledCase: compiledCase{pkg: pkg, what: what, module: m, weights: randomWeights(r, m)}, sizes: sizes}
	for _, dims := range sizes {
		fixed := elaborate(dims)
		c.fixed = append(c.fixed, fixed)
		c.inputs = append(c.inputs, randomInputs(r, fixed))
	}
	return c
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
		c := newSizedCase(t, PackageName(e.name)+"sized", e.key+" (sizes chosen at run time)", e.prog, dsl.Options{Model: e.name, Set: set}, passes.Config{Ops: Supported}, sizes)
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
	needGoBuild(t)
	checkSized(t, sizedCases(t))
}

// checkSized compiles each case's module without fixing its sizes, runs the package at
// each run's sizes in one process and compares every output with the interpreter's on
// the module elaborated at those sizes. The packages must be gofmt- and vet-clean;
// after the first call at each size, Forward must allocate nothing, whichever size came
// last; a case's bad shape must be an error naming the rule it breaks.
func checkSized(t *testing.T, cases []*sizedCase) {
	t.Helper()
	mod := tempModule(t)
	var compiled []*compiledCase
	for _, c := range cases {
		compiled = append(compiled, &c.compiledCase)
	}
	results := writeCases(t, mod, compiled)
	for _, c := range cases {
		if len(results[c.pkg].Sizes) == 0 {
			t.Fatalf("%s: the package has no size chosen at run time", c.what)
		}
	}
	checkNoEscapes(t, mod, compiled)
	report := buildAndRun(t, mod, sizedDriver(t, cases, results))
	goCommand(t, mod, "vet", "./...")
	for _, c := range cases {
		worst := 0.0
		for k, fixed := range c.fixed {
			worst = max(worst, matchInterpreter(t, mod, &c.compiledCase, k, fixed, fmt.Sprintf("at %v", c.sizes[k])))
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
`)
	b.WriteString(driverIO)
	b.WriteString(`
var cases = []struct {
	name string
	run  func(dir string) (float64, string, error)
}{
`)
	for _, c := range cases {
		call := results[c.pkg].ForwardCall(c.pkg, "in")
		bad := `""`
		if c.bad != nil {
			// The first input gets the bad shape (and data of its length).
			badArgs := slices.Clone(call.Args)
			badArgs[0] = fmt.Sprintf("make([]float32, %d)", ir.Prod(c.bad))
			badArgs[1] = fmt.Sprintf("%#v", c.bad)
			discard := slices.Repeat([]string{"_"}, len(call.Results))
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
`, c.pkg, c.pkg, len(c.inputs), strings.Join(call.Results, ", "), strings.Join(call.Args, ", "), strings.Join(call.Outputs, ", "), strings.Join(call.Args, ", "), bad)
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		t.Fatalf("driver: %v\n%s", err, b.Bytes())
	}
	return src
}
