// Package unetref is the UNet (SD1UNet of models/ip_adapter.rfn) with reference-only control on
// its 16 self-attentions (ReferenceOnlyAttention): one call runs the generation's two halves and
// the noised reference's, a batch of four; any size. Package sd15 uses it (its full set).
package unetref

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model SD1UNet --set tokens=77 --set batch=4 --adapter reference=ReferenceOnlyAttention --select ScaledDotProductAttention@**.CrossAttentionBlock.Residual_1.SelfAttention.* -o . --pkg unetref
