package sd15

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/imaging"
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
	g, _ := strconv.ParseFloat(flag(args, "--guidance"), 64)
	steps, _ := strconv.Atoi(flag(args, "--steps"))
	plain := Request{Prompt: flag(args, "--prompt"), Steps: steps, Solver: flag(args, "--solver"), Guidance: g, Noise: noise}
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
	if e := relError(res.Latents, want); !(e <= 1e-4) {
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
