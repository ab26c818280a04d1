// Package decoder is the reduced autoencoder's decoder of the tests of models/sd15.rfn,
// compiled for one latent of any size; package sd15 uses it (its tiny set of models).
package decoder

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model SD1Decoder --set batch=1 --set channels=[8,12,16,16] --set num_groups=4 -o . --pkg decoder
