package taef2dec

// The TAEF2 decoder at the size of testdata/golden/taef2_decoder_*.safetensors (scripts/golden/taesd.py).
//go:generate go run ../../../rfc compile ../../../../models/taesd.rfn --model TAEF2Decoder --set height=8 --set width=8 --set batch=1 --target cuda -o . --pkg taef2dec
