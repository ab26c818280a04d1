// Package imageencoder is CLIP ViT-H/14's image encoder (CLIPImageEncoderH) of
// models/clip.rfn, IP-Adapter's, compiled for any batch of 224×224 images; package sd15 uses it
// (its full set of models).
package imageencoder

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/clip.rfn --model CLIPImageEncoderH -o . --pkg imageencoder
