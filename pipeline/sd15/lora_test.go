package sd15

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/lora"
	"github.com/rfc-project/rfc/runtime"
)

// TestFullSizeLoRANames writes, for every Linear and Conv2d of the full-size UNet and text
// encoder, a rank-1 LoRA module named as community files name it — kohya from the diffusers
// paths, kohya from the LDM paths, diffusers/PEFT — and checks that each lands on its own
// layer: module j adds j+1 to every element of the weight it adapts, and weight i must
// receive exactly the j of its own name.
func TestFullSizeLoRANames(t *testing.T) {
	set := modelSets[0]
	type layer struct {
		target   int // 0 UNet, 1 text encoder
		spec     int
		diffuser string // the layer's diffusers key
		ldm      string
	}
	var layers []layer
	for ti, specs := range [][]runtime.WeightSpec{set.unetSpecs, set.textSpecs} {
		for i, s := range specs {
			d, ok1 := strings.CutSuffix(s.Layouts["diffusers"], ".weight")
			l, ok2 := strings.CutSuffix(s.Layouts["ldm"], ".weight")
			if !ok1 || !ok2 || len(s.Shape) != 2 && len(s.Shape) != 4 || strings.Contains(d, "embedding") {
				continue
			}
			layers = append(layers, layer{ti, i, d, l})
		}
	}
	if len(layers) < 350 {
		t.Fatalf("only %d adaptable layers found", len(layers))
	}
	dir := t.TempDir()
	for _, naming := range []string{"kohya", "kohya_ldm", "peft"} {
		tensors := map[string]*runtime.Tensor{}
		for j, ly := range layers {
			s := [][]runtime.WeightSpec{set.unetSpecs, set.textSpecs}[ly.target][ly.spec]
			cols := 1
			for _, d := range s.Shape[1:] {
				cols *= d
			}
			down := runtime.NewTensor(append([]int{1}, s.Shape[1:]...)...)
			for k := range down.F32 {
				down.F32[k] = 1
			}
			up := runtime.NewTensor(s.Shape[0], 1)
			for k := range up.F32 {
				up.F32[k] = float32(j + 1)
			}
			word := map[int]string{0: "unet", 1: "te"}[ly.target]
			switch naming {
			case "kohya":
				stem := "lora_" + word + "_" + strings.ReplaceAll(ly.diffuser, ".", "_")
				tensors[stem+".lora_down.weight"], tensors[stem+".lora_up.weight"] = down, up
			case "kohya_ldm":
				name := strings.TrimPrefix(strings.TrimPrefix(ly.ldm, "model.diffusion_model."), "cond_stage_model.transformer.")
				stem := "lora_" + word + "_" + strings.ReplaceAll(name, ".", "_")
				tensors[stem+".lora_down.weight"], tensors[stem+".lora_up.weight"] = down, up
			case "peft":
				stem := map[int]string{0: "unet.", 1: "text_encoder."}[ly.target] + ly.diffuser
				tensors[stem+".lora_A.weight"], tensors[stem+".lora_B.weight"] = down, up
			}
		}
		path := filepath.Join(dir, naming+".safetensors")
		if err := runtime.WriteSafetensors(path, tensors, nil); err != nil {
			t.Fatal(err)
		}
		f, err := lora.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		patches, err := lora.Plan([]lora.Target{
			{Name: "UNet", Words: []string{"unet"}, Specs: set.unetSpecs},
			{Name: "text encoder", Words: []string{"te", "te1", "text_encoder"}, Specs: set.textSpecs},
		}, []lora.Use{{File: f, Scale: 1}})
		if err != nil {
			f.Close()
			t.Fatalf("%s: %v", naming, err)
		}
		if n := patches[0].Modules() + patches[1].Modules(); n != len(layers) {
			t.Errorf("%s: %d modules merged, want %d", naming, n, len(layers))
		}
		wrong := 0
		var buf []float32
		for j, ly := range layers {
			s := [][]runtime.WeightSpec{set.unetSpecs, set.textSpecs}[ly.target][ly.spec]
			n := 1
			for _, d := range s.Shape {
				n *= d
			}
			if n > len(buf) {
				buf = make([]float32, n)
			}
			w := buf[:n]
			clear(w)
			if err := patches[ly.target].Apply(ly.spec, w); err != nil {
				t.Fatal(err)
			}
			if w[0] != float32(j+1) || w[n-1] != float32(j+1) {
				if wrong++; wrong <= 5 {
					t.Errorf("%s: %s received %g, want %d", naming, ly.diffuser, w[0], j+1)
				}
			}
		}
		f.Close()
		t.Logf("%s: %d layers matched", naming, len(layers)-wrong)
	}
}
