// Package taef2dec is the TAEF2 decoder of models/taesd.rfn compiled for one 64×64 latent
// (a 512×512 image).
package taef2dec

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../models/taesd.rfn --model TAEF2Decoder --set batch=1 --set height=64 --set width=64 -o . --pkg taef2dec
