package imaging

import (
	"fmt"
	"math"
)

// maxCannyThreshold caps thresholds before they become integers: the largest L1 gradient
// of an 8-bit image is 4·255 + 4·255 = 2040, so anything above marks nothing either way.
const maxCannyThreshold = 1 << 20

// Canny returns the edge map of m (1 or 3 channels) as OpenCV's cv2.Canny(m, low, high)
// computes it with its defaults (aperture 3, L2gradient false): a one-channel image of 0
// and 255, bit-identical to OpenCV 4.x. This is the ControlNet canny preprocessor
// (lllyasviel's annotator/canny, diffusers' examples), run on the RGB image as given.
//
// The steps, as opencv/modules/imgproc/src/canny.cpp does them in integers:
//
//   - 3×3 Sobel derivatives per channel, borders replicated: dx = p[x+1]-p[x-1] and dy
//     likewise, each weighted 1, 2, 1 across;
//   - the L1 magnitude |dx|+|dy|; with three channels each pixel keeps the channel of the
//     largest magnitude (the first of equals, R before G before B) and that channel's dx, dy;
//   - non-maximum suppression along the gradient direction quantized to 0°, 45°, 90° or 135°
//     with OpenCV's fixed-point tan 22.5° test; magnitudes outside the image count as 0;
//     a pixel survives when its magnitude is above the floor of low and above its neighbour
//     on one side and at least its neighbour on the other (strictly above both diagonally);
//   - hysteresis: survivors above the floor of high are edges, and so is every survivor
//     8-connected to an edge through survivors.
//
// OpenCV does not blur first: for the blurred variant some pipelines use, call GaussianBlur
// before Canny. Unlike OpenCV, which swaps them, low > high is an error, as are negative
// or non-finite thresholds.
func Canny(m *Image, low, high float64) (*Image, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if math.IsNaN(low) || math.IsNaN(high) || math.IsInf(low, 0) || math.IsInf(high, 0) {
		return nil, fmt.Errorf("canny thresholds must be finite, got low %v, high %v", low, high)
	}
	if low < 0 || low > high {
		return nil, fmt.Errorf("canny thresholds must satisfy 0 ≤ low ≤ high, got low %v, high %v", low, high)
	}
	// OpenCV compares integer magnitudes with cvFloor of each threshold.
	lo := int32(math.Floor(min(low, maxCannyThreshold)))
	hi := int32(math.Floor(min(high, maxCannyThreshold)))

	w, h := m.Width, m.Height
	mag, dx, dy := gradients(m)

	// state holds, inside a one-pixel frame of "never an edge": notEdge, candidate (survived
	// suppression, not yet reached) or edge.
	const (
		candidate uint8 = 0
		notEdge   uint8 = 1
		edge      uint8 = 2
	)
	stride := w + 2
	state := make([]uint8, stride*(h+2))
	for i := range state {
		state[i] = notEdge
	}
	stack := make([]int32, 0, 1024)
	// tan 22.5° in 15-bit fixed point, OpenCV's TG22 (0.4142135623730950488 · 2^15, rounded).
	const tg22 = 13573
	for y := range h {
		for x := range w {
			j := (y+1)*stride + x + 1 // in mag and state alike
			mg := mag[j]
			if mg <= lo {
				continue
			}
			xs, ys := dx[y*w+x], dy[y*w+x]
			ax := abs32(xs)
			ay := abs32(ys) << 15
			tg22x := ax * tg22
			var keep bool
			switch {
			case ay < tg22x: // mostly horizontal gradient: compare left and right
				keep = mg > mag[j-1] && mg >= mag[j+1]
			case ay > tg22x+ax<<16: // mostly vertical (tan 67.5° = tan 22.5° + 2)
				keep = mg > mag[j-stride] && mg >= mag[j+stride]
			default: // diagonal: the sign of dx·dy picks the diagonal
				s := 1
				if xs^ys < 0 {
					s = -1
				}
				keep = mg > mag[j-stride-s] && mg > mag[j+stride+s]
			}
			if !keep {
				continue
			}
			if mg > hi {
				state[j] = edge
				stack = append(stack, int32(j))
			} else {
				state[j] = candidate
			}
		}
	}
	// Hysteresis: the frame stops the fill, so neighbours need no bounds checks.
	neighbours := [8]int{-stride - 1, -stride, -stride + 1, -1, 1, stride - 1, stride, stride + 1}
	for len(stack) > 0 {
		j := int(stack[len(stack)-1])
		stack = stack[:len(stack)-1]
		for _, d := range neighbours {
			if state[j+d] == candidate {
				state[j+d] = edge
				stack = append(stack, int32(j+d))
			}
		}
	}
	out := &Image{Width: w, Height: h, Channels: 1, Pix: make([]uint8, w*h)}
	for y := range h {
		row := state[(y+1)*stride+1:]
		for x := range w {
			if row[x] == edge {
				out.Pix[y*w+x] = 255
			}
		}
	}
	return out, nil
}

// gradients returns, per pixel, the L1 magnitude of the 3×3 Sobel gradient and its dx, dy,
// taken from the channel of largest magnitude (the first of equals). Borders are
// replicated, as OpenCV's Sobel with BORDER_REPLICATE. mag has a frame of zeros one pixel
// wide (stride w+2), the magnitude non-maximum suppression sees outside the image; dx and
// dy have stride w.
func gradients(m *Image) (mag, dx, dy []int32) {
	w, h, c := m.Width, m.Height, m.Channels
	stride := w + 2
	mag = make([]int32, stride*(h+2))
	dx = make([]int32, w*h)
	dy = make([]int32, w*h)
	// Per row, with one replicated pixel at each end: smooth = up + 2·mid + down (for dx),
	// diff = down - up (for dy). The 3×3 Sobel kernels are these, then [-1 0 1] or
	// [1 2 1] across.
	smooth := make([]int32, (w+2)*c)
	diff := make([]int32, (w+2)*c)
	gx := make([]int32, w*c)
	gy := make([]int32, w*c)
	row := func(y int) []uint8 { y = min(max(y, 0), h-1); return m.Pix[y*w*c : (y+1)*w*c] }
	for y := range h {
		up, mid, down := row(y-1), row(y), row(y+1)
		s, d := smooth[c:c+w*c], diff[c:c+w*c]
		for i := range s {
			u, v := int32(up[i]), int32(down[i])
			s[i] = u + 2*int32(mid[i]) + v
			d[i] = v - u
		}
		for k := range c {
			smooth[k], diff[k] = smooth[c+k], diff[c+k]
			smooth[(w+1)*c+k], diff[(w+1)*c+k] = smooth[w*c+k], diff[w*c+k]
		}
		for i := range gx {
			gx[i] = smooth[i+2*c] - smooth[i]
			gy[i] = diff[i] + 2*diff[i+c] + diff[i+2*c]
		}
		magRow := mag[(y+1)*stride+1 : (y+1)*stride+1+w]
		dxRow, dyRow := dx[y*w:(y+1)*w], dy[y*w:(y+1)*w]
		if c == 1 {
			for x := range magRow {
				magRow[x] = abs32(gx[x]) + abs32(gy[x])
			}
			copy(dxRow, gx)
			copy(dyRow, gy)
			continue
		}
		for x := range magRow {
			best := int32(-1)
			var bx, by int32
			for k := x * c; k < x*c+c; k++ {
				if g := abs32(gx[k]) + abs32(gy[k]); g > best {
					best, bx, by = g, gx[k], gy[k]
				}
			}
			magRow[x], dxRow[x], dyRow[x] = best, bx, by
		}
	}
	return mag, dx, dy
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}
