package imaging

import (
	"fmt"
	"math"
)

// maxBlurKernel bounds the Gaussian kernel size; far beyond any useful blur of an 8-bit
// image (whose kernel taps round to zero a few sigmas out).
const maxBlurKernel = 1023

// GaussianBlur blurs m as OpenCV's cv2.GaussianBlur(m, (ksize, ksize), sigma) does with its
// default border, BORDER_REFLECT_101 (…cba|abcd|dcb…), bit-identical to OpenCV 4.x on 8-bit
// images. ksize is odd and positive, or 0 to derive it from sigma as OpenCV does for 8-bit
// images (round(6·sigma + 1), made odd); sigma 0 derives sigma from ksize (OpenCV's
// 0.3·((ksize-1)/2 - 1) + 0.8, and its exact binomial kernels for ksize 3, 5, 7 and 9).
// A dimension of one pixel is not blurred along.
//
// OpenCV's 8-bit path is integer arithmetic on a kernel computed in IEEE double (its
// softfloat, transcribed here with its own exp) and rounded to 8 fractional bits with error
// diffusion so that it sums to exactly 256; rows are filtered first, then columns, and the
// result is rounded once.
func GaussianBlur(m *Image, ksize int, sigma float64) (*Image, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if math.IsNaN(sigma) || math.IsInf(sigma, 0) || sigma < 0 {
		return nil, fmt.Errorf("gaussian blur sigma must be finite and ≥ 0, got %v", sigma)
	}
	if ksize < 0 || ksize > maxBlurKernel || ksize > 0 && ksize%2 == 0 {
		return nil, fmt.Errorf("gaussian blur kernel size must be odd, from 1 to %d (or 0 to derive it from sigma), got %d", maxBlurKernel, ksize)
	}
	if ksize == 0 {
		if sigma == 0 {
			return nil, fmt.Errorf("gaussian blur needs a kernel size or a sigma above 0, got both 0")
		}
		// createGaussianKernels for 8-bit images: cvRound(sigma·3·2 + 1) | 1.
		v := float64(float64(sigma*3)*2) + 1
		if v > maxBlurKernel {
			return nil, fmt.Errorf("gaussian blur sigma %v asks for a %.0f-pixel kernel, above the limit of %d", sigma, v, maxBlurKernel)
		}
		ksize = int(math.RoundToEven(v)) | 1
	}
	kw, kh := ksize, ksize
	// OpenCV does not blur along a dimension of one pixel (any border but CONSTANT).
	if m.Width == 1 {
		kw = 1
	}
	if m.Height == 1 {
		kh = 1
	}
	out := &Image{Width: m.Width, Height: m.Height, Channels: m.Channels, Pix: make([]uint8, len(m.Pix))}
	if kw == 1 && kh == 1 {
		copy(out.Pix, m.Pix)
		return out, nil
	}
	kx := fixedGaussianKernel(kw, sigma)
	ky := fixedGaussianKernel(kh, sigma)
	blurFixed(out, m, kx, ky)
	return out, nil
}

// blurFixed filters rows with kx then columns with ky in OpenCV's fixed point: a row pass
// gives 8.8 values (exact: the kernel sums to 256, so 255·256 fits 16 bits), the column
// pass 16.16 values (exact), rounded to 8 bits by adding one half and shifting.
func blurFixed(out, m *Image, kx, ky []uint32) {
	w, h, c := m.Width, m.Height, m.Channels
	rx, ry := len(kx)/2, len(ky)/2
	// A row with rx reflected pixels at each end, so that every tap reads a plain slice.
	padded := make([]uint32, (w+2*rx)*c)
	rows := make([]uint32, w*h*c)
	for y := range h {
		src := m.Pix[y*w*c : (y+1)*w*c]
		for x := -rx; x < w+rx; x++ {
			o := reflect101(x, w) * c
			for k := range c {
				padded[(x+rx)*c+k] = uint32(src[o+k])
			}
		}
		dst := rows[y*w*c : (y+1)*w*c]
		for i, kv := range kx {
			tap := padded[i*c : i*c+len(dst)]
			for j, v := range tap {
				dst[j] += kv * v
			}
		}
	}
	acc := make([]uint32, w*c)
	for y := range h {
		clear(acc)
		for j, kv := range ky {
			r := reflect101(y+j-ry, h)
			for i, v := range rows[r*w*c : (r+1)*w*c] {
				acc[i] += kv * v
			}
		}
		dst := out.Pix[y*w*c : (y+1)*w*c]
		for i, v := range acc {
			// At most 255·2^16: the rounded value never exceeds 255.
			dst[i] = uint8((v + 1<<15) >> 16)
		}
	}
}

// reflect101 maps a coordinate outside [0, n) back inside by reflecting about the edge
// pixels without repeating them (OpenCV's borderInterpolate for BORDER_REFLECT_101), as
// often as needed when the kernel is wider than the image.
func reflect101(p, n int) int {
	if n == 1 {
		return 0
	}
	for p < 0 || p >= n {
		if p < 0 {
			p = -p
		} else {
			p = 2*(n-1) - p
		}
	}
	return p
}

// fixedGaussianKernel is OpenCV's 8-bit Gaussian kernel (getGaussianKernelFixedPoint_ED
// with 8 fraction bits): the double kernel scaled by 256 and rounded left to right with the
// rounding error carried to the next tap, mirrored, the centre taking what makes the sum
// exactly 256. n is odd.
func fixedGaussianKernel(n int, sigma float64) []uint32 {
	k := gaussianKernel(n, sigma)
	out := make([]uint32, n)
	var carried float64
	var sum int64
	for i := range n / 2 {
		adjusted := float64(k[i]*256) + carried
		v := int64(math.RoundToEven(adjusted))
		carried = adjusted - float64(v)
		out[i], out[n-1-i] = uint32(v), uint32(v)
		sum += v
	}
	out[n/2] = uint32(256 - 2*sum)
	return out
}

// gaussianKernel is OpenCV's getGaussianKernel(n, sigma, CV_64F), bit for bit
// (getGaussianKernelBitExact): every operation is one IEEE double operation, as OpenCV's
// softdouble, and exp is OpenCV's own (softExp). The float64 conversions keep the Go
// compiler from fusing a multiply and an add where OpenCV rounds twice.
func gaussianKernel(n int, sigma float64) []float64 {
	if sigma <= 0 {
		switch n {
		case 1:
			return []float64{1}
		case 3:
			return []float64{0.25, 0.5, 0.25}
		case 5:
			return []float64{0.0625, 0.25, 0.375, 0.25, 0.0625}
		case 7:
			return []float64{0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125}
		case 9:
			return []float64{4. / 256, 13. / 256, 30. / 256, 51. / 256, 60. / 256, 51. / 256, 30. / 256, 13. / 256, 4. / 256}
		}
	}
	s := sigma
	if s <= 0 {
		// One rounding: OpenCV's mulAdd(n, 0.15, 0.35).
		s = math.FMA(float64(n), 0.15, 0.35)
	}
	// x runs over twice the tap offset, so the scale is -0.5·0.25/σ².
	scale := -0.125 / float64(s*s)
	half := (n - 1) / 2
	values := make([]float64, half)
	var sum float64
	for i, x := 0, 1-n; i < half; i, x = i+1, x+2 {
		t := softExp(float64(float64(x*x) * scale))
		values[i] = t
		sum += t
	}
	sum *= 2
	sum += 1
	if n%2 == 0 {
		sum += 1
	}
	inv := 1 / sum
	k := make([]float64, n)
	for i, v := range values {
		t := v * inv
		k[i], k[n-1-i] = t, t
	}
	k[half] = inv
	if n%2 == 0 {
		k[half+1] = inv
	}
	return k
}

// softExp is OpenCV's softdouble exp (core/src/softfloat.cpp, f64_exp): 2^(x·log2 e) split
// into a power of two, one of 64 tabulated powers 2^(i/64), and a degree-5 polynomial for
// the rest, each operation rounded as IEEE double. It is not correctly rounded, and
// differs from math.Exp in the last bit for some inputs, which is why it is transcribed.
func softExp(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return math.NaN()
	case math.IsInf(x, 1):
		return x
	case math.IsInf(x, -1):
		return 0
	}
	var x0 float64
	if int(math.Float64bits(x)>>52&0x7FF) > 1023+10 {
		x0 = math.Copysign(expMaxVal, x)
	} else {
		x0 = x * expPrescale
	}
	val0 := int(math.RoundToEven(x0))
	t := min(max(val0>>expTabScale+1023, 0), 2047)
	buf := math.Float64frombits(uint64(t) << 52)
	x0 = float64(x0-math.RoundToEven(x0)) * expPostscale

	p := float64(expA0*x0) + expA1
	p = float64(p*x0) + expA2
	p = float64(p*x0) + expA3
	p = float64(p*x0) + expA4
	p = float64(p*x0) + expA5
	return float64(float64(buf*expPolyA0)*math.Float64frombits(expTab[val0&(1<<expTabScale-1)])) * p
}

const expTabScale = 6

var (
	expPolyA0    = math.Float64frombits(0x3f83ce0f3e46f431)
	expMaxVal    = float64(3000 * (1 << expTabScale))
	expPrescale  = math.Float64frombits(0x3ff71547652b82fe) * (1 << expTabScale) // log2(e)·64
	expPostscale = 1.0 / (1 << expTabScale)

	expA5 = 1 / expPolyA0
	expA4 = math.Float64frombits(0x3fe62e42fefa39f1) / expPolyA0
	expA3 = math.Float64frombits(0x3fcebfbdff82a45a) / expPolyA0
	expA2 = math.Float64frombits(0x3fac6b08d81fec75) / expPolyA0
	expA1 = math.Float64frombits(0x3f83b2a72b4f3cd3) / expPolyA0
	expA0 = math.Float64frombits(0x3f55e7aa1566c2a4) / expPolyA0
)

// expTab holds 2^(i/64), i = 0..63, as OpenCV's softfloat tabulates them.
var expTab = [1 << expTabScale]uint64{
	0x3ff0000000000000, 0x3ff02c9a3e778061, 0x3ff059b0d3158574, 0x3ff0874518759bc8,
	0x3ff0b5586cf9890f, 0x3ff0e3ec32d3d1a2, 0x3ff11301d0125b51, 0x3ff1429aaea92de0,
	0x3ff172b83c7d517b, 0x3ff1a35beb6fcb75, 0x3ff1d4873168b9aa, 0x3ff2063b88628cd6,
	0x3ff2387a6e756238, 0x3ff26b4565e27cdd, 0x3ff29e9df51fdee1, 0x3ff2d285a6e4030b,
	0x3ff306fe0a31b715, 0x3ff33c08b26416ff, 0x3ff371a7373aa9cb, 0x3ff3a7db34e59ff7,
	0x3ff3dea64c123422, 0x3ff4160a21f72e2a, 0x3ff44e086061892d, 0x3ff486a2b5c13cd0,
	0x3ff4bfdad5362a27, 0x3ff4f9b2769d2ca7, 0x3ff5342b569d4f82, 0x3ff56f4736b527da,
	0x3ff5ab07dd485429, 0x3ff5e76f15ad2148, 0x3ff6247eb03a5585, 0x3ff6623882552225,
	0x3ff6a09e667f3bcd, 0x3ff6dfb23c651a2f, 0x3ff71f75e8ec5f74, 0x3ff75feb564267c9,
	0x3ff7a11473eb0187, 0x3ff7e2f336cf4e62, 0x3ff82589994cce13, 0x3ff868d99b4492ed,
	0x3ff8ace5422aa0db, 0x3ff8f1ae99157736, 0x3ff93737b0cdc5e5, 0x3ff97d829fde4e50,
	0x3ff9c49182a3f090, 0x3ffa0c667b5de565, 0x3ffa5503b23e255d, 0x3ffa9e6b5579fdbf,
	0x3ffae89f995ad3ad, 0x3ffb33a2b84f15fb, 0x3ffb7f76f2fb5e47, 0x3ffbcc1e904bc1d2,
	0x3ffc199bdd85529c, 0x3ffc67f12e57d14b, 0x3ffcb720dcef9069, 0x3ffd072d4a07897c,
	0x3ffd5818dcfba487, 0x3ffda9e603db3285, 0x3ffdfc97337b9b5f, 0x3ffe502ee78b3ff6,
	0x3ffea4afa2a490da, 0x3ffefa1bee615a27, 0x3fff50765b6e4540, 0x3fffa7c1819e90d8,
}
