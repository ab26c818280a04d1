// Package encoder is the reduced autoencoder's encoder of the tests of models/sd15.rfn,
// compiled for one image of any size; package sd15 uses it (its tiny set of models).
package encoder

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model SD1Encoder --set batch=1 --set channels=[8,12,16,16] --set num_groups=4 -o . --pkg encoder
