// Package unet is the UNet (SD1UNet) of models/sd15.rfn, compiled for latents of any batch and
// size (a batch of two with classifier-free guidance); package sd15 uses it (its full set of
// models).
package unet

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model SD1UNet --set tokens=77 -o . --pkg unet
