package imaging

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rfc-project/rfc/runtime"
)

// The goldens come from scripts/golden/imaging.py (OpenCV 4.6, Pillow 9.4, PyTorch); the
// photos are the repository's testdata/images.

type blurParams struct {
	KSize int     `json:"ksize"`
	Sigma float64 `json:"sigma"`
}

type manifest struct {
	Versions map[string]string `json:"versions"`
	Photos   struct {
		Canny []struct {
			Image string      `json:"image"`
			Low   float64     `json:"low"`
			High  float64     `json:"high"`
			Blur  *blurParams `json:"blur"`
			File  string      `json:"file"`
		} `json:"canny"`
		Blur []struct {
			Image string `json:"image"`
			blurParams
			SHA256 string `json:"sha256"`
		} `json:"blur"`
		Resize []struct {
			Image  string `json:"image"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
			File   string `json:"file"`
			SHA256 string `json:"sha256"`
		} `json:"resize"`
	} `json:"photos"`
	Small struct {
		Canny []struct {
			Input int     `json:"input"`
			Low   float64 `json:"low"`
			High  float64 `json:"high"`
		} `json:"canny"`
		Blur []struct {
			Input int `json:"input"`
			blurParams
		} `json:"blur"`
		Resize []struct {
			Input  int `json:"input"`
			Width  int `json:"width"`
			Height int `json:"height"`
		} `json:"resize"`
		Kernel []struct {
			N     int     `json:"n"`
			Sigma float64 `json:"sigma"`
		} `json:"kernel"`
	} `json:"small"`
}

func loadManifest(t testing.TB) *manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("golden.json: %v", err)
	}
	return &m
}

var photoCache = map[string]*Image{}

func photo(t testing.TB, name string) *Image {
	t.Helper()
	if m, ok := photoCache[name]; ok {
		return m
	}
	m, err := Load(filepath.Join("..", "testdata", "images", name+".png"))
	if err != nil {
		t.Fatal(err)
	}
	photoCache[name] = m
	return m
}

// loadGolden reads a golden PNG written by PIL; gray files come back with three equal channels.
func loadGolden(t *testing.T, file string, channels int) *Image {
	t.Helper()
	m, err := Load(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	if channels == 1 {
		g := &Image{Width: m.Width, Height: m.Height, Channels: 1, Pix: make([]uint8, m.Width*m.Height)}
		for i := range g.Pix {
			g.Pix[i] = m.Pix[3*i]
		}
		return g
	}
	return m
}

// compareImages fails with the number and first positions of differing pixels.
func compareImages(t *testing.T, what string, got, want *Image) {
	t.Helper()
	if got.Width != want.Width || got.Height != want.Height || got.Channels != want.Channels {
		t.Errorf("%s: got %d×%d×%d, want %d×%d×%d", what, got.Width, got.Height, got.Channels, want.Width, want.Height, want.Channels)
		return
	}
	n, first := 0, ""
	for i := range got.Pix {
		if got.Pix[i] != want.Pix[i] {
			if n < 5 {
				p := i / got.Channels
				first += fmt.Sprintf(" (x %d, y %d, ch %d: %d want %d)", p%got.Width, p/got.Width, i%got.Channels, got.Pix[i], want.Pix[i])
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%s: %d of %d values differ:%s", what, n, len(got.Pix), first)
	}
}

func digestOf(m *Image) string {
	sum := sha256.Sum256(m.Pix)
	return hex.EncodeToString(sum[:])
}

func TestPhotoCanny(t *testing.T) {
	g := loadManifest(t)
	if len(g.Photos.Canny) == 0 {
		t.Fatal("no canny cases in golden.json")
	}
	for _, c := range g.Photos.Canny {
		t.Run(c.File, func(t *testing.T) {
			in := photo(t, c.Image)
			if c.Blur != nil {
				var err error
				if in, err = GaussianBlur(in, c.Blur.KSize, c.Blur.Sigma); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Canny(in, c.Low, c.High)
			if err != nil {
				t.Fatal(err)
			}
			compareImages(t, c.File, got, loadGolden(t, c.File, 1))
		})
	}
}

func TestPhotoBlur(t *testing.T) {
	g := loadManifest(t)
	for _, c := range g.Photos.Blur {
		t.Run(fmt.Sprintf("%s/k%d/s%g", c.Image, c.KSize, c.Sigma), func(t *testing.T) {
			got, err := GaussianBlur(photo(t, c.Image), c.KSize, c.Sigma)
			if err != nil {
				t.Fatal(err)
			}
			if d := digestOf(got); d != c.SHA256 {
				t.Errorf("SHA-256 of the blurred pixels is %s, OpenCV's is %s", d, c.SHA256)
			}
		})
	}
}

func TestPhotoResize(t *testing.T) {
	g := loadManifest(t)
	for _, c := range g.Photos.Resize {
		t.Run(fmt.Sprintf("%s/%dx%d", c.Image, c.Width, c.Height), func(t *testing.T) {
			got, err := Resize(photo(t, c.Image), c.Width, c.Height)
			if err != nil {
				t.Fatal(err)
			}
			if c.File != "" {
				compareImages(t, c.File, got, loadGolden(t, c.File, 3))
				return
			}
			if got.Width != c.Width || got.Height != c.Height {
				t.Fatalf("got %d×%d", got.Width, got.Height)
			}
			if d := digestOf(got); d != c.SHA256 {
				t.Errorf("SHA-256 of the resized pixels is %s, PIL's is %s", d, c.SHA256)
			}
		})
	}
}

// smallFile is the synthetic goldens, read once.
type smallFile struct {
	f *runtime.SafetensorsFile
}

func openSmall(t *testing.T) *smallFile {
	t.Helper()
	f, err := runtime.OpenSafetensors(filepath.Join("testdata", "small.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &smallFile{f}
}

// image reads a U8 tensor [H, W] or [H, W, C] as an image.
func (s *smallFile) image(t *testing.T, name string) *Image {
	t.Helper()
	x, err := s.f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	c := 1
	if len(x.Shape) == 3 {
		c = x.Shape[2]
	}
	m := &Image{Width: x.Shape[1], Height: x.Shape[0], Channels: c, Pix: make([]uint8, len(x.I64))}
	for i, v := range x.I64 {
		m.Pix[i] = uint8(v)
	}
	return m
}

func TestSmallCanny(t *testing.T) {
	g := loadManifest(t)
	s := openSmall(t)
	if len(g.Small.Canny) == 0 {
		t.Fatal("no small canny cases")
	}
	for n, c := range g.Small.Canny {
		in := s.image(t, fmt.Sprintf("input/%d", c.Input))
		got, err := Canny(in, c.Low, c.High)
		if err != nil {
			t.Fatal(err)
		}
		compareImages(t, fmt.Sprintf("canny/%d (input %d, %d×%d×%d, low %g, high %g)", n, c.Input, in.Width, in.Height, in.Channels, c.Low, c.High),
			got, s.image(t, fmt.Sprintf("canny/%d", n)))
	}
}

func TestSmallBlur(t *testing.T) {
	g := loadManifest(t)
	s := openSmall(t)
	for n, c := range g.Small.Blur {
		in := s.image(t, fmt.Sprintf("input/%d", c.Input))
		got, err := GaussianBlur(in, c.KSize, c.Sigma)
		if err != nil {
			t.Fatal(err)
		}
		compareImages(t, fmt.Sprintf("blur/%d (input %d, %d×%d×%d, ksize %d, sigma %g)", n, c.Input, in.Width, in.Height, in.Channels, c.KSize, c.Sigma),
			got, s.image(t, fmt.Sprintf("blur/%d", n)))
	}
}

func TestSmallResize(t *testing.T) {
	g := loadManifest(t)
	s := openSmall(t)
	for n, c := range g.Small.Resize {
		in := s.image(t, fmt.Sprintf("input/%d", c.Input))
		got, err := Resize(in, c.Width, c.Height)
		if err != nil {
			t.Fatal(err)
		}
		compareImages(t, fmt.Sprintf("resize/%d (input %d, %d×%d×%d to %d×%d)", n, c.Input, in.Width, in.Height, in.Channels, c.Width, c.Height),
			got, s.image(t, fmt.Sprintf("resize/%d", n)))
	}
}

// TestGaussianKernel holds the double kernel to cv2.getGaussianKernel bit for bit, which
// needs OpenCV's own exp: math.Exp differs in the last bit for some of these.
func TestGaussianKernel(t *testing.T) {
	g := loadManifest(t)
	s := openSmall(t)
	for n, c := range g.Small.Kernel {
		x, err := s.f.Tensor(fmt.Sprintf("kernel/%d", n))
		if err != nil {
			t.Fatal(err)
		}
		got := gaussianKernel(c.N, c.Sigma)
		if len(got) != len(x.I64) {
			t.Fatalf("kernel n=%d sigma=%g: %d taps, want %d", c.N, c.Sigma, len(got), len(x.I64))
		}
		for i, bits := range x.I64 {
			if math.Float64bits(got[i]) != uint64(bits) {
				t.Errorf("kernel n=%d sigma=%g tap %d: %v (%#x), OpenCV %v (%#x)", c.N, c.Sigma, i,
					got[i], math.Float64bits(got[i]), math.Float64frombits(uint64(bits)), uint64(bits))
			}
		}
	}
}

func TestToTensorGolden(t *testing.T) {
	s := openSmall(t)
	for _, name := range []string{"rgb", "gray"} {
		in := s.image(t, "tensor/"+name)
		for r, suffix := range map[Range]string{Unit: "unit", Signed: "signed"} {
			want, err := s.f.Tensor("tensor/" + name + "/" + suffix)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ToTensor(in, r)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
				t.Fatalf("%s/%s: shape %v, want %v", name, suffix, got.Shape, want.Shape)
			}
			for i := range want.F32 {
				if math.Float32bits(got.F32[i]) != math.Float32bits(want.F32[i]) {
					t.Errorf("%s/%s[%d] = %v, PyTorch %v", name, suffix, i, got.F32[i], want.F32[i])
				}
			}
		}
	}
}
