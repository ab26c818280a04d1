// Package unet2 is the UNet (SD1UNet) of models/sd15.rfn, compiled for two 64×64 latents (a
// 512×512 image with classifier-free guidance); package sd15 uses it (its full set of models).
package unet2

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model SD1UNet --set batch=2 --set tokens=77 -o . --pkg unet2
