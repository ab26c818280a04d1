package taef2dec64

// The TAEF2 decoder at its default size (64×64 latents → 512×512 images), batch 1: for timing against PyTorch.
//go:generate go run ../../../rfc compile ../../../../models/taesd.rfn --model TAEF2Decoder --set height=64 --set width=64 --set batch=1 --target cuda -o . --pkg taef2dec64
