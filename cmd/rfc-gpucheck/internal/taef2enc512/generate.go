package taef2enc512

// The TAEF2 encoder at its default size (512×512 images), batch 1: for timing against PyTorch.
//go:generate go run ../../../rfc compile ../../../../models/taesd.rfn --model TAEF2Encoder --set height=512 --set width=512 --set batch=1 --target cuda -o . --pkg taef2enc512
