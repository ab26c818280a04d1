package sd15

import (
	"bytes"
	"encoding/json"
	flagpkg "flag"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/imaging"
	"github.com/rfc-project/rfc/internal/seedcorpus"
	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/runtime"
)

const (
	reduced = "../../testdata/sd15/"
	goldens = "../../testdata/sd15_pipeline/"
)

// TestInfotextFormatting holds pyFloat and quote to Python's repr and sd-webui's quote
// (scripts/golden/sd15_pipeline.py writes infotext.json).
func TestInfotextFormatting(t *testing.T) {
	data, err := os.ReadFile(goldens + "infotext.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct{ Floats, Quotes [][2]string }
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	for _, f := range g.Floats {
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := pyFloat(v); got != f[1] {
			t.Errorf("pyFloat(%s) = %q, Python says %q", f[0], got, f[1])
		}
	}
	for _, q := range g.Quotes {
		if got := quote(q[0]); got != q[1] {
			t.Errorf("quote(%q) = %q, sd-webui says %q", q[0], got, q[1])
		}
	}
	if len(g.Floats) < 10 || len(g.Quotes) < 10 {
		t.Error("too few golden cases")
	}
}

// TestPNGParametersChunk writes PNGs with Latin-1 and other text: Go's decoder (which
// checks every chunk's CRC) reads them, the pixels are the image's, and the parameters
// read back.
func TestPNGParametersChunk(t *testing.T) {
	img, _ := imaging.New(3, 2, 3)
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 13)
	}
	for _, text := range []string{"a cat, café\nSteps: 3", "東京の猫\nNegative prompt: ぼやけ", "nul\x00byte", ""} {
		var b bytes.Buffer
		if err := EncodePNG(&b, img, text); err != nil {
			t.Fatal(err)
		}
		data := b.Bytes()
		m, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		for y := range 2 {
			for x := range 3 {
				r, g, bl, a := m.At(x, y).RGBA()
				i := (y*3 + x) * 3
				if uint8(r>>8) != img.Pix[i] || uint8(g>>8) != img.Pix[i+1] || uint8(bl>>8) != img.Pix[i+2] || a != 0xffff {
					t.Fatalf("%q: pixel (%d, %d) differs", text, x, y)
				}
			}
		}
		got, ok, err := PNGParameters(data)
		want := text
		if err != nil || !ok || got != want {
			t.Errorf("%q: read back %q, %v, %v", text, got, ok, err)
		}
		kind := "tEXt"
		if strings.ContainsFunc(text, func(r rune) bool { return r == 0 || r > 0xFF }) {
			kind = "iTXt"
		}
		if !bytes.Contains(data[:64], []byte(kind+"parameters\x00")) {
			t.Errorf("%q: no %s chunk right after the header", text, kind)
		}
	}
}

var updateSeeds = flagpkg.Bool("update-seeds", false, "rewrite the committed FuzzPNGParameters seed corpus")

// pngSeeds are PNG files with parameters in tEXt and iTXt, and broken ones.
func pngSeeds(t testing.TB) map[string][]byte {
	img, _ := imaging.New(1, 1, 3)
	seeds := map[string][]byte{}
	for name, text := range map[string]string{"text": "a\nSteps: 1", "itxt": "東京"} {
		var b bytes.Buffer
		if err := EncodePNG(&b, img, text); err != nil {
			t.Fatal(err)
		}
		seeds[name] = b.Bytes()
	}
	seeds["truncated_chunk"] = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x05tEXtpar")
	seeds["bad_crc"] = append(slices.Clone(seeds["text"][:45]), 0, 0, 0, 0)
	return seeds
}

func TestFuzzSeedCorpus(t *testing.T) {
	files := map[string][]byte{}
	for name, data := range pngSeeds(t) {
		files[name] = seedcorpus.File(data)
	}
	seedcorpus.Sync(t, filepath.Join("testdata", "fuzz", "FuzzPNGParameters"), files, *updateSeeds, "go test ./pipeline/sd15 -run TestFuzzSeedCorpus -update-seeds")
}

// FuzzPNGParameters reads arbitrary bytes as a PNG's parameters: errors are fine, panics
// are not.
func FuzzPNGParameters(f *testing.F) {
	for _, data := range pngSeeds(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		PNGParameters(data)
	})
}

// TestComponentsAgree: the reduced checkpoint's three layouts are matched to the reduced
// set of models.
func TestComponentsAgree(t *testing.T) {
	for _, ckpt := range []string{"single-file.safetensors", "diffusers", "refiners"} {
		files, err := runtime.OpenWeights(reduced + ckpt)
		if err != nil {
			t.Fatal(err)
		}
		set, err := matchSet(ckpt, files)
		runtime.CloseAll(files)
		if err != nil || set != modelSets[1] {
			t.Errorf("%s: matched %v, %v", ckpt, set, err)
		}
	}
}

// readCase reads a golden case of the command's tests for the library.
func readCase(t *testing.T, name string) (noise []float32, latents *runtime.Tensor, args []string) {
	f, err := runtime.OpenSafetensors(goldens + name + ".safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := f.Tensor("x")
	if err != nil {
		t.Fatal(err)
	}
	if latents, err = f.Tensor("latents"); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(f.Metadata()["args"]), &args); err != nil {
		t.Fatal(err)
	}
	return x.F32, latents, args
}

func flag(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// requestFrom is the request of a golden's sd15 command line (prompts, steps, solver,
// guidance) with its noise.
func requestFrom(t *testing.T, args []string, noise []float32) Request {
	t.Helper()
	g, err := strconv.ParseFloat(flag(args, "--guidance"), 64)
	if err != nil {
		t.Fatalf("golden arguments %q: --guidance: %v", args, err)
	}
	steps, err := strconv.Atoi(flag(args, "--steps"))
	if err != nil {
		t.Fatalf("golden arguments %q: --steps: %v", args, err)
	}
	return Request{Prompt: flag(args, "--prompt"), NegativePrompt: flag(args, "--negative-prompt"), Steps: steps,
		Solver: flag(args, "--solver"), Guidance: g, Noise: noise}
}

// TestGenerateMany loads once and generates with guidance (a batch of two), without (a
// batch of one), and with again: the first and last are the same image, and both match the
// PyTorch golden.
func TestGenerateMany(t *testing.T) {
	noise, want, args := readCase(t, "dpm")
	p, err := Load(reduced+"single-file.safetensors", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req := requestFrom(t, args, noise)
	var dones []int
	req.Progress = func(done, total int) { dones = append(dones, done, total) }
	first, err := p.Generate(req)
	if err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelDiff(first.Latents, want.F32); e > 1e-3 {
		t.Errorf("latents differ from PyTorch's by %.2e of their largest value", e)
	}
	if want := []int{0, 4, 1, 4, 2, 4, 3, 4, 4, 4}; !slices.Equal(dones, want) {
		t.Errorf("progress calls %v, want %v", dones, want)
	}
	req.Progress = nil
	unguided := req
	unguided.Guidance = 1
	second, err := p.Generate(unguided)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(second.Latents, first.Latents) {
		t.Error("guidance 1 gave the latents of guidance 7.5")
	}
	third, err := p.Generate(req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(third.Latents, first.Latents) || !bytes.Equal(third.Image.Pix, first.Image.Pix) || third.Parameters != first.Parameters {
		t.Error("the same request gave another result the second time")
	}
	if !strings.HasPrefix(first.Parameters, req.Prompt+"\nNegative prompt: "+req.NegativePrompt+"\nSteps: 4, Sampler: DPM++ 2M, CFG scale: 7.5, Size: 64x64, Model: single-file") {
		t.Errorf("parameters %q", first.Parameters)
	}
	if _, err := p.Generate(Request{Prompt: "x", Width: 60}); err == nil || !strings.Contains(err.Error(), "multiples of 8") {
		t.Errorf("a width of 60 gave %v", err)
	}
	p.Close()
	if _, err := p.Generate(req); err == nil {
		t.Error("a closed pipeline generated")
	}
}
