// Package encoder is the autoencoder's encoder (SD1Encoder) of models/sd15.rfn, compiled for
// one image of any size; package sd15 uses it (its full set of models).
package encoder

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model SD1Encoder --set batch=1 -o . --pkg encoder
