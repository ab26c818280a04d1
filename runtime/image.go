package runtime

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// maxImagePixels bounds what LoadImage decodes, so that a tiny hostile file announcing huge
// dimensions is refused before the decoder allocates for it.
const maxImagePixels = 1 << 27

// LoadImage decodes a PNG or JPEG file (told apart by content, not name) into a [1, 3, H, W]
// F32 tensor of RGB values in [0, 1]. Alpha is dropped (colours are taken un-premultiplied),
// gray is repeated on the three channels, and 16-bit PNG samples are divided by 65535.
func LoadImage(path string) (*Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var decode func(io.Reader) (image.Image, error)
	var decodeConfig func(io.Reader) (image.Config, error)
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		decode, decodeConfig = png.Decode, png.DecodeConfig
	case bytes.HasPrefix(data, []byte{0xff, 0xd8}):
		decode, decodeConfig = jpeg.Decode, jpeg.DecodeConfig
	default:
		return nil, fmt.Errorf("%s: not a PNG or JPEG file", path)
	}
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxImagePixels/cfg.Height {
		return nil, fmt.Errorf("%s: image is %d×%d, outside 1 to %d pixels", path, cfg.Width, cfg.Height, maxImagePixels)
	}
	img, err := decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return imageToTensor(img), nil
}

func imageToTensor(img image.Image) *Tensor {
	// The decoders' own types are read at their native depth; anything else goes through
	// the non-premultiplied 16-bit model.
	var pixel func(x, y int) (r, g, b float32)
	switch m := img.(type) {
	case *image.Gray:
		pixel = func(x, y int) (float32, float32, float32) {
			v := float32(m.GrayAt(x, y).Y) / 255
			return v, v, v
		}
	case *image.Gray16:
		pixel = func(x, y int) (float32, float32, float32) {
			v := float32(m.Gray16At(x, y).Y) / 65535
			return v, v, v
		}
	case *image.NRGBA:
		pixel = func(x, y int) (float32, float32, float32) {
			c := m.NRGBAAt(x, y)
			return float32(c.R) / 255, float32(c.G) / 255, float32(c.B) / 255
		}
	case *image.YCbCr:
		pixel = func(x, y int) (float32, float32, float32) {
			c := m.YCbCrAt(x, y)
			r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
			return float32(r) / 255, float32(g) / 255, float32(b) / 255
		}
	case *image.CMYK:
		pixel = func(x, y int) (float32, float32, float32) {
			c := m.CMYKAt(x, y)
			r, g, b := color.CMYKToRGB(c.C, c.M, c.Y, c.K)
			return float32(r) / 255, float32(g) / 255, float32(b) / 255
		}
	case *image.RGBA, *image.Paletted:
		pixel = func(x, y int) (float32, float32, float32) {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			return float32(c.R) / 255, float32(c.G) / 255, float32(c.B) / 255
		}
	default:
		pixel = func(x, y int) (float32, float32, float32) {
			c := color.NRGBA64Model.Convert(m.At(x, y)).(color.NRGBA64)
			return float32(c.R) / 65535, float32(c.G) / 65535, float32(c.B) / 65535
		}
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	t := NewTensor(1, 3, h, w)
	plane := w * h
	for y := range h {
		for x := range w {
			i := y*w + x
			t.F32[i], t.F32[plane+i], t.F32[2*plane+i] = pixel(b.Min.X+x, b.Min.Y+y)
		}
	}
	return t
}

// SaveImage writes a [1, 3, H, W] or [3, H, W] F32 tensor of values in [0, 1] as PNG or
// JPEG (quality 95), chosen by the extension (.png, .jpg, .jpeg). Values are clamped to
// [0, 1] (NaN to 0) and rounded to the nearest 8-bit level. A one-channel tensor
// ([1, 1, H, W] or [1, H, W]) is written as gray. The file is written beside path and
// renamed into place.
func SaveImage(path string, t *Tensor) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".jpg" && ext != ".jpeg" {
		return fmt.Errorf("%s: cannot tell the image format from extension %q (want .png, .jpg or .jpeg)", path, ext)
	}
	img, err := tensorToImage(t)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		if ext == ".png" {
			return png.Encode(w, img)
		}
		return jpeg.Encode(w, img, &jpeg.Options{Quality: 95})
	})
}

func tensorToImage(t *Tensor) (image.Image, error) {
	if t == nil {
		return nil, fmt.Errorf("nil tensor")
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	if t.DType != F32 {
		return nil, fmt.Errorf("image tensor is %v, want F32", t.DType)
	}
	shape := t.Shape
	if len(shape) == 4 && shape[0] == 1 {
		shape = shape[1:]
	}
	if len(shape) != 3 || shape[0] != 1 && shape[0] != 3 || shape[1] < 1 || shape[2] < 1 {
		return nil, fmt.Errorf("image tensor has shape %s, want [1, 3, H, W] or [3, H, W]", t.ShapeString())
	}
	c, h, w := shape[0], shape[1], shape[2]
	plane := h * w
	if c == 1 {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i, v := range t.F32 {
			img.Pix[i/w*img.Stride+i%w] = Level8(v)
		}
		return img, nil
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range plane {
		o := i/w*img.Stride + 4*(i%w)
		img.Pix[o] = Level8(t.F32[i])
		img.Pix[o+1] = Level8(t.F32[plane+i])
		img.Pix[o+2] = Level8(t.F32[2*plane+i])
		img.Pix[o+3] = 255
	}
	return img, nil
}

// Level8 is the 8-bit level of a value in [0, 1], as SaveImage writes it: clamped to [0, 1]
// (NaN to 0) and rounded to the nearest of 256 levels.
func Level8(v float32) uint8 {
	if !(v > 0) {
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(math.Round(float64(v) * 255))
}

// PSNR is the peak signal-to-noise ratio of two same-shaped F32 tensors of values in
// [0, 1], in dB: 10·log10(1/MSE), +Inf when they are equal.
func PSNR(a, b *Tensor) (float64, error) {
	if a == nil || b == nil {
		return 0, fmt.Errorf("PSNR of a nil tensor")
	}
	if a.ShapeString() != b.ShapeString() {
		return 0, fmt.Errorf("PSNR: shapes %s and %s differ", a.ShapeString(), b.ShapeString())
	}
	for _, t := range []*Tensor{a, b} {
		if err := t.check(); err != nil {
			return 0, fmt.Errorf("PSNR: %v", err)
		}
		if t.DType != F32 {
			return 0, fmt.Errorf("PSNR: tensor is %v, want F32", t.DType)
		}
	}
	if len(a.F32) == 0 {
		return 0, fmt.Errorf("PSNR: tensors of shape %s are empty", a.ShapeString())
	}
	var sum float64
	for i, v := range a.F32 {
		d := float64(v) - float64(b.F32[i])
		sum += d * d
	}
	mse := sum / float64(len(a.F32))
	if mse == 0 {
		return math.Inf(1), nil
	}
	return 10 * math.Log10(1/mse), nil
}
