package vitsized

// The ViT of models/vit.rfn at the sizes of testdata/golden/vit_*.safetensors, its batch
// chosen at run time: one package for batches 1, 2, 3, ….
//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../models/vit.rfn --model ViT --set embedding_dim=64 --set patch_size=8 --set image_size=32 --set num_layers=2 --set num_heads=4 -o . --pkg vitsized
