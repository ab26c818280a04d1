package runtime

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePNG(t *testing.T, img image.Image) string {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "img.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkImage loads path and compares it with want(x, y), the expected RGB of each pixel.
func checkImage(t *testing.T, path string, w, h int, want func(x, y int) [3]float32) {
	t.Helper()
	got, err := LoadImage(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ShapeString() != formatShape([]int{1, 3, h, w}) {
		t.Fatalf("shape %s, want [1, 3, %d, %d]", got.ShapeString(), h, w)
	}
	for y := range h {
		for x := range w {
			rgb := want(x, y)
			for c := range 3 {
				if v := got.F32[(c*h+y)*w+x]; v != rgb[c] {
					t.Fatalf("pixel (%d, %d) channel %d = %v, want %v", x, y, c, v, rgb[c])
				}
			}
		}
	}
}

func TestLoadImagePNG8(t *testing.T) {
	const w, h = 5, 3
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			// Alpha varies, including 0: the colour must come through un-premultiplied.
			img.SetNRGBA(x, y, color.NRGBA{uint8(50*x + y), uint8(255 - 40*y), uint8(x * y * 17), uint8(60 * x)})
		}
	}
	checkImage(t, writePNG(t, img), w, h, func(x, y int) [3]float32 {
		c := img.NRGBAAt(x, y)
		return [3]float32{float32(c.R) / 255, float32(c.G) / 255, float32(c.B) / 255}
	})

	opaque := image.NewRGBA(image.Rect(0, 0, w, h))
	gray := image.NewGray(image.Rect(0, 0, w, h))
	pal := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.RGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 0, 128}})
	for y := range h {
		for x := range w {
			opaque.SetRGBA(x, y, color.RGBA{uint8(x * 60), uint8(y * 120), 7, 255})
			gray.SetGray(x, y, color.Gray{uint8(x*50 + y)})
			pal.SetColorIndex(x, y, uint8((x+y)%2))
		}
	}
	checkImage(t, writePNG(t, opaque), w, h, func(x, y int) [3]float32 {
		return [3]float32{float32(x*60) / 255, float32(y*120) / 255, float32(7) / 255}
	})
	checkImage(t, writePNG(t, gray), w, h, func(x, y int) [3]float32 {
		v := float32(x*50+y) / 255
		return [3]float32{v, v, v}
	})
	checkImage(t, writePNG(t, pal), w, h, func(x, y int) [3]float32 {
		if (x+y)%2 == 0 {
			return [3]float32{float32(10) / 255, float32(20) / 255, float32(30) / 255}
		}
		return [3]float32{float32(200) / 255, float32(100) / 255, 0}
	})
}

func TestLoadImagePNG16(t *testing.T) {
	const w, h = 3, 4
	rgb := image.NewRGBA64(image.Rect(0, 0, w, h))
	rgba := image.NewNRGBA64(image.Rect(0, 0, w, h))
	gray := image.NewGray16(image.Rect(0, 0, w, h))
	sample := func(x, y, c int) uint16 { return uint16(x*21845 + y*257 + c*4099) }
	for y := range h {
		for x := range w {
			rgb.SetRGBA64(x, y, color.RGBA64{sample(x, y, 0), sample(x, y, 1), sample(x, y, 2), 0xffff})
			rgba.SetNRGBA64(x, y, color.NRGBA64{sample(x, y, 0), sample(x, y, 1), sample(x, y, 2), uint16(x * 1000)})
			gray.SetGray16(x, y, color.Gray16{sample(x, y, 0)})
		}
	}
	want := func(x, y int) [3]float32 {
		return [3]float32{float32(sample(x, y, 0)) / 65535, float32(sample(x, y, 1)) / 65535, float32(sample(x, y, 2)) / 65535}
	}
	checkImage(t, writePNG(t, rgb), w, h, want)
	checkImage(t, writePNG(t, rgba), w, h, want)
	checkImage(t, writePNG(t, gray), w, h, func(x, y int) [3]float32 {
		v := float32(sample(x, y, 0)) / 65535
		return [3]float32{v, v, v}
	})
}

func TestSaveImagePNG(t *testing.T) {
	const h, w = 3, 7
	x := NewTensor(1, 3, h, w)
	for i := range x.F32 {
		x.F32[i] = float32(i*12%256) / 255
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "out.PNG")
	if err := SaveImage(path, x); err != nil {
		t.Fatal(err)
	}
	got, err := LoadImage(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := PSNR(got, x); err != nil || !math.IsInf(p, 1) {
		t.Errorf("8-bit levels did not round-trip exactly: PSNR %v, %v", p, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d entries in the directory, want 1", len(entries))
	}

	// Clamping and rounding to the nearest level; [3, H, W] is accepted too.
	values := []float32{-0.5, 1.7, float32(math.NaN()), (100 + 0.49) / 255, (100 + 0.51) / 255, 1, 0, float32(math.Inf(1))}
	want := []uint8{0, 255, 0, 100, 101, 255, 0, 255}
	y := NewTensor(3, 1, len(values))
	copy(y.F32, values)
	copy(y.F32[len(values):], values)
	copy(y.F32[2*len(values):], values)
	if err := SaveImage(path, y); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	for i, wv := range want {
		r, g, b, _ := img.At(i, 0).RGBA()
		if r>>8 != uint32(wv) || g>>8 != uint32(wv) || b>>8 != uint32(wv) {
			t.Errorf("value %v saved as (%d, %d, %d), want %d", values[i], r>>8, g>>8, b>>8, wv)
		}
	}

	// One channel is saved as gray.
	g := FromF32([]float32{0, 0.5, 1, 0.25}, 1, 1, 2, 2)
	if err := SaveImage(path, g); err != nil {
		t.Fatal(err)
	}
	back, err := LoadImage(path)
	if err != nil || back.ShapeString() != "[1, 3, 2, 2]" || back.F32[1] != float32(128)/255 || back.F32[4+1] != back.F32[1] {
		t.Errorf("gray round trip: %v, %v", back, err)
	}
}

func TestJPEGRoundTrip(t *testing.T) {
	const h, w = 24, 31
	x := NewTensor(1, 3, h, w)
	for c := range 3 {
		for i := range h {
			for j := range w {
				x.F32[(c*h+i)*w+j] = float32(0.5 + 0.4*math.Sin(float64(i)*0.1+float64(c))*math.Cos(float64(j)*0.08))
			}
		}
	}
	path := filepath.Join(t.TempDir(), "out.jpeg")
	if err := SaveImage(path, x); err != nil {
		t.Fatal(err)
	}
	// Format is told by content: a JPEG named .png still loads.
	misnamed := strings.TrimSuffix(path, ".jpeg") + ".png"
	if err := os.Rename(path, misnamed); err != nil {
		t.Fatal(err)
	}
	got, err := LoadImage(misnamed)
	if err != nil {
		t.Fatal(err)
	}
	p, err := PSNR(got, x)
	if err != nil {
		t.Fatal(err)
	}
	// Quality 95 with Go's 4:2:0 chroma subsampling loses little on a smooth image; a wrong
	// channel order or scale would lose far more.
	if p < 30 {
		t.Errorf("JPEG round trip PSNR = %.2f dB, want ≥ 30", p)
	}
	t.Logf("JPEG q95 round trip: %.2f dB", p)
}

func TestImageErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A 1×1 PNG whose header claims 100000×100000 pixels, CRC fixed up.
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	huge := buf.Bytes()
	binary.BigEndian.PutUint32(huge[16:], 100000)
	binary.BigEndian.PutUint32(huge[20:], 100000)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	truncated := append([]byte(nil), buf.Bytes()[:40]...)
	binary.BigEndian.PutUint32(truncated[16:], 1)
	binary.BigEndian.PutUint32(truncated[20:], 1)
	binary.BigEndian.PutUint32(truncated[29:], crc32.ChecksumIEEE(truncated[12:29]))

	for _, c := range []struct{ path, want string }{
		{write("a.txt", []byte("hello")), "a.txt: not a PNG or JPEG file"},
		{write("huge.png", huge), "huge.png: image is 100000×100000, outside 1 to 134217728 pixels"},
		{write("cut.png", truncated), "cut.png: unexpected EOF"},
		{filepath.Join(dir, "missing.png"), "no such file"},
	} {
		if _, err := LoadImage(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadImage(%s) = %v, want %q", filepath.Base(c.path), err, c.want)
		}
	}

	for _, c := range []struct {
		name string
		t    *Tensor
		want string
	}{
		{"x.bmp", NewTensor(1, 3, 2, 2), `cannot tell the image format from extension ".bmp"`},
		{"x.png", NewTensor(2, 3, 2, 2), "image tensor has shape [2, 3, 2, 2], want [1, 3, H, W] or [3, H, W]"},
		{"x.png", NewTensor(1, 4, 2, 2), "image tensor has shape [1, 4, 2, 2]"},
		{"x.png", NewTensor(3, 0, 2), "image tensor has shape [3, 0, 2]"},
		{"x.png", FromI64(make([]int64, 12), 3, 2, 2), "image tensor is I64, want F32"},
		{"x.png", &Tensor{DType: F32, Shape: []int{3, 2, 2}}, "needs 12 elements, F32 data has 0"},
		{"x.png", nil, "nil tensor"},
	} {
		path := filepath.Join(dir, c.name)
		if err := SaveImage(path, c.t); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), path) {
			t.Errorf("SaveImage(%s, %v) = %v, want %q", c.name, c.t, err, c.want)
		}
	}
}

func TestPSNR(t *testing.T) {
	a := NewTensor(1, 3, 4, 5)
	b := NewTensor(1, 3, 4, 5)
	for i := range a.F32 {
		a.F32[i] = float32(i) / 64
		b.F32[i] = a.F32[i] + 0.125 // exact in float32: MSE is 1/64, so PSNR = 10·log10(64)
	}
	p, err := PSNR(a, b)
	if err != nil || math.Abs(p-10*math.Log10(64)) > 1e-9 {
		t.Errorf("PSNR = %v, %v; want 10·log10(64)", p, err)
	}
	if p, err := PSNR(a, a); err != nil || !math.IsInf(p, 1) {
		t.Errorf("PSNR of equal tensors = %v, %v; want +Inf", p, err)
	}
	if _, err := PSNR(a, NewTensor(1, 3, 5, 4)); err == nil || err.Error() != "PSNR: shapes [1, 3, 4, 5] and [1, 3, 5, 4] differ" {
		t.Errorf("shape mismatch: %v", err)
	}
	if _, err := PSNR(NewTensor(0, 3), NewTensor(0, 3)); err == nil {
		t.Error("PSNR of empty tensors did not fail")
	}
	if _, err := PSNR(FromI64([]int64{1}, 1), FromI64([]int64{1}, 1)); err == nil {
		t.Error("PSNR of I64 tensors did not fail")
	}
}
