// Package ipresampler is the reduced perceiver resampler of the tests (PerceiverResampler of
// models/ip_adapter.rfn), compiled for any batch; package sd15 uses it (its tiny set of models).
package ipresampler

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model PerceiverResampler --set latents_dim=8 --set num_attention_layers=2 --set num_attention_heads=2 --set head_dim=6 --set input_dim=16 --set output_dim=8 -o . --pkg ipresampler
