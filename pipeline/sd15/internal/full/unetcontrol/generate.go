// Package unetcontrol is the UNet (SD1UNet) of models/sd15.rfn with the inputs of
// models/controlnet.rfn's ControlInputs (the summed, scaled residuals of ControlNets and
// features of T2I-Adapters), compiled for latents of any batch and size; package sd15 uses it
// when a request has ControlNets or T2I-Adapters (its full set of models).
package unetcontrol

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/controlnet.rfn --model SD1UNet --control-inputs --set tokens=77 -o . --pkg unetcontrol
