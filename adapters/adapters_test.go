package adapters

import (
	"encoding/json"
	"math"
	"os"
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

// The goldens come from scripts/golden/lora.py (PyTorch, Refiners' LoRA math).
const golden = "../testdata/golden/"

type goldens struct {
	outputs map[string]*runtime.Tensor
	scales  map[string]float64 // a, b, c
	config  map[string]string  // ViT settings
	input   *runtime.Tensor
	base    *runtime.SafetensorsFile
}

func loadGoldens(t *testing.T) *goldens {
	t.Helper()
	g := &goldens{outputs: map[string]*runtime.Tensor{}, scales: map[string]float64{}, config: map[string]string{}}
	f, err := runtime.OpenSafetensors(golden + "lora_output.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range f.Names() {
		if g.outputs[n], err = f.Tensor(n); err != nil {
			t.Fatal(err)
		}
	}
	meta := f.Metadata()
	for _, k := range []string{"a", "b", "c"} {
		if g.scales[k], err = strconv.ParseFloat(meta["scale_"+k], 64); err != nil {
			t.Fatalf("scale_%s: %v", k, err)
		}
	}
	var cfg map[string]int
	if err := json.Unmarshal([]byte(meta["config"]), &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range cfg {
		g.config[k] = strconv.Itoa(v)
	}
	in, err := runtime.OpenSafetensors(golden + "lora_input.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if g.input, err = in.Tensor("x"); err != nil {
		t.Fatal(err)
	}
	if g.base, err = runtime.OpenSafetensors(golden + "lora_weights.safetensors"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.base.Close() })
	return g
}

// vit elaborates the golden ViT (batch from the input) with the LoRA library loaded.
func vit(t *testing.T, g *goldens, set map[string]string) (*dsl.Program, *ir.Module) {
	t.Helper()
	prog, err := dsl.Load("../models/vit.rfn")
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	if err := AddLibrary(prog); err != nil {
		t.Fatal(dsl.Detail(err))
	}
	opts := dsl.Options{Model: "ViT", Set: map[string]string{}, Dims: map[string]int{"batch": g.input.Shape[0]}}
	for k, v := range g.config {
		opts.Set[k] = v
	}
	for k, v := range set {
		opts.Set[k] = v
	}
	m, err := prog.Elaborate(opts)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	return prog, m
}

type lora struct {
	name, path string
	scale      float64
}

// injectLoras injects LoRA files in order and returns the module and their tensors.
func injectLoras(t *testing.T, prog *dsl.Program, m *ir.Module, loras ...lora) (*ir.Module, map[string]*runtime.Tensor) {
	t.Helper()
	all := map[string]*runtime.Tensor{}
	for _, l := range loras {
		lf, err := OpenLora(golden + l.path)
		if err != nil {
			t.Fatal(err)
		}
		var tensors map[string]*runtime.Tensor
		m, tensors, err = InjectLora(m, prog, lf, LoraOptions{Name: l.name, Scale: l.scale})
		lf.Close()
		if err != nil {
			t.Fatal(dsl.Detail(err))
		}
		for k, v := range tensors {
			all[k] = v
		}
	}
	return m, all
}

// run runs m on the golden input; scalar inputs take their recorded values unless given.
func run(t *testing.T, g *goldens, m *ir.Module, tensors map[string]*runtime.Tensor, scalars map[string]float64) *runtime.Tensor {
	t.Helper()
	w, err := Weights(m, tensors, g.base)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]*runtime.Tensor{"x": g.input}
	for k, v := range scalars {
		inputs[k] = runtime.FromF32([]float32{float32(v)})
	}
	outs, err := interp.Run(m, w, ScalarInputs(m, inputs))
	if err != nil {
		t.Fatal(err)
	}
	return outs[0]
}

func maxAbsDiff(t *testing.T, a, b *runtime.Tensor) (diff, scale float64) {
	t.Helper()
	if !slices.Equal(a.Shape, b.Shape) {
		t.Fatalf("shapes %v and %v differ", a.Shape, b.Shape)
	}
	scale = 1
	for i := range a.F32 {
		if math.IsNaN(float64(a.F32[i])) {
			t.Fatalf("NaN at %d", i)
		}
		diff = max(diff, math.Abs(float64(a.F32[i]-b.F32[i])))
		scale = max(scale, math.Abs(float64(b.F32[i])))
	}
	return diff, scale
}

func merged(t *testing.T, m *ir.Module) *ir.Module {
	t.Helper()
	c := Clone(m)
	if err := passes.LoraMerge(c); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// inputOps counts the ops that depend on an input of the module: what a forward pass
// computes once load-time (parameter-only) subgraphs are hoisted.
func inputOps(m *ir.Module) int {
	dep := map[*ir.Value]bool{}
	for _, in := range m.Inputs {
		dep[in] = true
	}
	n := 0
	for _, v := range m.Body {
		for _, a := range v.Args {
			if dep[a] {
				dep[v] = true
			}
		}
		if dep[v] {
			n++
		}
	}
	return n
}

// Stacked LoRAs (kohya file, then a PEFT directory), unmerged and merged, against PyTorch;
// merged and unmerged agree within 1e-5; the merged forward has the base's op count.
func TestLoraMatchesTorch(t *testing.T) {
	g := loadGoldens(t)
	prog, base := vit(t, g, nil)
	cases := []struct {
		name  string
		loras []lora
		want  string
	}{
		{"a", []lora{{"a", "lora_a_kohya.safetensors", g.scales["a"]}}, "y_a"},
		{"ab", []lora{{"a", "lora_a_kohya.safetensors", g.scales["a"]}, {"b", "lora_b_peft", g.scales["b"]}}, "y_ab"},
		{"c_conv", []lora{{"c", "lora_c_kohya.safetensors", g.scales["c"]}}, "y_c"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, tensors := injectLoras(t, prog, base, c.loras...)
			want := g.outputs[c.want]
			unmerged := run(t, g, m, tensors, nil)
			mm := merged(t, m)
			mergedOut := run(t, g, mm, tensors, nil)
			du, s := maxAbsDiff(t, unmerged, want)
			dm, _ := maxAbsDiff(t, mergedOut, want)
			dmu, _ := maxAbsDiff(t, mergedOut, unmerged)
			t.Logf("max|Δ| unmerged vs torch %.3g, merged vs torch %.3g, merged vs unmerged %.3g (max|ref| %.3g)", du, dm, dmu, s)
			if du > 1e-4*s || dm > 1e-4*s {
				t.Errorf("against torch: unmerged %g, merged %g, tolerance %g", du, dm, 1e-4*s)
			}
			if dmu > 1e-5 {
				t.Errorf("merged and unmerged differ by %g > 1e-5", dmu)
			}
			if d, _ := maxAbsDiff(t, unmerged, g.outputs["y_base"]); d < 1e-3 {
				t.Errorf("the LoRA changes the output by only %g: the test could not fail", d)
			}
			if got, want := inputOps(mm), inputOps(base); got != want {
				t.Errorf("merged forward computes %d ops on the input, the base %d", got, want)
			}
			if len(mm.Inputs) != 1 {
				t.Errorf("merged module keeps the inputs %v; the scales should be folded", mm.Inputs)
			}
		})
	}
}

// Scale 0 gives the base output exactly, unmerged (the scale is an input: same module) and
// merged.
func TestLoraScaleZero(t *testing.T) {
	g := loadGoldens(t)
	prog, base := vit(t, g, nil)
	want := run(t, g, base, nil, nil)
	m, tensors := injectLoras(t, prog, base, lora{"a", "lora_a_kohya.safetensors", 1}, lora{"b", "lora_b_peft", 1})
	got := run(t, g, m, tensors, map[string]float64{"a_scale": 0, "b_scale": 0})
	if !slices.Equal(got.F32, want.F32) {
		d, _ := maxAbsDiff(t, got, want)
		t.Errorf("scale 0 differs from the base by %g", d)
	}
	if d, _ := maxAbsDiff(t, run(t, g, m, tensors, nil), want); d < 1e-3 {
		t.Errorf("scale 1 is as the base (Δ %g): the test could not fail", d)
	}
	m0, tensors0 := injectLoras(t, prog, base, lora{"a", "lora_a_kohya.safetensors", 0}, lora{"b", "lora_b_peft", 0})
	if got := run(t, g, merged(t, m0), tensors0, nil); !slices.Equal(got.F32, want.F32) {
		d, _ := maxAbsDiff(t, got, want)
		t.Errorf("merged at scale 0 differs from the base by %g", d)
	}
}

// The same LoRA in kohya and PEFT naming gives the same module and the same numbers.
func TestKohyaAndPeftAgree(t *testing.T) {
	g := loadGoldens(t)
	prog, base := vit(t, g, nil)
	for _, pair := range [][2]string{{"lora_a_kohya.safetensors", "lora_a_peft"}, {"lora_b_kohya.safetensors", "lora_b_peft"}} {
		mk, tk := injectLoras(t, prog, base, lora{"x", pair[0], 0.9})
		mp, tp := injectLoras(t, prog, base, lora{"x", pair[1], 0.9})
		if ir.Print(mk) != ir.Print(mp) {
			t.Errorf("%s and %s give different IR", pair[0], pair[1])
		}
		yk, yp := run(t, g, mk, tk, nil), run(t, g, mp, tp, nil)
		if !slices.Equal(yk.F32, yp.F32) {
			d, _ := maxAbsDiff(t, yk, yp)
			t.Errorf("%s and %s differ by %g", pair[0], pair[1], d)
		}
	}
}

// A PEFT file without its config takes alpha = rank; with adapter_config.json beside it
// (under the name adapter_model.safetensors) it takes lora_alpha.
func TestPeftAlphaFromConfig(t *testing.T) {
	g := loadGoldens(t)
	prog, base := vit(t, g, nil)
	dir := t.TempDir()
	data, err := os.ReadFile(golden + "lora_b_peft/adapter_model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(dir, "b.safetensors")
	os.WriteFile(alone, data, 0o644)
	lf, err := OpenLora(alone)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	m, _, err := InjectLora(base, prog, lf, LoraOptions{Name: "b", Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ir.FormatTree(m), "LinearLora(rank=2, alpha=2.0)") {
		t.Errorf("without a config, alpha should be the rank:\n%s", ir.FormatTree(m))
	}
	m, _ = injectLoras(t, prog, base, lora{"b", "lora_b_peft", 1})
	if !strings.Contains(ir.FormatTree(m), "LinearLora(rank=2, alpha=5.0)") {
		t.Errorf("the config's lora_alpha 5 is not used:\n%s", ir.FormatTree(m))
	}
}

// Eject gives back the IR text exactly, for the last adapter and for one below others.
func TestEjectRestoresIR(t *testing.T) {
	g := loadGoldens(t)
	prog, base := vit(t, g, nil)
	baseText := ir.Print(base)
	a, _ := injectLoras(t, prog, base, lora{"a", "lora_a_kohya.safetensors", 1})
	aText := ir.Print(a)
	ab, _ := injectLoras(t, prog, a, lora{"b", "lora_b_peft", 1})
	onlyB, _ := injectLoras(t, prog, base, lora{"b", "lora_b_peft", 1})
	if aText == baseText || ir.Print(ab) == aText {
		t.Fatal("injection did not change the IR")
	}
	check := func(what string, m *ir.Module, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := ir.Print(m); got != want {
			t.Errorf("%s: IR differs:\n%s", what, firstDiff(got, want))
		}
	}
	e, err := Eject(a, "a")
	check("eject a from a", e, err, baseText)
	e, err = Eject(ab, "b")
	check("eject b from a+b", e, err, aText)
	e, err = Eject(ab, "a")
	check("eject a from a+b", e, err, ir.Print(onlyB))
	e, err = Eject(e, "b")
	check("eject a, then b", e, err, baseText)
	if ir.Print(ab) == baseText {
		t.Error("ejecting changed the module it was given")
	}
	if _, err := Eject(ab, "zz"); err == nil || !strings.Contains(err.Error(), "injected: a, b") {
		t.Errorf("ejecting an unknown adapter: %v", err)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n got  " + al[i] + "\n want " + bl[i]
		}
	}
	return "lengths " + strconv.Itoa(len(al)) + " and " + strconv.Itoa(len(bl))
}

// The injected module prints and parses back to the same text; a parsed module shows its
// adapters but cannot eject them.
func TestInjectedRoundTrip(t *testing.T) {
	g := loadGoldens(t)
	prog, base := vit(t, g, nil)
	m, _ := injectLoras(t, prog, base, lora{"a", "lora_a_kohya.safetensors", 1}, lora{"c", "lora_c_kohya.safetensors", 1})
	text := ir.Print(m)
	back, err := ir.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(back); err != nil {
		t.Fatal(err)
	}
	if ir.Print(back) != text {
		t.Error("the text form does not round-trip")
	}
	if _, err := Eject(back, "a"); err == nil || !strings.Contains(err.Error(), "no record") {
		t.Errorf("eject from a parsed module: %v", err)
	}
}

// The tree shows each adapter with its name, around its target, with Refiners' names.
func TestTreeShowsAdapters(t *testing.T) {
	g := loadGoldens(t)
	prog, base := vit(t, g, nil)
	m, _ := injectLoras(t, prog, base, lora{"a", "lora_a_kohya.safetensors", 1}, lora{"b", "lora_b_peft", 1})
	tree := ir.FormatTree(m)
	for _, want := range []string{
		"(×3) LinearLora_1 … LinearLora_3: LinearLora(rank=3, alpha=2.0) [adapter a]",
		"├── LinearLora(rank=2, alpha=5.0) [adapter b]",
		"└── LinearLora(rank=3, alpha=2.0) [adapter a]",
		"MultiplyInput(input=\"b_scale\")",
	} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
	// Base weights keep their keys under their new names.
	p := m.Param("Chain_1.Residual_1.Attention.Distribute.LinearLora_2.LinearLora.Linear.weight")
	if p == nil || p.Key != "Chain_1.Residual_1.Attention.Distribute.Linear_2.weight" {
		t.Errorf("the adapted Linear's weight: %+v", p)
	}
	if p := m.Param("Chain_1.Residual_1.Attention.LinearLora.Chain.Linear_1.weight"); p == nil || p.Key != "a.Chain_1.Residual_1.Attention.Linear.down.weight" {
		t.Errorf("the LoRA's down weight: %+v", p)
	}
}

// Problems with a LoRA file are listed together, and nothing is injected.
func TestLoraErrors(t *testing.T) {
	g := loadGoldens(t)
	prog, one := vit(t, g, map[string]string{"num_layers": "1"})
	before := ir.Print(one)
	lf, err := OpenLora(golden + "lora_a_kohya.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	_, _, err = InjectLora(one, prog, lf, LoraOptions{Name: "a", Scale: 1})
	if err == nil {
		t.Fatal("no error for a LoRA of a two-layer ViT on a one-layer one")
	}
	for _, want := range []string{"lora_vit_Chain_2_Residual_1_Attention_Distribute_Linear_1", "lora_vit_Chain_2_Residual_1_Attention_Linear", "matches no layer", "nearest layer keys"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if ir.Print(one) != before || len(one.Injections) != 0 {
		t.Error("a failed injection changed the module")
	}

	_, wide := vit(t, g, map[string]string{"embedding_dim": "24"})
	_, _, err = InjectLora(wide, prog, lf, LoraOptions{Name: "a", Scale: 1})
	if err == nil || strings.Count(err.Error(), "do not fit Linear") != 8 || !strings.Contains(err.Error(), "down must be [rank, 24]") {
		t.Errorf("want 8 shape mismatches, got:\n%v", err)
	}

	// Keys of another naming, and a down weight without its up weight.
	f, err := runtime.OpenSafetensors(golden + "lora_c_kohya.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	tensors := map[string]*runtime.Tensor{}
	for _, n := range f.Names() {
		tensors[n], _ = f.Tensor(n)
	}
	f.Close()
	tensors["lora_vit_Conv2d.hada_w1_a"] = runtime.FromF32([]float32{1, 2}, 2)
	tensors["lora_vit_Reshape_1.lora_down.weight"] = runtime.FromF32([]float32{1, 2}, 1, 2)
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := runtime.WriteSafetensors(bad, tensors, nil); err != nil {
		t.Fatal(err)
	}
	_, err = OpenLora(bad)
	if err == nil || !strings.Contains(err.Error(), `"lora_vit_Conv2d.hada_w1_a"`) || !strings.Contains(err.Error(), `"lora_vit_Reshape_1.lora_down.weight" has no up weight`) {
		t.Errorf("want both bad keys listed, got:\n%v", err)
	}
}

func TestSelect(t *testing.T) {
	g := loadGoldens(t)
	_, m := vit(t, g, nil)
	cases := []struct {
		class, pattern string
		want           int
	}{
		{"Linear", "**.Attention.**", 8},
		{"Linear", "Chain_1.**", 8},
		{"Linear", "**", 16},
		{"*", "*.Residual_*.Attention.Linear", 2},
		{"Linear", "**.Distribute.Linear_[12]", 4},
		{"", "Conv2d", 1},
		{"Attention", "", 2},
		{"Linear", "Chain_1.Residual_1.Attention.Linear", 1},
	}
	for _, c := range cases {
		got, err := Select(m, c.class, c.pattern)
		if err != nil {
			t.Errorf("%s@%s: %v", c.class, c.pattern, err)
			continue
		}
		if len(got) != c.want {
			t.Errorf("%s@%s selects %d layers, want %d", c.class, c.pattern, len(got), c.want)
		}
	}
	_, err := Select(m, "Linear", "**.Atention.**")
	if err == nil || !strings.Contains(err.Error(), `"**.Atention.**"`) || !strings.Contains(err.Error(), "nearest paths:\n    Chain_1.Residual_1.Attention.") {
		t.Errorf("want the pattern and the nearest paths, got:\n%v", err)
	}
	_, err = Select(m, "Conv1d", "**")
	if err == nil || !strings.Contains(err.Error(), "no layer of class Conv1d (classes: ") {
		t.Errorf("unknown class: %v", err)
	}
	prog, m := vit(t, g, nil)
	if _, err := Inject(m, prog, Spec{Name: "x", Adapter: "LinearLora", Pattern: "**.Nothing.**"}); err == nil || !strings.Contains(err.Error(), "**.Nothing.**") {
		t.Errorf("inject with an empty selection: %v", err)
	}
}
