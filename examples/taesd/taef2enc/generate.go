// Package taef2enc is the TAEF2 encoder of models/taesd.rfn compiled for one 512×512 RGB
// image.
package taef2enc

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../models/taesd.rfn --model TAEF2Encoder --set batch=1 --set height=512 --set width=512 -o . --pkg taef2enc
