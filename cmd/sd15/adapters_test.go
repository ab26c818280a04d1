package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/pipeline/sd15"
	"github.com/rfc-project/rfc/runtime"
)

// The IP-Adapter and reference-only goldens come from scripts/golden/sd15_pipeline_ip.py:
// Refiners' pipeline with SD1IPAdapter (base and plus) and ReferenceOnlyControlAdapter in
// PyTorch, on the reduced models of testdata/sd15 and testdata/sd15/ip.
const (
	ipGoldens = goldens + "ip/"
	ipFiles   = reduced + "ip/"
	images    = "../../testdata/images/"
)

func readIPGoldens(t *testing.T) []golden {
	return readGoldenDir(t, ipGoldens, "sd15_pipeline_ip.py", 8, func(string) bool { return true },
		"TESTDATA/", goldens, "IP/", ipFiles, "IMAGES/", images)
}

// TestGenerateIPMatchesPyTorch runs every IP-Adapter and reference-only case (base, plus,
// with LoRAs, without guidance, from a seed, from an image, both adapters together) through the command
// and holds the final latents to 1e-3 of their largest value and the image to one 8-bit
// level, as TestGenerateMatchesPyTorch does.
func TestGenerateIPMatchesPyTorch(t *testing.T) {
	for _, g := range readIPGoldens(t) {
		t.Run(g.name, func(t *testing.T) { matchGolden(t, g, checkpoints["single-file"], 1e-3) })
	}
}

// TestIPCasesNeedTheirAdapters: each case without its image prompt or reference is far
// from its golden, so the tolerance above tests the adapters.
func TestIPCasesNeedTheirAdapters(t *testing.T) {
	for _, g := range readIPGoldens(t) {
		latents, _, _ := generateCase(t, withoutFlags(g.args, "--ip-adapter", "--image-encoder", "--ip-image", "--reference"), checkpoints["single-file"])
		if e := latentError(latents, g.latents); e < 1e-2 {
			t.Errorf("%s without its adapters is within %.2e of the golden: the adapters are not tested", g.name, e)
		}
	}
}

// TestIPAdapterScaleZero: an IP-Adapter at scale 0 gives the image without it, bit for
// bit, and the PNG names the IP-Adapter and the reference.
func TestIPAdapterScaleZero(t *testing.T) {
	base := []string{"--checkpoint", "CHECKPOINT", "--prompt", "a cat", "--steps", "2", "--seed", "3"}
	plain, _, _ := generateCase(t, base, checkpoints["single-file"])
	ip := append(slices.Clone(base), "--ip-adapter", ipFiles+"ip-adapter-plus_sd15.safetensors", "--image-encoder", ipFiles+"image_encoder",
		"--ip-image", images+"coffee.png:0")
	zero, data, _ := generateCase(t, ip, checkpoints["single-file"])
	if !slices.Equal(plain.F32, zero.F32) {
		t.Error("the IP-Adapter at scale 0 changes the latents")
	}
	params, _, err := sd15.PNGParameters(data)
	if err != nil || !strings.Contains(params, `IP-Adapter: "ip-adapter-plus_sd15:0.0"`) {
		t.Errorf("parameters %q (%v) do not name the IP-Adapter", params, err)
	}
	_, data, _ = generateCase(t, append(slices.Clone(base), "--reference", images+"coffee.png:0.3"), checkpoints["single-file"])
	if params, _, _ := sd15.PNGParameters(data); !strings.Contains(params, "Reference fidelity: 0.3") {
		t.Errorf("parameters %q do not give the reference fidelity", params)
	}
}

// TestIPBadInput: each bad IP-Adapter or reference input is one line on stderr, status 1,
// and no output file.
func TestIPBadInput(t *testing.T) {
	dir := t.TempDir()
	single := checkpoints["single-file"]
	base := ipFiles + "ip-adapter_sd15.safetensors"
	enc := ipFiles + "image_encoder"
	ip := func(file string) []string {
		return []string{"--checkpoint", single, "--ip-adapter", file, "--image-encoder", enc, "--ip-image", photoPath}
	}
	shortNoise := filepath.Join(dir, "noise.safetensors")
	runtime.WriteSafetensors(shortNoise, map[string]*runtime.Tensor{"x": runtime.NewTensor(1, 4, 8, 8),
		"reference_noise": runtime.NewTensor(2, 2, 4, 8, 8)}, nil)
	cases := []refusal{
		{"sdxl ip-adapter", ip(ipFiles + "bad/ip-adapter_sdxl_layout.safetensors"), "ip-adapter_sdxl_layout.safetensors: an SDXL IP-Adapter"},
		{"missing key", ip(ipFiles + "bad/ip-adapter_missing_key.safetensors"), `ip-adapter_missing_key.safetensors: not a Stable Diffusion 1.5 IP-Adapter checkpoint: image projection (base) and image cross-attentions: missing weight "ip_adapter.13.to_v_ip.weight"`},
		{"not an ip-adapter", ip(reduced + "diffusers/unet"), "not an SD1.5 IP-Adapter"},
		{"encoder not an encoder", []string{"--checkpoint", single, "--ip-adapter", base, "--image-encoder", base, "--ip-image", photoPath}, "not a CLIP ViT-H/14 image encoder checkpoint"},
		{"ip-adapter alone", []string{"--checkpoint", single, "--ip-adapter", base}, "three flags together"},
		{"missing ip image", []string{"--checkpoint", single, "--ip-adapter", base, "--image-encoder", enc, "--ip-image", filepath.Join(dir, "none.png")}, "none.png"},
		{"missing reference", []string{"--checkpoint", single, "--reference", filepath.Join(dir, "none.png")}, "none.png"},
		{"fidelity", []string{"--checkpoint", single, "--reference", photoPath + ":1.5"}, "fidelity must be in [0, 1]"},
		{"euler reference", []string{"--checkpoint", single, "--solver", "euler", "--reference", photoPath}, "euler solver cannot noise the reference"},
		{"reference noise short", []string{"--checkpoint", single, "--steps", "3", "--noise", shortNoise, "--reference", photoPath}, "at each of the 3 steps"},
	}
	expectRefusals(t, dir, []string{"generate", "--prompt", "x", "--steps", "2"}, cases)
}
