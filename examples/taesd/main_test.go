package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// torchPSNR is the round-trip PSNR of the upstream PyTorch model on a bundled photo as a
// whole (scripts/golden/taesd.py --photos-psnr).
func torchPSNR(t *testing.T, photo string) float64 {
	t.Helper()
	data, err := os.ReadFile("../../testdata/golden/taef2_photos_psnr.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]struct {
		PSNR float64 `json:"psnr_db"`
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	g, ok := golden[photo]
	if !ok {
		t.Fatalf("no golden PSNR for %s", photo)
	}
	return g.PSNR
}

// runCLI runs the command from dir and returns the PSNR it prints.
func runCLI(t *testing.T, dir string, args ...string) (psnr float64, stdout string) {
	t.Helper()
	t.Chdir(dir)
	var out, errs bytes.Buffer
	if status := cli(args, &out, &errs); status != 0 {
		t.Fatalf("taesd %v: status %d\n%s", args, status, errs.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if _, err := fmt.Sscanf(line, "PSNR %f dB", &psnr); err == nil {
			return psnr, out.String()
		}
	}
	t.Fatalf("no PSNR in\n%s", out.String())
	return 0, ""
}

// The bundled astronaut (one 512×512 tile, the model's own computation) keeps the upstream
// model's quality. It runs from a folder other than examples/: the defaults find the
// bundled photo and weights, and the output lands in the current folder.
func TestRoundTripPSNR(t *testing.T) {
	if testing.Short() {
		t.Skip("512×512 round trip")
	}
	dir := t.TempDir()
	want := torchPSNR(t, "astronaut.png")
	psnr, stdout := runCLI(t, dir)
	t.Logf("PSNR %.3f dB, PyTorch %.3f dB", psnr, want)
	if d := psnr - want; d < -0.01 || d > 0.01 {
		t.Errorf("PSNR %.3f dB, PyTorch's %.3f dB", psnr, want)
	}
	if !strings.Contains(stdout, "1 tile(s)") {
		t.Errorf("a 512×512 photo is one tile:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "astronaut_roundtrip.png")); err != nil {
		t.Errorf("the reconstruction is not in the current folder: %v", err)
	}
}

// The bundled coffee (400×600: mirror-padded to 512 high, two tiles across) comes within
// 0.3 dB of the upstream model's PSNR on the whole photo.
func TestRoundTripTiled(t *testing.T) {
	if testing.Short() {
		t.Skip("two 512×512 round trips")
	}
	dir := t.TempDir()
	abs, _ := filepath.Abs("../../testdata/images/coffee.png")
	want := torchPSNR(t, "coffee.png")
	psnr, stdout := runCLI(t, dir, "-in", abs, "-out", "out/coffee.png")
	t.Logf("PSNR %.3f dB, PyTorch on the whole photo %.3f dB", psnr, want)
	if psnr < want-0.3 {
		t.Errorf("PSNR %.3f dB, more than 0.3 dB below PyTorch's %.3f dB", psnr, want)
	}
	if !strings.Contains(stdout, "(400×600) → 2 tile(s)") {
		t.Errorf("want two tiles:\n%s", stdout)
	}
	f, err := os.Open(filepath.Join(dir, "out", "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 600 || cfg.Height != 400 {
		t.Errorf("the reconstruction is %d×%d (%v), want 600×400", cfg.Width, cfg.Height, err)
	}
}

func TestTileStarts(t *testing.T) {
	for _, n := range []int{8, 400, 512, 520, 600, 1000, 1024, 1536, 2048, 4104} {
		starts := tileStarts(n, 512)
		if starts[0] != 0 || n > 512 && starts[len(starts)-1] != n-512 {
			t.Errorf("n=%d: %v does not span the side", n, starts)
		}
		for i, s := range starts {
			if s%8 != 0 {
				t.Errorf("n=%d: start %d is off the latent grid", n, s)
			}
			if i > 0 && starts[i-1]+512-s < minOverlap-7 {
				t.Errorf("n=%d: %v: tiles %d and %d overlap by %d", n, starts, i-1, i, starts[i-1]+512-s)
			}
		}
	}
	for i, want := range map[int]int{-3: 3, 0: 0, 4: 4, 5: 3, 9: 1, 10: 2} {
		if got := mirror(i, 5); got != want {
			t.Errorf("mirror(%d, 5) = %d, want %d", i, got, want)
		}
	}
}

// Bad flags and photos: a clear line, status 2 for usage, 1 for the photo; nothing written.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd.png")
	var b bytes.Buffer
	png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 100, 60)))
	os.WriteFile(odd, b.Bytes(), 0o644)
	cases := []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"-runs", "-3"}, 2, "-runs -3: want at least 1"},
		{[]string{"-runs", "0"}, 2, "-runs 0"},
		{[]string{"photo.png"}, 2, "unexpected arguments"},
		{[]string{"-frobnicate"}, 2, "flag provided but not defined"},
		{[]string{"-in", odd, "-out", filepath.Join(dir, "o.png")}, 1, "is 60×100: TAEF2 works on sides that are multiples of 8 (crop it to 56×96)"},
		{[]string{"-in", filepath.Join(dir, "nope.png"), "-out", filepath.Join(dir, "o.png")}, 1, "nope.png"},
	}
	for _, c := range cases {
		var out, errs bytes.Buffer
		status := cli(c.args, &out, &errs)
		if status != c.status || !strings.Contains(errs.String(), c.want) {
			t.Errorf("taesd %v: status %d (want %d), stderr lacks %q:\n%s", c.args, status, c.status, c.want, errs.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "o.png")); err == nil {
		t.Errorf("a failed run wrote its output")
	}
}
