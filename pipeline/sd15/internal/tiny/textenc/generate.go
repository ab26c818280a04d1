// Package textenc is the reduced CLIP text encoder of the tests of models/sd15.rfn, compiled
// for one prompt (77 token ids); package sd15 uses it (its tiny set of models).
package textenc

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/sd15.rfn --model CLIPTextEncoderL --set batch=1 --set embedding_dim=8 --set num_layers=2 --set num_heads=2 --set feedforward_dim=16 -o . --pkg textenc
