package imaging

import (
	"math"
	"testing"
)

// The fuzz targets build small images from the fuzzer's bytes and check that every
// function either errors or returns a well-formed image that keeps the invariants below;
// none may panic. Seeds are in testdata/fuzz/FuzzX.

// fuzzImage makes a w×h image (1 to 24 each way) with 1 or 3 channels, cycling data; a
// constant image when data is empty.
func fuzzImage(data []byte, w, h uint8, rgb bool) *Image {
	c := 1
	if rgb {
		c = 3
	}
	width, height := int(w)%24+1, int(h)%24+1
	m := &Image{Width: width, Height: height, Channels: c, Pix: make([]uint8, width*height*c)}
	for i := range m.Pix {
		if len(data) > 0 {
			m.Pix[i] = data[i%len(data)]
		} else {
			m.Pix[i] = 77
		}
	}
	return m
}

func isConstant(m *Image) bool {
	for i := m.Channels; i < len(m.Pix); i++ {
		if m.Pix[i] != m.Pix[i%m.Channels] {
			return false
		}
	}
	return true
}

func FuzzCanny(f *testing.F) {
	f.Add([]byte{0, 255, 0, 255, 10, 200}, uint8(5), uint8(4), true, 100.0, 200.0)
	f.Add([]byte{}, uint8(0), uint8(0), false, 0.0, 0.0)
	f.Add([]byte{1, 2, 3}, uint8(23), uint8(1), false, 200.0, 100.0)
	f.Add([]byte{9, 250}, uint8(2), uint8(30), true, -1.0, math.Inf(1))
	f.Fuzz(func(t *testing.T, data []byte, w, h uint8, rgb bool, low, high float64) {
		m := fuzzImage(data, w, h, rgb)
		e, err := Canny(m, low, high)
		valid := low >= 0 && low <= high && !math.IsInf(high, 0)
		if !valid {
			if err == nil {
				t.Fatalf("thresholds low %v, high %v accepted", low, high)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Width != m.Width || e.Height != m.Height || e.Channels != 1 || len(e.Pix) != m.Width*m.Height {
			t.Fatalf("edge map %d×%d×%d (%d bytes) for a %d×%d image", e.Width, e.Height, e.Channels, len(e.Pix), m.Width, m.Height)
		}
		for _, v := range e.Pix {
			if v != 0 && v != 255 {
				t.Fatalf("edge map holds %d", v)
			}
		}
		if isConstant(m) {
			for _, v := range e.Pix {
				if v != 0 {
					t.Fatal("edges in a constant image")
				}
			}
		}
		// Lowering the low threshold only adds candidates: the edges can only grow.
		more, err := Canny(m, low/2, high)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range e.Pix {
			if v != 0 && more.Pix[i] == 0 {
				t.Fatalf("pixel %d is an edge at low %v but not at low %v", i, low, low/2)
			}
		}
	})
}

func FuzzGaussianBlur(f *testing.F) {
	f.Add([]byte{0, 255, 3}, uint8(7), uint8(5), true, 5, 0.0)
	f.Add([]byte{}, uint8(0), uint8(9), false, 0, 1.5)
	f.Add([]byte{4}, uint8(3), uint8(3), false, 4, 1.0)
	f.Add([]byte{200, 1}, uint8(1), uint8(1), true, 31, 40.0)
	f.Fuzz(func(t *testing.T, data []byte, w, h uint8, rgb bool, ksize int, sigma float64) {
		m := fuzzImage(data, w, h, rgb)
		b, err := GaussianBlur(m, ksize, sigma)
		if err != nil {
			return // every invalid parameter errors; valid ones are checked below
		}
		if b.Width != m.Width || b.Height != m.Height || b.Channels != m.Channels || len(b.Pix) != len(m.Pix) {
			t.Fatalf("blurred %d×%d×%d from %d×%d×%d", b.Width, b.Height, b.Channels, m.Width, m.Height, m.Channels)
		}
		// The fixed-point kernel sums to exactly 256: a constant image stays the same.
		if isConstant(m) {
			for i := range b.Pix {
				if b.Pix[i] != m.Pix[i] {
					t.Fatalf("constant image changed at %d: %d to %d", i, m.Pix[i], b.Pix[i])
				}
			}
		}
	})
}

func FuzzResize(f *testing.F) {
	f.Add([]byte{0, 255, 3}, uint8(7), uint8(5), true, 13, 2)
	f.Add([]byte{}, uint8(0), uint8(0), false, 1, 1)
	f.Add([]byte{9, 8, 7}, uint8(23), uint8(23), false, 0, 5)
	f.Add([]byte{1}, uint8(2), uint8(2), true, 300, 1)
	f.Fuzz(func(t *testing.T, data []byte, w, h uint8, rgb bool, width, height int) {
		m := fuzzImage(data, w, h, rgb)
		if width > 512 || height > 512 {
			return // keep runs fast; sizes are not what fuzzing explores here
		}
		r, err := Resize(m, width, height)
		if width < 1 || height < 1 {
			if err == nil {
				t.Fatalf("resize to %d×%d accepted", width, height)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Width != width || r.Height != height || r.Channels != m.Channels || len(r.Pix) != width*height*m.Channels {
			t.Fatalf("resized to %d×%d×%d (%d bytes), asked %d×%d", r.Width, r.Height, r.Channels, len(r.Pix), width, height)
		}
		if isConstant(m) {
			for i := range r.Pix {
				if r.Pix[i] != m.Pix[i%m.Channels] {
					t.Fatalf("constant image changed at %d: %d to %d", i, m.Pix[i%m.Channels], r.Pix[i])
				}
			}
		}
	})
}
