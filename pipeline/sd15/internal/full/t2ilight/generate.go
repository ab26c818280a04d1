// Package t2ilight is the light T2I-Adapter condition encoder for Stable Diffusion 1.5
// (models/t2i_adapter.rfn's ConditionEncoderLight: TencentARC's color adapter), compiled for
// any size; package sd15 runs it once per T2I-Adapter and request (its full set of models).
package t2ilight

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/t2i_adapter.rfn --model ConditionEncoderLight --set batch=1 -o . --pkg t2ilight
