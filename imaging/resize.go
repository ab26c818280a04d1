package imaging

import (
	"fmt"
	"math"
)

// Resize returns m resampled to width×height as PIL's Image.resize((width, height)) does
// with its default filter, BICUBIC, bit-identical to Pillow on 8-bit images. This is how
// Refiners brings an image to the size it needs (LatentDiffusionModel.init_latents,
// init_image.resize(size=(width, height)); its guides resize condition images the same
// way before image_to_tensor).
//
// As Pillow's libImaging/Resample.c: a separable convolution, columns first then rows,
// with the bicubic kernel (a = -0.5) stretched by the downscaling factor so that shrinking
// averages every source pixel (antialiasing); each output pixel's weights are normalized to
// sum 1, converted to 22-bit fixed point, and each pass rounds and clamps to 8 bits.
func Resize(m *Image, width, height int) (*Image, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if err := checkSize(width, height, m.Channels); err != nil {
		return nil, fmt.Errorf("resize to %d×%d: %v", width, height, err)
	}
	if width == m.Width && height == m.Height {
		// Image.resize returns a copy for the same size.
		out := *m
		out.Pix = append([]uint8(nil), m.Pix...)
		return &out, nil
	}
	c := m.Channels
	src := m
	if width != m.Width {
		bounds, coeffs, ksize := resampleCoeffs(m.Width, width)
		tmp := &Image{Width: width, Height: m.Height, Channels: c, Pix: make([]uint8, width*m.Height*c)}
		for y := range m.Height {
			in := m.Pix[y*m.Width*c : (y+1)*m.Width*c]
			out := tmp.Pix[y*width*c : (y+1)*width*c]
			for x := range width {
				first, n := bounds[2*x], bounds[2*x+1]
				k := coeffs[x*ksize : x*ksize+n]
				if c == 3 {
					s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
					px := in[first*3 : (first+n)*3]
					for i, kv := range k {
						s0 += int32(px[3*i]) * kv
						s1 += int32(px[3*i+1]) * kv
						s2 += int32(px[3*i+2]) * kv
					}
					out[3*x], out[3*x+1], out[3*x+2] = clip8(s0), clip8(s1), clip8(s2)
					continue
				}
				s := int32(1 << (precisionBits - 1))
				for i, kv := range k {
					s += int32(in[first+i]) * kv
				}
				out[x] = clip8(s)
			}
		}
		src = tmp
	}
	if height == src.Height {
		return src, nil
	}
	bounds, coeffs, ksize := resampleCoeffs(src.Height, height)
	out := &Image{Width: width, Height: height, Channels: c, Pix: make([]uint8, width*height*c)}
	rowLen := width * c
	acc := make([]int32, rowLen)
	for y := range height {
		first, n := bounds[2*y], bounds[2*y+1]
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		for j, kv := range coeffs[y*ksize : y*ksize+n] {
			row := src.Pix[(first+j)*rowLen : (first+j+1)*rowLen]
			for i, v := range row {
				acc[i] += int32(v) * kv
			}
		}
		dst := out.Pix[y*rowLen : (y+1)*rowLen]
		for i, s := range acc {
			dst[i] = clip8(s)
		}
	}
	return out, nil
}

// precisionBits is Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2, two bits of
// headroom for kernels with negative lobes.
const precisionBits = 32 - 8 - 2

// clip8 is Pillow's clip8: drop the fraction (arithmetic shift) and clamp to 0..255.
func clip8(s int32) uint8 {
	v := s >> precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// bicubic is Pillow's bicubic_filter (a = -0.5), each operation rounded as C does it.
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		t := float64(float64((a+2)*x)-(a+3)) * x
		return float64(t*x) + 1
	}
	if x < 2 {
		t := float64(float64(float64(x-5)*x)+8) * x
		return float64(t-4) * a
	}
	return 0
}

// resampleCoeffs is Pillow's precompute_coeffs for the bicubic filter over the whole
// image, followed by normalize_coeffs_8bpc: for each output index, the first source index
// and the tap count (bounds[2i], bounds[2i+1]), and ksize fixed-point weights per output
// index in coeffs. The float64 conversions keep the compiler from fusing operations that
// C rounds separately.
func resampleCoeffs(inSize, outSize int) (bounds []int, coeffs []int32, ksize int) {
	const support = 2.0 // bicubic
	scale := float64(inSize) / float64(outSize)
	filterScale := max(scale, 1)
	sup := support * filterScale
	ksize = int(math.Ceil(sup))*2 + 1
	bounds = make([]int, 2*outSize)
	coeffs = make([]int32, outSize*ksize)
	k := make([]float64, ksize)
	invScale := 1 / filterScale
	for xx := range outSize {
		center := float64(float64(xx)+0.5) * scale
		xmin := int(float64(center-sup) + 0.5) // C's (int) truncates toward zero
		xmin = max(xmin, 0)
		xmax := min(int(float64(center+sup)+0.5), inSize)
		xmax -= xmin
		var ww float64
		for x := range xmax {
			w := bicubic(float64(float64(float64(x+xmin)-center)+0.5) * invScale)
			k[x] = w
			ww += w
		}
		for x := range xmax {
			if ww != 0 {
				k[x] /= ww
			}
			// Round half away from zero, as Pillow's (int)(±0.5 + k·2^22).
			v := float64(k[x] * (1 << precisionBits))
			if v < 0 {
				coeffs[xx*ksize+x] = int32(v - 0.5)
			} else {
				coeffs[xx*ksize+x] = int32(v + 0.5)
			}
		}
		bounds[2*xx], bounds[2*xx+1] = xmin, xmax
	}
	return bounds, coeffs, ksize
}
