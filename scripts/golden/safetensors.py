#!/usr/bin/python3
"""A safetensors golden written with torch, independently of runtime's writer.

The safetensors Python package is not installed, so the file is laid out by hand after the
format's definition: an 8-byte little-endian header length, a JSON header padded with
spaces to 8-byte alignment, then the tensors' raw little-endian bytes. Every tensor of a
non-F32/I64 dtype has a twin "<name>:f32" (torch's .float()) or "<name>:i64" (torch's
.long()) holding torch's own conversion, which the Go test compares against.

Writes runtime/testdata/golden/torch.safetensors.
Run: /usr/bin/python3 scripts/golden/safetensors.py
"""
import json
import os
import struct

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "runtime", "testdata", "golden", "torch.safetensors")

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
          torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def raw_bytes(t):
    t = t.contiguous()
    # bf16 has no numpy dtype: reinterpret as int16, which keeps the bits.
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()  # x86 is little-endian, as the format requires


def main():
    g = torch.Generator().manual_seed(7)
    f16 = torch.randn(2, 7, generator=g).half()
    f16[0, 0], f16[0, 1], f16[0, 2] = float("inf"), -float("inf"), 6e-8  # 6e-8: f16 subnormal
    f16[1, 0], f16[1, 1] = 65504.0, -0.0
    tensors = {
        "w.f32": torch.randn(3, 5, 2, generator=g),
        "w.f16": f16,
        "w.bf16": (torch.randn(5, 3, generator=g) * 1e3).bfloat16(),
        "w.f64": torch.randn(3, generator=g, dtype=torch.float64),
        "ids.i64": torch.tensor([[-(2 ** 40), -1, 0], [1, 7, 2 ** 50]], dtype=torch.int64),
        "ids.i32": torch.tensor([-(2 ** 31), -5, 3, 2 ** 31 - 1], dtype=torch.int32),
        "ids.i16": torch.tensor([-32768, 12, 32767], dtype=torch.int16),
        "ids.i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "ids.u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "mask.bool": torch.tensor([True, False, False, True, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    for name, t in list(tensors.items()):
        if t.dtype in (torch.float16, torch.bfloat16, torch.float64):
            tensors[name + ":f32"] = t.float()
        elif t.dtype not in (torch.float32, torch.int64):
            tensors[name + ":i64"] = t.long()

    header = {"__metadata__": {"format": "pt", "source": "scripts/golden/safetensors.py"}}
    data = b""
    # Reverse name order in the data section, so that file order differs from key order.
    for name in sorted(tensors, reverse=True):
        t = tensors[name]
        b = raw_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(OUT, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + data)
    print(f"{len(tensors)} tensors, {8 + len(text) + len(data)} bytes")


if __name__ == "__main__":
    main()
