// Package taef2decsized is the TAEF2 decoder of models/taesd.rfn with its sizes (batch,
// height, width) chosen at run time: one package for latents of any size.
package taef2decsized

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../models/taesd.rfn --model TAEF2Decoder -o . --pkg taef2decsized
