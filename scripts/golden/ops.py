"""Golden inputs/outputs for the CPU kernels in kernels/, computed with PyTorch.

Run from the repository root:  /usr/bin/python3 scripts/golden/ops.py

Writes testdata/golden/ops_<family>.safetensors. Each case is stored as tensors named
`<op>.case<N>.<role>` (roles: x, w, b, y, a, ...) and a `__metadata__` entry `<op>.case<N>` whose
value is a JSON object of the case's attributes. References are computed in float64 where the
operation is arithmetic (then rounded to float32), in float32 where it only moves data.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

OUT_DIR = os.path.join("testdata", "golden")


class Family:
    def __init__(self, name, seed):
        self.name = name
        self.tensors = {}
        self.meta = {}
        self.counts = {}
        torch.manual_seed(seed)

    def case(self, op, attrs, **tensors):
        n = self.counts.get(op, 0)
        self.counts[op] = n + 1
        key = f"{op}.case{n}"
        self.meta[key] = json.dumps(attrs, sort_keys=True)
        for role, t in tensors.items():
            if t.dtype == torch.float64:
                t = t.float()
            self.tensors[f"{key}.{role}"] = t.contiguous()
        return key

    def write(self):
        os.makedirs(OUT_DIR, exist_ok=True)
        path = os.path.join(OUT_DIR, f"ops_{self.name}.safetensors")
        st.save(path, self.tensors, self.meta)
        size = os.path.getsize(path)
        assert size < 700 * 1024, f"{path} is {size} bytes: keep golden files small"
        print(f"{path}: {len(self.meta)} cases, {size} bytes")


# The activations of the fused ops' epilogues by the names their act attribute takes (kernels'
# fused CPU kernels and the interpreter's fused ops: fused.py and interp_ops.py).
ACTIVATIONS = {
    "none": lambda x: x,
    "relu": torch.relu,
    "silu": F.silu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_sigmoid": lambda x: x * torch.sigmoid(1.702 * x),
}


def randn(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def d(t):
    return t.double()


# ----------------------------------------------------------------------------- elementwise
def elementwise():
    fam = Family("elementwise", 1)
    x = randn(2, 3, 37, scale=3.0)
    fam.case("relu", {}, x=x, y=F.relu(x))
    fam.case("silu", {}, x=x, y=F.silu(d(x)))
    fam.case("sigmoid", {}, x=x, y=torch.sigmoid(d(x)))
    fam.case("tanh", {}, x=x, y=torch.tanh(d(x)))
    xs = randn(5, 41, scale=10.0)
    fam.case("sin", {}, x=xs, y=torch.sin(d(xs)))
    fam.case("cos", {}, x=xs, y=torch.cos(d(xs)))
    # wide range so the tails of every approximation are visited
    xg = torch.cat([randn(3, 29, scale=2.0).flatten(), torch.linspace(-12, 12, 97)])
    fam.case("gelu", {"approximate": "none"}, x=xg, y=F.gelu(d(xg)))
    fam.case("gelu", {"approximate": "tanh"}, x=xg, y=F.gelu(d(xg), approximate="tanh"))
    # Refiners' GeLU(approximation="sigmoid")
    fam.case("gelu", {"approximate": "sigmoid"}, x=xg, y=d(xg) * torch.sigmoid(1.702 * d(xg)))
    fam.case("clamp", {"lo": -0.75, "hi": 1.25}, x=x, y=torch.clamp(x, -0.75, 1.25))
    fam.case("scalebias", {"scale": -1.7, "bias": 0.3}, x=x, y=d(x) * -1.7 + 0.3)

    def binary(op, sa, sb):
        a = randn(*sa)
        b = randn(*sb)
        if op == "div":  # keep denominators away from zero
            b = torch.sign(b) * (b.abs() + 0.5)
        f = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}[op]
        fam.case("binary", {"op": op}, a=a, b=b, y=f(d(a), d(b)))

    binary("add", (2, 3, 5), (2, 3, 5))
    binary("sub", (2, 1, 4, 5), (3, 1, 5))
    binary("mul", (3, 1), (1, 7))
    binary("div", (2, 3, 4), (1,))
    binary("add", (5,), (2, 3, 5))
    binary("mul", (2, 1, 3), (2, 4, 1))
    binary("div", (4, 1, 6), (4, 3, 6))
    binary("sub", (1,), (3, 2))
    binary("div", (1, 1), (3, 4))
    a, b = randn(3, 67), randn(3, 67)
    fam.case("add", {}, a=a, b=b, y=d(a) + d(b))

    def softmax(shape, dim, scale):
        x = randn(*shape, scale=scale)
        fam.case("softmax", {"dim": dim}, x=x, y=torch.softmax(d(x), dim=dim))

    softmax((3, 7, 5), 1, 1.0)
    softmax((2, 1000), -1, 20.0)  # large logits: needs the max subtraction
    softmax((4, 6), 0, 3.0)
    softmax((2, 3, 4, 9), 3, 5.0)

    def reduce(shape, dim):
        x = randn(*shape) + 0.5
        fam.case("sum", {"dim": dim}, x=x, y=d(x).sum(dim))
        fam.case("mean", {"dim": dim}, x=x, y=d(x).mean(dim))

    reduce((3, 7, 5), 1)
    reduce((2, 9), 1)
    reduce((6, 4), 0)
    reduce((2, 3, 301), 2)

    def glu(shape, act):
        x = randn(*shape, scale=2.0)
        a, g = d(x).chunk(2, dim=-1)
        fn = {"sigmoid": torch.sigmoid, "gelu": F.gelu, "silu": F.silu, "relu": F.relu}[act]
        fam.case("glu", {"act": act}, x=x, y=a * fn(g))

    glu((2, 3, 10), "sigmoid")
    glu((5, 16), "gelu")
    glu((1, 4, 2, 6), "silu")

    def embedding(vocab, dim, idx_shape):
        w = randn(vocab, dim)
        idx = torch.randint(0, vocab, idx_shape, dtype=torch.int64)
        idx.view(-1)[0] = vocab - 1  # the last row is reachable
        fam.case("embedding", {}, idx=idx, w=w, y=F.embedding(idx, w))

    embedding(11, 6, (2, 5))
    embedding(50, 3, (7,))

    # exp and arange come last, so that the random draws of the cases above stay as they were.
    # exp: a wide range (e^±20) and the steps of the vector code's range reduction
    xe = torch.cat([randn(3, 29, scale=4.0).flatten(), torch.linspace(-20, 20, 83)])
    fam.case("exp", {}, x=xe, y=torch.exp(d(xe)))
    # arange as torch computes it: float32 values rounded from start + i·step (the last
    # case beyond 2^24, where the rounding shows), int64 exact
    for start, end, step in [(0, 77, 1), (-3, 8, 2), (10, -2, -3), (16777217, 16777250, 3)]:
        fam.case("arange", {"start": start, "end": end, "step": step},
                 y=torch.arange(start, end, step, dtype=torch.float32))
        fam.case("arange_int", {"start": start, "end": end, "step": step},
                 y=torch.arange(start, end, step, dtype=torch.int64))
    fam.write()


# ----------------------------------------------------------------------------- layout
def layout():
    fam = Family("layout", 2)

    for shape, perm in [((2, 3, 4, 5), (0, 2, 3, 1)), ((3, 4), (1, 0)),
                        ((2, 3, 4, 5, 2), (4, 2, 0, 3, 1)), ((2, 1, 7), (1, 0, 2))]:
        x = randn(*shape)
        fam.case("permute", {"perm": list(perm)}, x=x, y=x.permute(*perm))

    for shape, dim, start, end, step in [((3, 10, 4), 1, 2, 9, 3), ((5, 6), 0, 1, 4, 1),
                                         ((2, 3, 11), 2, 0, 11, 2), ((4, 5), 1, 3, 4, 1)]:
        x = randn(*shape)
        idx = [slice(None)] * len(shape)
        idx[dim] = slice(start, end, step)
        fam.case("slice", {"dim": dim, "start": start, "end": end, "step": step},
                 x=x, y=x[tuple(idx)])

    for shapes, dim in [([(2, 1, 3), (2, 4, 3), (2, 2, 3)], 1), ([(1, 5), (3, 5)], 0),
                        ([(2, 3, 2), (2, 3, 5)], 2)]:
        xs = [randn(*s) for s in shapes]
        tensors = {f"x{i}": t for i, t in enumerate(xs)}
        fam.case("concat", {"dim": dim, "count": len(xs)}, y=torch.cat(xs, dim), **tensors)

    x = randn(2, 3, 5, 7)
    for size in [(10, 14), (8, 11), (3, 4), (5, 7)]:
        fam.case("upsample_nearest", {"size": list(size)}, x=x,
                 y=F.interpolate(x, size=size, mode="nearest"))
    for size in [(11, 13), (3, 4), (5, 7), (10, 14), (1, 1)]:
        for ac in (False, True):
            fam.case("upsample_bilinear", {"size": list(size), "align_corners": ac}, x=x,
                     y=F.interpolate(x, size=size, mode="bilinear", align_corners=ac))

    x4 = randn(2, 3, 6, 7)
    fam.case("pad", {"pads": [1, 2, 0, 1, 1, 0], "mode": "constant", "value": 0.5},
             x=x4, y=F.pad(x4, (1, 2, 0, 1, 1, 0), mode="constant", value=0.5))
    fam.case("pad", {"pads": [-1, 2, 2, -1], "mode": "constant", "value": 0.0},
             x=x4, y=F.pad(x4, (-1, 2, 2, -1), mode="constant", value=0.0))
    fam.case("pad", {"pads": [2, 3, 1, 5], "mode": "reflect", "value": 0.0},
             x=x4, y=F.pad(x4, (2, 3, 1, 5), mode="reflect"))
    fam.case("pad", {"pads": [3, 1, 2, 4], "mode": "replicate", "value": 0.0},
             x=x4, y=F.pad(x4, (3, 1, 2, 4), mode="replicate"))
    fam.case("pad", {"pads": [1, 1, 1, 1], "mode": "reflect", "value": 0.0},
             x=x4, y=F.pad(x4, (1, 1, 1, 1), mode="reflect"))
    x3 = randn(2, 3, 8)
    fam.case("pad", {"pads": [0, 3], "mode": "constant", "value": -2.0},
             x=x3, y=F.pad(x3, (0, 3), value=-2.0))

    for n, c, h, w, f in [(2, 3, 6, 8, 2), (1, 2, 9, 6, 3)]:
        x = randn(n, c, h, w)
        fam.case("pixel_unshuffle", {"factor": f}, x=x, y=F.pixel_unshuffle(x, f))
        xs = randn(n, c * f * f, h, w)
        fam.case("pixel_shuffle", {"factor": f}, x=xs, y=F.pixel_shuffle(xs, f))
    fam.write()


# ----------------------------------------------------------------------------- linalg
def linalg():
    fam = Family("linalg", 3)
    for rows, fin, fout, bias in [(7, 13, 9, True), (1, 5, 3, False), (33, 64, 17, True),
                                  (2, 130, 70, True)]:
        x, w = randn(rows, fin), randn(fout, fin)
        b = randn(fout) if bias else None
        tensors = dict(x=x, w=w, y=F.linear(d(x), d(w), d(b) if bias else None))
        if bias:
            tensors["b"] = b
        fam.case("linear", {}, **tensors)
    for batch, m, k, n, abcast, bbcast in [(3, 5, 7, 4, False, False), (4, 6, 3, 5, True, False),
                                           (2, 9, 11, 3, False, True), (1, 17, 40, 23, False, False),
                                           (3, 4, 5, 6, True, True)]:
        a = randn(1 if abcast else batch, m, k)
        b = randn(1 if bbcast else batch, k, n)
        y = torch.matmul(d(a).expand(batch, m, k), d(b).expand(batch, k, n))
        fam.case("bmm", {"batch": batch}, a=a, b=b, y=y)
    fam.write()


# ----------------------------------------------------------------------------- conv
def conv():
    fam = Family("conv", 4)

    def conv2d(n, c, h, w, k, kh, kw, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1,
               bias=True):
        x = randn(n, c, h, w)
        wt = randn(k, c // groups, kh, kw, scale=1.0 / math.sqrt(c // groups * kh * kw))
        b = randn(k) if bias else None
        y = F.conv2d(d(x), d(wt), d(b) if bias else None, stride, pad, dil, groups)
        attrs = {"stride": list(stride), "padding": list(pad), "dilation": list(dil),
                 "groups": groups}
        tensors = dict(x=x, w=wt, y=y)
        if bias:
            tensors["b"] = b
        fam.case("conv2d", attrs, **tensors)

    conv2d(2, 3, 11, 13, 5, 3, 3, pad=(1, 1))
    conv2d(2, 8, 7, 9, 6, 1, 1)  # 1x1 stride 1: plain GEMM
    conv2d(1, 5, 16, 15, 4, 3, 3, stride=(2, 2), pad=(1, 1), bias=False)
    conv2d(1, 4, 12, 10, 6, 3, 3, pad=(2, 2), dil=(2, 2), groups=2)
    conv2d(2, 6, 9, 8, 6, 3, 3, pad=(1, 1), groups=6)  # depthwise
    conv2d(1, 4, 11, 12, 8, 5, 5, stride=(2, 2), pad=(2, 2), groups=4)  # depthwise, multiplier 2
    conv2d(2, 3, 10, 14, 4, 3, 5, stride=(2, 1), pad=(0, 2), dil=(1, 2))
    conv2d(1, 6, 9, 9, 5, 1, 1, stride=(2, 2))  # 1x1 strided: not the GEMM path
    conv2d(2, 6, 5, 7, 9, 1, 1, groups=3)  # grouped 1x1
    conv2d(1, 3, 16, 12, 8, 4, 4, stride=(4, 4))  # patchify
    conv2d(1, 16, 20, 24, 16, 3, 3, pad=(1, 1))  # many tiles with a small scratch cap
    conv2d(1, 3, 7, 6, 4, 7, 7, pad=(3, 3), bias=False)  # kernel as large as the image
    conv2d(1, 6, 8, 10, 6, 3, 3, stride=(2, 2), pad=(1, 1), dil=(2, 1), groups=6)  # depthwise
    conv2d(1, 2, 5, 5, 3, 3, 3, pad=(0, 0))  # no padding, 3x3
    conv2d(1, 4, 24, 25, 6, 1, 1, groups=2)  # 1x1 large enough to split into pixel tiles

    def convt(n, c, h, w, k, kh, kw, stride=(1, 1), pad=(0, 0), outpad=(0, 0), dil=(1, 1),
              groups=1, bias=True):
        x = randn(n, c, h, w)
        wt = randn(c, k // groups, kh, kw, scale=1.0 / math.sqrt(c * kh * kw))
        b = randn(k) if bias else None
        y = F.conv_transpose2d(d(x), d(wt), d(b) if bias else None, stride, pad, outpad, groups,
                               dil)
        attrs = {"stride": list(stride), "padding": list(pad), "output_padding": list(outpad),
                 "dilation": list(dil), "groups": groups}
        tensors = dict(x=x, w=wt, y=y)
        if bias:
            tensors["b"] = b
        fam.case("conv_transpose2d", attrs, **tensors)

    convt(2, 4, 5, 6, 6, 3, 3, stride=(2, 2), pad=(1, 1), outpad=(1, 1))
    convt(1, 6, 4, 5, 3, 2, 2, stride=(2, 2))
    convt(1, 4, 5, 5, 6, 4, 4, stride=(2, 2), pad=(1, 1), groups=2, bias=False)
    convt(2, 3, 6, 4, 5, 3, 3, dil=(2, 2))
    convt(1, 5, 4, 6, 4, 3, 4, stride=(2, 3), pad=(0, 1), outpad=(1, 2))
    convt(1, 8, 7, 7, 8, 3, 3, stride=(1, 1), pad=(1, 1))
    fam.write()


# ----------------------------------------------------------------------------- norm
def norm():
    fam = Family("norm", 5)

    def layernorm(shape, nshape, affine, eps=1e-5, offset=0.0):
        x = randn(*shape, scale=2.0) + offset
        w = randn(*nshape) if affine else None
        b = randn(*nshape) if affine else None
        y = F.layer_norm(d(x), nshape, d(w) if affine else None, d(b) if affine else None, eps)
        tensors = dict(x=x, y=y)
        if affine:
            tensors.update(w=w, b=b)
        fam.case("layernorm", {"normalized_shape": list(nshape), "eps": eps}, **tensors)

    layernorm((2, 5, 12), (12,), True)
    layernorm((3, 4, 6), (4, 6), True, eps=1e-6)
    layernorm((7, 33), (33,), False)
    layernorm((4, 300), (300,), True, offset=100.0)  # large mean: needs stable statistics

    def groupnorm(n, c, h, w, groups, affine, eps=1e-5, offset=0.0):
        x = randn(n, c, h, w, scale=1.5) + offset
        wt = randn(c) if affine else None
        b = randn(c) if affine else None
        y = F.group_norm(d(x), groups, d(wt) if affine else None, d(b) if affine else None, eps)
        tensors = dict(x=x, y=y)
        if affine:
            tensors.update(w=wt, b=b)
        fam.case("groupnorm", {"groups": groups, "eps": eps}, **tensors)

    groupnorm(2, 6, 5, 7, 3, True)
    groupnorm(1, 4, 3, 3, 1, True)
    groupnorm(2, 6, 4, 5, 6, True, eps=1e-6)
    groupnorm(3, 8, 2, 9, 4, False)
    groupnorm(1, 32, 8, 8, 32 // 4, True, offset=50.0)

    def layernorm2d(n, c, h, w, eps):
        # Refiners LayerNorm2d: statistics over channels at each pixel, population variance
        x = randn(n, c, h, w, scale=2.0)
        wt, b = randn(c), randn(c)
        xd = d(x)
        mean = xd.mean(1, keepdim=True)
        var = (xd - mean).pow(2).mean(1, keepdim=True)
        y = d(wt)[:, None, None] * ((xd - mean) / torch.sqrt(var + eps)) + d(b)[:, None, None]
        fam.case("layernorm2d", {"eps": eps}, x=x, w=wt, b=b, y=y)

    layernorm2d(2, 5, 3, 4, 1e-6)
    layernorm2d(1, 16, 7, 5, 1e-5)

    def instancenorm(n, c, h, w, affine, eps=1e-5):
        x = randn(n, c, h, w, scale=3.0) + 1.0
        wt = randn(c) if affine else None
        b = randn(c) if affine else None
        y = F.instance_norm(d(x), weight=d(wt) if affine else None,
                            bias=d(b) if affine else None, eps=eps)
        tensors = dict(x=x, y=y)
        if affine:
            tensors.update(w=wt, b=b)
        fam.case("instancenorm2d", {"eps": eps}, **tensors)

    instancenorm(2, 3, 5, 6, True)
    instancenorm(1, 4, 7, 3, False, eps=1e-3)
    fam.write()


# ----------------------------------------------------------------------------- attention
def attention():
    fam = Family("attention", 6)

    def reference(q, k, v, heads, causal):
        b, lq, hdk = q.shape
        lk = k.shape[1]
        dk, dv = hdk // heads, v.shape[2] // heads
        qh = d(q).view(b, lq, heads, dk).transpose(1, 2)
        kh = d(k).view(b, lk, heads, dk).transpose(1, 2)
        vh = d(v).view(b, lk, heads, dv).transpose(1, 2)
        s = qh @ kh.transpose(-1, -2) * (1.0 / math.sqrt(dk))
        if causal:  # top-left aligned lower-triangular mask over [lq, lk]: key j <= query i
            allowed = torch.ones(lq, lk, dtype=torch.bool).tril()
            s = s.masked_fill(~allowed, float("-inf"))
        o = torch.softmax(s, dim=-1) @ vh
        return o.transpose(1, 2).reshape(b, lq, heads * dv)

    def case(b, heads, lq, lk, dk, dv, causal, qscale=1.0, inputs=None):
        if inputs is None:
            q = randn(b, lq, heads * dk, scale=qscale)
            k = randn(b, lk, heads * dk)
            v = randn(b, lk, heads * dv)
            tensors = dict(q=q, k=k, v=v)
        else:
            q, k, v = (fam.tensors[f"{inputs}.{r}"] for r in "qkv")
            tensors = {}
        attrs = {"heads": heads, "causal": causal}
        if inputs is not None:
            attrs["inputs"] = inputs
        return fam.case("attention", attrs, y=reference(q, k, v, heads, causal), **tensors)

    case(2, 3, 5, 7, 4, 6, False)
    case(2, 3, 5, 7, 4, 6, True)
    case(1, 2, 9, 4, 5, 3, True)
    case(1, 1, 100, 130, 64, 64, True, qscale=2.0)
    long = case(1, 2, 1500, 1500, 6, 5, False, qscale=2.0)
    case(1, 2, 1500, 1500, 6, 5, True, inputs=long)
    case(1, 1, 600, 1100, 6, 5, False)
    case(2, 1, 300, 263, 8, 8, True, qscale=3.0)
    # Stable Diffusion's head widths (40, 80): keys and values pad to the micro-kernel's rows.
    case(1, 1, 45, 40, 40, 40, False)
    case(1, 1, 13, 25, 80, 80, False, qscale=2.0)
    fam.write()


if __name__ == "__main__":
    torch.set_num_threads(2)
    elementwise()
    layout()
    linalg()
    conv()
    norm()
    attention()
