// Package unetip is the reduced UNet of the tests with the IP-Adapter on its cross-attentions,
// compiled for any batch, size and number of image tokens; package sd15 uses it (its tiny set
// of models).
package unetip

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model SD1UNet --set tokens=77 --set channels=[8,16,24,24] --set clip_embedding_dim=8 --set num_groups=4 --adapter ip=ImageCrossAttention(image_embedding_dim=8) --select ScaledDotProductAttention@**.Residual_2.Attention.* -o . --pkg unetip
