package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/pipeline/sd15"
	"github.com/rfc-project/rfc/runtime"
)

// The goldens come from scripts/golden/sd15_pipeline.py: Refiners' pipeline in PyTorch on
// the reduced SD1.5 of testdata/sd15 (random weights), LoRAs unmerged.
const (
	goldens   = "../../testdata/sd15_pipeline/"
	reduced   = "../../testdata/sd15/"
	photoPath = "../../testdata/images/astronaut.png"
)

// checkpoints are the three layouts of the reduced checkpoint.
var checkpoints = map[string]string{
	"single-file": reduced + "single-file.safetensors",
	"diffusers":   reduced + "diffusers",
	"refiners":    reduced + "refiners",
}

type golden struct {
	name    string
	args    []string
	latents *runtime.Tensor
	image   *runtime.Tensor
}

func readGoldens(t *testing.T) []golden {
	return readGoldenDir(t, goldens, "sd15_pipeline.py", 10, func(name string) bool { return !strings.HasPrefix(name, "lora_") },
		"TESTDATA/", goldens, "PHOTO", photoPath)
}

// readGoldenDir reads the cases of a golden script's folder (those keep says), with the
// placeholders of their flags (old, new pairs; NOISE is the case's own file) replaced; it
// fails when fewer than least are there.
func readGoldenDir(t *testing.T, dir, script string, least int, keep func(name string) bool, placeholders ...string) []golden {
	t.Helper()
	paths, err := filepath.Glob(dir + "*.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	var out []golden
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".safetensors")
		if !keep(name) {
			continue
		}
		f, err := runtime.OpenSafetensors(path)
		if err != nil {
			t.Fatal(err)
		}
		g := golden{name: name}
		if err := json.Unmarshal([]byte(f.Metadata()["args"]), &g.args); err != nil {
			t.Fatalf("%s: args: %v", path, err)
		}
		r := strings.NewReplacer(append([]string{"NOISE", path}, placeholders...)...)
		for i, a := range g.args {
			g.args[i] = r.Replace(a)
		}
		if g.latents, err = f.Tensor("latents"); err != nil {
			t.Fatal(err)
		}
		if g.image, err = f.Tensor("image"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out = append(out, g)
	}
	if len(out) < least {
		t.Fatalf("only %d golden cases in %s: run scripts/golden/%s", len(out), dir, script)
	}
	return out
}

// matchGolden runs a case through the command on checkpoint and holds the final latents to
// tol of their largest value and the image to one 8-bit level at under 1 % of its values
// (the truncation to 8 bits turns a difference in the last float bits into a level at some
// pixels).
func matchGolden(t *testing.T, g golden, checkpoint string, tol float64) {
	t.Helper()
	latents, data, _ := generateCase(t, g.args, checkpoint)
	e := latentError(latents, g.latents)
	worst, count := pixelDiff(t, data, g.image)
	t.Logf("latents: max|Δ|/max|golden| = %.2e; image: %d values differ, by at most %d", e, count, worst)
	if !(e <= tol) {
		t.Errorf("latents differ from PyTorch's by %.3e of their largest value (tolerance %g)", e, tol)
	}
	if worst > 1 || count > len(g.image.F32)/100 {
		t.Errorf("image: %d values differ from PyTorch's, by up to %d levels", count, worst)
	}
}

// withoutFlags drops the given flags, each with its value, from a case's flags.
func withoutFlags(args []string, flags ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if slices.Contains(flags, args[i]) {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// generateCase runs sd15 generate with the case's flags on checkpoint and returns the
// latents, the PNG's bytes and stderr.
func generateCase(t *testing.T, args []string, checkpoint string, extra ...string) (*runtime.Tensor, []byte, string) {
	t.Helper()
	dir := t.TempDir()
	out, lat := filepath.Join(dir, "out.png"), filepath.Join(dir, "latents.safetensors")
	args = slices.Clone(args)
	for i, a := range args {
		if a == "CHECKPOINT" {
			args[i] = checkpoint
		}
	}
	args = append(append(args, extra...), "--latents-out", lat, "-o", out)
	var stdout, stderr bytes.Buffer
	if status := run(append([]string{"generate"}, args...), &stdout, &stderr); status != 0 {
		t.Fatalf("sd15 generate %s: status %d\n%s", strings.Join(args, " "), status, stderr.String())
	}
	latents := testutil.Tensor(t, lat, "latents")
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return latents, data, stderr.String()
}

// latentError is max|got − want| over max|want|.
func latentError(got, want *runtime.Tensor) float64 {
	if !slices.Equal(got.Shape, want.Shape) {
		return math.Inf(1)
	}
	return testutil.RelDiff(got.F32, want.F32)
}

// pixelDiff decodes a PNG and compares it with the golden [H, W, 3] image: the largest
// difference in levels and how many values differ.
func pixelDiff(t *testing.T, data []byte, want *runtime.Tensor) (int, int) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	h, w := want.Shape[0], want.Shape[1]
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("image is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	worst, count := 0, 0
	for y := range h {
		for x := range w {
			r, g, b, _ := img.At(x, y).RGBA()
			for c, v := range []uint32{r >> 8, g >> 8, b >> 8} {
				d := int(v) - int(want.F32[(y*w+x)*3+c])
				if d != 0 {
					count++
					worst = max(worst, max(d, -d))
				}
			}
		}
	}
	return worst, count
}

// TestGenerateMatchesPyTorch runs every golden case through the command (on the single
// file; the first case on all three layouts) and holds the final latents to 1e-3 of their
// largest value, and the image to one 8-bit level (the truncation to 8 bits turns a
// difference in the last float bits into a level at some pixels).
func TestGenerateMatchesPyTorch(t *testing.T) {
	for _, g := range readGoldens(t) {
		layouts := []string{"single-file"}
		if g.name == "dpm" || g.name == "lora" {
			layouts = []string{"single-file", "diffusers", "refiners"}
		}
		for _, layout := range layouts {
			t.Run(g.name+"/"+layout, func(t *testing.T) { matchGolden(t, g, checkpoints[layout], 1e-3) })
		}
	}
}

// TestLoRAChangesTheResult checks that the LoRA cases would fail without their LoRAs: the
// tolerance is far below what a LoRA changes.
func TestLoRAChangesTheResult(t *testing.T) {
	for _, g := range readGoldens(t) {
		if !strings.Contains(g.name, "lora") {
			continue
		}
		latents, _, _ := generateCase(t, withoutFlags(g.args, "--lora"), checkpoints["single-file"])
		if e := latentError(latents, g.latents); e < 1e-2 {
			t.Errorf("%s without its LoRAs is within %.2e of the golden: the LoRA is not tested", g.name, e)
		}
	}
}

// TestSeedIsReproducible generates twice with one seed: the PNG files are identical byte
// for byte and carry the parameters.
func TestSeedIsReproducible(t *testing.T) {
	args := []string{"--checkpoint", "CHECKPOINT", "--prompt", "a red \"fox\", snow: 50%", "--negative-prompt", "blur",
		"--steps", "3", "--seed", "1234", "--lora", goldens + "lora_kohya.safetensors:0.5"}
	_, a, stderr := generateCase(t, args, checkpoints["single-file"])
	_, b, _ := generateCase(t, args, checkpoints["single-file"])
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed gave two different PNG files")
	}
	params, ok, err := sd15.PNGParameters(a)
	if err != nil || !ok {
		t.Fatalf("no parameters chunk (%v)", err)
	}
	want := "a red \"fox\", snow: 50%\nNegative prompt: blur\nSteps: 3, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 1234, Size: 64x64, Model: single-file, Lora: \"lora_kohya:0.5\""
	if params != want {
		t.Errorf("parameters:\n%s\nwant:\n%s", params, want)
	}
	if !strings.Contains(stderr, "seed 1234") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr (not a terminal) should be one summary line naming the seed, got %q", stderr)
	}
	_, c, _ := generateCase(t, append(slices.Clone(args[:len(args)-4]), "--seed", "1235"), checkpoints["single-file"])
	if bytes.Equal(a, c) {
		t.Error("seeds 1234 and 1235 gave the same image")
	}
}

// TestBadInput: each bad input is one line on stderr, status 1, and no output file.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.png")
	os.WriteFile(notImage, []byte("not an image"), 0o644)
	bigNoise := filepath.Join(dir, "noise.safetensors")
	runtime.WriteSafetensors(bigNoise, map[string]*runtime.Tensor{"x": runtime.NewTensor(1, 4, 16, 16)}, nil)
	single := checkpoints["single-file"]
	cases := []refusal{
		{"missing checkpoint", []string{"--checkpoint", filepath.Join(dir, "nope.safetensors")}, "nope.safetensors: no such file"},
		{"wrong checkpoint", []string{"--checkpoint", reduced + "unet_input.safetensors"}, "not a Stable Diffusion 1.5 checkpoint"},
		{"unet only", []string{"--checkpoint", reduced + "diffusers/unet"}, "not a Stable Diffusion 1.5 checkpoint: text encoder"},
		{"size not multiple of 8", []string{"--checkpoint", single, "--width", "60"}, "--width 60: must be a positive multiple of 8"},
		{"unknown solver", []string{"--checkpoint", single, "--solver", "plms"}, `unknown solver "plms"`},
		{"unreadable image", []string{"--checkpoint", single, "--init-image", notImage}, "notes.png"},
		{"missing image", []string{"--checkpoint", single, "--init-image", filepath.Join(dir, "none.png")}, "none.png"},
		{"euler img2img", []string{"--checkpoint", single, "--solver", "euler", "--init-image", photoPath}, "euler solver cannot start from an image"},
		{"strength", []string{"--checkpoint", single, "--init-image", photoPath, "--strength", "1.5"}, "strength 1.5"},
		{"noise shape", []string{"--checkpoint", single, "--noise", bigNoise}, "noise has 1024 values, want 256"},
		{"lcm without step noise", []string{"--checkpoint", single, "--solver", "lcm", "--steps", "3", "--noise", goldens + "dpm.safetensors"}, "draws fresh noise at 2 of its steps"},
		{"lora mismatch", []string{"--checkpoint", single, "--lora", "../../testdata/golden/lora_a_kohya.safetensors"}, "matches no weight"},
		{"not png", []string{"--checkpoint", single, "-o", filepath.Join(dir, "out.jpg")}, "name it .png"},
		{"steps", []string{"--checkpoint", single, "--steps", "0"}, "--steps 0"},
	}
	expectRefusals(t, dir, []string{"generate", "--prompt", "x"}, cases, "lora mismatch")
}

// refusal is a generate command line that must fail.
type refusal struct {
	name string
	args []string
	want string // in the error
}

// expectRefusals runs generate with base, -o in dir, then each case's flags: each must exit
// with status 1 and its text in an error of one line (several for the cases named in
// multiLine: lists of problems), and write no image.
func expectRefusals(t *testing.T, dir string, base []string, cases []refusal, multiLine ...string) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "out.png")
			args := append(append(slices.Clone(base), "-o", out), c.args...)
			var stdout, stderr bytes.Buffer
			status := run(args, &stdout, &stderr)
			msg := stderr.String()
			if status != 1 || !strings.Contains(msg, c.want) {
				t.Errorf("status %d, stderr %q; want status 1 and %q", status, msg, c.want)
			}
			if !slices.Contains(multiLine, c.name) && strings.Count(strings.TrimSpace(msg), "\n") > 0 {
				t.Errorf("the error takes more than one line:\n%s", msg)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an output file was written")
				os.Remove(out)
			}
		})
	}
}

// TestTokenize prints the ids of the tokenizer's PyTorch-side goldens (OpenAI CLIP's
// tokenizer transcribed in scripts/golden/clip_tokenizer.py).
func TestTokenize(t *testing.T) {
	data, err := os.ReadFile("../../tokenizer/testdata/clip_goldens.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name, Text string
		Tokenize   []int
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, c := range cases {
		if !utf8.ValidString(c.Text) || strings.ContainsRune(c.Text, 0) || len(c.Tokenize) != 77 {
			continue // the command line takes text arguments
		}
		var stdout, stderr bytes.Buffer
		if status := run([]string{"tokenize", "--prompt", c.Text}, &stdout, &stderr); status != 0 {
			t.Fatalf("%s: status %d: %s", c.Name, status, stderr.String())
		}
		want := strings.Trim(fmt.Sprint(c.Tokenize), "[]") + "\n"
		if stdout.String() != want {
			t.Errorf("%s: sd15 tokenize printed %q, want %q", c.Name, stdout.String(), want)
		}
		checked++
	}
	if checked < 20 {
		t.Errorf("only %d prompts checked", checked)
	}
}

// TestNoCompilerDependency keeps the design rule: the command and its library link the
// runtime, the kernels and their own packages, never the compiler.
func TestNoCompilerDependency(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(pkg, "github.com/rfc-project/rfc/")
		if !ok {
			continue
		}
		switch rest {
		case "control/checkpoint": // ControlNet and T2I-Adapter files, read with the runtime alone
			continue
		case "internal/editdist": // the LoRA reader's did-you-mean hints: a leaf package
			continue
		}
		switch first, _, _ := strings.Cut(rest, "/"); first {
		case "runtime", "kernels", "imaging", "lora", "solvers", "tokenizer", "pipeline", "cmd":
		default:
			t.Errorf("sd15 links %s", pkg)
		}
	}
}
