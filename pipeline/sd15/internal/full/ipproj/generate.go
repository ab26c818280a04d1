// Package ipproj is IP-Adapter's image projection (ImageProjection of models/ip_adapter.rfn):
// an image embedding to 4 tokens, compiled for any batch; package sd15 uses it (its full set of
// models).
package ipproj

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model ImageProjection -o . --pkg ipproj
