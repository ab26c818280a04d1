// Package t2igrey is the reduced full T2I-Adapter encoder of the tests on one-channel
// conditions (channels [8, 16, 24, 24]), compiled for any size; package sd15 uses it (its tiny
// set of models).
package t2igrey

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/t2i_adapter.rfn --model ConditionEncoder --set batch=1 --set in_channels=1 --set channels=[8,16,24,24] -o . --pkg t2igrey
