"""Minimal safetensors writer/reader for golden scripts (pure Python: struct + json).

Format: u64 little-endian header length N, N bytes of JSON header (padded with spaces to a
multiple of 8 so the data section is aligned), then the raw little-endian tensor bytes.
The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
(offsets relative to the data section) and may hold "__metadata__": {str: str}.

    import st
    st.save("out.safetensors", {"a.x": tensor}, {"a": json.dumps({...})})
    tensors, metadata = st.load("out.safetensors")
"""

import json
import os
import struct

import numpy as np
import torch

# safetensors dtype name -> (torch dtype, numpy little-endian dtype used for the bytes)
_DTYPES = {
    "F64": (torch.float64, "<f8"),
    "F32": (torch.float32, "<f4"),
    "F16": (torch.float16, "<f2"),
    "BF16": (torch.bfloat16, "<i2"),  # numpy has no bfloat16: move the raw 16-bit patterns
    "I64": (torch.int64, "<i8"),
    "I32": (torch.int32, "<i4"),
    "I16": (torch.int16, "<i2"),
    "I8": (torch.int8, "i1"),
    "U8": (torch.uint8, "u1"),
    "BOOL": (torch.bool, "?"),
}
_NAME_OF = {tdt: name for name, (tdt, _) in _DTYPES.items()}


def _to_bytes(t):
    t = t.detach().cpu().contiguous()
    name = _NAME_OF.get(t.dtype)
    if name is None:
        raise TypeError(f"st.save: unsupported dtype {t.dtype}")
    if name == "BF16":
        arr = t.view(torch.int16).numpy()
    else:
        arr = t.numpy()
    return name, arr.astype(_DTYPES[name][1], copy=False).tobytes()


def save(path, tensors, metadata=None):
    """Write tensors (dict name -> torch.Tensor) and optional str->str metadata to path."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"st.save: metadata entries must be str->str, got {k!r}: {type(v)}")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        dtype, raw = _to_bytes(tensors[name])
        header[name] = {
            "dtype": dtype,
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * (-len(hdr) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for raw in blobs:
            f.write(raw)


def load(path, want=None):
    """Read path; return (dict name -> torch.Tensor, metadata dict). With want, a predicate on
    the names, only those tensors are read (a 2 GB checkpoint's UNet without its other parts)."""
    import mmap
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.path.getsize(path) else b""
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} exceeds file size {len(data)}")
    header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    base = 8 + n
    body_len = len(data) - base
    metadata = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        if want is not None and not want(name):
            continue
        dtype = info["dtype"]
        if dtype not in _DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        tdt, npdt = _DTYPES[dtype]
        begin, end = info["data_offsets"]
        if not 0 <= begin <= end <= body_len:
            raise ValueError(f"{path}: tensor {name}: data_offsets {begin},{end} out of range")
        arr = np.frombuffer(data[base + begin : base + end], dtype=npdt).copy()
        t = torch.from_numpy(arr)
        if dtype == "BF16":
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(info["shape"])
    return out, metadata
