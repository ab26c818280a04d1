package sd15

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/imaging"
	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/runtime"
)

const controlWeights = reduced + "control/"

// TestControlThenPlain generates without control, with two ControlNets and a T2I-Adapter (the
// golden of scripts/golden/sd15_pipeline_control.py), then without again on one Pipeline:
// the controlled UNet that serves every request once loaded gives the plain UNet's latents
// bit for bit when there is no control, and the controlled request matches PyTorch.
func TestControlThenPlain(t *testing.T) {
	noise, want, args := readCase(t, "control/controlnet_stacked")
	p, err := Load(reduced+"single-file.safetensors", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	plain := requestFrom(t, args, noise)
	before, err := p.Generate(plain)
	if err != nil {
		t.Fatal(err)
	}
	controlled := plain
	for i, a := range args {
		if a != "--controlnet" {
			continue
		}
		parts := strings.Split(args[i+1], ":")
		scale, _ := strconv.ParseFloat(parts[2], 64)
		cond, err := imaging.Load(strings.Replace(parts[1], "IMAGES/", "../../testdata/images/", 1))
		if err != nil {
			t.Fatal(err)
		}
		controlled.ControlNets = append(controlled.ControlNets, ControlNet{Path: strings.Replace(parts[0], "CONTROL/", controlWeights, 1), Condition: cond, Scale: scale})
	}
	if len(controlled.ControlNets) != 2 {
		t.Fatalf("the case has %d ControlNets, want 2", len(controlled.ControlNets))
	}
	res, err := p.Generate(controlled)
	if err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelDiff(res.Latents, want.F32); !(e <= 1e-4) {
		t.Errorf("two ControlNets: latents differ from PyTorch's by %.3e of their largest value", e)
	}
	if want := `ControlNet 0: "Model: single-file, Weight: 0.8", ControlNet 1: "Model: single-file, Weight: 0.6"`; !strings.HasSuffix(res.Parameters, want) {
		t.Errorf("parameters %q, want them to end with %q", res.Parameters, want)
	}
	if p.unet != nil || p.control.unet == nil {
		t.Error("the controlled UNet should have replaced the plain one")
	}
	after, err := p.Generate(plain)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before.Latents, after.Latents) {
		t.Errorf("without control, the controlled UNet differs from the plain one (max rel %.3e)", relErrorF32(after.Latents, before.Latents))
	}
	// A scale of 0 adds zeros: the plain latents again.
	zero := controlled
	zero.ControlNets = slices.Clone(controlled.ControlNets)
	for i := range zero.ControlNets {
		zero.ControlNets[i].Scale = 0
	}
	res0, err := p.Generate(zero)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before.Latents, res0.Latents) {
		t.Error("ControlNets at scale 0 changed the latents")
	}
}

func relErrorF32(got, want []float32) float64 {
	var worst, scale float64
	for i, w := range want {
		worst = max(worst, math.Abs(float64(got[i])-float64(w)))
		scale = max(scale, math.Abs(float64(w)))
	}
	return worst / scale
}

// TestControlRequestErrors: the request's control fields are checked before anything runs.
func TestControlRequestErrors(t *testing.T) {
	p, err := Load(reduced+"single-file.safetensors", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	img, _ := imaging.New(8, 8, 3)
	cn := controlWeights + "controlnet_a/single-file.safetensors"
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{ControlNets: []ControlNet{{Path: cn, Scale: 1}}}, "no condition image"},
		{Request{ControlNets: []ControlNet{{Condition: img, Scale: 1}}}, "ControlNet 1: no path"},
		{Request{T2IAdapters: []T2IAdapter{{Path: "x", Condition: img, Scale: math.NaN()}}}, "scale NaN"},
	} {
		c.req.Prompt, c.req.Steps = "x", 1
		if _, err := p.Generate(c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	if p.control.unet != nil {
		t.Error("a refused request loaded the controlled UNet")
	}
}

// controlCase reads a golden case of sd15_pipeline_control.py as a request and the LoRAs
// its flags give.
func controlCase(t *testing.T, name string) (Request, []LoRA, []float32, *runtime.Tensor) {
	noise, want, args := readCase(t, "control/"+name)
	req := requestFrom(t, args, noise)
	paths := strings.NewReplacer("CONTROL/", controlWeights, "IMAGES/", "../../testdata/images/", "TESTDATA/", goldens)
	var loras []LoRA
	for i := 0; i+1 < len(args); i++ {
		parts := strings.Split(paths.Replace(args[i+1]), ":")
		scale := 1.0
		if len(parts) > 1 {
			if s, err := strconv.ParseFloat(parts[len(parts)-1], 64); err == nil {
				scale = s
			}
		}
		switch args[i] {
		case "--lora":
			loras = append(loras, LoRA{Path: parts[0], Scale: scale})
		case "--controlnet", "--t2i-adapter":
			cond, err := imaging.Load(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			if args[i] == "--controlnet" {
				req.ControlNets = append(req.ControlNets, ControlNet{Path: parts[0], Condition: cond, Scale: scale})
			} else {
				req.T2IAdapters = append(req.T2IAdapters, T2IAdapter{Path: parts[0], Condition: cond, Scale: scale})
			}
		}
	}
	return req, loras, noise, want
}

// TestControlWithLoRA runs the case with a ControlNet, a light T2I-Adapter and a LoRA on a
// Pipeline loaded with the LoRA and Options.Control, and on one loaded without Control (the
// controlled UNet then loads at the request, the LoRA merged again): both match PyTorch, and
// agree bit for bit.
func TestControlWithLoRA(t *testing.T) {
	req, loras, _, want := controlCase(t, "controlnet_t2i_lora")
	if len(loras) != 1 || len(req.ControlNets) != 1 || len(req.T2IAdapters) != 1 {
		t.Fatalf("the case has %d LoRAs, %d ControlNets, %d T2I-Adapters; want one of each", len(loras), len(req.ControlNets), len(req.T2IAdapters))
	}
	var latents [][]float32
	for _, control := range []bool{true, false} {
		p, err := Load(reduced+"single-file.safetensors", Options{LoRAs: loras, Control: control})
		if err != nil {
			t.Fatal(err)
		}
		if control != (p.unet == nil) || control != (p.control.unet != nil) {
			t.Errorf("Control %v: plain UNet loaded %v, controlled %v", control, p.unet != nil, p.control.unet != nil)
		}
		res, err := p.Generate(req)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		if e := testutil.RelDiff(res.Latents, want.F32); !(e <= 1e-4) {
			t.Errorf("Control %v: latents differ from PyTorch's by %.3e of their largest value", control, e)
		}
		latents = append(latents, res.Latents)
	}
	if !slices.Equal(latents[0], latents[1]) {
		t.Error("the controlled UNet loaded with the pipeline and at the request differ")
	}
}
