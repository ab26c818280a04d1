package control

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/adapters"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// The reduced ControlNets and T2I-Adapters of testdata/sd15/control, written with their
// goldens by scripts/golden/sd15_control.py (Refiners' structures in float64).
const (
	dir    = "../testdata/sd15/control/"
	sd15   = "../testdata/sd15/"
	models = "../models/"
)

// The reduced UNet's settings (scripts/golden/sd15.py REDUCED_UNET).
var unetSet = map[string]string{"channels": "[8, 16, 24, 24]", "clip_embedding_dim": "8", "num_groups": "4"}

func loadProgram(t *testing.T, file string) *dsl.Program {
	t.Helper()
	prog, err := dsl.Load(models + file)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	return prog
}

// elaborate elaborates an entry point for the shapes of the given inputs.
func elaborate(t *testing.T, prog *dsl.Program, model string, set map[string]string, inputs map[string]*runtime.Tensor) *ir.Module {
	t.Helper()
	shapes := map[string][]int{}
	for k, v := range inputs {
		shapes[k] = v.Shape
	}
	opts, err := prog.BindInputs(dsl.Options{Model: model, Set: set}, shapes)
	if err != nil {
		t.Fatal(err)
	}
	m, err := prog.Elaborate(opts)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	return m
}

func run(t *testing.T, m *ir.Module, extra map[string]*runtime.Tensor, inputs map[string]*runtime.Tensor, weights ...string) []*runtime.Tensor {
	t.Helper()
	files, err := runtime.OpenWeights(weights...)
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.CloseAll(files)
	w, err := adapters.Weights(m, extra, files...)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := interp.Run(m, w, adapters.ScalarInputs(m, inputs))
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

// maxDiff is max|got − want| and max|want|.
func maxDiff(t *testing.T, got, want *runtime.Tensor) (float64, float64) {
	t.Helper()
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	d, s := 0.0, 0.0
	for i := range want.F32 {
		d = math.Max(d, math.Abs(float64(got.F32[i])-float64(want.F32[i])))
		s = math.Max(s, math.Abs(float64(want.F32[i])))
	}
	return d, s
}

// The stand-alone ControlNet gives the 13 residuals of Refiners' Controlnet, from the
// single file and from the diffusers folder.
func TestControlnetResiduals(t *testing.T) {
	prog := loadProgram(t, "controlnet.rfn")
	in := testutil.Tensors(t, dir+"inputs.safetensors")
	// One condition per sample (the goldens' one, for both halves of the batch).
	cond := runtime.NewTensor(2, 3, 128, 192)
	copy(cond.F32, in["condition_a"].F32)
	copy(cond.F32[len(in["condition_a"].F32):], in["condition_a"].F32)
	inputs := map[string]*runtime.Tensor{"x": in["x"], "timestep": in["timestep"], "clip_text_embedding": in["clip_text_embedding"], "condition": cond}
	set := map[string]string{"condition_channels": "[4, 6, 10, 12]"}
	for k, v := range unetSet {
		set[k] = v
	}
	m := elaborate(t, prog, "SD1Controlnet", set, inputs)
	want := testutil.Tensors(t, dir+"controlnet_a_residuals.safetensors")
	for _, layout := range []string{"single-file.safetensors", "diffusers"} {
		outs := run(t, m, nil, inputs, dir+"controlnet_a/"+layout)
		worst := 0.0
		for n, o := range outs {
			d, s := maxDiff(t, o, want[fmt.Sprintf("residual_%d", n)])
			worst = math.Max(worst, d/s)
		}
		t.Logf("%s: max|Δ|/max|ref| over the 13 residuals %.3g", layout, worst)
		if worst > 1e-5 {
			t.Errorf("%s: max|Δ|/max|ref| = %g", layout, worst)
		}
	}
}

// The T2I-Adapters' encoders give Refiners' features, from every layout published.
func TestT2IFeatures(t *testing.T) {
	prog := loadProgram(t, "t2i_adapter.rfn")
	in := testutil.Tensors(t, dir+"inputs.safetensors")
	inputs := map[string]*runtime.Tensor{"x": in["condition_t2i"]}
	for _, tc := range []struct {
		model, golden string
		files         []string
	}{
		{"ConditionEncoder", "t2i_adapter", []string{"diffusers", "tencentarc.safetensors", "refiners.safetensors"}},
		{"ConditionEncoderLight", "t2i_adapter_light", []string{"diffusers", "tencentarc.safetensors"}},
	} {
		m := elaborate(t, prog, tc.model, map[string]string{"channels": "[8, 16, 24, 24]"}, inputs)
		want := testutil.Tensors(t, dir+tc.golden+"_features.safetensors")
		for _, f := range tc.files {
			outs := run(t, m, nil, inputs, dir+tc.golden+"/"+f)
			worst := 0.0
			for n, o := range outs {
				d, s := maxDiff(t, o, want[fmt.Sprintf("feature_%d", n)])
				worst = math.Max(worst, d/s)
			}
			t.Logf("%s %s: max|Δ|/max|ref| %.3g", tc.golden, f, worst)
			if worst > 1e-5 {
				t.Errorf("%s %s: max|Δ|/max|ref| = %g", tc.golden, f, worst)
			}
		}
	}
}

// injection is one adapter of a case: a ControlNet (file, condition) or a T2I-Adapter
// (its encoder's model and weights).
type injection struct {
	name       string
	scale      float64
	controlNet string // weights of a ControlNet
	condition  string // the input of inputs.safetensors it takes
	t2i        string // "ConditionEncoder" or "ConditionEncoderLight"
	t2iFile    string
}

// unetCase builds the UNet with the injections and its inputs; it returns the module,
// the adapters' weights and the inputs.
func unetCase(t *testing.T, prog *dsl.Program, injs []injection) (*ir.Module, *ir.Module, map[string]*runtime.Tensor, map[string]*runtime.Tensor) {
	t.Helper()
	in := testutil.Tensors(t, dir+"inputs.safetensors")
	inputs := map[string]*runtime.Tensor{"x": in["x"], "timestep": in["timestep"], "clip_text_embedding": in["clip_text_embedding"]}
	base := elaborate(t, prog, "SD1UNet", unetSet, inputs)
	m := base
	extra := map[string]*runtime.Tensor{}
	for _, inj := range injs {
		cond := in[inj.condition]
		if inj.condition == "condition_a2" { // one condition per half of the batch
			cond = runtime.NewTensor(2, 3, 128, 192)
			copy(cond.F32, in["condition_a"].F32)
			copy(cond.F32[len(in["condition_a"].F32):], in["condition_b"].F32)
		}
		if inj.controlNet != "" {
			c, err := OpenControlNet(inj.controlNet)
			if err != nil {
				t.Fatal(err)
			}
			var w map[string]*runtime.Tensor
			m, w, err = InjectControlNet(m, prog, c, inj.name, inj.scale, cond.Shape)
			c.Close()
			if err != nil {
				t.Fatal(dsl.Detail(err))
			}
			for k, v := range w {
				extra[k] = v
			}
			inputs[inj.name+"_condition"] = cond
			continue
		}
		tp := loadProgram(t, "t2i_adapter.rfn")
		enc := elaborate(t, tp, inj.t2i, map[string]string{"channels": "[8, 16, 24, 24]"}, map[string]*runtime.Tensor{"x": cond})
		feats := run(t, enc, nil, map[string]*runtime.Tensor{"x": cond}, inj.t2iFile)
		var err error
		if m, err = InjectT2IAdapter(m, prog, inj.name, inj.scale, 1); err != nil {
			t.Fatal(dsl.Detail(err))
		}
		for i, f := range feats {
			inputs[fmt.Sprintf("%s_features_%d", inj.name, i)] = f
		}
	}
	return base, m, extra, inputs
}

var unetCases = []struct {
	golden string
	injs   []injection
}{
	{"controlnet_a_1.0", []injection{{name: "a", scale: 1, controlNet: dir + "controlnet_a/single-file.safetensors", condition: "condition_a"}}},
	{"controlnet_a_1.0", []injection{{name: "a", scale: 1, controlNet: dir + "controlnet_a/diffusers", condition: "condition_a"}}},
	{"controlnet_a_1.0", []injection{{name: "a", scale: 1, controlNet: dir + "controlnet_a/refiners.safetensors", condition: "condition_a"}}},
	{"controlnet_a_0.5", []injection{{name: "a", scale: 0.5, controlNet: dir + "controlnet_a/diffusers", condition: "condition_a"}}},
	{"controlnet_a_per_half", []injection{{name: "a", scale: 1, controlNet: dir + "controlnet_a/single-file.safetensors", condition: "condition_a2"}}},
	{"controlnet_a_b", []injection{
		{name: "a", scale: 0.8, controlNet: dir + "controlnet_a/diffusers", condition: "condition_a"},
		{name: "b", scale: 0.6, controlNet: dir + "controlnet_b/single-file.safetensors", condition: "condition_b"},
	}},
	{"t2i_adapter", []injection{{name: "t", scale: 1, t2i: "ConditionEncoder", t2iFile: dir + "t2i_adapter/diffusers", condition: "condition_t2i"}}},
	{"t2i_adapter_0.7", []injection{{name: "t", scale: 0.7, t2i: "ConditionEncoder", t2iFile: dir + "t2i_adapter/tencentarc.safetensors", condition: "condition_t2i"}}},
	{"t2i_adapter_light", []injection{{name: "l", scale: 1, t2i: "ConditionEncoderLight", t2iFile: dir + "t2i_adapter_light/diffusers", condition: "condition_t2i"}}},
	{"controlnet_a_t2i_adapter", []injection{
		{name: "a", scale: 1, controlNet: dir + "controlnet_a/single-file.safetensors", condition: "condition_a"},
		{name: "t", scale: 0.5, t2i: "ConditionEncoder", t2iFile: dir + "t2i_adapter/refiners.safetensors", condition: "condition_t2i"},
	}},
}

// The UNet with ControlNets and T2I-Adapters injected gives Refiners' outputs (reference
// interpreter); at scale 0 it gives the base UNet bit for bit; ejecting every adapter gives
// the base module back, text-equal, and its output bit for bit.
func TestUNetWithControl(t *testing.T) {
	prog := loadProgram(t, "controlnet.rfn")
	baseOut := testutil.Tensors(t, dir+"base_output.safetensors")["y"]
	for _, tc := range unetCases {
		name := tc.golden + "/" + filepath.Base(strings.TrimSuffix(tc.injs[0].controlNet+tc.injs[0].t2iFile, "/"))
		t.Run(name, func(t *testing.T) {
			base, m, extra, inputs := unetCase(t, prog, tc.injs)
			got := run(t, m, extra, inputs, sd15+"single-file.safetensors")[0]
			want := testutil.Tensors(t, dir+tc.golden+"_output.safetensors")["y"]
			d, s := maxDiff(t, got, want)
			t.Logf("max|Δ| %.3g (max|ref| %.3g, max|ref − base| %.3g)", d, s, func() float64 { d, _ := maxDiff(t, want, baseOut); return d }())
			if d > 1e-5*s {
				t.Errorf("max|Δ| = %g > 1e-5 × %g", d, s)
			}
			// Scale 0: the base UNet exactly.
			zero := map[string]*runtime.Tensor{}
			for k, v := range inputs {
				zero[k] = v
			}
			for _, inj := range tc.injs {
				zero[inj.name+"_scale"] = runtime.FromF32([]float32{0})
			}
			baseIn := map[string]*runtime.Tensor{}
			for _, in := range base.Inputs {
				baseIn[in.Name] = inputs[in.Name]
			}
			baseRun := run(t, base, nil, baseIn, sd15+"single-file.safetensors")[0]
			z := run(t, m, extra, zero, sd15+"single-file.safetensors")[0]
			for i := range z.F32 {
				if math.Float32bits(z.F32[i]) != math.Float32bits(baseRun.F32[i]) {
					t.Fatalf("scale 0: element %d is %g, the base UNet gives %g", i, z.F32[i], baseRun.F32[i])
				}
			}
			// Eject, last first.
			e := m
			for i := len(tc.injs) - 1; i >= 0; i-- {
				var err error
				if e, err = adapters.Eject(e, tc.injs[i].name); err != nil {
					t.Fatal(err)
				}
			}
			if ir.Print(e) != ir.Print(base) {
				t.Fatal("ejecting every adapter does not give the base module back")
			}
		})
	}
}

// Files that do not fit are refused with one message naming the file and the problem.
func TestBadControlNets(t *testing.T) {
	prog := loadProgram(t, "controlnet.rfn")
	tmp := t.TempDir()
	good := testutil.Tensors(t, dir+"controlnet_a/diffusers/diffusion_pytorch_model.safetensors")
	write := func(name string, edit func(map[string]*runtime.Tensor)) string {
		m := map[string]*runtime.Tensor{}
		for k, v := range good {
			m[k] = v
		}
		edit(m)
		p := filepath.Join(tmp, name)
		if err := runtime.WriteSafetensors(p, m, nil); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := write("missing.safetensors", func(m map[string]*runtime.Tensor) { delete(m, "controlnet_down_blocks.4.bias") })
	// An SDXL-sized ControlNet: a text embedding of 2048 (here 16) and the added embedding.
	sdxl := write("sdxl.safetensors", func(m map[string]*runtime.Tensor) {
		m["add_embedding.linear_1.weight"] = runtime.NewTensor(32, 16)
		m["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"] = runtime.NewTensor(8, 16)
	})
	wide := write("wide.safetensors", func(m map[string]*runtime.Tensor) {
		m["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"] = runtime.NewTensor(8, 16)
	})
	notCN := sd15 + "diffusers/unet/diffusion_pytorch_model.safetensors"
	bgr := testutil.EditedFolder(t, dir+"controlnet_a/diffusers", filepath.Join(tmp, "bgr"), `"rgb"`, `"bgr"`)

	in := testutil.Tensors(t, dir+"inputs.safetensors")
	base := elaborate(t, prog, "SD1UNet", unetSet, map[string]*runtime.Tensor{"x": in["x"], "timestep": in["timestep"], "clip_text_embedding": in["clip_text_embedding"]})
	for _, tc := range []struct {
		name, path string
		condition  []int
		want       []string
	}{
		{"missing key", missing, []int{1, 3, 128, 192}, []string{missing, `missing weight "controlnet_down_blocks.4.bias"`}},
		{"SDXL", sdxl, []int{1, 3, 128, 192}, []string{sdxl, "an SDXL ControlNet", "add_embedding.linear_1.weight"}},
		{"wrong shape", wide, []int{1, 3, 128, 192}, []string{wide, `"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight" has shape [8, 16], the model wants [8, 8]`}},
		{"bgr", bgr, []int{1, 3, 128, 192}, []string{filepath.Join(bgr, "config.json"), `controlnet_conditioning_channel_order is "bgr"`}},
		{"not a ControlNet", notCN, []int{1, 3, 128, 192}, []string{notCN, "no ControlNet condition encoder"}},
		{"condition size", dir + "controlnet_a/diffusers", []int{1, 3, 64, 192}, []string{"the condition image is [1 3 64 192]", "wants [1 or 2, 3, 128, 192]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := OpenControlNet(tc.path)
			if err == nil {
				_, _, err = InjectControlNet(base, prog, c, "a", 1, tc.condition)
				c.Close()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	// A single file whose keys carry a prefix (model.control_model.*, as some community
	// files have) and hold the whole SD model besides (ControlNet 1.0's files) loads.
	sf := testutil.Tensors(t, dir+"controlnet_a/single-file.safetensors")
	whole := map[string]*runtime.Tensor{}
	for k, v := range sf {
		whole["model."+k] = v
	}
	for k, v := range testutil.Tensors(t, sd15+"single-file.safetensors") {
		whole[k] = v
	}
	wholePath := filepath.Join(tmp, "whole.safetensors")
	if err := runtime.WriteSafetensors(wholePath, whole, nil); err != nil {
		t.Fatal(err)
	}
	cw, err := OpenControlNet(wholePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, w, err := InjectControlNet(base, prog, cw, "a", 1, []int{1, 3, 128, 192}); err != nil || len(w) != 340 {
		t.Errorf("a prefixed single file with the whole model: %d weights, %v", len(w), err)
	}
	cw.Close()
	// A program without models/controlnet.rfn says where the adapters are.
	plain := loadProgram(t, "sd15.rfn")
	c, err := OpenControlNet(dir + "controlnet_a/diffusers")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := InjectControlNet(base, plain, c, "a", 1, []int{1, 3, 128, 192}); err == nil || !strings.Contains(err.Error(), "models/controlnet.rfn") {
		t.Errorf("got %v", err)
	}
}

// At the published sizes the models have Refiners' parameter counts and, tensor for tensor,
// the keys and shapes of the key maps that scripts/golden/sd15_control.py checked against
// the independent diffusers, cldm and TencentARC models (keys_*.tsv: Refiners' path, the
// original file's key, the diffusers key, the shape).
func TestFullSizeKeysAndCounts(t *testing.T) {
	for _, tc := range []struct {
		file, model, tsv, original string
		set                        map[string]string
		strip                      string
		count                      int
	}{
		{"controlnet.rfn", "SD1Controlnet", "keys_controlnet.tsv", "ldm",
			map[string]string{"height": "8", "width": "8", "batch": "1", "tokens": "77", "condition_height": "64", "condition_width": "64"},
			"Controlnet.", 361_279_120},
		{"t2i_adapter.rfn", "ConditionEncoder", "keys_t2i_adapter.tsv", "tencentarc",
			map[string]string{"height": "64", "width": "64", "batch": "1"}, "", 77_369_280},
		{"t2i_adapter.rfn", "ConditionEncoderLight", "keys_t2i_adapter_light.tsv", "tencentarc",
			map[string]string{"height": "64", "width": "64", "batch": "1"}, "", 18_689_200},
	} {
		t.Run(tc.model, func(t *testing.T) {
			m, err := loadProgram(t, tc.file).Elaborate(dsl.Options{Model: tc.model, Set: tc.set})
			if err != nil {
				t.Fatal(dsl.Detail(err))
			}
			got := map[string]string{}
			count := 0
			for _, p := range m.Params {
				shape := strings.Trim(strings.ReplaceAll(fmt.Sprint(p.Type.Shape.Ints()), " ", ","), "[]")
				got[strings.TrimPrefix(p.Name, tc.strip)] = p.LayoutKeys[tc.original] + "\t" + p.LayoutKeys["diffusers"] + "\t" + shape
				count += ir.Prod(p.Type.Shape.Ints())
			}
			if count != tc.count {
				t.Errorf("%d parameters, Refiners' model has %d", count, tc.count)
			}
			data, err := os.ReadFile(dir + tc.tsv)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				if strings.HasPrefix(line, "#") {
					continue
				}
				f := strings.Split(line, "\t")
				want[f[0]] = f[1] + "\t" + f[2] + "\t" + f[3]
			}
			bad := 0
			for k, w := range want {
				if got[k] != w {
					if bad++; bad <= 5 {
						t.Errorf("%s: %q, the map says %q", k, got[k], w)
					}
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d tensors, the map has %d", len(got), len(want))
			}
			t.Logf("%s: %d parameters, %d tensors as mapped", tc.model, count, len(want))
		})
	}
}

// repeatBatch stacks n copies of a batch-1 tensor.
func repeatBatch(t *runtime.Tensor, n int) *runtime.Tensor {
	shape := append([]int{n}, t.Shape[1:]...)
	out := runtime.NewTensor(shape...)
	for i := range n {
		copy(out.F32[i*len(t.F32):], t.F32)
	}
	return out
}

// addScaled does acc += scale · x.
func addScaled(acc, x *runtime.Tensor, scale float32) {
	for i, v := range x.F32 {
		acc.F32[i] += scale * v
	}
}

// A program runs each ControlNet alone (SD1Controlnet, the condition repeated for both
// halves of the batch) and each T2I-Adapter's encoder, sums their scaled outputs and gives
// them to the UNet with control inputs: Refiners' outputs; zeros give the base UNet bit
// for bit.
func TestControlInputs(t *testing.T) {
	prog := loadProgram(t, "controlnet.rfn")
	in := testutil.Tensors(t, dir+"inputs.safetensors")
	unetIn := map[string]*runtime.Tensor{"x": in["x"], "timestep": in["timestep"], "clip_text_embedding": in["clip_text_embedding"]}
	base := elaborate(t, prog, "SD1UNet", unetSet, unetIn)
	m, err := InjectInputs(base, prog)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	var names []string
	for _, v := range m.Inputs {
		names = append(names, v.Name)
	}
	if want := "x timestep clip_text_embedding control_residual_0"; !strings.HasPrefix(strings.Join(names, " "), want) || len(names) != 3+13+4 {
		t.Errorf("inputs %v", names)
	}
	zeros := func() map[string]*runtime.Tensor {
		out := map[string]*runtime.Tensor{}
		for k, v := range unetIn {
			out[k] = v
		}
		for _, v := range m.Inputs[3:] {
			out[v.Name] = runtime.NewTensor(v.Type.Shape.Ints()...)
		}
		return out
	}
	weights := sd15 + "single-file.safetensors"
	baseOut := run(t, base, nil, unetIn, weights)[0]
	z := run(t, m, nil, zeros(), weights)[0]
	for i := range z.F32 {
		if math.Float32bits(z.F32[i]) != math.Float32bits(baseOut.F32[i]) {
			t.Fatalf("zero inputs: element %d is %g, the base UNet gives %g", i, z.F32[i], baseOut.F32[i])
		}
	}

	set := map[string]string{"condition_channels": "[4, 6, 10, 12]"}
	for k, v := range unetSet {
		set[k] = v
	}
	controlNet := func(inputs map[string]*runtime.Tensor, weights string, condition *runtime.Tensor) []*runtime.Tensor {
		cin := map[string]*runtime.Tensor{"condition": repeatBatch(condition, 2)}
		for k, v := range unetIn {
			cin[k] = v
		}
		return run(t, elaborate(t, prog, "SD1Controlnet", set, cin), nil, cin, weights)
	}
	tp := loadProgram(t, "t2i_adapter.rfn")
	cond := map[string]*runtime.Tensor{"x": in["condition_t2i"]}
	t2i := run(t, elaborate(t, tp, "ConditionEncoder", map[string]string{"channels": "[8, 16, 24, 24]"}, cond), nil, cond, dir+"t2i_adapter/diffusers")
	for _, tc := range []struct {
		golden string
		add    func(inputs map[string]*runtime.Tensor)
	}{
		{"controlnet_a_b", func(inputs map[string]*runtime.Tensor) {
			for _, c := range []struct {
				file, condition string
				scale           float32
			}{{"controlnet_b/single-file.safetensors", "condition_b", 0.6}, {"controlnet_a/diffusers", "condition_a", 0.8}} {
				for n, r := range controlNet(inputs, dir+c.file, in[c.condition]) {
					addScaled(inputs[fmt.Sprintf("control_residual_%d", n)], r, c.scale)
				}
			}
		}},
		{"controlnet_a_t2i_adapter", func(inputs map[string]*runtime.Tensor) {
			for n, r := range controlNet(inputs, dir+"controlnet_a/single-file.safetensors", in["condition_a"]) {
				addScaled(inputs[fmt.Sprintf("control_residual_%d", n)], r, 1)
			}
			for i, f := range t2i {
				addScaled(inputs[fmt.Sprintf("control_features_%d", i)], repeatBatch(f, 2), 0.5)
			}
		}},
	} {
		inputs := zeros()
		tc.add(inputs)
		got := run(t, m, nil, inputs, weights)[0]
		d, s := maxDiff(t, got, testutil.Tensors(t, dir+tc.golden+"_output.safetensors")["y"])
		t.Logf("%s: max|Δ| %.3g (max|ref| %.3g)", tc.golden, d, s)
		if d > 1e-5*s {
			t.Errorf("%s: max|Δ| = %g > 1e-5 × %g", tc.golden, d, s)
		}
	}
}

// What kind of T2I-Adapter a checkpoint is, in every layout; SDXL's and other models'
// files are refused.
func TestReadT2IAdapter(t *testing.T) {
	full := T2IAdapter{Model: "ConditionEncoder", InChannels: 3, Channels: []int{8, 16, 24, 24}, NumResidualBlocks: 2}
	light := T2IAdapter{Model: "ConditionEncoderLight", InChannels: 3, Channels: []int{8, 16, 24, 24}, NumResidualBlocks: 4}
	for _, tc := range []struct {
		path string
		want T2IAdapter
	}{
		{"t2i_adapter/diffusers", full},
		{"t2i_adapter/diffusers/diffusion_pytorch_model.safetensors", full},
		{"t2i_adapter/tencentarc.safetensors", full},
		{"t2i_adapter/refiners.safetensors", full},
		{"t2i_adapter_light/diffusers", light},
		{"t2i_adapter_light/tencentarc.safetensors", light},
	} {
		got, err := ReadT2IAdapter(dir + tc.path)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		got.Path = ""
		if fmt.Sprint(*got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.path, *got, tc.want)
		}
	}
	tmp := t.TempDir()
	xl := testutil.EditedFolder(t, dir+"t2i_adapter/diffusers", filepath.Join(tmp, "xl"), `"full_adapter"`, `"full_adapter_xl"`)
	for _, tc := range []struct{ path, want string }{
		{xl, "an SDXL T2I-Adapter"},
		{dir + "controlnet_a/single-file.safetensors", "is it a T2I-Adapter?"},
		{sd15 + "refiners/unet.safetensors", "is it a T2I-Adapter?"},
	} {
		if _, err := ReadT2IAdapter(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Base(tc.path)) {
			t.Errorf("%s: got %v, want %q", tc.path, err, tc.want)
		}
	}
}

// A UNet whose sizes are chosen at run time gets ControlInputsAnySize: inputs whose sizes
// are names (the UNet's batch, height and width, and names of their own for the lower
// levels, which the compiled package checks). Package sd15 compiles it
// (pipeline/sd15/internal/*/unetcontrol) and holds it to PyTorch and to the plain UNet.
func TestControlInputsAnySize(t *testing.T) {
	prog := loadProgram(t, "controlnet.rfn")
	set := map[string]string{"tokens": "77"}
	for k, v := range unetSet {
		set[k] = v
	}
	base, err := prog.Elaborate(dsl.Options{Model: "SD1UNet", Set: set})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	if base.Input("x").Type.Shape.Static() {
		t.Fatal("the UNet has fixed sizes: the test needs run-time ones")
	}
	m, err := InjectInputs(base, prog)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	want := map[string]string{
		"control_residual_0":  "f32[batch, 8, height, width]",
		"control_residual_3":  "f32[batch, 8, height_2, width_2]",
		"control_residual_6":  "f32[batch, 16, height_4, width_4]",
		"control_residual_12": "f32[batch, 24, height_8, width_8]",
		"control_features_0":  "f32[batch, 8, height, width]",
		"control_features_3":  "f32[batch, 24, height_8, width_8]",
	}
	for name, typ := range want {
		v := m.Input(name)
		if v == nil || v.Type.String() != typ {
			t.Errorf("input %s: %v, want %s", name, v, typ)
		}
	}
	if len(m.Inputs) != 3+13+4 {
		t.Errorf("%d inputs, want 20", len(m.Inputs))
	}
	if _, err := ReadUNet(base); err == nil || !strings.Contains(err.Error(), "need the UNet's sizes") {
		t.Errorf("ReadUNet of a run-time UNet: %v, want the error asking for sizes", err)
	}
}
