// Package imageencoder is the reduced CLIP image encoder of the tests (CLIPImageEncoderH of
// models/clip.rfn at the sizes of testdata/sd15/ip), compiled for any batch; package sd15 uses it
// (its tiny set of models).
package imageencoder

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/clip.rfn --model CLIPImageEncoderH --set image_size=20 --set embedding_dim=16 --set output_dim=12 --set patch_size=4 --set num_layers=3 --set num_attention_heads=2 --set feedforward_dim=40 -o . --pkg imageencoder
