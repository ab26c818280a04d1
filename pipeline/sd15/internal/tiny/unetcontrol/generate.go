// Package unetcontrol is the reduced UNet of the tests with the inputs of
// models/controlnet.rfn's ControlInputs, compiled for latents of any batch and size; package
// sd15 uses it when a request has ControlNets or T2I-Adapters (its tiny set of models).
package unetcontrol

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/controlnet.rfn --model SD1UNet --control-inputs --set tokens=77 --set channels=[8,16,24,24] --set clip_embedding_dim=8 --set num_groups=4 -o . --pkg unetcontrol
