package vitf16

// The golden ViT with its weights stored as float16 on the GPU.
//go:generate go run ../../../rfc compile ../../../../models/vit.rfn --model ViT --set embedding_dim=64 --set patch_size=8 --set image_size=32 --set num_layers=2 --set num_heads=4 --set batch=2 --target cuda --f16-weights -o . --pkg vitf16
