package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/runtime"
)

// ControlNets and T2I-Adapters on the reduced SD1.5 UNet through the command line
// (--controlnet, --t2i-adapter), in both engines, against the goldens of
// scripts/golden/sd15_control.py (testdata/sd15/control). The control package tests every
// case and layout with the interpreter; here each flag and each engine.
const controlDir = sd15Dir + "control/"

var unetReduced = []string{"--model", "SD1UNet", "--set", "channels=[8,16,24,24]", "--set", "clip_embedding_dim=8", "--set", "num_groups=4"}

// controlInputs writes the UNet's inputs plus the conditions the names ask for
// (NAME_condition from inputs.safetensors' condition_NAME).
func controlInputs(t *testing.T, conditions ...string) string {
	t.Helper()
	out := testutil.Tensors(t, controlDir+"inputs.safetensors", "x", "timestep", "clip_text_embedding")
	for _, c := range conditions {
		out[c+"_condition"] = testutil.Tensor(t, controlDir+"inputs.safetensors", "condition_"+c)
	}
	path := filepath.Join(t.TempDir(), "inputs.safetensors")
	if err := runtime.WriteSafetensors(path, out, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// t2iFeatures runs a T2I-Adapter's encoder on the goldens' condition with rfc run and
// returns the file of its features (y0 … y3).
func t2iFeatures(t *testing.T, model, weights string) string {
	t.Helper()
	cond := testutil.Tensor(t, controlDir+"inputs.safetensors", "condition_t2i")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "condition.safetensors"), filepath.Join(dir, "features.safetensors")
	if err := runtime.WriteSafetensors(in, map[string]*runtime.Tensor{"image": cond}, nil); err != nil {
		t.Fatal(err)
	}
	if _, stderr, status := rfc(t, "run", "../../models/t2i_adapter.rfn", "--model", model, "--set", "channels=[8,16,24,24]",
		"--weights", weights, "--input", in, "--output", out); status != 0 {
		t.Fatalf("the T2I-Adapter's encoder: status %d\n%s", status, stderr)
	}
	return out
}

func TestRunControlNetAndT2IAdapter(t *testing.T) {
	engines := []string{"interp", "compiled"}
	if testing.Short() {
		engines = engines[:1]
	}
	t2i := t2iFeatures(t, "ConditionEncoder", controlDir+"t2i_adapter/diffusers")
	light := t2iFeatures(t, "ConditionEncoderLight", controlDir+"t2i_adapter_light/tencentarc.safetensors")
	for _, tc := range []struct {
		golden     string
		flags      []string
		conditions []string
	}{
		{"controlnet_a_1.0", []string{"--controlnet", "a=" + controlDir + "controlnet_a/single-file.safetensors"}, []string{"a"}},
		{"controlnet_a_0.5", []string{"--controlnet", "a=" + controlDir + "controlnet_a/diffusers:0.5"}, []string{"a"}},
		{"controlnet_a_b", []string{"--controlnet", "a=" + controlDir + "controlnet_a/refiners.safetensors:0.8",
			"--controlnet", "b=" + controlDir + "controlnet_b/single-file.safetensors:0.6"}, []string{"a", "b"}},
		{"t2i_adapter_0.7", []string{"--t2i-adapter", "t=" + t2i + ":0.7"}, nil},
		{"t2i_adapter_light", []string{"--t2i-adapter", "l=" + light}, nil},
		{"controlnet_a_t2i_adapter", []string{"--controlnet", "a=" + controlDir + "controlnet_a/diffusers", "--t2i-adapter", "t=" + t2i + ":0.5"}, []string{"a"}},
	} {
		for _, engine := range engines {
			t.Run(tc.golden+"/"+engine, func(t *testing.T) {
				args := append(append([]string{"--engine", engine}, unetReduced...), tc.flags...)
				runGolden(t, 1e-5, "../../models/controlnet.rfn", args, []string{sd15Dir + "single-file.safetensors"},
					controlInputs(t, tc.conditions...), controlDir+tc.golden+"_output.safetensors")
			})
		}
	}
}

// A ControlNet file that does not fit, or a condition of the wrong size, is refused with
// one message, status 1 and no output file.
func TestRunControlNetErrors(t *testing.T) {
	dir := t.TempDir()
	bgr := testutil.EditedFolder(t, controlDir+"controlnet_a/diffusers", filepath.Join(dir, "bgr"), `"rgb"`, `"bgr"`)
	in := controlInputs(t, "a")
	for _, tc := range []struct {
		name, file string
		flags      []string
		want       string
	}{
		{"bgr", "../../models/controlnet.rfn", []string{"--controlnet", "a=" + bgr}, `controlnet_conditioning_channel_order is "bgr"`},
		{"a UNet as ControlNet", "../../models/controlnet.rfn", []string{"--controlnet", "a=" + sd15Dir + "diffusers/unet"}, "no ControlNet condition encoder"},
		{"condition of another name", "../../models/controlnet.rfn", []string{"--controlnet", "c=" + controlDir + "controlnet_a/diffusers"}, `unexpected input "a_condition"`},
		{"sd15.rfn alone", "../../models/sd15.rfn", []string{"--controlnet", "a=" + controlDir + "controlnet_a/diffusers"}, "models/controlnet.rfn"},
		{"features missing", "../../models/controlnet.rfn", []string{"--t2i-adapter", "t=" + controlDir + "base_output.safetensors"}, "T2I-Adapter features are y0 … y3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name, "y.safetensors")
			args := append(append([]string{"run", tc.file}, unetReduced...), tc.flags...)
			args = append(args, "--weights", sd15Dir+"single-file.safetensors", "--input", in, "--output", out)
			_, stderr, status := rfc(t, args...)
			if status != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("status %d, want 1 and %q in:\n%s", status, tc.want, stderr)
			}
			if strings.Contains(stderr, "panic") {
				t.Errorf("a crash:\n%s", stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an output file was written")
			}
		})
	}
}

// The two packages of a program that runs a ControlNet apart, in either engine: the
// ControlNet alone (SD1Controlnet: the condition once per sample) writes its residuals,
// which the UNet with --control-inputs adds (scale 1, no T2I-Adapter: zero features).
func TestRunControlNetApart(t *testing.T) {
	engines := []string{"interp", "compiled"}
	if testing.Short() {
		engines = engines[:1]
	}
	in := testutil.Tensors(t, controlDir+"inputs.safetensors")
	cond := runtime.NewTensor(2, 3, 128, 192)
	copy(cond.F32, in["condition_a"].F32)
	copy(cond.F32[len(in["condition_a"].F32):], in["condition_a"].F32)
	dir := t.TempDir()
	cnIn := filepath.Join(dir, "controlnet_inputs.safetensors")
	if err := runtime.WriteSafetensors(cnIn, map[string]*runtime.Tensor{"x": in["x"], "timestep": in["timestep"], "clip_text_embedding": in["clip_text_embedding"], "condition": cond}, nil); err != nil {
		t.Fatal(err)
	}
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			residuals := filepath.Join(dir, engine+"_residuals.safetensors")
			args := []string{"run", "../../models/controlnet.rfn", "--model", "SD1Controlnet", "--engine", engine, "--set", "channels=[8,16,24,24]", "--set", "clip_embedding_dim=8",
				"--set", "num_groups=4", "--set", "condition_channels=[4,6,10,12]", "--weights", controlDir + "controlnet_a/single-file.safetensors", "--input", cnIn, "--output", residuals}
			if _, stderr, status := rfc(t, args...); status != 0 {
				t.Fatalf("SD1Controlnet: status %d\n%s", status, stderr)
			}
			r, err := runtime.OpenSafetensors(residuals)
			if err != nil {
				t.Fatal(err)
			}
			unetIn := map[string]*runtime.Tensor{"x": in["x"], "timestep": in["timestep"], "clip_text_embedding": in["clip_text_embedding"]}
			for n := range 13 {
				if unetIn[fmt.Sprintf("control_residual_%d", n)], err = r.Tensor(fmt.Sprintf("y%d", n)); err != nil {
					t.Fatal(err)
				}
			}
			r.Close()
			for i, c := range []int{8, 16, 24, 24} {
				unetIn[fmt.Sprintf("control_features_%d", i)] = runtime.NewTensor(2, c, 16>>i, 24>>i)
			}
			path := filepath.Join(dir, engine+"_unet_inputs.safetensors")
			if err := runtime.WriteSafetensors(path, unetIn, nil); err != nil {
				t.Fatal(err)
			}
			runGolden(t, 1e-5, "../../models/controlnet.rfn", append(append([]string{"--engine", engine}, unetReduced...), "--control-inputs"),
				[]string{sd15Dir + "single-file.safetensors"}, path, controlDir+"controlnet_a_1.0_output.safetensors")
		})
	}
}
