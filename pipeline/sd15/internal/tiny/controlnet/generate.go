// Package controlnet is the reduced ControlNet of the tests (models/controlnet.rfn's
// SD1Controlnet at the reduced UNet's sizes, condition widths [4, 6, 10, 12]), compiled for any
// batch and size; package sd15 uses it (its tiny set of models).
package controlnet

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/controlnet.rfn --model SD1Controlnet --set tokens=77 --set channels=[8,16,24,24] --set clip_embedding_dim=8 --set num_groups=4 --set condition_channels=[4,6,10,12] -o . --pkg controlnet
