#!/usr/bin/python3
"""TAEF2 goldens from a PyTorch reference of the upstream TAESD architecture.

The model is written here with torch.nn after madebyollin/taesd (taesd.py): nn.Sequential
indices are the checkpoint keys. TAEF2 adds the mid-block GroupNorm: in blocks 11-13 of the
encoder and 3-5 of the decoder, x <- x + pool(x) first, with pool = 1x1 conv (no bias) to 4x
channels, GroupNorm(4 groups), ReLU, 1x1 conv (no bias) back. The real float16 weights of
testdata/taef2/ are loaded in float32 (as rfc computes).

Writes testdata/golden/taef2_{encoder,decoder}_{input,output}.safetensors for a 64x64 crop
of testdata/images/astronaut.png (tests), and with --photo PATH --out DIR the encoder and
decoder outputs of any photo (the acceptance check on photos the tests never saw); with
--photos-psnr the round-trip PSNR of each bundled photo (testdata/golden/taef2_photos_psnr.json,
for examples/taesd).
Run from the repository root: /usr/bin/python3 scripts/golden/taesd.py
"""
import argparse
import os
import sys
import time
import zlib
import struct

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def conv(n_in, n_out, **kwargs):
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, n_in, n_out, use_midblock_gn=False):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = None
        if use_midblock_gn:
            c = n_in * 4
            self.pool = nn.Sequential(nn.Conv2d(n_in, c, 1, bias=False), nn.GroupNorm(4, c), nn.ReLU(), nn.Conv2d(c, n_in, 1, bias=False))

    def forward(self, x):
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def encoder(latent_channels, gn):
    return nn.Sequential(
        conv(3, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64, gn), Block(64, 64, gn), Block(64, 64, gn),
        conv(64, latent_channels),
    )


def decoder(latent_channels, gn):
    return nn.Sequential(
        Clamp(), conv(latent_channels, 64), nn.ReLU(),
        Block(64, 64, gn), Block(64, 64, gn), Block(64, 64, gn), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), conv(64, 3),
    )


def load(model, path):
    tensors, _ = st.load(path)
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    return model.eval()


def read_png(path):
    """Decode an 8-bit RGB/RGBA PNG without PIL (not installed): zlib + PNG filters."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, width = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, "only 8-bit RGB(A) non-interlaced PNG"
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    t = torch.tensor(list(out), dtype=torch.float32).reshape(height, width, channels)[:, :, :3]
    return t.permute(2, 0, 1).unsqueeze(0) / 255.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", help="run on this photo instead of writing the test goldens")
    ap.add_argument("--out", default="/tmp", help="where --photo writes its outputs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--time", action="store_true", help="print the time of each half (best of --runs)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--photos-psnr", action="store_true",
                    help="write testdata/golden/taef2_photos_psnr.json: the round-trip PSNR of each bundled photo, whole")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    enc = load(encoder(32, True), os.path.join(ROOT, "testdata/taef2/encoder.safetensors"))
    dec = load(decoder(32, True), os.path.join(ROOT, "testdata/taef2/decoder.safetensors"))
    if args.photos_psnr:
        # The PSNR of the upstream model on each bundled photo as a whole: what examples/taesd
        # (which tiles photos larger than its compiled size) must come close to.
        import json
        import math
        out = {}
        for name in ("astronaut.png", "coffee.png"):
            x = read_png(os.path.join(ROOT, "testdata/images", name))
            with torch.no_grad():
                y = dec(enc(x))
            mse = float(((y.clamp(0, 1) - x) ** 2).mean())
            out[name] = {"height": x.shape[2], "width": x.shape[3], "psnr_db": 10 * math.log10(1 / mse)}
            print(name, out[name])
        with open(os.path.join(ROOT, "testdata/golden/taef2_photos_psnr.json"), "w") as f:
            json.dump(out, f, indent=1, sort_keys=True)
            f.write("\n")
        return
    if args.photo:
        x = read_png(args.photo)
        with torch.no_grad():
            best_e = best_d = float("inf")
            for _ in range(args.runs if args.time else 1):
                t0 = time.perf_counter()
                z = enc(x)
                t1 = time.perf_counter()
                y = dec(z)
                t2 = time.perf_counter()
                best_e, best_d = min(best_e, t1 - t0), min(best_d, t2 - t1)
        name = os.path.splitext(os.path.basename(args.photo))[0]
        st.save(os.path.join(args.out, f"{name}_x.safetensors"), {"x": x.contiguous()})
        st.save(os.path.join(args.out, f"{name}_latent.safetensors"), {"y": z.contiguous()})
        st.save(os.path.join(args.out, f"{name}_decoded.safetensors"), {"y": y.contiguous()})
        mse = float(((y.clamp(0, 1) - x) ** 2).mean())
        import math
        print(f"{name}: latent {tuple(z.shape)}, PSNR {10 * math.log10(1 / mse):.2f} dB")
        if args.time:
            print(f"pytorch {torch.__version__} threads={args.threads}: encoder {best_e * 1000:.1f} ms, decoder {best_d * 1000:.1f} ms")
        return
    x = read_png(os.path.join(ROOT, "testdata/images/astronaut.png"))[:, :, 96:160, 200:264].contiguous()
    with torch.no_grad():
        z = enc(x)
        # Decode a latent with structure beyond this crop's: the encoder's output plus noise
        # that reaches the clamp's saturated range.
        g = torch.Generator().manual_seed(7)
        zin = (z + 2.0 * torch.randn(z.shape, generator=g)).contiguous()
        y = dec(zin)
    out = os.path.join(ROOT, "testdata/golden")
    st.save(os.path.join(out, "taef2_encoder_input.safetensors"), {"x": x})
    st.save(os.path.join(out, "taef2_encoder_output.safetensors"), {"y": z.contiguous()})
    st.save(os.path.join(out, "taef2_decoder_input.safetensors"), {"x": zin})
    st.save(os.path.join(out, "taef2_decoder_output.safetensors"), {"y": y.contiguous()})
    print("encoder", tuple(x.shape), "->", tuple(z.shape), "max|z|", float(z.abs().max()))
    print("decoder", tuple(zin.shape), "->", tuple(y.shape), "max|y|", float(y.abs().max()))


if __name__ == "__main__":
    main()
