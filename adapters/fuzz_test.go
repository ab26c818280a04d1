package adapters

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/internal/seedcorpus"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the committed FuzzLoraFile seed corpus")

// fuzzModel is what FuzzLoraFile injects into: Linear and Conv2d layers (a grouped one too)
// and named layouts (LoRA files name layers by the unnamed keys, which are then the
// Refiners paths).
const fuzzModel = `
model M {
    input x: f32[2, 4, 3, 3]
    Conv2d(4, 6, 3, padding=1) key "conv_in"
    Conv2d(6, 6, 1, groups=2)
    Flatten(2)
    Transpose(1, 2)
    Linear(6, 8) key ldm="proj", diffusers="to_q"
    Residual {
        Linear(8, 8)
    }
}
`

// fuzzLoraSeeds are the committed seeds: files that load and inject (kohya and PEFT
// namings, with and without alpha, a conv LoRA, half precision) and files broken in each
// way the loader knows. The second value is the adapter_config.json beside it, if any.
func fuzzLoraSeeds() map[string][2][]byte {
	enc := func(ts map[string]*runtime.Tensor) []byte {
		var b bytes.Buffer
		if err := runtime.EncodeSafetensors(&b, ts, nil); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	t := func(shape ...int) *runtime.Tensor {
		x := runtime.NewTensor(shape...)
		for i := range x.F32 {
			x.F32[i] = float32(i%5)/10 - 0.2
		}
		return x
	}
	kohya := enc(map[string]*runtime.Tensor{
		"lora_unet_Linear.lora_down.weight": t(2, 6), "lora_unet_Linear.lora_up.weight": t(8, 2), "lora_unet_Linear.alpha": runtime.FromF32([]float32{4}),
		"lora_unet_Conv2d_1.lora_down.weight": t(3, 4, 3, 3), "lora_unet_Conv2d_1.lora_up.weight": t(6, 3, 1, 1),
	})
	peft := enc(map[string]*runtime.Tensor{
		"base_model.model.Residual.Linear.lora_A.weight": t(1, 8), "base_model.model.Residual.Linear.lora_B.weight": t(8, 1),
	})
	return map[string][2][]byte{
		"valid_kohya":           {kohya},
		"valid_peft_config":     {peft, []byte(`{"peft_type": "LORA", "lora_alpha": 8, "use_rslora": true}`)},
		"valid_peft_no_config":  {peft},
		"valid_conv_2d_up":      {enc(map[string]*runtime.Tensor{"Conv2d_1.lora_A.weight": t(2, 4, 3, 3), "Conv2d_1.lora_B.weight": t(6, 2)})},
		"missing_up":            {enc(map[string]*runtime.Tensor{"Linear.lora_A.weight": t(2, 6)})},
		"shape_mismatch":        {enc(map[string]*runtime.Tensor{"Linear.lora_A.weight": t(2, 7), "Linear.lora_B.weight": t(8, 2)})},
		"rank_mismatch":         {enc(map[string]*runtime.Tensor{"Linear.lora_A.weight": t(2, 6), "Linear.lora_B.weight": t(8, 3)})},
		"no_such_layer":         {enc(map[string]*runtime.Tensor{"Nope.lora_A.weight": t(2, 6), "Nope.lora_B.weight": t(8, 2)})},
		"dora":                  {enc(map[string]*runtime.Tensor{"Linear.lora_A.weight": t(2, 6), "Linear.lora_B.weight": t(8, 2), "Linear.lora_magnitude_vector": t(8)})},
		"dora_config":           {peft, []byte(`{"use_dora": true}`)},
		"loha_config":           {peft, []byte(`{"peft_type": "LOHA"}`)},
		"bad_config":            {peft, []byte(`{"lora_alpha": "eight"`)},
		"valid_grouped_conv":    {enc(map[string]*runtime.Tensor{"Conv2d_2.lora_A.weight": t(2, 6, 1, 1), "Conv2d_2.lora_B.weight": t(6, 2, 1, 1)})},
		"integer_tensor":        {enc(map[string]*runtime.Tensor{"Linear.lora_A.weight": runtime.FromI64([]int64{1, 2}, 1, 2), "Linear.lora_B.weight": t(8, 1)})},
		"not_safetensors":       {[]byte("not a file")},
		"alpha_without_weights": {enc(map[string]*runtime.Tensor{"Linear.alpha": runtime.FromF32([]float32{1})})},
	}
}

// fuzzBase is fuzzModel elaborated once, with the LoRA library.
var fuzzBase struct {
	once sync.Once
	prog *dsl.Program
	m    *ir.Module
	err  error
}

// TestFuzzLoraSeedCorpus keeps the committed corpus in step with fuzzLoraSeeds; run with
// -update-seeds to rewrite it.
func TestFuzzLoraSeedCorpus(t *testing.T) {
	files := map[string][]byte{}
	for name, s := range fuzzLoraSeeds() {
		err := loraFileCheck(t, t.TempDir(), s[0], s[1])
		if valid := strings.HasPrefix(name, "valid_"); (err == nil) != valid {
			t.Errorf("seed %s: %v, want valid=%v", name, err, valid)
		}
		files[name] = seedcorpus.File(s[0], s[1])
	}
	seedcorpus.Sync(t, filepath.Join("testdata", "fuzz", "FuzzLoraFile"), files, *updateSeeds, "go test ./adapters -run TestFuzzLoraSeedCorpus -update-seeds")
}

// FuzzLoraFile reads arbitrary bytes as a PEFT directory's adapter_model.safetensors (with
// an adapter_config.json when config is not empty) and injects what loads into a small
// model: every problem must come back as an error naming the file, never a panic; what
// injects must verify, run, and merge.
func FuzzLoraFile(f *testing.F) {
	// One directory for every input of this process: a directory per input costs more
	// than the rest of the check.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data, config []byte) {
		loraFileCheck(t, dir, data, config)
	})
}

// loraFileCheck is FuzzLoraFile's body, in dir; it returns the error of loading or
// injecting.
func loraFileCheck(t *testing.T, dir string, data, config []byte) error {
	file := filepath.Join(dir, "adapter_model.safetensors")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "adapter_config.json")
	if len(config) > 0 {
		if err := os.WriteFile(cfg, config, 0o644); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Remove(cfg); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	lf, err := OpenLora(dir)
	if err != nil {
		if !strings.Contains(err.Error(), dir) {
			t.Fatalf("the error does not name the file: %v", err)
		}
		return err
	}
	defer lf.Close()
	fuzzBase.once.Do(func() {
		fuzzBase.prog, fuzzBase.err = dsl.LoadSource("fuzz.rfn", []byte(fuzzModel))
		if fuzzBase.err == nil {
			fuzzBase.err = AddLibrary(fuzzBase.prog)
		}
		if fuzzBase.err == nil {
			fuzzBase.m, fuzzBase.err = fuzzBase.prog.Elaborate(dsl.Options{})
		}
	})
	if fuzzBase.err != nil {
		t.Fatal(dsl.Detail(fuzzBase.err))
	}
	// InjectLora leaves the module it is given as it was.
	m, tensors, err := InjectLora(fuzzBase.m, fuzzBase.prog, lf, LoraOptions{Name: "f", Scale: 0.5})
	if err != nil {
		if m != nil || tensors != nil {
			t.Fatal("InjectLora returned a module with its error")
		}
		return err
	}
	if err := ir.Verify(m); err != nil {
		t.Fatalf("the injected module does not verify: %v", err)
	}
	w := interp.Weights{}
	for _, p := range m.Params {
		if x, ok := tensors[p.Key]; ok {
			w[p] = x
			continue
		}
		x := runtime.NewTensor(p.Type.Shape.Ints()...)
		for i := range x.F32 {
			x.F32[i] = float32(math.Sin(float64(i)))
		}
		w[p] = x
	}
	x := runtime.NewTensor(2, 4, 3, 3)
	for i := range x.F32 {
		x.F32[i] = float32(i%7) - 3
	}
	in := ScalarInputs(m, map[string]*runtime.Tensor{"x": x})
	if _, err := interp.Run(m, w, in); err != nil {
		t.Fatalf("the injected module does not run: %v", err)
	}
	merged := Clone(m)
	if err := passes.Run(merged, passes.Config{Enable: []string{"lora_merge"}}); err != nil && !strings.Contains(err.Error(), "grouped convolution") {
		t.Fatalf("merging: %v", err)
	}
	return nil
}
