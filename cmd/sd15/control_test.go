package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/imaging"
	"github.com/rfc-project/rfc/runtime"
)

// The ControlNet and T2I-Adapter goldens come from scripts/golden/sd15_pipeline_control.py:
// Refiners' pipeline with its SD1ControlnetAdapter and SD1T2IAdapter (transcribed in
// sd15_control.py) on the reduced models, the adapters' reduced weights read from
// testdata/sd15/control.
const (
	controlGoldens = goldens + "control/"
	controlWeights = reduced + "control/"
)

func readControlGoldens(t *testing.T) []golden {
	return readGoldenDir(t, controlGoldens, "sd15_pipeline_control.py", 4,
		func(name string) bool { return name != "no_control_latents" && !strings.HasSuffix(name, "_weights") },
		"TESTDATA/", goldens, "CONTROL/", controlWeights, "IMAGES/", images)
}

// TestControlMatchesPyTorch runs each ControlNet / T2I-Adapter case through the command: one
// ControlNet (diffusers folder), two stacked (single files), a T2I-Adapter alone
// (TencentARC's file), a one-channel T2I-Adapter on a gray condition, and a ControlNet
// (Refiners' file) with a light T2I-Adapter and a LoRA.
// The latents are held to 1e-4 of their largest value (they agree to about 3e-6), the image
// to one 8-bit level at under 1 % of the values.
func TestControlMatchesPyTorch(t *testing.T) {
	for _, g := range readControlGoldens(t) {
		layouts := []string{"single-file"}
		if g.name == "controlnet" {
			layouts = append(layouts, "diffusers")
		}
		for _, layout := range layouts {
			t.Run(g.name+"/"+layout, func(t *testing.T) { matchGolden(t, g, checkpoints[layout], 1e-4) })
		}
	}
}

// TestControlChangesTheResult checks that the cases would fail without their adapters, and
// that the first case's noise without control gives PyTorch's plain generation.
func TestControlChangesTheResult(t *testing.T) {
	for _, g := range readControlGoldens(t) {
		args := withoutFlags(g.args, "--controlnet", "--t2i-adapter")
		latents, _, _ := generateCase(t, args, checkpoints["single-file"])
		if e := latentError(latents, g.latents); e < 1e-2 {
			t.Errorf("%s without its ControlNets and T2I-Adapters is within %.2e of the golden: they are not tested", g.name, e)
		}
		if g.name != "controlnet" {
			continue
		}
		want := testutil.Tensor(t, controlGoldens+"no_control_latents.safetensors", "latents")
		if e := latentError(latents, want); !(e <= 1e-4) {
			t.Errorf("without control: latents differ from PyTorch's by %.3e of their largest value", e)
		}
	}
}

// TestControlBadInput: each bad ControlNet or T2I-Adapter is one line on stderr, status 1,
// and no output file.
func TestControlBadInput(t *testing.T) {
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.png")
	os.WriteFile(notImage, []byte("not an image"), 0o644)
	photo := images + "astronaut.png"
	cn := controlWeights + "controlnet_a/single-file.safetensors"
	// A ControlNet's condition encoder of other widths than the compiled ones.
	otherWidths := filepath.Join(dir, "widths.safetensors")
	hint := map[string]*runtime.Tensor{}
	for i, w := range [][2]int{{5, 3}, {6, 5}, {10, 6}, {12, 10}} {
		hint[fmt.Sprintf("control_model.input_hint_block.%d.weight", 4*i)] = runtime.NewTensor(w[0], w[1], 3, 3)
	}
	if err := runtime.WriteSafetensors(otherWidths, hint, nil); err != nil {
		t.Fatal(err)
	}
	t2i := controlWeights + "t2i_adapter/tencentarc.safetensors"
	cases := []refusal{
		{"missing controlnet", []string{"--controlnet", filepath.Join(dir, "none.safetensors") + ":" + photo}, "none.safetensors: no such file"},
		{"t2i as controlnet", []string{"--controlnet", t2i + ":" + photo}, "no ControlNet condition encoder"},
		{"unet as controlnet", []string{"--controlnet", reduced + "diffusers/unet:" + photo}, "no ControlNet condition encoder"},
		{"controlnet as t2i", []string{"--t2i-adapter", cn + ":" + photo}, "is it a T2I-Adapter?"},
		{"missing t2i", []string{"--t2i-adapter", filepath.Join(dir, "t2i.safetensors") + ":" + photo}, "t2i.safetensors: no such file"},
		{"unreadable condition", []string{"--controlnet", cn + ":" + notImage}, "notes.png"},
		{"missing condition", []string{"--t2i-adapter", t2i + ":" + filepath.Join(dir, "none.png")}, "none.png"},
		{"bad scale", []string{"--controlnet", cn + ":" + photo + ":strong"}, `the scale "strong" is not a finite number`},
		{"nan scale", []string{"--t2i-adapter", t2i + ":" + photo + ":NaN"}, `the scale "NaN" is not a finite number`},
		{"no condition", []string{"--controlnet", cn}, "want PATH:COND.png[:SCALE]"},
		{"empty path", []string{"--controlnet", ":" + photo}, "with both paths"},
		{"t2i size", []string{"--width", "72", "--t2i-adapter", t2i + ":" + photo}, "multiples of 64"},
		{"not safetensors", []string{"--controlnet", controlWeights + "controlnet_a/diffusers/config.json:" + photo}, "config.json: header length"},
		{"other condition widths", []string{"--controlnet", otherWidths + ":" + photo}, "a ControlNet whose condition encoder has widths [5 6 10 12]"},
		{"with an IP-Adapter", []string{"--controlnet", cn + ":" + photo, "--ip-adapter", ipFiles + "ip-adapter_sd15.safetensors",
			"--image-encoder", ipFiles + "image_encoder", "--ip-image", photo}, "do not combine with an IP-Adapter or reference-only control"},
		{"with reference-only", []string{"--t2i-adapter", t2i + ":" + photo, "--reference", photo}, "do not combine with an IP-Adapter or reference-only control"},
	}
	expectRefusals(t, dir, []string{"generate", "--checkpoint", checkpoints["single-file"], "--prompt", "x", "--steps", "2"}, cases)
}

// TestCanny runs sd15 canny on the photos of imaging's goldens and requires OpenCV's edge
// maps (scripts/golden/imaging.py: cv2.Canny, after cv2.GaussianBlur for the blur cases)
// exactly.
func TestCanny(t *testing.T) {
	data, err := os.ReadFile("../../imaging/testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Photos struct {
			Canny []struct {
				Image     string
				Low, High float64
				Blur      *struct {
					Ksize int
					Sigma float64
				}
				File string
			}
		}
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Photos.Canny) < 4 {
		t.Fatalf("only %d canny cases in imaging's golden.json", len(g.Photos.Canny))
	}
	dir := t.TempDir()
	for _, c := range g.Photos.Canny {
		t.Run(c.File, func(t *testing.T) {
			out := filepath.Join(dir, c.File)
			args := []string{"canny", images + c.Image + ".png", "-o", out, "--low", fmt.Sprint(c.Low), "--high", fmt.Sprint(c.High)}
			if c.Blur != nil {
				args = append(args, "--blur", fmt.Sprint(c.Blur.Ksize), "--sigma", fmt.Sprint(c.Blur.Sigma))
			}
			var stdout, stderr bytes.Buffer
			if status := run(args, &stdout, &stderr); status != 0 {
				t.Fatalf("sd15 %s: status %d: %s", strings.Join(args, " "), status, stderr.String())
			}
			got, err := imaging.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := imaging.Load("../../imaging/testdata/" + c.File)
			if err != nil {
				t.Fatal(err)
			}
			if got.Width != want.Width || got.Height != want.Height {
				t.Fatalf("edge map %dx%d, OpenCV's %dx%d", got.Width, got.Height, want.Width, want.Height)
			}
			differ := 0
			for i := range got.Pix {
				if got.Pix[i] != want.Pix[i] {
					differ++
				}
			}
			edges := slices.IndexFunc(got.Pix, func(v uint8) bool { return v == 255 })
			if differ > 0 || edges < 0 {
				t.Errorf("%d of %d values differ from OpenCV's (edges found: %v)", differ, len(got.Pix), edges >= 0)
			}
		})
	}
}

// TestCannyBadInput: one line, status 1 or 2 (usage), no output file.
func TestCannyBadInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.png")
	cases := []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{filepath.Join(dir, "none.png"), "-o", out}, 1, "none.png"},
		{[]string{images + "astronaut.png", "-o", out, "--low", "300", "--high", "100"}, 1, "astronaut.png"},
		{[]string{images + "astronaut.png", "-o", out, "--blur", "4"}, 1, "--blur 4"},
		{[]string{images + "astronaut.png"}, 2, "give IN.png and -o OUT.png"},
		{[]string{images + "astronaut.png", images + "coffee.png", "-o", out}, 2, "unexpected argument"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		status := run(append([]string{"canny"}, c.args...), &stdout, &stderr)
		if status != c.status || !strings.Contains(stderr.String(), c.want) || strings.Count(strings.TrimSpace(stderr.String()), "\n") > 0 {
			t.Errorf("sd15 canny %v: status %d, stderr %q; want %d and %q", c.args, status, stderr.String(), c.status, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("sd15 canny %v wrote an output file", c.args)
			os.Remove(out)
		}
	}
}
