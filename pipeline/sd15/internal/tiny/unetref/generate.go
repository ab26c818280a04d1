// Package unetref is the reduced UNet of the tests with reference-only control, a batch of
// four (the generation's two halves, the noised reference's); package sd15 uses it (its tiny
// set of models).
package unetref

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model SD1UNet --set tokens=77 --set channels=[8,16,24,24] --set clip_embedding_dim=8 --set num_groups=4 --set batch=4 --adapter reference=ReferenceOnlyAttention --select ScaledDotProductAttention@**.CrossAttentionBlock.Residual_1.SelfAttention.* -o . --pkg unetref
