// Package unet1 is the UNet (SD1UNet) of models/sd15.rfn, compiled for one 64×64 latent (a
// 512×512 image, no guidance); package sd15 uses it (its full set of models).
package unet1

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model SD1UNet --set batch=1 --set tokens=77 -o . --pkg unet1
