// Package ipproj is the reduced IP-Adapter image projection of the tests (ImageProjection of
// models/ip_adapter.rfn), compiled for any batch; package sd15 uses it (its tiny set of models).
package ipproj

//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../../../../models/ip_adapter.rfn --model ImageProjection --set clip_image_embedding_dim=12 --set clip_text_embedding_dim=8 -o . --pkg ipproj
