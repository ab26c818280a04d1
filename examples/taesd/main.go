// Command taesd round-trips a photo through TAEF2, the tiny autoencoder for FLUX.2
// latents, compiled ahead of time by rfc (packages taef2enc and taef2dec, generated from
// models/taesd.rfn and committed): image → 32-channel latent at 1/8 of the size → image. It
// writes the reconstruction and prints the PSNR against the input and the time of each half.
//
//	go -C examples run ./taesd [-in photo.png] [-out roundtrip.png] [-weights DIR] [-runs N]
//
// It runs from any folder: by default it reads the photo and the weights bundled with the
// repository (testdata/images/astronaut.png, testdata/taef2/), found from this file's
// location at build time, and writes NAME_roundtrip.png in the current folder. Relative
// -in, -out and -weights are relative to the current folder (with go -C, to examples/).
//
// The packages are compiled for 512×512 images (sizes are fixed at compile time). Any
// photo whose sides are multiples of 8 goes through: it is cut into 512×512 tiles that
// overlap by about 64 pixels or more (a side shorter than 512 is mirror-padded), each tile makes
// the round trip, and the tiles are blended back with linear ramps where they overlap. A
// 512×512 photo is one tile, exactly the model's own result.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/rfc-project/rfc/examples/taesd/taef2dec"
	"github.com/rfc-project/rfc/examples/taesd/taef2enc"
	"github.com/rfc-project/rfc/runtime"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	in, out, weights string
	runs             int
}

// cli is main without the exit: 0 on success, 1 on a failed round trip, 2 on bad flags.
func cli(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("taesd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.in, "in", "", "a PNG or JPEG photo whose sides are multiples of 8 (default: the bundled testdata/images/astronaut.png)")
	fs.StringVar(&o.out, "out", "", "where to write the reconstruction, .png or .jpg (default: NAME_roundtrip.png in the current folder)")
	fs.StringVar(&o.weights, "weights", "", "folder with encoder.safetensors and decoder.safetensors (default: the bundled testdata/taef2)")
	fs.IntVar(&o.runs, "runs", 1, "time the best of this many runs of each half (at least 1)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "taesd: unexpected arguments %q (give the photo with -in)\n", strings.Join(fs.Args(), " "))
		return 2
	}
	if o.runs < 1 {
		fmt.Fprintf(stderr, "taesd: -runs %d: want at least 1\n", o.runs)
		return 2
	}
	if o.in == "" || o.weights == "" {
		root, err := bundleRoot()
		if err != nil {
			fmt.Fprintln(stderr, "taesd:", err)
			return 2
		}
		if o.in == "" {
			o.in = filepath.Join(root, "testdata", "images", "astronaut.png")
		}
		if o.weights == "" {
			o.weights = filepath.Join(root, "testdata", "taef2")
		}
	}
	if o.out == "" {
		o.out = strings.TrimSuffix(filepath.Base(o.in), filepath.Ext(o.in)) + "_roundtrip.png"
	}
	if _, err := roundTrip(o, stdout); err != nil {
		fmt.Fprintln(stderr, "taesd:", err)
		return 1
	}
	return 0
}

// bundleRoot is the repository that this file was built from, where the bundled photo and
// weights are.
func bundleRoot() (string, error) {
	_, file, _, ok := goruntime.Caller(0)
	if ok && filepath.IsAbs(file) {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if _, err := os.Stat(filepath.Join(root, "testdata", "taef2", "encoder.safetensors")); err == nil {
			return root, nil
		}
	}
	return "", errors.New("cannot find the repository's testdata (this binary was built elsewhere, or with -trimpath): give -in and -weights")
}

// tileSize is the image size the packages were compiled for (height, width).
var tileSize = [2]int{taef2enc.XShape[2], taef2enc.XShape[3]}

// minOverlap is the overlap of neighbouring tiles, in pixels (less at most 7 when their
// starts are rounded to the latent grid), and the width of the blending ramps: the tiles' borders, where the model sees its own zero padding, are faded
// out over it.
const minOverlap = 64

// roundTrip encodes and decodes the photo, writes the reconstruction and returns the PSNR.
func roundTrip(o options, stdout io.Writer) (float64, error) {
	img, err := runtime.LoadImage(o.in)
	if err != nil {
		return 0, err
	}
	h, w := img.Shape[2], img.Shape[3]
	if h%8 != 0 || w%8 != 0 {
		return 0, fmt.Errorf("%s is %d×%d: TAEF2 works on sides that are multiples of 8 (crop it to %d×%d)", o.in, h, w, h/8*8, w/8*8)
	}
	enc, err := taef2enc.Load(filepath.Join(o.weights, "encoder.safetensors"))
	if err != nil {
		return 0, err
	}
	dec, err := taef2dec.Load(filepath.Join(o.weights, "decoder.safetensors"))
	if err != nil {
		return 0, err
	}
	ys, xs := tileStarts(h, tileSize[0]), tileStarts(w, tileSize[1])
	recon := make([]float32, len(img.F32))
	weight := make([]float32, h*w)
	tile := make([]float32, taef2enc.XLen)
	var encTime, decTime time.Duration
	for _, y0 := range ys {
		for _, x0 := range xs {
			cutTile(tile, img.F32, h, w, y0, x0)
			var latent, decoded []float32
			bestEnc, bestDec := time.Duration(1<<62), time.Duration(1<<62)
			for range o.runs {
				start := time.Now()
				if latent, err = enc.Forward(tile); err != nil {
					return 0, err
				}
				mid := time.Now()
				if decoded, err = dec.Forward(latent); err != nil {
					return 0, err
				}
				bestEnc, bestDec = min(bestEnc, mid.Sub(start)), min(bestDec, time.Since(mid))
			}
			encTime, decTime = encTime+bestEnc, decTime+bestDec
			blendTile(recon, weight, decoded, h, w, y0, x0)
		}
	}
	plane := h * w
	for c := range 3 {
		for i, wt := range weight {
			recon[c*plane+i] /= wt
		}
	}
	out := runtime.FromF32(recon, 1, 3, h, w)
	if err := runtime.SaveImage(o.out, out); err != nil {
		return 0, err
	}
	clamped := runtime.FromF32(make([]float32, len(recon)), out.Shape...)
	for i, v := range recon {
		clamped.F32[i] = min(max(v, 0), 1)
	}
	psnr, err := runtime.PSNR(clamped, img)
	if err != nil {
		return 0, err
	}
	tiles := len(ys) * len(xs)
	fmt.Fprintf(stdout, "%s (%d×%d) → %d tile(s) of %d×%d, latent %v each → %s\n", o.in, h, w, tiles, tileSize[0], tileSize[1], taef2enc.YShape, o.out)
	fmt.Fprintf(stdout, "PSNR %.2f dB\n", psnr)
	fmt.Fprintf(stdout, "encoder %v, decoder %v (%d threads)\n", encTime.Round(time.Millisecond), decTime.Round(time.Millisecond), runtime.Threads())
	return psnr, nil
}

// tileStarts places tiles of size t over a side of length n: one at 0 when n ≤ t, else
// evenly spread from 0 to n-t, on multiples of 8 (the latent grid), neighbours overlapping
// by at least minOverlap.
func tileStarts(n, t int) []int {
	if n <= t {
		return []int{0}
	}
	count := (n - minOverlap + (t - minOverlap) - 1) / (t - minOverlap) // ceil((n-overlap)/(t-overlap))
	count = max(count, 2)
	starts := make([]int, count)
	for i := range count {
		starts[i] = i * (n - t) / (count - 1) / 8 * 8
	}
	starts[count-1] = n - t
	return starts
}

// mirror maps i to [0, n) by reflection at the borders (…, 2, 1, 0, 1, 2, …, n-1, n-2, …).
func mirror(i, n int) int {
	if n == 1 {
		return 0
	}
	period := 2 * (n - 1)
	i %= period
	if i < 0 {
		i += period
	}
	if i >= n {
		i = period - i
	}
	return i
}

// cutTile copies the tile of img (3×h×w) at (y0, x0) into tile, mirroring past the edges.
func cutTile(tile, img []float32, h, w, y0, x0 int) {
	th, tw := tileSize[0], tileSize[1]
	for c := range 3 {
		for y := range th {
			src := img[c*h*w+mirror(y0+y, h)*w:]
			dst := tile[(c*th+y)*tw:]
			for x := range tw {
				dst[x] = src[mirror(x0+x, w)]
			}
		}
	}
}

// ramp is a tile's blending weight at offset i of a side of length t that starts at start
// on an axis of length n: 1 inside, fading to 0 over minOverlap pixels at a border shared
// with another tile, 0 past the image.
func ramp(i, t, start, n int) float32 {
	if start+i >= n {
		return 0
	}
	wt := float32(1)
	if start > 0 {
		wt = min(wt, (float32(i)+0.5)/minOverlap)
	}
	if start+t < n {
		wt = min(wt, (float32(t-i)-0.5)/minOverlap)
	}
	return wt
}

// blendTile adds the decoded tile, weighted by its ramps, to recon and the weights to weight.
func blendTile(recon, weight, decoded []float32, h, w, y0, x0 int) {
	th, tw := tileSize[0], tileSize[1]
	for y := range th {
		wy := ramp(y, th, y0, h)
		if wy == 0 {
			continue
		}
		for x := range tw {
			wt := wy * ramp(x, tw, x0, w)
			if wt == 0 {
				continue
			}
			i := (y0+y)*w + x0 + x
			weight[i] += wt
			for c := range 3 {
				recon[c*h*w+i] += wt * decoded[(c*th+y)*tw+x]
			}
		}
	}
}
