package main

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/runtime"
)

const astronaut = "../../testdata/images/astronaut.png"

// An 8-bit PNG goes to a tensor and back to the same pixels; --range maps linearly.
func TestImageRoundTrip(t *testing.T) {
	dir := t.TempDir()
	x := filepath.Join(dir, "x.safetensors")
	stdout, stderr, status := rfc(t, "image", "to-tensor", astronaut, "-o", x)
	if status != 0 || stdout != x+": \"x\" f32[1, 3, 512, 512]\n" {
		t.Fatalf("status %d, stdout %q\n%s", status, stdout, stderr)
	}
	want, err := runtime.LoadImage(astronaut)
	if err != nil {
		t.Fatal(err)
	}
	got := testutil.Tensor(t, x, "x")
	if !slices.Equal(got.Shape, want.Shape) || !slices.Equal(got.F32, want.F32) {
		t.Fatalf("to-tensor differs from runtime.LoadImage")
	}
	signed := filepath.Join(dir, "signed.safetensors")
	if _, stderr, status := rfc(t, "image", "to-tensor", astronaut, "-o", signed, "--name", "image", "--range", "-1,1"); status != 0 {
		t.Fatalf("--range -1,1: status %d\n%s", status, stderr)
	}
	s := testutil.Tensor(t, signed, "image")
	for i, v := range want.F32 {
		if math.Abs(float64(s.F32[i]-(2*v-1))) > 1e-6 {
			t.Fatalf("--range -1,1: element %d is %g, want %g", i, s.F32[i], 2*v-1)
		}
	}
	for _, c := range []struct{ in, rng string }{{x, "0,1"}, {signed, "-1,1"}} {
		out := filepath.Join(dir, strings.ReplaceAll(c.rng, ",", "_")+".png")
		if _, stderr, status := rfc(t, "image", "to-png", c.in, "-o", out, "--range", c.rng); status != 0 {
			t.Fatalf("to-png --range %s: status %d\n%s", c.rng, status, stderr)
		}
		if !samePixels(t, out, astronaut) {
			t.Errorf("to-png --range %s: the pixels differ from the original", c.rng)
		}
	}
	// JPEG input, decoded as runtime.LoadImage decodes it.
	jpg := filepath.Join(dir, "a.jpg")
	writeJPEG(t, jpg, astronaut)
	xj := filepath.Join(dir, "xj.safetensors")
	if _, stderr, status := rfc(t, "image", "to-tensor", jpg, "-o", xj); status != 0 {
		t.Fatalf("jpeg: status %d\n%s", status, stderr)
	}
	wantJ, _ := runtime.LoadImage(jpg)
	if gotJ := testutil.Tensor(t, xj, "x"); !slices.Equal(gotJ.F32, wantJ.F32) {
		t.Errorf("jpeg: to-tensor differs from runtime.LoadImage")
	}
}

// Values are clamped to --range (NaN to black) and rounded to the nearest 8-bit level.
func TestImageToPNGClampsAndRounds(t *testing.T) {
	dir := t.TempDir()
	values := []float32{-0.5, 0, 0.2, 0.5, 1, 1.2, float32(math.NaN())}
	plane := len(values)
	data := make([]float32, 3*plane)
	for c := range 3 {
		copy(data[c*plane:], values)
	}
	in := filepath.Join(dir, "y.safetensors")
	if err := runtime.WriteSafetensors(in, map[string]*runtime.Tensor{"y": runtime.FromF32(data, 1, 3, 1, plane)}, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		rng  string
		want []uint8 // round(255·(v-lo)/(hi-lo)) clamped, by the documented rule
	}{
		{"0,1", []uint8{0, 0, 51, 128, 255, 255, 0}},
		{"-1,1", []uint8{64, 128, 153, 191, 255, 255, 0}},
	}
	for _, c := range cases {
		out := filepath.Join(dir, "y.png")
		if _, stderr, status := rfc(t, "image", "to-png", in, "-o", out, "--range", c.rng); status != 0 {
			t.Fatalf("status %d\n%s", status, stderr)
		}
		img := decodePNG(t, out)
		for i, want := range c.want {
			r, g, b, _ := img.At(i, 0).RGBA()
			if uint8(r>>8) != want || g != r || b != r {
				t.Errorf("--range %s: %g → %d %d %d, want %d", c.rng, values[i], r>>8, g>>8, b>>8, want)
			}
		}
	}
}

// Bad input: one line naming the file (and the tensor), status 1, no output file.
func TestImageErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.png")
	os.WriteFile(text, []byte("not an image\n"), 0o644)
	matrix := filepath.Join(dir, "matrix.safetensors")
	runtime.WriteSafetensors(matrix, map[string]*runtime.Tensor{"y": runtime.NewTensor(3, 4)}, nil)
	ints := filepath.Join(dir, "ints.safetensors")
	runtime.WriteSafetensors(ints, map[string]*runtime.Tensor{"y": runtime.FromI64(make([]int64, 12), 1, 3, 2, 2)}, nil)
	out := filepath.Join(dir, "out", "o.png")
	outT := filepath.Join(dir, "out", "o.safetensors")
	cases := []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"not an image", []string{"to-tensor", text, "-o", outT}, 1, text + ": not a PNG or JPEG file"},
		{"no such image", []string{"to-tensor", filepath.Join(dir, "nope.png"), "-o", outT}, 1, "nope.png"},
		{"latent channels", []string{"to-png", goldenDir + "taef2_decoder_input.safetensors", "-o", out}, 1, `tensor "x" is F32 [1, 32, 8, 8]`},
		{"rank 2", []string{"to-png", matrix, "-o", out}, 1, `tensor "y" is F32 [3, 4]`},
		{"integers", []string{"to-png", ints, "-o", out}, 1, `tensor "y" is I64`},
		{"no such name", []string{"to-png", goldenDir + "taef2_decoder_output.safetensors", "--name", "z", "-o", out}, 1, `no tensor "z" (tensors: y)`},
		{"several tensors", []string{"to-png", goldenDir + "vit_weights.safetensors", "-o", out}, 1, "choose one with --name"},
		{"bad extension", []string{"to-png", goldenDir + "taef2_decoder_output.safetensors", "-o", filepath.Join(dir, "out", "o.gif")}, 1, `extension ".gif"`},
		{"no -o", []string{"to-png", goldenDir + "taef2_decoder_output.safetensors"}, 2, "want one TENSORS file and -o OUT"},
		{"bad range", []string{"to-tensor", astronaut, "-o", outT, "--range", "1,0"}, 2, "--range wants LO,HI with LO < HI"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, status := rfc(t, append([]string{"image"}, c.args...)...)
			if status != c.status || !strings.Contains(stderr, c.want) {
				t.Errorf("status %d (want %d), stderr lacks %q:\n%s", status, c.status, c.want, stderr)
			}
			if c.status == 1 && strings.Count(stderr, "\n") != 1 {
				t.Errorf("want one line:\n%s", stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Errorf("a failed command made its output folder or file")
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func samePixels(t *testing.T, a, b string) bool {
	t.Helper()
	ia, ib := decodePNG(t, a), decodePNG(t, b)
	if ia.Bounds() != ib.Bounds() {
		return false
	}
	for y := ia.Bounds().Min.Y; y < ia.Bounds().Max.Y; y++ {
		for x := ia.Bounds().Min.X; x < ia.Bounds().Max.X; x++ {
			r1, g1, b1, _ := ia.At(x, y).RGBA()
			r2, g2, b2, _ := ib.At(x, y).RGBA()
			if r1>>8 != r2>>8 || g1>>8 != g2>>8 || b1>>8 != b2>>8 {
				return false
			}
		}
	}
	return true
}

func writeJPEG(t *testing.T, path, from string) {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, decodePNG(t, from), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
