package imaging

import "testing"

// BenchmarkCanny512: cv2.Canny(img, 100, 200) on the 512×512 RGB astronaut.
func BenchmarkCanny512(b *testing.B) {
	m := photo(b, "astronaut")
	b.SetBytes(int64(len(m.Pix)))
	for b.Loop() {
		if _, err := Canny(m, 100, 200); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGaussianBlur5: cv2.GaussianBlur(img, (5, 5), 0) on the 512×512 RGB astronaut.
func BenchmarkGaussianBlur5(b *testing.B) {
	m := photo(b, "astronaut")
	b.SetBytes(int64(len(m.Pix)))
	for b.Loop() {
		if _, err := GaussianBlur(m, 5, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResize: the 400×600 (height×width) coffee photo to 512×768, PIL bicubic.
func BenchmarkResize(b *testing.B) {
	m := photo(b, "coffee")
	b.SetBytes(int64(len(m.Pix)))
	for b.Loop() {
		if _, err := Resize(m, 768, 512); err != nil {
			b.Fatal(err)
		}
	}
}
