package main

import (
	"testing"
	"time"

	"github.com/rfc-project/rfc/examples/taesd/taef2dec"
	"github.com/rfc-project/rfc/examples/taesd/taef2decsized"
)

// BenchmarkDecoder512 decodes one 64×64 latent into a 512×512 image with the decoder
// specialized to that size (taef2dec, --set batch=1 --set height=64 --set width=64) and
// with the one whose sizes are chosen at run time (taef2decsized), alternately, so that the
// load of the machine weighs on both alike. It reports each one's best time and their
// ratio, specialized/sized: 1 when the sized package costs what the specialized one does.
//
//	go test -run '^$' -bench Decoder512 -benchtime 5x ./taesd
func BenchmarkDecoder512(b *testing.B) {
	const weights = "../../testdata/taef2/decoder.safetensors"
	latent := make([]float32, taef2dec.XLen)
	for i := range latent {
		latent[i] = float32(i%97)/97 - 0.5
	}
	shape := taef2dec.XShape[:]
	spec, err := taef2dec.Load(weights)
	if err != nil {
		b.Fatal(err)
	}
	sized, err := taef2decsized.Load(weights)
	if err != nil {
		b.Fatal(err)
	}
	// The first calls plan the sized package's memory and fill the kernels' pools.
	spec.Forward(latent)
	sized.Forward(latent, shape)
	runSpec := func() time.Duration {
		start := time.Now()
		if _, err := spec.Forward(latent); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	runSized := func() time.Duration {
		start := time.Now()
		if _, _, err := sized.Forward(latent, shape); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	bestSpec, bestSized := time.Duration(1<<62), time.Duration(1<<62)
	// Each goes first every other time: the second of a pair may find the caches warm.
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			bestSpec = min(bestSpec, runSpec())
			bestSized = min(bestSized, runSized())
		} else {
			bestSized = min(bestSized, runSized())
			bestSpec = min(bestSpec, runSpec())
		}
	}
	b.ReportMetric(float64(bestSpec.Milliseconds()), "specialized-ms")
	b.ReportMetric(float64(bestSized.Milliseconds()), "sized-ms")
	b.ReportMetric(float64(bestSpec)/float64(bestSized), "ratio")
}
