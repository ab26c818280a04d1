// Package t2igrey is the full T2I-Adapter condition encoder for Stable Diffusion 1.5 on
// one-channel conditions (models/t2i_adapter.rfn's ConditionEncoder with in_channels 1:
// TencentARC's sd15v2 canny and sketch adapters), compiled for any size; package sd15 runs it
// once per T2I-Adapter and request (its full set of models).
package t2igrey

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/t2i_adapter.rfn --model ConditionEncoder --set batch=1 --set in_channels=1 -o . --pkg t2igrey
