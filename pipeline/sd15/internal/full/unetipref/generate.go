// Package unetipref is the UNet (SD1UNet of models/ip_adapter.rfn) with both the IP-Adapter and
// reference-only control, a batch of four (the generation's two halves, the noised
// reference's); package sd15 uses it (its full set of models).
package unetipref

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model SD1UNet --set tokens=77 --set batch=4 --adapter ip=ImageCrossAttention --select ScaledDotProductAttention@**.Residual_2.Attention.* --adapter reference=ReferenceOnlyAttention --select ScaledDotProductAttention@**.CrossAttentionBlock.Residual_1.SelfAttention.* -o . --pkg unetipref
