package lora

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/seedcorpus"
	"github.com/rfc-project/rfc/runtime"
)

const golden = "../testdata/golden/"

// writeLora writes tensors (name → shape, values 0.1·k) as a safetensors file in dir.
func writeLora(t *testing.T, dir, name string, shapes map[string][]int) string {
	t.Helper()
	tensors := map[string]*runtime.Tensor{}
	for k, s := range shapes {
		n := 1
		for _, d := range s {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = 0.1 * float32(i%7-3)
		}
		tensors[k] = runtime.FromF32(data, s...)
	}
	path := filepath.Join(dir, name)
	if err := runtime.WriteSafetensors(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenNamings(t *testing.T) {
	kohya, err := Open(golden + "lora_a_kohya.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer kohya.Close()
	peft, err := Open(golden + "lora_a_peft")
	if err != nil {
		t.Fatal(err)
	}
	defer peft.Close()
	if len(kohya.Modules) == 0 || len(kohya.Modules) != len(peft.Modules) {
		t.Fatalf("kohya file has %d modules, PEFT folder %d", len(kohya.Modules), len(peft.Modules))
	}
	for i, m := range kohya.Modules {
		p := peft.Modules[i]
		if !m.Kohya || p.Kohya || m.Rank() != p.Rank() {
			t.Errorf("module %d: kohya %s (kohya=%v, rank %d), PEFT %s (kohya=%v, rank %d)", i, m.Stem, m.Kohya, m.Rank(), p.Stem, p.Kohya, p.Rank())
		}
		a, err := kohya.Alpha(m)
		if err != nil {
			t.Fatal(err)
		}
		b, err := peft.Alpha(p)
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("%s: alpha %g in the kohya file, %g in the PEFT folder", m.Stem, a, b)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		shapes map[string][]int
		want   []string
	}{
		{"foreign", map[string][]int{"x.hada_w1_a": {2, 2}, "lora_te_a.lora_down.weight": {2, 3}, "lora_te_a.lora_up.weight": {3, 2}}, []string{`key "x.hada_w1_a"`, "not a LoRA tensor"}},
		{"no_up", map[string][]int{"lora_unet_a.lora_down.weight": {2, 3}}, []string{`"lora_unet_a.lora_down.weight" has no up weight`}},
		{"alpha_alone", map[string][]int{"lora_unet_a.alpha": {}}, []string{`"lora_unet_a.alpha" has no lora down and up weights`}},
		{"ranks", map[string][]int{"m.lora_A.weight": {2, 3}, "m.lora_B.weight": {3, 4}}, []string{"m: down [2 3] has rank 2, up [3 4] rank 4"}},
		{"dims", map[string][]int{"m.lora_A.weight": {2, 3, 1}, "m.lora_B.weight": {3, 2}}, []string{"must have 2 or 4 dimensions"}},
		{"alpha_shape", map[string][]int{"m.lora_A.weight": {2, 3}, "m.lora_B.weight": {3, 2}, "m.alpha": {2}}, []string{`alpha "m.alpha" has shape [2]`}},
		{"empty", map[string][]int{}, []string{"no LoRA tensors"}},
	}
	for _, c := range cases {
		path := writeLora(t, dir, c.name+".safetensors", c.shapes)
		_, err := Open(path)
		if err == nil {
			t.Errorf("%s: opened", c.name)
			continue
		}
		for _, w := range append(c.want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
	if _, err := Open(filepath.Join(dir, "missing.safetensors")); err == nil || !strings.Contains(err.Error(), "missing.safetensors") {
		t.Errorf("a missing file gave %v", err)
	}
}

// sdSpecs are weight specs shaped like a pipeline's: a UNet with diffusers and ldm
// layouts under ldm's model.diffusion_model prefix, and a text encoder whose two
// layouts share text_model.
func sdSpecs() (unet, te []runtime.WeightSpec) {
	unet = []runtime.WeightSpec{
		{Key: "SD1UNet.Down.Attn.Q.weight", Param: "SD1UNet.Down.Attn.Q.weight", Shape: []int{4, 6}, Layouts: map[string]string{
			"diffusers": "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight", "ldm": "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"}},
		{Key: "SD1UNet.Down.Attn.ProjIn.weight", Param: "SD1UNet.Down.Attn.ProjIn.weight", Shape: []int{4, 4, 1, 1}, Layouts: map[string]string{
			"diffusers": "down_blocks.0.attentions.0.proj_in.weight", "ldm": "model.diffusion_model.input_blocks.1.1.proj_in.weight"}},
		{Key: "SD1UNet.Down.Attn.ProjIn.bias", Param: "SD1UNet.Down.Attn.ProjIn.bias", Shape: []int{4}, Layouts: map[string]string{
			"diffusers": "down_blocks.0.attentions.0.proj_in.bias", "ldm": "model.diffusion_model.input_blocks.1.1.proj_in.bias"}},
		{Key: "SD1UNet.Down.Res.Conv.weight", Param: "SD1UNet.Down.Res.Conv.weight", Shape: []int{4, 2, 3, 3}, Layouts: map[string]string{
			"diffusers": "down_blocks.0.resnets.0.conv1.weight", "ldm": "model.diffusion_model.input_blocks.1.0.in_layers.2.weight"}},
		{Key: "SD1UNet.Out.weight", Param: "SD1UNet.Out.weight", Shape: []int{4, 4, 3, 3}, Layouts: map[string]string{
			"diffusers": "conv_out.weight", "ldm": "model.diffusion_model.out.2.weight"}},
	}
	te = []runtime.WeightSpec{
		{Key: "CLIPTextEncoderL.L1.Q.weight", Param: "CLIPTextEncoderL.L1.Q.weight", Shape: []int{6, 6}, Layouts: map[string]string{
			"diffusers": "text_model.encoder.layers.0.self_attn.q_proj.weight", "ldm": "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight"}},
		{Key: "CLIPTextEncoderL.L1.FC1.weight", Param: "CLIPTextEncoderL.L1.FC1.weight", Shape: []int{8, 6}, Layouts: map[string]string{
			"diffusers": "text_model.encoder.layers.0.mlp.fc1.weight", "ldm": "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight"}},
		{Key: "CLIPTextEncoderL.Emb.weight", Param: "CLIPTextEncoderL.Emb.weight", Shape: []int{10, 6}, Layouts: map[string]string{
			"diffusers": "text_model.embeddings.token_embedding.weight", "ldm": "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"}},
	}
	return unet, te
}

func sdTargets() []Target {
	unet, te := sdSpecs()
	return []Target{
		{Name: "UNet", Words: []string{"unet"}, Specs: unet},
		{Name: "text encoder", Words: []string{"te", "te1", "text_encoder"}, Specs: te},
	}
}

// TestPlanNamings matches the same layers named in each community naming and checks
// that each module lands on its weight.
func TestPlanNamings(t *testing.T) {
	dir := t.TempDir()
	kohya := func(stem string, down, up []int) map[string][]int {
		return map[string][]int{stem + ".lora_down.weight": down, stem + ".lora_up.weight": up, stem + ".alpha": {}}
	}
	peft := func(stem string, down, up []int) map[string][]int {
		return map[string][]int{stem + ".lora_A.weight": down, stem + ".lora_B.weight": up}
	}
	merge := func(ms ...map[string][]int) map[string][]int {
		out := map[string][]int{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	files := map[string]map[string][]int{
		"kohya_diffusers": merge(
			kohya("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", []int{2, 6}, []int{4, 2}),
			kohya("lora_unet_down_blocks_0_attentions_0_proj_in", []int{2, 4, 1, 1}, []int{4, 2, 1, 1}),
			kohya("lora_unet_down_blocks_0_resnets_0_conv1", []int{2, 2, 3, 3}, []int{4, 2, 1, 1}),
			kohya("lora_te_text_model_encoder_layers_0_self_attn_q_proj", []int{2, 6}, []int{6, 2}),
			kohya("lora_te_text_model_encoder_layers_0_mlp_fc1", []int{3, 6}, []int{8, 3})),
		"kohya_ldm": merge(
			kohya("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q", []int{2, 6}, []int{4, 2}),
			kohya("lora_unet_input_blocks_1_1_proj_in", []int{2, 4}, []int{4, 2}),
			kohya("lora_unet_input_blocks_1_0_in_layers_2", []int{2, 2, 3, 3}, []int{4, 2, 1, 1}),
			kohya("lora_te_text_model_encoder_layers_0_self_attn_q_proj", []int{2, 6}, []int{6, 2}),
			kohya("lora_te_text_model_encoder_layers_0_mlp_fc1", []int{3, 6}, []int{8, 3})),
		"peft": merge(
			peft("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", []int{2, 6}, []int{4, 2}),
			peft("unet.down_blocks.0.attentions.0.proj_in", []int{2, 4, 1, 1}, []int{4, 2, 1, 1}),
			peft("unet.down_blocks.0.resnets.0.conv1", []int{2, 2, 3, 3}, []int{4, 2, 1, 1}),
			peft("text_encoder.text_model.encoder.layers.0.self_attn.q_proj", []int{2, 6}, []int{6, 2}),
			peft("text_encoder.text_model.encoder.layers.0.mlp.fc1", []int{3, 6}, []int{8, 3})),
		"refiners_paths": merge(
			peft("SD1UNet.Down.Attn.Q", []int{2, 6}, []int{4, 2}),
			peft("base_model.model.SD1UNet.Down.Attn.ProjIn", []int{2, 4, 1, 1}, []int{4, 2, 1, 1}),
			peft("Down.Res.Conv", []int{2, 2, 3, 3}, []int{4, 2, 1, 1}),
			peft("CLIPTextEncoderL.L1.Q", []int{2, 6}, []int{6, 2}),
			peft("L1.FC1", []int{3, 6}, []int{8, 3})),
	}
	want := [][]int{{0, 1, 3}, {0, 1}} // spec indexes adapted, per target
	for name, shapes := range files {
		f, err := Open(writeLora(t, dir, name+".safetensors", shapes))
		if err != nil {
			t.Fatal(err)
		}
		patches, err := Plan(sdTargets(), []Use{{f, 0.5}})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			f.Close()
			continue
		}
		for ti, p := range patches {
			var got []int
			for i := range p.parts {
				got = append(got, i)
			}
			slices.Sort(got)
			if !slices.Equal(got, want[ti]) {
				t.Errorf("%s: target %d: adapted weights %v", name, ti, got)
			}
		}
		if n := patches[0].Modules() + patches[1].Modules(); n != 5 {
			t.Errorf("%s: %d modules merged, want 5", name, n)
		}
		f.Close()
	}
}

// TestPlanStacksAndScales merges two files on one weight and checks the merge's linearity:
// scale 0 changes nothing, and +s then −s gives the weight back.
func TestPlanStacksAndScales(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(writeLora(t, dir, "a.safetensors", map[string][]int{
		"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": {2, 2, 3, 3},
		"lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight":   {4, 2, 1, 1},
		"lora_unet_down_blocks_0_resnets_0_conv1.alpha":            {}}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(writeLora(t, dir, "b.safetensors", map[string][]int{
		"unet.down_blocks.0.resnets.0.conv1.lora_A.weight": {3, 2, 3, 3},
		"unet.down_blocks.0.resnets.0.conv1.lora_B.weight": {4, 3}}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	base := make([]float32, 4*2*3*3)
	for i := range base {
		base[i] = float32(i) / 10
	}
	apply := func(uses ...Use) []float32 {
		t.Helper()
		patches, err := Plan(sdTargets(), uses)
		if err != nil {
			t.Fatal(err)
		}
		w := slices.Clone(base)
		if err := patches[0].Apply(3, w); err != nil { // the conv both adapt
			t.Fatal(err)
		}
		return w
	}
	if w := apply(Use{a, 0}, Use{b, 0}); !slices.Equal(w, base) {
		t.Errorf("scale 0 changed the weight: %v", w)
	}
	both := apply(Use{a, 1}, Use{b, 1})
	if slices.Equal(both, base) {
		t.Error("two LoRAs left the weight unchanged")
	}
	patches, err := Plan(sdTargets(), []Use{{a, 1}, {b, 1}, {a, -1}, {b, -1}})
	if err != nil {
		t.Fatal(err)
	}
	w := slices.Clone(base)
	if err := patches[0].Apply(3, w); err != nil {
		t.Fatal(err)
	}
	for i := range w {
		if d := w[i] - base[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("+1 then -1 moved element %d by %g", i, d)
		}
	}
	if err := patches[0].Apply(3, w[:5]); err == nil {
		t.Error("a weight of the wrong size was patched")
	}
}

func elements(s runtime.WeightSpec) int {
	n := 1
	for _, d := range s.Shape {
		n *= d
	}
	return n
}

func TestPlanErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		shapes map[string][]int
		want   []string
	}{
		{"nomatch", map[string][]int{
			"lora_unet_down_blocks_0_attentions_0_proj_inn.lora_down.weight": {2, 4},
			"lora_unet_down_blocks_0_attentions_0_proj_inn.lora_up.weight":   {4, 2},
			"lora_te_text_model_encoder_layers_0_mlp_fc2.lora_down.weight":   {2, 6},
			"lora_te_text_model_encoder_layers_0_mlp_fc2.lora_up.weight":     {8, 2}},
			[]string{"lora_unet_down_blocks_0_attentions_0_proj_inn matches no weight; nearest layer keys: \"down_blocks.0.attentions.0.proj_in\"",
				"lora_te_text_model_encoder_layers_0_mlp_fc2 matches no weight; nearest layer keys: \"text_model.encoder.layers.0.mlp.fc1\"", "the LoRA does not fit the UNet and text encoder"}},
		{"wrong_target", map[string][]int{ // a UNet word on a text encoder key
			"lora_unet_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": {2, 6},
			"lora_unet_text_model_encoder_layers_0_mlp_fc1.lora_up.weight":   {8, 2}},
			[]string{"lora_unet_text_model_encoder_layers_0_mlp_fc1 matches no weight"}},
		{"shape", map[string][]int{
			"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": {2, 5},
			"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight":   {8, 2}},
			[]string{"down [2 5] and up [8 2] do not fit weight CLIPTextEncoderL.L1.FC1.weight [8 6]: down must be [rank, 6]"}},
		{"kernel", map[string][]int{
			"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": {2, 2, 1, 1},
			"lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight":   {4, 2, 1, 1}},
			[]string{"down must be [rank, 2, 3, 3]"}},
		{"twice", map[string][]int{
			"lora_unet_input_blocks_1_1_proj_in.lora_down.weight":           {2, 4},
			"lora_unet_input_blocks_1_1_proj_in.lora_up.weight":             {4, 2},
			"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": {2, 4},
			"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight":   {4, 2}},
			[]string{"both adapt UNet SD1UNet.Down.Attn.ProjIn.weight"}},
	}
	for _, c := range cases {
		f, err := Open(writeLora(t, dir, c.name+".safetensors", c.shapes))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Plan(sdTargets(), []Use{{f, 1}})
		f.Close()
		if err == nil {
			t.Errorf("%s: planned", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error\n%s\ndoes not say %q", c.name, err, w)
			}
		}
	}
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the committed FuzzRead seed corpus")

// fuzzSeeds are valid LoRA files of both namings and broken ones.
func fuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for _, name := range []string{"lora_a_kohya.safetensors", "lora_c_kohya.safetensors", "lora_b_peft/adapter_model.safetensors"} {
		data, err := os.ReadFile(golden + name)
		if err != nil {
			t.Fatal(err)
		}
		seeds[strings.NewReplacer("/", "_", ".safetensors", "").Replace(name)] = data
	}
	encode := func(tensors map[string]*runtime.Tensor) []byte {
		var b bytes.Buffer
		if err := runtime.EncodeSafetensors(&b, tensors, nil); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	seeds["sd_kohya"] = encode(map[string]*runtime.Tensor{
		"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight":     runtime.NewTensor(2, 2, 3, 3),
		"lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight":       runtime.NewTensor(4, 2, 1, 1),
		"lora_unet_down_blocks_0_resnets_0_conv1.alpha":                runtime.FromF32([]float32{1}),
		"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": runtime.NewTensor(2, 6),
		"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight":   runtime.NewTensor(8, 2)})
	seeds["rank_mismatch"] = encode(map[string]*runtime.Tensor{
		"m.lora_A.weight": runtime.NewTensor(2, 6), "m.lora_B.weight": runtime.NewTensor(8, 3)})
	seeds["alpha_alone"] = encode(map[string]*runtime.Tensor{"lora_unet_x.alpha": runtime.FromF32([]float32{4})})
	return seeds
}

func TestFuzzSeedCorpus(t *testing.T) {
	files := map[string][]byte{}
	for name, data := range fuzzSeeds(t) {
		files[name] = seedcorpus.File(data)
	}
	seedcorpus.Sync(t, filepath.Join("testdata", "fuzz", "FuzzRead"), files, *updateSeeds, "go test ./lora -run TestFuzzSeedCorpus -update-seeds")
}

// FuzzRead reads arbitrary bytes as a LoRA file and plans it against SD-like targets:
// errors are fine, panics are not; a planned patch applies to weights of the spec sizes.
func FuzzRead(f *testing.F) {
	for _, data := range fuzzSeeds(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lf, err := Read(bytes.NewReader(data), int64(len(data)), "fuzz.safetensors")
		if err != nil {
			return
		}
		targets := sdTargets()
		patches, err := Plan(targets, []Use{{lf, 0.7}})
		if err != nil {
			return
		}
		for ti, p := range patches {
			for i, s := range targets[ti].Specs {
				if elements(s) > 1<<16 {
					continue
				}
				_ = p.Apply(i, make([]float32, elements(s)))
			}
		}
	})
}
