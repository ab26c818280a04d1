"""Golden inputs/outputs for the fused CPU kernels (kernels.Conv2dFused, LinearFused,
GroupNormAct, LayerNormAct, LinearGLU), computed with PyTorch in float64.

Run from the repository root:  /usr/bin/python3 scripts/golden/fused.py

Writes testdata/golden/ops_fused.safetensors in the layout of scripts/golden/ops.py (tensors
`<op>.case<N>.<role>`, attributes as JSON metadata). Epilogue attributes: act (none, relu,
silu, sigmoid, tanh, gelu, gelu_tanh, gelu_sigmoid), scale and shift (the affine step,
y·scale + shift), and a residual tensor r when the case has one:
y = act((op + b)·scale + shift + r). The convolutions have enough output channels to take the
implicit-GEMM path (K ≥ 32) as well as its neighbours, at odd sizes that cut panels and rows.
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops  # noqa: E402

ACT, randn, d = ops.ACTIVATIONS, ops.randn, ops.d


def epilogue(y, act, scale, shift, res):
    """Applies the epilogue to the float64 y; returns it and the residual (float32) or None."""
    y = y * scale + shift
    r = None
    if res:
        r = randn(*y.shape)
        y = y + d(r)
    return ACT[act](y), r


def fused():
    fam = ops.Family("fused", 8)

    def conv(n, c, h, w, k, kh, kw, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1, bias=True,
             act="none", scale=1.0, shift=0.0, res=False):
        x = randn(n, c, h, w)
        wt = randn(k, c // groups, kh, kw, scale=1.0 / math.sqrt(c // groups * kh * kw))
        b = randn(k) if bias else None
        y = F.conv2d(d(x), d(wt), d(b) if bias else None, stride, pad, dil, groups)
        y, r = epilogue(y, act, scale, shift, res)
        attrs = {"stride": list(stride), "padding": list(pad), "dilation": list(dil), "groups": groups,
                 "act": act, "scale": scale, "shift": shift}
        tensors = dict(x=x, w=wt, y=y)
        if bias:
            tensors["b"] = b
        if r is not None:
            tensors["r"] = r
        fam.case("conv2d_fused", attrs, **tensors)

    # implicit GEMM: TAESD's conv → add → relu, several output rows per task, odd widths
    conv(2, 5, 7, 13, 64, 3, 3, pad=(1, 1), act="relu", res=True)
    conv(1, 3, 11, 7, 32, 3, 3, pad=(1, 1))  # plain: a 32-channel first conv
    conv(1, 4, 10, 9, 40, 3, 3, stride=(2, 2), pad=(1, 1), act="silu", scale=0.5, shift=-0.25)
    conv(2, 6, 8, 7, 33, 2, 3, stride=(1, 2), pad=(0, 2), dil=(2, 1), bias=False, act="gelu_tanh", res=True)
    conv(1, 7, 6, 40, 32, 1, 1, act="gelu", scale=-2.0, shift=0.5, res=True)  # 1x1, wide rows
    conv(1, 3, 16, 16, 48, 4, 4, stride=(4, 4), act="tanh")  # patchify
    conv(1, 9, 5, 29, 64, 3, 3, pad=(1, 1), act="sigmoid", res=True)
    conv(1, 2, 3, 3, 32, 5, 5, pad=(2, 2), act="gelu_sigmoid")  # kernel as large as the image
    # the other paths with an epilogue: depthwise, grouped, 1x1, im2col with few channels
    conv(2, 6, 7, 9, 6, 3, 3, pad=(1, 1), groups=6, act="relu", res=True)
    conv(1, 4, 9, 8, 6, 3, 3, pad=(1, 1), groups=2, act="silu", scale=1.5, shift=0.0, res=True)
    conv(2, 8, 5, 7, 4, 1, 1, act="gelu", res=True)
    conv(1, 16, 9, 14, 3, 3, 3, pad=(1, 1), act="tanh", scale=0.75, shift=0.1, res=True)

    def linear(rows, fin, fout, bias=True, act="none", scale=1.0, shift=0.0, res=False):
        x, w = randn(rows, fin), randn(fout, fin, scale=1.0 / math.sqrt(fin))
        b = randn(fout) if bias else None
        y = F.linear(d(x), d(w), d(b) if bias else None)
        y, r = epilogue(y, act, scale, shift, res)
        tensors = dict(x=x, w=w, y=y)
        if bias:
            tensors["b"] = b
        if r is not None:
            tensors["r"] = r
        fam.case("linear_fused", {"act": act, "scale": scale, "shift": shift}, **tensors)

    linear(7, 13, 9, act="gelu")
    linear(33, 64, 17, act="relu", res=True)
    linear(2, 130, 70, bias=False, act="silu", scale=0.5, shift=1.0, res=True)
    linear(45, 24, 40, act="gelu_tanh")

    def groupnorm(n, c, h, w, groups, affine, act, eps=1e-5):
        x = randn(n, c, h, w, scale=1.5) + 0.5
        wt, b = (randn(c), randn(c)) if affine else (None, None)
        y = ACT[act](F.group_norm(d(x), groups, d(wt) if affine else None, d(b) if affine else None, eps))
        tensors = dict(x=x, y=y)
        if affine:
            tensors.update(w=wt, b=b)
        fam.case("groupnorm_act", {"groups": groups, "eps": eps, "act": act}, **tensors)

    groupnorm(2, 8, 5, 7, 4, True, "relu")
    groupnorm(1, 6, 3, 3, 3, False, "silu", eps=1e-6)

    def layernorm(shape, nshape, affine, act, eps=1e-5):
        x = randn(*shape, scale=2.0)
        wt, b = (randn(*nshape), randn(*nshape)) if affine else (None, None)
        y = ACT[act](F.layer_norm(d(x), nshape, d(wt) if affine else None, d(b) if affine else None, eps))
        tensors = dict(x=x, y=y)
        if affine:
            tensors.update(w=wt, b=b)
        fam.case("layernorm_act", {"eps": eps, "act": act, "cols": math.prod(nshape)}, **tensors)

    layernorm((2, 5, 12), (12,), True, "gelu")
    layernorm((3, 4, 6), (4, 6), False, "tanh")

    def glu(rows, fin, fout, bias, act):
        x, w = randn(rows, fin), randn(fout, fin, scale=1.0 / math.sqrt(fin))
        b = randn(fout) if bias else None
        a, g = F.linear(d(x), d(w), d(b) if bias else None).chunk(2, dim=-1)
        tensors = dict(x=x, w=w, y=a * ACT[act](g))
        if bias:
            tensors["b"] = b
        fam.case("linear_glu", {"act": act}, **tensors)

    glu(9, 11, 14, True, "gelu")
    glu(70, 8, 6, False, "sigmoid")  # more rows than one block at a small block size
    # appended (the cases above keep their random inputs): the grid path's stride 2 (a
    # polyphase split) with odd sizes, with and without padding, at full micro-kernel width
    conv(1, 6, 11, 9, 64, 3, 3, stride=(2, 2), pad=(1, 1), act="relu", res=True)
    conv(2, 5, 8, 10, 32, 3, 3, stride=(2, 2), bias=False)
    # appended: the Winograd path's shapes (3×3, padding 1, widths a multiple of 32)
    conv(1, 16, 6, 32, 32, 3, 3, pad=(1, 1), act="silu", res=True)
    conv(2, 17, 2, 32, 32, 3, 3, pad=(1, 1), bias=False)
    fam.write()


if __name__ == "__main__":
    torch.set_num_threads(2)
    fused()
