#!/usr/bin/python3
"""ViT and ViTCross goldens, built with a small re-implementation of Refiners' fluxion
containers on torch.nn, so the saved state_dict carries Refiners' keys (Chain_1.Residual_1…).

Refiners itself cannot be installed here; what matters for loading by name is its naming
rule (class name, with _1, _2, … when a class occurs more than once among siblings, see
refiners.fluxion.layers.chain.generate_unique_names) and each layer's computation, which
this file reproduces with torch's own modules.

Writes testdata/golden/vit_{weights,input,output}.safetensors and the same for vitcross.
Run from the repository root: /usr/bin/python3 scripts/golden/vit.py
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "golden")

CONTEXT = {}


def unique_names(modules):
    counts = {}
    for m in modules:
        counts[type(m).__name__] = counts.get(type(m).__name__, 0) + 1
    seen, names = {}, []
    for m in modules:
        c = type(m).__name__
        seen[c] = seen.get(c, 0) + 1
        names.append(f"{c}_{seen[c]}" if counts[c] > 1 else c)
    return names


class Chain(torch.nn.Module):
    def __init__(self, *modules):
        super().__init__()
        for name, m in zip(unique_names(modules), modules):
            self.add_module(name, m)

    def forward(self, *args):
        result = None
        for m in self._modules.values():
            result = m(*args)
            args = result if isinstance(result, tuple) else (result,)
        return result


class Residual(Chain):
    def forward(self, *inputs):
        return super().forward(*inputs) + inputs[0]


class Parallel(Chain):
    def forward(self, *args):
        return tuple(m(*args) for m in self._modules.values())


class Distribute(Chain):
    def forward(self, *args):
        assert len(args) == len(self._modules)
        return tuple(m(a) for m, a in zip(self._modules.values(), args))


class Identity(torch.nn.Module):
    def forward(self, x):
        return x


class UseContext(torch.nn.Module):
    def __init__(self, context, key):
        super().__init__()
        self.context, self.key = context, key

    def forward(self, *args):
        return CONTEXT[self.context][self.key]


class Linear(torch.nn.Linear):
    pass


class Conv2d(torch.nn.Conv2d):
    pass


class LayerNorm(torch.nn.LayerNorm):
    pass


class GeLU(torch.nn.Module):
    def forward(self, x):
        return F.gelu(x)


class Reshape(torch.nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class Parameter(torch.nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims
        self.weight = torch.nn.Parameter(torch.randn(*dims))

    def forward(self, x):
        return self.weight.expand(x.shape[0], *self.dims)


class ScaledDotProductAttention(torch.nn.Module):
    def __init__(self, num_heads=1, is_causal=False):
        super().__init__()
        self.num_heads, self.is_causal = num_heads, is_causal

    def forward(self, q, k, v):
        b, lq, e = q.shape
        h = self.num_heads

        def split(t):
            return t.reshape(b, t.shape[1], h, t.shape[2] // h).transpose(1, 2)

        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if self.is_causal:
            mask = torch.ones(scores.shape[-2:], dtype=torch.bool).tril()
            scores = scores.masked_fill(~mask, float("-inf"))
        out = scores.softmax(-1) @ v
        return out.transpose(1, 2).reshape(b, lq, -1)


class Attention(Chain):
    def __init__(self, embedding_dim, num_heads=1, key_embedding_dim=None, value_embedding_dim=None):
        kd = key_embedding_dim or embedding_dim
        vd = value_embedding_dim or embedding_dim
        super().__init__(
            Distribute(Linear(embedding_dim, embedding_dim), Linear(kd, embedding_dim), Linear(vd, embedding_dim)),
            ScaledDotProductAttention(num_heads=num_heads),
            Linear(embedding_dim, embedding_dim),
        )


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
