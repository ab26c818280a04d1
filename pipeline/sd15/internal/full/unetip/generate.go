// Package unetip is the UNet (SD1UNet of models/ip_adapter.rfn) with the IP-Adapter on its 16
// cross-attentions (ImageCrossAttention), compiled for any batch, size and number of image
// tokens (4 for base, 16 for plus); package sd15 uses it (its full set of models).
package unetip

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model SD1UNet --set tokens=77 --adapter ip=ImageCrossAttention --select ScaledDotProductAttention@**.Residual_2.Attention.* -o . --pkg unetip
