package main

import (
	"path/filepath"
	"testing"
)

// The round trip of the bundled astronaut through the compiled TAEF2 must keep the upstream
// model's quality (31.2 dB with PyTorch, scripts/golden/taesd.py --photo).
func TestRoundTripPSNR(t *testing.T) {
	if testing.Short() {
		t.Skip("512×512 round trip")
	}
	psnr, err := roundTrip("../../testdata/images/astronaut.png", filepath.Join(t.TempDir(), "out.png"), "../../testdata/taef2", 1)
	if err != nil {
		t.Fatal(err)
	}
	if psnr < 30 {
		t.Errorf("PSNR %.2f dB < 30 dB", psnr)
	}
}
