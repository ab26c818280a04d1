// Command taesd round-trips a photo through TAEF2, the tiny autoencoder for FLUX.2
// latents, compiled ahead of time by rfc (packages taef2enc and taef2dec, generated from
// models/taesd.rfn and committed): image → 32×64×64 latent → image. It writes the
// reconstruction and prints the PSNR against the input and the time of each half.
//
//	cd examples && go run ./taesd [-in photo.png] [-out roundtrip.png]
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/rfc-project/rfc/examples/taesd/taef2dec"
	"github.com/rfc-project/rfc/examples/taesd/taef2enc"
	"github.com/rfc-project/rfc/runtime"
)

func main() {
	in := flag.String("in", "../testdata/images/astronaut.png", "a 512×512 RGB photo (PNG or JPEG)")
	out := flag.String("out", "astronaut_roundtrip.png", "where to write the reconstruction (PNG or JPEG)")
	weights := flag.String("weights", "../testdata/taef2", "folder with encoder.safetensors and decoder.safetensors")
	runs := flag.Int("runs", 1, "time the best of this many runs of each half")
	flag.Parse()
	if err := run(*in, *out, *weights, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "taesd:", err)
		os.Exit(1)
	}
}

// run does the round trip and returns the PSNR in dB.
func run(in, out, weights string, runs int) error {
	_, err := roundTrip(in, out, weights, runs)
	return err
}

func roundTrip(in, out, weights string, runs int) (float64, error) {
	img, err := runtime.LoadImage(in)
	if err != nil {
		return 0, err
	}
	if !slices.Equal(img.Shape, taef2enc.XShape[:]) {
		return 0, fmt.Errorf("%s is %s; the compiled encoder takes %v (regenerate taef2enc and taef2dec with other --set height/width for other sizes)", in, img.ShapeString(), taef2enc.XShape)
	}
	enc, err := taef2enc.Load(weights + "/encoder.safetensors")
	if err != nil {
		return 0, err
	}
	dec, err := taef2dec.Load(weights + "/decoder.safetensors")
	if err != nil {
		return 0, err
	}
	var latent, decoded []float32
	encTime, decTime := time.Duration(1<<62), time.Duration(1<<62)
	for i := 0; i < max(runs, 1); i++ {
		start := time.Now()
		if latent, err = enc.Forward(img.F32); err != nil {
			return 0, err
		}
		mid := time.Now()
		if decoded, err = dec.Forward(latent); err != nil {
			return 0, err
		}
		encTime, decTime = min(encTime, mid.Sub(start)), min(decTime, time.Since(mid))
	}
	recon := runtime.FromF32(append([]float32(nil), decoded...), taef2dec.YShape[:]...)
	if err := runtime.SaveImage(out, recon); err != nil {
		return 0, err
	}
	clamped := runtime.FromF32(make([]float32, len(decoded)), recon.Shape...)
	for i, v := range decoded {
		clamped.F32[i] = min(max(v, 0), 1)
	}
	psnr, err := runtime.PSNR(clamped, img)
	if err != nil {
		return 0, err
	}
	fmt.Printf("%s → latent %v → %s\n", in, taef2enc.YShape, out)
	fmt.Printf("PSNR %.2f dB\n", psnr)
	fmt.Printf("encoder %v, decoder %v (%d threads)\n", encTime.Round(time.Millisecond), decTime.Round(time.Millisecond), runtime.Threads())
	return psnr, nil
}
