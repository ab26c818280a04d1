package imaging

import (
	"fmt"

	"github.com/rfc-project/rfc/runtime"
)

// maxPixels bounds the images this package allocates (the limit runtime.LoadImage applies
// to files), so that a size mistake fails with an error instead of exhausting memory.
const maxPixels = 1 << 27

// Image is an 8-bit image with interleaved channels, row after row: the layout of the
// uint8 NumPy arrays PIL and OpenCV exchange. Pixel (x, y), channel c is
// Pix[(y*Width+x)*Channels+c].
type Image struct {
	Width, Height int
	Channels      int // 1 (gray) or 3 (RGB)
	Pix           []uint8
}

// New returns a black image of the given size and channel count (1 or 3).
func New(width, height, channels int) (*Image, error) {
	if err := checkSize(width, height, channels); err != nil {
		return nil, err
	}
	return &Image{Width: width, Height: height, Channels: channels, Pix: make([]uint8, width*height*channels)}, nil
}

func checkSize(width, height, channels int) error {
	if width < 1 || height < 1 || width > maxPixels/height {
		return fmt.Errorf("image size %d×%d is outside 1 to %d pixels", width, height, maxPixels)
	}
	if channels != 1 && channels != 3 {
		return fmt.Errorf("image has %d channels, want 1 or 3", channels)
	}
	return nil
}

// check reports an Image whose fields disagree, so that no function indexes out of Pix.
func (m *Image) check() error {
	if m == nil {
		return fmt.Errorf("nil image")
	}
	if err := checkSize(m.Width, m.Height, m.Channels); err != nil {
		return err
	}
	if want := m.Width * m.Height * m.Channels; len(m.Pix) != want {
		return fmt.Errorf("image %d×%d×%d has %d bytes of pixels, want %d", m.Width, m.Height, m.Channels, len(m.Pix), want)
	}
	return nil
}

// Range says which values ToTensor maps 0 and 255 to.
type Range int

const (
	// Unit maps 0..255 to [0, 1] (v/255): Refiners' image_to_tensor, what ControlNet and
	// T2I-Adapter condition encoders take.
	Unit Range = iota
	// Signed maps 0..255 to [-1, 1] (2·(v/255) - 1): what Refiners feeds the autoencoder
	// (LatentDiffusionAutoencoder.images_to_latents).
	Signed
)

// ToTensor converts m to a [1, C, H, W] F32 tensor as Refiners' image_to_tensor does
// (refiners/fluxion/utils.py: array(image).astype(float32) / 255.0, channels first, a batch
// dimension in front), then for Signed applies 2·x - 1 in float32 as Refiners does before
// encoding. The values are bit-identical to PyTorch's.
func ToTensor(m *Image, r Range) (*runtime.Tensor, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if r != Unit && r != Signed {
		return nil, fmt.Errorf("unknown tensor range %d", r)
	}
	c, plane := m.Channels, m.Width*m.Height
	t := runtime.NewTensor(1, c, m.Height, m.Width)
	for i := range plane {
		for k := range c {
			// float32 division, correctly rounded, as NumPy's float32 array / 255.0.
			v := float32(m.Pix[i*c+k]) / 255
			if r == Signed {
				// The conversion stops the compiler from fusing into one FMA: PyTorch
				// rounds the product before subtracting.
				v = float32(2*v) - 1
			}
			t.F32[k*plane+i] = v
		}
	}
	return t, nil
}

// FromTensor converts a [1, C, H, W] or [C, H, W] F32 tensor of values in [0, 1], C being
// 1 or 3, to an image. Values are clamped to [0, 1] (NaN to 0) and rounded to the nearest
// of 256 levels, as runtime.SaveImage does; a tensor made by runtime.LoadImage from an 8-bit
// file gives back the file's pixels exactly.
func FromTensor(t *runtime.Tensor) (*Image, error) {
	if t == nil {
		return nil, fmt.Errorf("nil tensor")
	}
	if t.DType != runtime.F32 {
		return nil, fmt.Errorf("image tensor is %v, want F32", t.DType)
	}
	shape := t.Shape
	if len(shape) == 4 && shape[0] == 1 {
		shape = shape[1:]
	}
	if len(shape) != 3 || shape[0] != 1 && shape[0] != 3 {
		return nil, fmt.Errorf("image tensor has shape %s, want [1, C, H, W] or [C, H, W] with C = 1 or 3", t.ShapeString())
	}
	c, h, w := shape[0], shape[1], shape[2]
	m, err := New(w, h, c)
	if err != nil {
		return nil, fmt.Errorf("image tensor of shape %s: %v", t.ShapeString(), err)
	}
	plane := w * h
	if len(t.F32) != c*plane {
		return nil, fmt.Errorf("image tensor of shape %s holds %d values, want %d", t.ShapeString(), len(t.F32), c*plane)
	}
	for i := range plane {
		for k := range c {
			m.Pix[i*c+k] = runtime.Level8(t.F32[k*plane+i])
		}
	}
	return m, nil
}

// Load reads a PNG or JPEG file as an RGB image through runtime.LoadImage: alpha is dropped,
// gray is repeated on the three channels, as PIL's convert("RGB") does. Two cases differ
// from PIL: 16-bit samples are rounded to the nearest 8-bit level (PIL keeps the high
// byte), and JPEG files are decoded by Go's decoder, whose pixels may differ by a level
// from libjpeg's. 8-bit PNG files give PIL's pixels exactly.
func Load(path string) (*Image, error) {
	t, err := runtime.LoadImage(path)
	if err != nil {
		return nil, err
	}
	m, err := FromTensor(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return m, nil
}

// Save writes m as PNG or JPEG (by the extension: .png, .jpg, .jpeg) through
// runtime.SaveImage: gray images as gray, RGB as RGB; the file appears complete or not at
// all.
func Save(path string, m *Image) error {
	t, err := ToTensor(m, Unit)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return runtime.SaveImage(path, t)
}

// ControlImage returns the three-channel image ControlNet expects from an edge map or any
// gray image: the gray value repeated on R, G and B (ControlNet's HWC3). An RGB image is
// returned as a copy.
func ControlImage(m *Image) (*Image, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	out := &Image{Width: m.Width, Height: m.Height, Channels: 3, Pix: make([]uint8, 3*m.Width*m.Height)}
	if m.Channels == 3 {
		copy(out.Pix, m.Pix)
		return out, nil
	}
	for i, v := range m.Pix {
		out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = v, v, v
	}
	return out, nil
}
