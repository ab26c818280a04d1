// Package t2i is the full T2I-Adapter condition encoder for Stable Diffusion 1.5
// (models/t2i_adapter.rfn's ConditionEncoder, RGB conditions), compiled for any size; package
// sd15 runs it once per T2I-Adapter and request (its full set of models).
package t2i

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/t2i_adapter.rfn --model ConditionEncoder --set batch=1 -o . --pkg t2i
