#!/usr/bin/python3
"""ViT and ViTCross goldens, built with a small re-implementation of Refiners' fluxion
containers on torch.nn, so the saved state_dict carries Refiners' keys (Chain_1.Residual_1…).

The containers and layers (Chain, Residual, Attention, ...) live in fluxion.py, shared with
sd15.py: Refiners' naming rule (class name, with _1, _2, … when a class occurs more than
once among siblings) and each layer's computation on torch's own modules.

Writes testdata/golden/vit_{weights,input,output}.safetensors and the same for vitcross.
Run from the repository root: /usr/bin/python3 scripts/golden/vit.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from fluxion import (  # noqa: E402
    CONTEXT, Attention, Chain, Conv2d, GeLU, Identity, LayerNorm, Linear, Parallel, Parameter,
    Reshape, Residual, UseContext,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "golden")


def vit(embedding_dim, patch_size, image_size, num_layers, num_heads, cross_dim=None):
    n = image_size // patch_size
    layers = []
    for _ in range(num_layers):
        if cross_dim is None:
            par = Parallel(Identity(), Identity(), Identity())
            att = Attention(embedding_dim, num_heads=num_heads)
        else:
            par = Parallel(Identity(), UseContext("cross_attention", "my_embed"), UseContext("cross_attention", "my_embed"))
            att = Attention(embedding_dim, num_heads=num_heads, key_embedding_dim=cross_dim, value_embedding_dim=cross_dim)
        layers.append(Chain(
            LayerNorm(embedding_dim),
            Residual(par, att),
            LayerNorm(embedding_dim),
            Residual(Linear(embedding_dim, embedding_dim * 4), GeLU(), Linear(embedding_dim * 4, embedding_dim)),
            Chain(Linear(embedding_dim, embedding_dim * 4), GeLU(), Linear(embedding_dim * 4, embedding_dim)),
        ))
    return Chain(
        Conv2d(3, embedding_dim, kernel_size=patch_size, stride=patch_size),
        Reshape(n * n, embedding_dim),
        Residual(Parameter(n * n, embedding_dim)),
        *layers,
        Reshape(embedding_dim, n, n),
    )


def randomize_norms(model):
    # LayerNorm starts at weight 1, bias 0: perturb so a wrong weight/bias order shows.
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm):
            with torch.no_grad():
                m.weight.add_(0.1 * torch.randn_like(m.weight))
                m.bias.add_(0.1 * torch.randn_like(m.bias))


def main():
    os.makedirs(OUT, exist_ok=True)
    cfg = dict(embedding_dim=64, patch_size=8, image_size=32, num_layers=2, num_heads=4)
    for name, cross in (("vit", None), ("vitcross", 48)):
        torch.manual_seed(1234 if cross is None else 4321)
        model = vit(cross_dim=cross, **cfg).eval()
        randomize_norms(model)
        x = torch.randn(2, 3, cfg["image_size"], cfg["image_size"])
        inputs = {"x": x}
        if cross is not None:
            inputs["my_embed"] = torch.randn(2, 5, cross)
            CONTEXT["cross_attention"] = {"my_embed": inputs["my_embed"]}
        with torch.no_grad():
            y = model(x)
        weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        st.save(os.path.join(OUT, f"{name}_weights.safetensors"), weights)
        st.save(os.path.join(OUT, f"{name}_input.safetensors"), inputs)
        st.save(os.path.join(OUT, f"{name}_output.safetensors"), {"y": y.contiguous()})
        print(name, "output", tuple(y.shape), "max|y|", float(y.abs().max()), "params", sum(v.numel() for v in weights.values()))


if __name__ == "__main__":
    main()
