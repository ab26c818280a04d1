package codegen

import (
	"bytes"
	"fmt"
	"go/format"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

// smallSettings gives every entry point of models/*.rfn sizes small enough for a test.
// A model without an entry here fails TestCompiledMatchesInterpreter: add one.
var smallSettings = map[string]map[string]string{
	"vit.rfn:ViT": {"embedding_dim": "64", "patch_size": "8", "image_size": "32", "num_layers": "2", "num_heads": "4", "batch": "2"},
	"vit.rfn:ViTCross": {"embedding_dim": "64", "patch_size": "8", "image_size": "32", "num_layers": "2", "num_heads": "4", "batch": "2",
		"context_dim": "48", "context_len": "5"},
	"taesd.rfn:TAESDEncoder": {"height": "16", "width": "24", "batch": "2"},
	"taesd.rfn:TAESDDecoder": {"height": "3", "width": "2", "batch": "2"},
	"taesd.rfn:TAEF2Encoder": {"height": "8", "width": "16", "batch": "2"},
	"taesd.rfn:TAEF2Decoder": {"height": "2", "width": "3", "batch": "2"},
	"clip.rfn:CLIPTextEncoderL": {"embedding_dim": "32", "num_layers": "2", "num_heads": "4", "feedforward_dim": "64",
		"vocabulary_size": "1000", "max_sequence_length": "12", "batch": "2"},
	"sd15.rfn:SinusoidalEmbedding": {"dim": "8", "n": "3"},
	"sd15.rfn:SD1UNet": {"channels": "[8, 16, 24, 24]", "clip_embedding_dim": "8", "num_groups": "4", "height": "16", "width": "8",
		"timesteps": "1", "batch": "2", "tokens": "5"},
	"sd15.rfn:SD1Encoder": {"channels": "[8, 12, 16, 16]", "num_groups": "4", "height": "16", "width": "24", "batch": "1"},
	"sd15.rfn:SD1Decoder": {"channels": "[8, 12, 16, 16]", "num_groups": "4", "height": "3", "width": "2", "batch": "2"},
	"controlnet.rfn:SD1Controlnet": {"channels": "[8, 16, 24, 24]", "clip_embedding_dim": "8", "num_groups": "4", "condition_channels": "[4, 6, 10, 12]",
		"height": "4", "width": "2", "timesteps": "1", "batch": "2", "tokens": "5", "condition_height": "32", "condition_width": "16"},
	"t2i_adapter.rfn:Downsample2d":          {"n": "2", "c": "3", "h": "8", "w": "6"},
	"t2i_adapter.rfn:ConditionEncoder":      {"channels": "[8, 16, 24, 24]", "height": "64", "width": "128", "batch": "2"},
	"t2i_adapter.rfn:ConditionEncoderLight": {"channels": "[8, 16, 24, 24]", "height": "128", "width": "64", "batch": "1"},
	"clip.rfn:CLIPImageEncoderH": {"image_size": "20", "embedding_dim": "16", "output_dim": "12", "patch_size": "4", "num_layers": "3",
		"num_attention_heads": "2", "feedforward_dim": "40", "batch": "2"},
	"ip_adapter.rfn:ImageProjection": {"clip_image_embedding_dim": "12", "clip_text_embedding_dim": "8", "batch": "2"},
	"ip_adapter.rfn:PerceiverResampler": {"latents_dim": "8", "num_attention_layers": "2", "num_attention_heads": "2", "head_dim": "6",
		"input_dim": "16", "output_dim": "8", "batch": "2", "tokens": "26"},
}

// compiledCase is one module to compile and run against the interpreter.
type compiledCase struct {
	pkg     string // Go package name and directory
	what    string // for messages
	module  *ir.Module
	weights map[string]*runtime.Tensor // by checkpoint key
	inputs  []map[string]*runtime.Tensor
}

func seeded(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(h.Sum64(), 1))
}

// randomTensor fills a tensor of type t: floats uniform in (-scale, scale), integers in
// [0, limit).
func randomTensor(r *rand.Rand, t ir.Type, scale float64, limit int) *runtime.Tensor {
	shape := t.Shape.Ints()
	if !t.DType.IsFloat() {
		data := make([]int64, ir.Prod(shape))
		for i := range data {
			data[i] = int64(r.IntN(max(limit, 1)))
		}
		return runtime.FromI64(data, shape...)
	}
	data := make([]float32, ir.Prod(shape))
	for i := range data {
		data[i] = float32((2*r.Float64() - 1) * scale)
	}
	return runtime.FromF32(data, shape...)
}

// randomWeights gives m's parameters random values by checkpoint key, scaled by fan-in so
// that activations stay in range.
func randomWeights(r *rand.Rand, m *ir.Module) map[string]*runtime.Tensor {
	weights := map[string]*runtime.Tensor{}
	for _, p := range m.Params {
		shape := p.Type.Shape.Ints()
		fanIn := 1
		if len(shape) > 1 {
			fanIn = ir.Prod(shape[1:])
		}
		weights[p.Key] = randomTensor(r, p.Type, 1/math.Sqrt(float64(fanIn)), 0)
	}
	return weights
}

// randomInputs is a random set of m's inputs, with indices valid for the embeddings they
// feed.
func randomInputs(r *rand.Rand, m *ir.Module) map[string]*runtime.Tensor {
	in := map[string]*runtime.Tensor{}
	for _, v := range m.Inputs {
		in[v.Name] = randomTensor(r, v.Type, 1, indexLimit(m, v))
	}
	return in
}

// indexLimit is the vocabulary size of the first embedding that reads input in (through
// reshapes), so that random indices are valid.
func indexLimit(m *ir.Module, in *ir.Value) int {
	root := func(v *ir.Value) *ir.Value {
		for v.Op == "reshape" {
			v = v.Args[0]
		}
		return v
	}
	for _, v := range m.Body {
		if v.Op == "embedding" && root(v.Args[0]) == in {
			return v.Args[1].Type.Shape[0].N
		}
	}
	return 2
}

// modelCases elaborates every entry point of models/*.rfn with its small settings and
// gives it random weights (scaled by fan-in so activations stay in range) and two sets of
// random inputs.
func modelCases(t *testing.T) []*compiledCase {
	files, err := filepath.Glob("../models/*.rfn")
	if err != nil || len(files) == 0 {
		t.Fatalf("no models found: %v", err)
	}
	var cases []*compiledCase
	for _, file := range files {
		prog, err := dsl.Load(file)
		if err != nil {
			t.Fatalf("%s: %v", file, dsl.Detail(err))
		}
		for _, name := range prog.ModelNames() {
			if !prog.HasInputs(name) {
				continue
			}
			key := filepath.Base(file) + ":" + name
			set, ok := smallSettings[key]
			if !ok {
				t.Errorf("no small settings for %s: add them to smallSettings", key)
				continue
			}
			m, err := prog.Elaborate(dsl.Options{Model: name, Set: set})
			if err != nil {
				t.Fatalf("%s: %v", key, dsl.Detail(err))
			}
			r := seeded(key)
			c := &compiledCase{pkg: PackageName(name), what: key, module: m, weights: randomWeights(r, m)}
			for range 2 {
				c.inputs = append(c.inputs, randomInputs(r, m))
			}
			cases = append(cases, c)
			// The same model as rfc compile makes it: after the passes, fused ops included.
			opt := *c
			opt.pkg, opt.what = c.pkg+"opt", key+" after the passes"
			if opt.module, err = prog.Elaborate(dsl.Options{Model: name, Set: set}); err != nil {
				t.Fatal(err)
			}
			if err := passes.Run(opt.module, passes.Config{Ops: Supported}); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			cases = append(cases, &opt)
			if key == "vit.rfn:ViT" {
				// pack_qkv (off by default): its weight concatenations run in prepare.
				qkv := opt
				qkv.pkg, qkv.what = c.pkg+"qkv", key+" after the passes and pack_qkv"
				if qkv.module, err = prog.Elaborate(dsl.Options{Model: name, Set: set}); err != nil {
					t.Fatal(err)
				}
				if err := passes.Run(qkv.module, passes.Config{Ops: Supported, Enable: []string{"pack_qkv"}}); err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				cases = append(cases, &qkv)
			}
		}
	}
	return cases
}

// opCases are the interpreter's golden cases (scripts/golden/interp_ops.py), which cover
// every op of the catalogue and every mode of each: their inputs and weights, plus a second
// input set so that a stale value left in the arena by the first call would show.
func opCases(t *testing.T) []*compiledCase {
	var cases []*compiledCase
	for _, oc := range testutil.OpCases(t, "../testdata/golden/interp_ops.safetensors", "../testdata/golden/interp_fused_ops.safetensors") {
		c := &compiledCase{pkg: PackageName("op_" + oc.Name), what: "interp_ops " + oc.Name, module: oc.Module, weights: oc.Params, inputs: []map[string]*runtime.Tensor{{}, oc.Inputs}}
		r := seeded(c.what)
		for _, v := range c.module.Inputs {
			golden := oc.Inputs[v.Name]
			if golden != nil && golden.DType == runtime.I64 {
				c.inputs[0][v.Name] = golden // indices must stay valid
				continue
			}
			c.inputs[0][v.Name] = randomTensor(r, v.Type, 2, 0)
		}
		cases = append(cases, c)
	}
	return cases
}

// repoRoot is the rfc module's directory (this package's parent).
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// tempModule makes a module in a temporary directory that requires rfc from this tree.
func tempModule(t *testing.T) string {
	dir := t.TempDir()
	root := repoRoot(t)
	mod := fmt.Sprintf("module rfctest\n\ngo 1.26\n\nrequire github.com/rfc-project/rfc v0.0.0\n\nreplace github.com/rfc-project/rfc => %s\n", root)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func goCommand(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	// Everything the build needs is in this tree and the module cache.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// driverIO are the functions of a test driver that read a case's input sets
// (dir/in<k>.safetensors) and write the outputs of set k (dir/out<k>.safetensors).
const driverIO = `
func inputs(dir string, n int) ([]map[string]*runtime.Tensor, error) {
	var sets []map[string]*runtime.Tensor
	for k := range n {
		set, err := runtime.ReadTensors(filepath.Join(dir, fmt.Sprintf("in%d.safetensors", k)))
		if err != nil {
			return nil, err
		}
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
`

// driverSource is a main package that, for each case, loads the generated package's weights
// from dir/<pkg>/weights.safetensors, runs Forward on in<k>.safetensors for each k and
// writes out<k>.safetensors, then prints the case's allocations per Forward.
func driverSource(t *testing.T, cases []*compiledCase, results map[string]*Result) []byte {
	var b bytes.Buffer
	b.WriteString("package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"path/filepath\"\n\tgoruntime \"runtime\"\n\t\"testing\"\n\n\t\"github.com/rfc-project/rfc/kernels\"\n\t\"github.com/rfc-project/rfc/runtime\"\n\n")
	for _, c := range cases {
		fmt.Fprintf(&b, "\t%q\n", "rfctest/"+c.pkg)
	}
	b.WriteString(")\n\n")
	b.WriteString(`func main() {
	dir := os.Args[1]
	// The kernels' own allocations, at sizes like the models': Forward can be
	// allocation-free only when they are.
	x := make([]float32, 1<<16)
	y := make([]float32, 1<<16)
	w := make([]float32, 1<<16)
	probes := []func(){
		func() { kernels.ReLU(y, x) },
		func() { kernels.GeLU(y, x, kernels.GeLUExact) },
		func() { kernels.Binary(kernels.OpAdd, y[:2048], []int{2, 16, 64}, x[:2048], []int{2, 16, 64}, w[:64], []int{64}) },
		func() { kernels.LayerNorm(y, x[:2048], 32, 64, w[:64], w[:64], 1e-5) },
		func() { kernels.GroupNorm(y, x[:4096], 1, 64, 64, 4, w[:64], w[:64], 1e-5) },
		func() { kernels.Softmax(y, x[:2048], 32, 64, 1) },
		func() { kernels.Linear(y, x[:2048], 32, 64, 256, w[:16384], w[:256]) },
		func() { kernels.BatchedMatMul(y, x, w, 8, 16, 16, 16, 256, 256) },
		func() { kernels.Attention(y, x[:2048], w[:2048], w[:2048], 2, 4, 16, 16, 16, 16, false) },
		func() {
			kernels.Conv2d(y, x[:4096], w[:36864], w[:64], kernels.Conv2dParams{N: 1, C: 64, H: 8, W: 8, K: 64, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1})
		},
		func() {
			kernels.Conv2d(y, x[:6144], w[:12288], w[:64], kernels.Conv2dParams{N: 2, C: 3, H: 32, W: 32, K: 64, KH: 8, KW: 8, StrideH: 8, StrideW: 8})
		},
		func() { kernels.UpsampleNearest(y, x[:4096], 1, 64, 8, 8, 16, 16) },
	}
	worst := 0.0
	for _, probe := range probes {
		// Warm up first: pools and the kernels' helper goroutines fill during the
		// first calls (AllocsPerRun's own warm-up is a single call).
		for range 5 {
			probe()
		}
		worst = max(worst, testing.AllocsPerRun(5, probe))
	}
	fmt.Printf("kernels %g\n", worst)
	for _, c := range cases {
		allocs, err := c.run(filepath.Join(dir, c.name))
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, err)
			os.Exit(1)
		}
		fmt.Printf("%s %g\n", c.name, allocs)
	}
	memoryCheck(dir)
	patchCheck(dir)
}
`)
	b.WriteString(driverIO)
	b.WriteString(`
var cases = []struct {
	name string
	run  func(dir string) (float64, error)
}{
`)
	for _, c := range cases {
		call := results[c.pkg].ForwardCall(c.pkg, "in")
		fmt.Fprintf(&b, `	{%q, func(dir string) (float64, error) {
		m, err := %s.Load(filepath.Join(dir, "weights.safetensors"))
		if err != nil {
			return 0, err
		}
		sets, err := inputs(dir, %d)
		if err != nil {
			return 0, err
		}
		for k, in := range sets {
			_ = in // a module without inputs (a constant) does not read it
			%s, err := m.Forward(%s)
			if err != nil {
				return 0, err
			}
			if err := write(dir, k, %s); err != nil {
				return 0, err
			}
		}
		in := sets[len(sets)-1]
		_ = in
		// Collect the garbage of loading and writing first: a collection during the
		// measured calls would empty the kernels' job pools (sync.Pool) and count their
		// refill.
		goruntime.GC()
		for range 3 {
			m.Forward(%s)
		}
		return testing.AllocsPerRun(5, func() { m.Forward(%s) }), nil
	}},
`, c.pkg, c.pkg, len(c.inputs), strings.Join(call.Results, ", "), strings.Join(call.Args, ", "), strings.Join(call.Outputs, ", "), strings.Join(call.Args, ", "), strings.Join(call.Args, ", "))
	}
	b.WriteString("}\n")
	// Load checks the planned memory before allocating: refused one byte short of it,
	// accepted at exactly it. ViT's plan is its arena and weights (no values computed by
	// Load besides).
	c := memCheckCase(cases)
	callArgs := results[c.pkg].ForwardCall(c.pkg, "in").Args
	// LoadFilesWith's Patch sees every weight once, in WeightSpecs' order and at its size,
	// before the model is built from it (doubled weights change the output), and its error
	// stops the load.
	fmt.Fprintf(&b, `
func patchCheck(dir string) {
	path := filepath.Join(dir, %[1]q, "weights.safetensors")
	files, err := runtime.OpenWeights(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer runtime.CloseAll(files)
	specs := %[1]s.WeightSpecs()
	calls, inOrder := 0, true
	patched, err := %[1]s.LoadFilesWith(runtime.LoadOptions{Patch: func(i int, w []float32) error {
		n := 1
		for _, d := range specs[i].Shape {
			n *= d
		}
		inOrder = inOrder && i == calls && n == len(w)
		calls++
		for j := range w {
			w[j] *= 2
		}
		return nil
	}}, files...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	plain, err := %[1]s.LoadFiles(files...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sets, err := inputs(filepath.Join(dir, %[1]q), 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	in := sets[0]
	a, _ := patched.Forward(%[2]s)
	b, _ := plain.Forward(%[2]s)
	differs := false
	for j := range a {
		differs = differs || a[j] != b[j]
	}
	_, refused := %[1]s.LoadFilesWith(runtime.LoadOptions{Patch: func(i int, w []float32) error {
		if i == 1 {
			return fmt.Errorf("patch refused weight %%d", i)
		}
		return nil
	}}, files...)
	fmt.Printf("patch %%d|%%d|%%v|%%v|%%v\n", calls, len(specs), inOrder, differs, refused)
}
`, c.pkg, strings.Join(callArgs, ", "))
	fmt.Fprintf(&b, `
func memoryCheck(dir string) {
	plan := int64(%[1]s.ActivationBytes + %[1]s.WeightBytes)
	restore := runtime.SetAvailableMemory(plan - 1)
	_, short := %[1]s.Load(filepath.Join(dir, %[1]q, "weights.safetensors"))
	restore()
	restore = runtime.SetAvailableMemory(plan)
	_, exact := %[1]s.Load(filepath.Join(dir, %[1]q, "weights.safetensors"))
	restore()
	fmt.Printf("memcheck %%d|%%v|%%v\n", plan, exact, short)
}
`, c.pkg)
	src, err := format.Source(b.Bytes())
	if err != nil {
		t.Fatalf("driver: %v\n%s", err, b.Bytes())
	}
	return src
}

// compare checks got against the interpreter's want: max|Δ| ≤ 1e-6·max|want| (NaN only
// where want has NaN). It returns max|Δ|.
func compare(got, want *runtime.Tensor) (float64, error) {
	if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) {
		return 0, fmt.Errorf("got a %s tensor of shape %v, want %s %v", got.DType, got.Shape, want.DType, want.Shape)
	}
	if want.DType == runtime.I64 {
		if !slices.Equal(got.I64, want.I64) {
			return 0, fmt.Errorf("got %v, want %v", got.I64, want.I64)
		}
		return 0, nil
	}
	scale := 0.0
	for _, v := range want.F32 {
		if a := math.Abs(float64(v)); !math.IsInf(a, 0) && a > scale {
			scale = a
		}
	}
	worst := 0.0
	for i, w := range want.F32 {
		g := got.F32[i]
		if g != g || w != w {
			if g == g || w == w {
				return 0, fmt.Errorf("flat index %d: got %g, want %g", i, g, w)
			}
			continue
		}
		if g == w { // equal infinities too
			continue
		}
		d := math.Abs(float64(g) - float64(w))
		if !(d <= 1e-6*scale) {
			return d, fmt.Errorf("flat index %d: got %g, want %g (|Δ| %g, tolerance %g)", i, g, w, d, 1e-6*scale)
		}
		worst = max(worst, d)
	}
	return worst, nil
}

// TestCompiledMatchesInterpreter compiles every model of models/ (at small sizes) and every
// golden op case of the interpreter into Go packages of one temporary module, builds them
// with a driver in one go build, runs each on two input sets and compares every output
// with the interpreter's. It also checks that each package is gofmt-clean, that generation
// is deterministic, that the memory plan is sound, and that Forward does not allocate.
func TestCompiledMatchesInterpreter(t *testing.T) {
	needGoBuild(t)
	models := modelCases(t)
	cases := append(slices.Clip(models), opCases(t)...)
	mod := tempModule(t)
	results := writeCases(t, mod, cases)
	for _, c := range cases {
		again, err := Generate(c.module, Options{Package: c.pkg})
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range results[c.pkg].Files {
			if !bytes.Equal(f.Data, again.Files[i].Data) {
				t.Errorf("%s: %s differs between two runs of Generate", c.what, f.Name)
			}
		}
		checkPlan(t, c.what, c.module)
	}
	checkNoEscapes(t, mod, cases)
	allocs := buildAndRun(t, mod, driverSource(t, cases, results))
	vet := []string{"vet"}
	for _, c := range models {
		vet = append(vet, "./"+c.pkg)
	}
	goCommand(t, mod, vet...)
	for _, c := range cases {
		worst := 0.0
		for k := range c.inputs {
			worst = max(worst, matchInterpreter(t, mod, c, k, c.module, fmt.Sprintf("input set %d", k)))
		}
		if !strings.HasPrefix(c.what, "interp_ops") {
			t.Logf("%s: max|Δ| vs interpreter %g, %s allocs/op", c.what, worst, allocs[c.pkg])
		}
		if allocs[c.pkg] != "0" {
			t.Errorf("%s: Forward allocates %s times per call, want 0", c.what, allocs[c.pkg])
		}
	}
	plan, rest, _ := strings.Cut(allocs["memcheck"], "|")
	exact, short, _ := strings.Cut(rest, "|")
	if mc := memCheckCase(cases); exact != "<nil>" || !strings.Contains(short, "model "+mc.module.Name+" needs "+plan+" bytes") {
		t.Errorf("%s: Load under a memory limit of its plan (%s bytes) gave %s; one byte less gave %q, want a refusal stating the plan", mc.what, plan, exact, short)
	}
	if got, want := allocs["patch"], fmt.Sprintf("%d|%d|true|true|patch refused weight 1", len(memCheckCase(cases).module.Params), len(memCheckCase(cases).module.Params)); got != want {
		t.Errorf("LoadFilesWith's Patch: got calls|specs|in order|output changed|error %q, want %q", got, want)
	}
	if allocs["kernels"] != "0" {
		t.Errorf("kernels allocate (up to %s times per call): Forward cannot be allocation-free", allocs["kernels"])
	}
}

// needGoBuild skips a test that builds generated packages where that cannot be done.
func needGoBuild(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds generated code with the go command")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
}

// writeCases generates each case's package into the module mod, checking that its files
// are gofmt-clean, and writes the case's weights and input sets where the drivers read
// them: mod/data/<pkg>/weights.safetensors and in<k>.safetensors. It returns the
// generated packages by name.
func writeCases(t *testing.T, mod string, cases []*compiledCase) map[string]*Result {
	t.Helper()
	results := map[string]*Result{}
	for _, c := range cases {
		res, err := Generate(c.module, Options{Package: c.pkg})
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if results[c.pkg] != nil {
			t.Fatalf("two cases are named %s", c.pkg)
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
		dir := filepath.Join(mod, "data", c.pkg)
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
	return results
}

// buildAndRun builds the driver program src in the module mod and runs it on mod/data;
// it returns the lines the driver printed, by their first word.
func buildAndRun(t *testing.T, mod string, src []byte) map[string]string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(mod, "driver"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "driver", "main.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(mod, "driver.bin")
	goCommand(t, mod, "build", "-o", bin, "./driver")
	out, err := exec.Command(bin, filepath.Join(mod, "data")).Output()
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
	return report
}

// weightsOf binds weights by checkpoint key to m's parameters, for the interpreter.
func weightsOf(m *ir.Module, byKey map[string]*runtime.Tensor) interp.Weights {
	w := interp.Weights{}
	for _, p := range m.Params {
		w[p] = byKey[p.Key]
	}
	return w
}

// checkOutputs compares with match the outputs the driver wrote for input set k of case c
// (mod/data/<pkg>/out<k>.safetensors) with want; where names the set in messages. It
// returns the largest difference match measured and whether every output matched.
func checkOutputs(t *testing.T, mod string, c *compiledCase, k int, where string, want []*runtime.Tensor, match func(got, want *runtime.Tensor) (float64, error)) (float64, bool) {
	t.Helper()
	got, err := runtime.ReadTensors(filepath.Join(mod, "data", c.pkg, fmt.Sprintf("out%d.safetensors", k)))
	if err != nil {
		t.Errorf("%s: %v", c.what, err)
		return 0, false
	}
	worst, ok := 0.0, true
	for i := range want {
		y := got["y"+strconv.Itoa(i)]
		if y == nil {
			t.Errorf("%s %s: the driver wrote no output %d", c.what, where, i)
			ok = false
			continue
		}
		d, err := match(y, want[i])
		if err != nil {
			t.Errorf("%s %s, output %d: %v", c.what, where, i, err)
			ok = false
		}
		worst = max(worst, d)
	}
	return worst, ok
}

// matchInterpreter checks the outputs of case c's input set k against the interpreter's
// on ref (the case's module, or the module elaborated at the set's sizes) with compare;
// it returns max|Δ|.
func matchInterpreter(t *testing.T, mod string, c *compiledCase, k int, ref *ir.Module, where string) float64 {
	t.Helper()
	want, err := interp.Run(ref, weightsOf(ref, c.weights), c.inputs[k])
	if err != nil {
		t.Errorf("%s %s: interpreter: %v", c.what, where, err)
		return 0
	}
	worst, _ := checkOutputs(t, mod, c, k, where, want, compare)
	return worst
}

// memCheckCase is the case whose Load the memory check runs: ViT when it is there.
func memCheckCase(cases []*compiledCase) *compiledCase {
	for _, c := range cases {
		if c.what == "vit.rfn:ViT" {
			return c
		}
	}
	return cases[0]
}

// checkNoEscapes compiles the generated packages with the compiler's escape analysis
// report, inlining off so that only the generated code is judged, and fails on any heap
// allocation inside Forward other than the error it returns.
func checkNoEscapes(t *testing.T, mod string, cases []*compiledCase) {
	args := []string{"build", "-gcflags=-m -l"}
	for _, c := range cases {
		args = append(args, "./"+c.pkg)
	}
	report := goCommand(t, mod, args...)
	for _, c := range cases {
		path := filepath.Join(mod, c.pkg, "model.go")
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(src), "\n")
		first := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "func (m *Model) Forward(") })
		last := first + slices.Index(lines[first:], "}")
		if first < 0 || last < first {
			t.Fatalf("%s: no Forward in model.go", c.what)
		}
		prefix := c.pkg + "/model.go:"
		for _, msg := range strings.Split(report, "\n") {
			rest, ok := strings.CutPrefix(strings.TrimPrefix(msg, "./"), prefix)
			if !ok || !(strings.Contains(msg, "escapes to heap") || strings.Contains(msg, "moved to heap")) {
				continue
			}
			lineText, _, _ := strings.Cut(rest, ":")
			n, err := strconv.Atoi(lineText)
			if err != nil || n-1 < first || n-1 > last {
				continue
			}
			if strings.Contains(lines[n-1], "fmt.Errorf(") {
				continue // building the error of a failed call
			}
			t.Errorf("%s: Forward allocates: %s\n\t%s", c.what, msg, strings.TrimSpace(lines[n-1]))
		}
	}
}

// checkPlan verifies the memory plan of m: buffers alive at the same time never overlap,
// every value fits its buffer, and the arena is no smaller than the live set at its peak.
func checkPlan(t *testing.T, what string, m *ir.Module) {
	t.Helper()
	p, err := planMemory(m, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range p.Buffers {
		if a.Offset%arenaAlign != 0 || a.Offset+a.Size > p.ArenaLen {
			t.Errorf("%s: buffer at %d of %d elements is misaligned or outside the arena of %d", what, a.Offset, a.Size, p.ArenaLen)
		}
		for _, b := range p.Buffers[i+1:] {
			live := a.First <= b.Last && b.First <= a.Last
			overlap := a.Offset < b.Offset+b.Size && b.Offset < a.Offset+a.Size
			if live && overlap && a.Size > 0 && b.Size > 0 {
				t.Errorf("%s: buffers [%d,+%d) live %d..%d and [%d,+%d) live %d..%d overlap", what, a.Offset, a.Size, a.First, a.Last, b.Offset, b.Size, b.First, b.Last)
			}
		}
		for _, v := range a.Members {
			if numElements(v.Type.Shape) != a.Size {
				t.Errorf("%s: %s (%s) does not fill its buffer of %d elements", what, v.Ref(), v.Type, a.Size)
			}
		}
	}
	if peak := p.PeakLive(len(m.Body)); p.ArenaLen < peak {
		t.Errorf("%s: arena of %d elements is below the live peak %d", what, p.ArenaLen, peak)
	}
}
