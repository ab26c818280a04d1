// Package unet is the reduced UNet of the tests of models/sd15.rfn, compiled for latents of any
// batch and size; package sd15 uses it (its tiny set of models).
package unet

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model SD1UNet --set tokens=77 --set channels=[8,16,24,24] --set clip_embedding_dim=8 --set num_groups=4 -o . --pkg unet
