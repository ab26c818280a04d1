// Package unetipref is the reduced UNet of the tests with both the IP-Adapter and
// reference-only control, a batch of four; package sd15 uses it (its tiny set of models).
package unetipref

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model SD1UNet --set tokens=77 --set channels=[8,16,24,24] --set clip_embedding_dim=8 --set num_groups=4 --set batch=4 --adapter ip=ImageCrossAttention(image_embedding_dim=8) --select ScaledDotProductAttention@**.Residual_2.Attention.* --adapter reference=ReferenceOnlyAttention --select ScaledDotProductAttention@**.CrossAttentionBlock.Residual_1.SelfAttention.* -o . --pkg unetipref
