#!/usr/bin/python3
"""Golden for testdata/language/features.rfn: the language features a UNet needs (lists,
repeat over a list, conditional expressions, the Product container, a timestep embedding
from constant tensors), computed here with torch so both engines can be checked.

The sinusoidal embedding transcribes Refiners' compute_sinusoidal_embedding
(refiners/foundationals/latent_diffusion/range_encoder.py or fluxion utils):
    half = dim // 2
    exponent = -log(10000) * arange(half, float32) / half
    emb = t[:, None] * exp(exponent)
    cat([cos(emb), sin(emb)], dim=-1)

Writes testdata/language/features_{weights,input,output}.safetensors with the Refiners
paths of the model as keys. Run from the repository root: /usr/bin/python3 scripts/golden/language.py
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "language")

WIDTHS = [8, 16, 12]
SCALES = [0.5, 3.0]
EMBEDDING_DIM = 6


def sinusoidal(t, dim):
    half = dim // 2
    exponent = -math.log(10_000) * torch.arange(0, half, dtype=torch.float32) / half
    emb = t.unsqueeze(-1).float() * exponent.exp()
    return torch.cat([torch.cos(emb), torch.sin(emb)], dim=-1)


def main():
    g = torch.Generator().manual_seed(11)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).float()

    w = {}
    # The two forward Linears of `repeat i in range(len(widths) - 1)`: the second has no bias.
    w["Linear_1.weight"] = rnd(16, 8, scale=8 ** -0.5)
    w["Linear_1.bias"] = rnd(16, scale=0.1)
    w["Linear_2.weight"] = rnd(12, 16, scale=16 ** -0.5)
    w["Residual.Linear.weight"] = rnd(12, EMBEDDING_DIM, scale=EMBEDDING_DIM ** -0.5)
    w["Residual.Linear.bias"] = rnd(12, scale=0.1)
    w["Product.Chain.Linear.weight"] = rnd(12, 12, scale=12 ** -0.5)
    w["Product.Chain.Linear.bias"] = rnd(12, scale=0.1)
    w["Linear_3.weight"] = rnd(16, 12, scale=12 ** -0.5)
    w["Linear_3.bias"] = rnd(16, scale=0.1)
    w["Linear_4.weight"] = rnd(8, 16, scale=16 ** -0.5)
    w["Linear_4.bias"] = rnd(8, scale=0.1)

    x = rnd(3, WIDTHS[0])
    t = torch.tensor([999.0, 250.0, 1.0])

    h = F.gelu(F.linear(x, w["Linear_1.weight"], w["Linear_1.bias"]), approximate="tanh")
    h = F.gelu(F.linear(h, w["Linear_2.weight"]))
    h = h + F.linear(sinusoidal(t, EMBEDDING_DIM), w["Residual.Linear.weight"], w["Residual.Linear.bias"])
    h = h * torch.sigmoid(F.linear(h, w["Product.Chain.Linear.weight"], w["Product.Chain.Linear.bias"]))
    for s in SCALES:
        h = h * s
    h = F.linear(h, w["Linear_3.weight"], w["Linear_3.bias"])
    y = F.linear(h, w["Linear_4.weight"], w["Linear_4.bias"])

    # The embedding alone, for the SinusoidalEmbedding entry point.
    emb = sinusoidal(t, 8)

    os.makedirs(OUT, exist_ok=True)
    st.save(os.path.join(OUT, "features_weights.safetensors"), w)
    st.save(os.path.join(OUT, "features_input.safetensors"), {"x": x, "t": t})
    st.save(os.path.join(OUT, "features_output.safetensors"), {"y": y})
    st.save(os.path.join(OUT, "embedding_input.safetensors"), {"x": t})
    st.save(os.path.join(OUT, "embedding_output.safetensors"), {"y": emb})
    print("features: y range", float(y.min()), float(y.max()))


if __name__ == "__main__":
    main()
