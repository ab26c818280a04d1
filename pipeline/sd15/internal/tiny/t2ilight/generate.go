// Package t2ilight is the reduced light T2I-Adapter encoder of the tests (channels [8, 16,
// 24, 24]), compiled for any size; package sd15 uses it (its tiny set of models).
package t2ilight

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/t2i_adapter.rfn --model ConditionEncoderLight --set batch=1 --set channels=[8,16,24,24] -o . --pkg t2ilight
