// Package unet1 is the reduced UNet of the tests of models/sd15.rfn, compiled for one 8×8
// latent (a 64×64 image, no guidance); package sd15 uses it (its tiny set of models).
package unet1

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model SD1UNet --set batch=1 --set tokens=77 --set channels=[8,16,24,24] --set clip_embedding_dim=8 --set num_groups=4 --set height=8 --set width=8 -o . --pkg unet1
