"""Golden of the sinusoidal timestep embedding of Refiners' range adapter (SD1.5's UNet),
computed with PyTorch as Refiners' compute_sinusoidal_embedding does, in float32:

    exponent = -ln(10000) · arange(half) / half
    embedding = t[:, None] · exp(exponent)[None, :]
    embedding = cat([cos(embedding), sin(embedding)], dim=-1)

interp/sinusoidal_test.go checks the same computation written in .rfn (Arange, Multiply, Exp,
Matmul, Concatenate) against it.

Run from the repository root:  /usr/bin/python3 scripts/golden/sinusoidal.py
Writes testdata/golden/sinusoidal_embedding.safetensors: `timestep` [8, 1] (float32) and
`embedding_<dim>` [8, dim] for each embedding dim.
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

OUT = os.path.join("testdata", "golden", "sinusoidal_embedding.safetensors")
DIMS = (16, 320)  # a small one, and SD1.5's


def compute_sinusoidal_embedding(x, embedding_dim):
    half_dim = embedding_dim // 2
    exponent = -math.log(10000) * torch.arange(start=0, end=half_dim, dtype=torch.float32)
    exponent /= half_dim
    embedding = x.unsqueeze(1).float() * torch.exp(exponent).unsqueeze(0)
    return torch.cat([torch.cos(embedding), torch.sin(embedding)], dim=-1)


def main():
    # timesteps of a 1000-step schedule, the last ones where the angle is largest
    t = torch.tensor([0, 1, 10, 250, 500, 777, 981, 999], dtype=torch.int64)
    tensors = {"timestep": t.float().unsqueeze(1)}
    for dim in DIMS:
        tensors[f"embedding_{dim}"] = compute_sinusoidal_embedding(t, dim)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    st.save(OUT, tensors, {})
    print(f"{OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
