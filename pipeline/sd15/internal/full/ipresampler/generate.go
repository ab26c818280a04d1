// Package ipresampler is IP-Adapter plus's perceiver resampler (PerceiverResampler of
// models/ip_adapter.rfn): the image encoder's penultimate states to 16 tokens, compiled for any
// batch; package sd15 uses it (its full set of models).
package ipresampler

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model PerceiverResampler -o . --pkg ipresampler
