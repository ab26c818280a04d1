#!/usr/bin/python3
"""Goldens at several sizes for the packages compiled with sizes chosen at run time.

- ViT (the small ViT of vit.py, its weights testdata/golden/vit_weights.safetensors) at
  batch 1 and 3 (batch 2 is vit_input/vit_output): testdata/golden/vit_batches.safetensors
  holds x1, y1, x3, y3.
- The TAEF2 decoder (the real weights of testdata/taef2/) on the latents of two crops of
  testdata/images/astronaut.png of different shapes, plus noise as in taesd.py:
  testdata/golden/taef2_decoder_sizes.safetensors holds x_<h>x<w> and y_<h>x<w> for the
  latent sizes 6×10 and 11×7.

Run from the repository root: /usr/bin/python3 scripts/golden/sizes.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import taesd  # noqa: E402
import vit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "golden")


def vit_batches():
    model = vit.vit(embedding_dim=64, patch_size=8, image_size=32, num_layers=2, num_heads=4).eval()
    weights, _ = st.load(os.path.join(OUT, "vit_weights.safetensors"))
    model.load_state_dict(weights, strict=True)
    g = torch.Generator().manual_seed(2024)
    out = {}
    with torch.no_grad():
        for batch in (1, 3):
            x = torch.randn(batch, 3, 32, 32, generator=g)
            out[f"x{batch}"] = x.contiguous()
            out[f"y{batch}"] = model(x).contiguous()
            print("vit batch", batch, "->", tuple(out[f"y{batch}"].shape))
    st.save(os.path.join(OUT, "vit_batches.safetensors"), out)


def taef2_decoder_sizes():
    enc = taesd.load(taesd.encoder(32, True), os.path.join(ROOT, "testdata/taef2/encoder.safetensors"))
    dec = taesd.load(taesd.decoder(32, True), os.path.join(ROOT, "testdata/taef2/decoder.safetensors"))
    photo = taesd.read_png(os.path.join(ROOT, "testdata/images/astronaut.png"))
    g = torch.Generator().manual_seed(11)
    out = {}
    with torch.no_grad():
        for top, left, h, w in ((96, 200, 48, 80), (200, 120, 88, 56)):
            z = enc(photo[:, :, top:top + h, left:left + w].contiguous())
            zin = (z + 2.0 * torch.randn(z.shape, generator=g)).contiguous()
            y = dec(zin)
            name = f"{zin.shape[2]}x{zin.shape[3]}"
            out["x_" + name], out["y_" + name] = zin, y.contiguous()
            print("taef2 decoder", tuple(zin.shape), "->", tuple(y.shape))
    st.save(os.path.join(OUT, "taef2_decoder_sizes.safetensors"), out)


if __name__ == "__main__":
    torch.set_num_threads(2)
    vit_batches()
    taef2_decoder_sizes()
