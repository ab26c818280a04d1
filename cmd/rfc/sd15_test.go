package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/runtime"
)

// The reduced Stable Diffusion 1.5 of testdata/sd15 (scripts/golden/sd15.py): each entry
// point of models/sd15.rfn in both engines, from the single file, the diffusers folder and
// Refiners' files, against the PyTorch goldens.
const sd15Dir = "../../testdata/sd15/"

var sd15Entries = []struct {
	model, golden, refiners string
	set                     []string
}{
	{"CLIPTextEncoderL", "clip", "text_encoder", []string{"--set", "embedding_dim=8", "--set", "num_layers=2", "--set", "num_heads=2", "--set", "feedforward_dim=16"}},
	{"SD1UNet", "unet", "unet", []string{"--set", "channels=[8,16,24,24]", "--set", "clip_embedding_dim=8", "--set", "num_groups=4"}},
	{"SD1UNet", "unet_t1", "unet", []string{"--set", "channels=[8,16,24,24]", "--set", "clip_embedding_dim=8", "--set", "num_groups=4"}},
	{"SD1Encoder", "encoder", "autoencoder", []string{"--set", "channels=[8,12,16,16]", "--set", "num_groups=4"}},
	{"SD1Decoder", "decoder", "autoencoder", []string{"--set", "channels=[8,12,16,16]", "--set", "num_groups=4"}},
}

func TestRunSD15(t *testing.T) {
	layouts := map[string]func(refiners string) string{
		"single-file": func(string) string { return sd15Dir + "single-file.safetensors" },
		"diffusers":   func(string) string { return sd15Dir + "diffusers" },
		"refiners":    func(r string) string { return sd15Dir + "refiners/" + r + ".safetensors" },
	}
	engines := []string{"interp", "compiled"}
	if testing.Short() {
		engines = engines[:1]
	}
	for _, e := range sd15Entries {
		for _, layout := range []string{"single-file", "diffusers", "refiners"} {
			for _, engine := range engines {
				t.Run(e.golden+"/"+layout+"/"+engine, func(t *testing.T) {
					args := append([]string{"--model", e.model, "--engine", engine}, e.set...)
					runGolden(t, 1e-4, "../../models/sd15.rfn", args, []string{layouts[layout](e.refiners)},
						sd15Dir+e.golden+"_input.safetensors", sd15Dir+e.golden+"_output.safetensors")
				})
			}
		}
	}
}

// A checkpoint missing one key, with one wrong shape, truncated, or of another model is
// refused with one clear message, exit 1, and no output file.
func TestRunSD15BadCheckpoints(t *testing.T) {
	dir := t.TempDir()
	tensors := testutil.Tensors(t, sd15Dir+"diffusers/unet/diffusion_pytorch_model.safetensors")
	write := func(name string, edit func(map[string]*runtime.Tensor)) string {
		m := map[string]*runtime.Tensor{}
		for k, v := range tensors {
			m[k] = v
		}
		edit(m)
		path := filepath.Join(dir, name)
		if err := runtime.WriteSafetensors(path, m, nil); err != nil {
			t.Fatal(err)
		}
		return path
	}
	missing := write("missing.safetensors", func(m map[string]*runtime.Tensor) { delete(m, "down_blocks.1.resnets.0.conv_shortcut.bias") })
	shape := write("shape.safetensors", func(m map[string]*runtime.Tensor) {
		m["mid_block.attentions.0.proj_in.weight"] = runtime.NewTensor(24, 24, 3, 3)
	})
	full, _ := os.ReadFile(sd15Dir + "diffusers/unet/diffusion_pytorch_model.safetensors")
	truncated := filepath.Join(dir, "truncated.safetensors")
	os.WriteFile(truncated, full[:len(full)/2], 0o644)
	unet := []string{"--model", "SD1UNet", "--set", "channels=[8,16,24,24]", "--set", "clip_embedding_dim=8", "--set", "num_groups=4"}
	for _, tc := range []struct {
		name, weights string
		want          []string
	}{
		{"missing key", missing, []string{`missing weight "down_blocks.1.resnets.0.conv_shortcut.bias" (layout diffusers of ` + missing, "holds 685 of the 686 weights of module SD1UNet"}},
		{"wrong shape", shape, []string{`key "mid_block.attentions.0.proj_in.weight" has shape [24, 24, 3, 3], the model wants [24, 24, 1, 1]`}},
		{"truncated", truncated, []string{truncated}},
		{"another model", sd15Dir + "diffusers/vae/diffusion_pytorch_model.safetensors", []string{"is it the checkpoint of another model?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "y", tc.name+".safetensors")
			args := append([]string{"run", "../../models/sd15.rfn"}, unet...)
			args = append(args, "--weights", tc.weights, "--input", sd15Dir+"unet_input.safetensors", "--output", out)
			_, stderr, status := rfc(t, args...)
			if status != 1 {
				t.Fatalf("status %d, want 1\n%s", status, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
				t.Errorf("a crash:\n%s", stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an output file was written")
			}
		})
	}
}
