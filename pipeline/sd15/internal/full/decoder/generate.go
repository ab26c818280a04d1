// Package decoder is the autoencoder's decoder (SD1Decoder) of models/sd15.rfn, compiled for
// one latent of any size; package sd15 uses it (its full set of models).
package decoder

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model SD1Decoder --set batch=1 -o . --pkg decoder
