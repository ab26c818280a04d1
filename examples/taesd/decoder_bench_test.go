package main

import (
	"testing"

	"github.com/rfc-project/rfc/examples/taesd/taef2dec"
	"github.com/rfc-project/rfc/examples/taesd/taef2decsized"
)

// BenchmarkDecoder512 decodes one 64×64 latent into a 512×512 image with the decoder
// specialized to that size (taef2dec, --set batch=1 --set height=64 --set width=64) and
// with the one whose sizes are chosen at run time (taef2decsized), in the same run: the
// second must cost what the first does. Compare with -count N and take each one's best:
//
//	go test -run '^$' -bench Decoder512 -count 5 ./taesd
func BenchmarkDecoder512(b *testing.B) {
	const weights = "../../testdata/taef2/decoder.safetensors"
	latent := make([]float32, taef2dec.XLen)
	for i := range latent {
		latent[i] = float32(i%97)/97 - 0.5
	}
	shape := taef2dec.XShape[:]
	b.Run("specialized", func(b *testing.B) {
		m, err := taef2dec.Load(weights)
		if err != nil {
			b.Fatal(err)
		}
		m.Forward(latent)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Forward(latent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sized", func(b *testing.B) {
		m, err := taef2decsized.Load(weights)
		if err != nil {
			b.Fatal(err)
		}
		m.Forward(latent, shape)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := m.Forward(latent, shape); err != nil {
				b.Fatal(err)
			}
		}
	})
}
