package vit

// The ViT of testdata/golden/vit_*.safetensors (scripts/golden/vit.py).
//go:generate go run ../../../rfc compile ../../../../models/vit.rfn --model ViT --set embedding_dim=64 --set patch_size=8 --set image_size=32 --set num_layers=2 --set num_heads=4 --set batch=2 --target cuda -o . --pkg vit
