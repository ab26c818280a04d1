// Package controlnet is a ControlNet for Stable Diffusion 1.5 (models/controlnet.rfn's
// SD1Controlnet: the UNet's inputs and a condition image to 13 residuals), compiled for any
// batch and size; package sd15 runs it once per ControlNet at each step (its full set).
package controlnet

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/controlnet.rfn --model SD1Controlnet --set tokens=77 -o . --pkg controlnet
