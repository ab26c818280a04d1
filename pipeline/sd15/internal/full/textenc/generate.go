// Package textenc is CLIP's text encoder (CLIPTextEncoderL) of models/sd15.rfn, compiled for
// one prompt (77 token ids); package sd15 uses it (its full set of models).
package textenc

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model CLIPTextEncoderL --set batch=1 -o . --pkg textenc
