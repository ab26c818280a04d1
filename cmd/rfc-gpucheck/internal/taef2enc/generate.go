package taef2enc

// The TAEF2 encoder at the size of testdata/golden/taef2_encoder_*.safetensors (scripts/golden/taesd.py).
//go:generate go run ../../../rfc compile ../../../../models/taesd.rfn --model TAEF2Encoder --set height=64 --set width=64 --set batch=1 --target cuda -o . --pkg taef2enc
