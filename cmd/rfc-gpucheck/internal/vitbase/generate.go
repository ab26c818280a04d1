package vitbase

// ViT at its default size (512 wide, 12 layers, 384×384 images), batch 1: for timing against PyTorch.
//go:generate go run ../../../rfc compile ../../../../models/vit.rfn --model ViT --set batch=1 --target cuda -o . --pkg vitbase
