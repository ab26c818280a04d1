package runtime

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/seedcorpus"
)

// imageSeeds are the committed seeds of FuzzLoadImage: small images of each kind the
// decoders return (gray, 16-bit gray, paletted, NRGBA, RGBA64, JPEG colour and gray) and
// files broken in the ways LoadImage must refuse.
func imageSeeds() map[string][]byte {
	encPNG := func(img image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	encJPEG := func(img image.Image) []byte {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	r := image.Rect(0, 0, 5, 3)
	gray, gray16, nrgba, rgba64 := image.NewGray(r), image.NewGray16(r), image.NewNRGBA(r), image.NewRGBA64(r)
	pal := image.NewPaletted(r, color.Palette{color.Black, color.White, color.RGBA{200, 10, 30, 255}})
	for y := range 3 {
		for x := range 5 {
			v := uint8(40*x + 60*y)
			gray.SetGray(x, y, color.Gray{v})
			gray16.SetGray16(x, y, color.Gray16{uint16(v) * 257})
			nrgba.SetNRGBA(x, y, color.NRGBA{v, 255 - v, uint8(x * 50), uint8(80 + 30*y)})
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(v) << 8, 1000, 2000, 0xffff})
			pal.SetColorIndex(x, y, uint8((x+y)%3))
		}
	}
	valid := encPNG(nrgba)
	// A PNG header announcing 2^20 × 2^20 pixels, with a correct checksum: refused before
	// any pixel is decoded.
	ihdr := binary.BigEndian.AppendUint32([]byte("IHDR"), 1<<20)
	ihdr = binary.BigEndian.AppendUint32(ihdr, 1<<20)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	huge := append([]byte("\x89PNG\r\n\x1a\n"), binary.BigEndian.AppendUint32(nil, 13)...)
	huge = append(huge, ihdr...)
	huge = binary.BigEndian.AppendUint32(huge, crc32.ChecksumIEEE(ihdr))
	return map[string][]byte{
		"valid_gray":       encPNG(gray),
		"valid_gray16":     encPNG(gray16),
		"valid_paletted":   encPNG(pal),
		"valid_nrgba":      valid,
		"valid_rgba64":     encPNG(rgba64),
		"valid_jpeg":       encJPEG(nrgba),
		"valid_jpeg_gray":  encJPEG(gray),
		"truncated_png":    valid[:len(valid)-20],
		"png_signature":    valid[:8],
		"jpeg_soi":         {0xff, 0xd8},
		"huge_dimensions":  huge,
		"not_an_image":     []byte("GIF89a"),
		"empty":            {},
		"corrupt_png_data": append(append([]byte{}, valid[:40]...), bytes.Repeat([]byte{0xaa}, 60)...),
	}
}

// TestImageSeedCorpus keeps the committed corpus in step with imageSeeds; run with
// -update-seeds to rewrite it.
func TestImageSeedCorpus(t *testing.T) {
	files := map[string][]byte{}
	for name, data := range imageSeeds() {
		_, err := loadImageCheck(t, t.TempDir(), data)
		if valid := strings.HasPrefix(name, "valid_"); (err == nil) != valid {
			t.Errorf("seed %s: LoadImage error %v, want valid=%v", name, err, valid)
		}
		files[name] = seedcorpus.File(data)
	}
	seedcorpus.Sync(t, filepath.Join("testdata", "fuzz", "FuzzLoadImage"), files, *updateSeeds, "go test ./runtime -run TestImageSeedCorpus -update-seeds")
}

// FuzzLoadImage decodes arbitrary bytes as an image file: an error must name the file and
// be one line, never a panic; an image must be [1, 3, H, W] with values in [0, 1], and
// SaveImage then LoadImage must give it back to the nearest 8-bit level.
func FuzzLoadImage(f *testing.F) {
	// One directory for every input of this process: a directory per input costs more
	// than decoding a small image.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		loadImageCheck(t, dir, data)
	})
}

func loadImageCheck(t *testing.T, dir string, data []byte) (*Tensor, error) {
	path := filepath.Join(dir, "in.img")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	x, err := LoadImage(path)
	if err != nil {
		if x != nil {
			t.Fatal("LoadImage returned an image with its error")
		}
		if !strings.HasPrefix(err.Error(), path+": ") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("the error is not one line naming the file: %q", err)
		}
		return nil, err
	}
	if len(x.Shape) != 4 || x.Shape[0] != 1 || x.Shape[1] != 3 || x.Shape[2] < 1 || x.Shape[3] < 1 || len(x.F32) != x.Len() {
		t.Fatalf("image tensor of shape %v with %d values", x.Shape, len(x.F32))
	}
	for i, v := range x.F32 {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("value %g at %d is outside [0, 1]", v, i)
		}
	}
	if x.Len() > 3<<12 {
		return x, nil // the round trip of large images costs more than it finds
	}
	out := filepath.Join(dir, "out.png")
	if err := SaveImage(out, x); err != nil {
		t.Fatalf("SaveImage of a loaded image: %v", err)
	}
	y, err := LoadImage(out)
	if err != nil {
		t.Fatalf("LoadImage of a saved image: %v", err)
	}
	for i := range x.F32 {
		if d := math.Abs(float64(x.F32[i] - y.F32[i])); d > 0.5/255+1e-6 {
			t.Fatalf("value %d: %g saved and loaded as %g", i, x.F32[i], y.F32[i])
		}
	}
	return x, nil
}
