"""Golden cases for the IR interpreter (interp/), computed with PyTorch.

Run from the repository root:  /usr/bin/python3 scripts/golden/interp_ops.py

Writes testdata/golden/interp_ops.safetensors, and the cases of the fused ops (made by the
fusion passes only) to testdata/golden/interp_fused_ops.safetensors. Each case is a tiny IR module, in the text form
of ir.Print, stored in `__metadata__` under the case's name, with tensors
`<case>.in.<input>`, `<case>.param.<key>` (key = the parameter's checkpoint key) and
`<case>.out` (`<case>.out.<i>` for outputs after the first). References are computed in
float64 from the float32 inputs, then rounded to float32.
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops  # noqa: E402
import st  # noqa: E402

OUT = os.path.join("testdata", "golden", "interp_ops.safetensors")

IR_DTYPE = {torch.float32: "f32", torch.float64: "f32", torch.int64: "i64", torch.int32: "i32"}


def fmt_shape(t):
    return "[" + ", ".join(str(d) for d in t.shape) + "]"


def fmt_attr(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        s = repr(v)
        return s if ("." in s or "e" in s) else s + ".0"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(int(n)) for n in v) + "]"
    raise TypeError(f"attribute {v!r}")


class Val:
    """An IR value: its operand text and its reference value (float64, or the int tensor)."""

    def __init__(self, ref, t, dtype):
        self.ref, self.t, self.dtype = ref, t, dtype


class Case:
    def __init__(self, name):
        assert "." not in name
        self.name = name
        self.lines = []
        self.ops = []
        self.tensors = {}

    def input(self, name, t, dtype=None):
        dtype = dtype or IR_DTYPE[t.dtype]
        self.lines.append(f"input %{name}: {dtype}{fmt_shape(t)}")
        self.tensors[f"{self.name}.in.{name}"] = t.contiguous()
        return Val("%" + name, t.double() if t.is_floating_point() else t, dtype)

    def param(self, name, t, key=None):
        key = key or name
        self.lines.append(f'param @{name}: f32{fmt_shape(t)} key "{key}" in ""')
        self.tensors[f"{self.name}.param.{key}"] = t.contiguous()
        return Val("@" + name, t.double(), "f32")

    def layer(self, module, key, x, weight, bias=None):
        """The params of a layer applied to x: module.weight (key key.weight) and, when bias is
        given, module.bias. Returns the op's operands [x, w(, b)] and the reference's weight
        and bias (None when there is none)."""
        w = self.param(f"{module}.weight", weight, key=f"{key}.weight")
        if bias is None:
            return [x, w], w.t, None
        b = self.param(f"{module}.bias", bias, key=f"{key}.bias")
        return [x, w, b], w.t, b.t

    def op(self, op, args, out, dtype="f32", more_attrs=None, **attrs):
        # more_attrs: attributes whose names clash with this method's parameters (dtype)
        attrs.update(more_attrs or {})
        ref = f"%{len(self.ops)}"
        text = f"{ref}: {dtype}{fmt_shape(out)} = {op}({', '.join(a.ref for a in args)})"
        if attrs:
            text += " {" + ", ".join(f"{k}={fmt_attr(v)}" for k, v in attrs.items()) + "}"
        self.ops.append(text + ' in ""')
        return Val(ref, out, dtype)

    def arange(self, start, end, step, dtype):
        torch_dtype = {"f32": torch.float32, "i32": torch.int32, "i64": torch.int64}[dtype]
        out = torch.arange(start, end, step, dtype=torch_dtype)
        return self.op("arange", [], out, dtype=dtype,
                       more_attrs=dict(start=start, end=end, step=step, dtype=dtype))

    def finish(self, *outputs):
        text = "\n".join(
            [f"module {self.name}", 'scope "" Test key ""']
            + self.lines
            + self.ops
            + ["output " + ", ".join(o.ref for o in outputs)]
        )
        for i, o in enumerate(outputs):
            key = f"{self.name}.out" if i == 0 else f"{self.name}.out.{i}"
            t = o.t.float() if o.t.is_floating_point() else o.t
            self.tensors[key] = t.contiguous()
        return text + "\n"


CASES = {}
TENSORS = {}
# The fused ops (ir.OpInfo.Fused, made by the fusion passes) go to a file of their own,
# interp_fused_ops.safetensors: a back end without them keeps reading interp_ops alone.
FUSED_CASES = {}
FUSED_TENSORS = {}
FUSED_OUT = os.path.join("testdata", "golden", "interp_fused_ops.safetensors")


def case(name, fused=False):
    """Decorator: the function gets a Case and returns its outputs."""

    def register(fn):
        c = Case(name)
        outs = fn(c)
        if isinstance(outs, Val):
            outs = (outs,)
        (FUSED_CASES if fused else CASES)[name] = c.finish(*outs)
        (FUSED_TENSORS if fused else TENSORS).update(c.tensors)
        return fn

    return register


def randn(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def away_from_zero(t, gap=0.5):
    return torch.sign(t) * (t.abs() + gap) + (t == 0).float() * gap


torch.manual_seed(7)

# ------------------------------------------------------------------ element-wise
UNARY = {
    "relu": torch.relu,
    "silu": F.silu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "sin": torch.sin,
    "cos": torch.cos,
}
for _name, _fn in UNARY.items():

    @case(_name)
    def _(c, name=_name, fn=_fn):
        x = c.input("x", randn(2, 3, 5, scale=3.0))
        return c.op(name, [x], fn(x.t))


GELU = {
    "none": lambda x: F.gelu(x),
    "tanh": lambda x: F.gelu(x, approximate="tanh"),
    "sigmoid": lambda x: x * torch.sigmoid(1.702 * x),  # Refiners' GeLU(approximation="sigmoid")
}
for _approx, _fn in GELU.items():

    @case(f"gelu_{_approx}")
    def _(c, approx=_approx, fn=_fn):
        # |x| ≤ 3 keeps the tolerance below the 4.7e-4 that separates the exact and tanh
        # forms near x = 2.7, so a kernel using the wrong formula fails
        x = c.input("x", torch.linspace(-3, 3, 42)[torch.randperm(42)].reshape(2, 7, 3))
        return c.op("gelu", [x], fn(x.t), approximate=approx)


for _i, (_lo, _hi) in enumerate([(-math.inf, 0.5), (-0.3, math.inf), (-0.75, 1.25)]):

    @case(f"clamp_{_i}")
    def _(c, lo=_lo, hi=_hi):
        x = c.input("x", randn(2, 3, 7, scale=2.0))
        return c.op("clamp", [x], torch.clamp(x.t, min=lo, max=hi), min=lo, max=hi)


@case("scale")
def _(c):
    x = c.input("x", randn(3, 5))
    return c.op("scale", [x], x.t * 2.5 - 0.75, scale=2.5, bias=-0.75)


BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
for _i, (_op, _sa, _sb) in enumerate(
    [
        ("add", (2, 3, 5), (5,)),
        ("sub", (2, 1, 5), (3, 1)),
        ("mul", (2, 3, 5), (2, 3, 5)),
        ("div", (2, 3, 4), (1, 3, 1)),
        ("add", (3, 1), (2, 1, 7)),
        ("mul", (1,), (2, 3)),
    ]
):

    @case(f"binary_{_op}_{_i}")
    def _(c, op=_op, sa=_sa, sb=_sb):
        a = c.input("a", randn(*sa))
        bt = randn(*sb)
        if op == "div":
            bt = away_from_zero(bt)
        b = c.input("b", bt)
        return c.op(op, [a, b], BINARY[op](a.t, b.t))


@case("binary_param")
def _(c):
    # a weight broadcast over the batch, as a learned positional bias would be
    x = c.input("x", randn(2, 3, 4))
    p = c.param("pos", randn(3, 4), key="pos_embedding")
    return c.op("add", [p, x], p.t + x.t)


# ------------------------------------------------------------------ linear algebra
@case("linear")
def _(c):
    x = c.input("x", randn(2, 3, 7))
    args, w, b = c.layer("Linear", "proj", x, randn(5, 7) / math.sqrt(7), randn(5))
    return c.op("linear", args, F.linear(x.t, w, b))


@case("linear_nobias")
def _(c):
    x = c.input("x", randn(9))
    w = c.param("w", randn(4, 9))
    return c.op("linear", [x, w], F.linear(x.t, w.t))


for _i, (_sa, _sb) in enumerate(
    [
        ((2, 3, 4, 5), (2, 3, 5, 6)),  # same batch
        ((2, 1, 4, 5), (3, 5, 6)),  # batch broadcast both ways
        ((4, 5), (2, 5, 3)),  # one left matrix shared
        ((2, 3, 4, 5), (5, 1)),  # one right matrix shared
    ]
):

    @case(f"matmul_{_i}")
    def _(c, sa=_sa, sb=_sb):
        a = c.input("a", randn(*sa))
        b = c.input("b", randn(*sb))
        return c.op("matmul", [a, b], torch.matmul(a.t, b.t))


CONV = [
    # x shape, w shape, stride, padding, dilation, groups, bias
    ((2, 3, 7, 6), (4, 3, 3, 3), [2, 1], [1, 2], [1, 2], 1, True),
    ((2, 4, 5, 5), (6, 2, 3, 2), [1, 1], [0, 1], [1, 1], 2, False),
    ((1, 3, 6, 7), (3, 1, 3, 3), [1, 2], [1, 1], [1, 1], 3, True),  # depthwise
    ((2, 5, 4, 3), (7, 5, 1, 1), [1, 1], [0, 0], [1, 1], 1, True),  # pointwise
]
for _i, (_xs, _ws, _s, _p, _d, _g, _bias) in enumerate(CONV):

    @case(f"conv2d_{_i}")
    def _(c, xs=_xs, ws=_ws, s=_s, p=_p, d=_d, g=_g, bias=_bias):
        x = c.input("x", randn(*xs))
        args, w, b = c.layer("Conv2d", "conv", x, randn(*ws) / 3, randn(ws[0]) if bias else None)
        y = F.conv2d(x.t, w, b, stride=s, padding=p, dilation=d, groups=g)
        return c.op("conv2d", args, y, stride=s, padding=p, dilation=d, groups=g)


CONVT = [
    # x shape, w shape, stride, padding, output_padding, dilation, groups, bias
    ((2, 3, 5, 4), (3, 2, 3, 3), [2, 2], [1, 0], [1, 0], [1, 1], 1, True),
    ((1, 4, 3, 5), (4, 3, 2, 3), [1, 2], [0, 1], [0, 1], [2, 1], 2, False),
]
for _i, (_xs, _ws, _s, _p, _op, _d, _g, _bias) in enumerate(CONVT):

    @case(f"conv_transpose2d_{_i}")
    def _(c, xs=_xs, ws=_ws, s=_s, p=_p, op=_op, d=_d, g=_g, bias=_bias):
        x = c.input("x", randn(*xs))
        args, w, b = c.layer("ConvTranspose2d", "up", x, randn(*ws) / 3, randn(ws[1] * g) if bias else None)
        y = F.conv_transpose2d(x.t, w, b, stride=s, padding=p, output_padding=op, groups=g, dilation=d)
        return c.op("conv_transpose2d", args, y, stride=s, padding=p, output_padding=op, dilation=d, groups=g)


# ------------------------------------------------------------------ normalization
@case("layer_norm_affine")
def _(c):
    x = c.input("x", randn(2, 3, 7, scale=2.0) + 1.0)
    w = c.param("LayerNorm.weight", randn(7), key="norm.weight")
    b = c.param("LayerNorm.bias", randn(7), key="norm.bias")
    return c.op("layer_norm", [x, w, b], F.layer_norm(x.t, (7,), w.t, b.t, 1e-5), axes=1, eps=1e-5)


@case("layer_norm_axes2")
def _(c):
    x = c.input("x", randn(2, 3, 5) - 0.5)
    w = c.param("w", randn(3, 5))
    b = c.param("b", randn(3, 5))
    return c.op("layer_norm", [x, w, b], F.layer_norm(x.t, (3, 5), w.t, b.t, 1e-6), axes=2, eps=1e-6)


@case("layer_norm_plain")
def _(c):
    x = c.input("x", randn(3, 11, scale=3.0))
    return c.op("layer_norm", [x], F.layer_norm(x.t, (11,), None, None, 1e-5), axes=1, eps=1e-5)


@case("group_norm")
def _(c):
    x = c.input("x", randn(2, 6, 5, 3) + 0.3)
    w = c.param("GroupNorm.weight", randn(6), key="gn.weight")
    b = c.param("GroupNorm.bias", randn(6), key="gn.bias")
    return c.op("group_norm", [x, w, b], F.group_norm(x.t, 3, w.t, b.t, 1e-5), groups=3, eps=1e-5)


@case("group_norm_rank3")
def _(c):
    x = c.input("x", randn(2, 4, 7))
    return c.op("group_norm", [x], F.group_norm(x.t, 2, None, None, 1e-6), groups=2, eps=1e-6)


def layer_norm2d(x, w, b, eps):
    # Refiners' LayerNorm2d: normalize the channels at each pixel (population variance)
    mean = x.mean(1, keepdim=True)
    var = ((x - mean) ** 2).mean(1, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    return w[:, None, None] * y + b[:, None, None]


@case("layer_norm2d")
def _(c):
    x = c.input("x", randn(2, 5, 3, 4) * 2 + 0.5)
    w = c.param("w", randn(5))
    b = c.param("b", randn(5))
    return c.op("layer_norm2d", [x, w, b], layer_norm2d(x.t, w.t, b.t, 1e-6), eps=1e-6)


@case("instance_norm2d")
def _(c):
    x = c.input("x", randn(2, 3, 4, 5) - 1.0)
    w = c.param("w", randn(3))
    b = c.param("b", randn(3))
    return c.op("instance_norm2d", [x, w, b], F.instance_norm(x.t, weight=w.t, bias=b.t, eps=1e-5), eps=1e-5)


@case("softmax_last")
def _(c):
    x = c.input("x", randn(2, 3, 5, scale=4.0))
    return c.op("softmax", [x], torch.softmax(x.t, -1), dim=-1)


@case("softmax_mid")
def _(c):
    x = c.input("x", randn(2, 3, 5, scale=4.0))
    return c.op("softmax", [x], torch.softmax(x.t, 1), dim=1)


# ------------------------------------------------------------------ embeddings, attention
@case("embedding")
def _(c):
    idx = c.input("tokens", torch.randint(0, 11, (2, 5), dtype=torch.int64))
    w = c.param("Embedding.weight", randn(11, 6), key="tok.weight")
    return c.op("embedding", [idx, w], F.embedding(idx.t, w.t))


@case("embedding_i32")
def _(c):
    idx = c.input("ids", torch.tensor([3, 0, 6, 6, 1], dtype=torch.int32))
    w = c.param("table", randn(7, 4))
    return c.op("embedding", [idx, w], F.embedding(idx.t.long(), w.t))


@case("batch_param")
def _(c):
    # a learned token prepended to every sequence of the batch (CLIP's class embedding)
    x = c.input("x", randn(2, 3, 4))
    p = c.param("cls", randn(1, 4), key="class_embedding")
    e = c.op("batch_param", [x, p], p.t.unsqueeze(0).expand(2, 1, 4))
    return c.op("concat", [e, x], torch.cat([e.t, x.t], 1), dim=1)


def attention(q, k, v, heads, causal):
    b, lq, _ = q.shape
    lk = k.shape[1]
    dk, dv = q.shape[2] // heads, v.shape[2] // heads
    qh = q.reshape(b, lq, heads, dk).transpose(1, 2)
    kh = k.reshape(b, lk, heads, dk).transpose(1, 2)
    vh = v.reshape(b, lk, heads, dv).transpose(1, 2)
    s = qh @ kh.transpose(-1, -2) / math.sqrt(dk)
    if causal:
        # torch's is_causal convention: ones(Lq, Lk).tril(), aligned at the top left
        mask = torch.ones(lq, lk, dtype=torch.bool).tril()
        s = s.masked_fill(~mask, float("-inf"))
    o = torch.softmax(s, -1) @ vh
    return o.transpose(1, 2).reshape(b, lq, heads * dv)


for _i, (_lq, _lk, _h, _dk, _dv, _causal) in enumerate(
    [(5, 7, 3, 4, 3, False), (6, 6, 2, 5, 5, True), (4, 6, 1, 3, 2, True), (3, 3, 1, 8, 8, False)]
):

    @case(f"sdpa_{_i}")
    def _(c, lq=_lq, lk=_lk, h=_h, dk=_dk, dv=_dv, causal=_causal):
        q = c.input("q", randn(2, lq, h * dk))
        k = c.input("k", randn(2, lk, h * dk))
        v = c.input("v", randn(2, lk, h * dv))
        return c.op("sdpa", [q, k, v], attention(q.t, k.t, v.t, h, causal), heads=h, causal=causal)


# ------------------------------------------------------------------ layout
@case("reshape")
def _(c):
    x = c.input("x", randn(2, 3, 4))
    r = c.op("reshape", [x], x.t.reshape(2, 12))
    return c.op("relu", [r], torch.relu(r.t))


@case("reshape_input_out")
def _(c):
    # an output that is a view of an input: the interpreter must hand back a copy
    x = c.input("x", randn(2, 6))
    return c.op("reshape", [x], x.t.reshape(3, 2, 2))


@case("reshape_i64")
def _(c):
    idx = c.input("ids", torch.randint(0, 5, (2, 3), dtype=torch.int64))
    r = c.op("reshape", [idx], idx.t.reshape(6), dtype="i64")
    w = c.param("table", randn(5, 3))
    return c.op("embedding", [r, w], F.embedding(r.t, w.t))


@case("permute")
def _(c):
    x = c.input("x", randn(2, 3, 4, 5))
    return c.op("permute", [x], x.t.permute(0, 2, 3, 1), perm=[0, 2, 3, 1])


@case("slice_step")
def _(c):
    x = c.input("x", randn(2, 3, 7))
    return c.op("slice", [x], x.t[:, :, 1:6:2], dim=2, start=1, end=6, step=2)


@case("slice_neg_dim")
def _(c):
    x = c.input("x", randn(2, 5, 3))
    return c.op("slice", [x], x.t[:, 2:5], dim=-2, start=2, end=5, step=1)


@case("concat")
def _(c):
    a = c.input("a", randn(2, 1, 4))
    b = c.input("b", randn(2, 3, 4))
    p = c.param("p", randn(2, 2, 4))
    return c.op("concat", [a, b, p], torch.cat([a.t, b.t, p.t], 1), dim=1)


@case("concat_last")
def _(c):
    a = c.input("a", randn(3, 2))
    b = c.input("b", randn(3, 5))
    return c.op("concat", [a, b], torch.cat([a.t, b.t], -1), dim=-1)


for _i, (_size, _mode, _ac) in enumerate(
    [([7, 9], "nearest", False), ([8, 10], "bilinear", False), ([7, 3], "bilinear", True), ([2, 3], "nearest", False)]
):

    @case(f"upsample_{_i}")
    def _(c, size=_size, mode=_mode, ac=_ac):
        x = c.input("x", randn(2, 3, 4, 5))
        if mode == "nearest":
            y = F.interpolate(x.t, size=size, mode="nearest")
        else:
            y = F.interpolate(x.t, size=size, mode="bilinear", align_corners=ac)
        return c.op("upsample", [x], y, mode=mode, size=size, align_corners=ac)


for _i, (_shape, _pads, _mode, _value) in enumerate(
    [
        ((2, 3, 4, 5), [1, 2, 0, 1], "constant", 0.5),
        ((2, 3, 4, 5), [2, 1, 1, 2], "reflect", 0.0),
        ((2, 3, 5), [1, 3], "replicate", 0.0),  # torch pads 1 dim of 3-D inputs only
        ((2, 3, 4, 5), [-1, 2], "constant", 0.0),  # a negative amount crops
    ]
):

    @case(f"pad_{_i}")
    def _(c, shape=_shape, pads=_pads, mode=_mode, value=_value):
        x = c.input("x", randn(*shape))
        if mode == "constant":
            y = F.pad(x.t, pads, mode="constant", value=value)
        else:
            y = F.pad(x.t, pads, mode=mode)
        return c.op("pad", [x], y, pads=pads, mode=mode, value=value)


@case("pixel_unshuffle")
def _(c):
    x = c.input("x", randn(2, 3, 4, 6))
    return c.op("pixel_unshuffle", [x], F.pixel_unshuffle(x.t, 2), factor=2)


@case("pixel_shuffle")
def _(c):
    x = c.input("x", randn(2, 8, 3, 5))
    return c.op("pixel_shuffle", [x], F.pixel_shuffle(x.t, 2), factor=2)


GLU_ACT = dict(UNARY, gelu=F.gelu)
for _act, _fn in GLU_ACT.items():

    @case(f"glu_{_act}")
    def _(c, act=_act, fn=_fn):
        # gates in [-3, 3] and values near 1: as for gelu, the tolerance then tells the
        # exact GeLU from its tanh approximation
        gate = torch.linspace(-3, 3, 30)[torch.randperm(30)].reshape(2, 3, 5)
        value = 1 + 0.1 * randn(2, 3, 5)
        x = c.input("x", torch.cat([value, gate], -1))
        a, g = x.t.chunk(2, dim=-1)
        return c.op("glu", [x], a * fn(g), activation=act)


# ------------------------------------------------------------------ small graphs
@case("mlp_residual")
def _(c):
    # Refiners' Residual(Linear, GeLU, Linear) after a LayerNorm, then a broadcast bias: two
    # outputs, one of them also read by later ops (it must survive until the end)
    x = c.input("x", randn(2, 3, 4))
    nw = c.param("LayerNorm.weight", randn(4), key="norm.weight")
    nb = c.param("LayerNorm.bias", randn(4), key="norm.bias")
    w1 = c.param("Residual.Linear_1.weight", randn(8, 4) / 2, key="Residual.0.weight")
    b1 = c.param("Residual.Linear_1.bias", randn(8), key="Residual.0.bias")
    w2 = c.param("Residual.Linear_2.weight", randn(4, 8) / 3, key="Residual.2.weight")
    bias = c.param("bias", randn(4), key="bias")
    n = c.op("layer_norm", [x, nw, nb], F.layer_norm(x.t, (4,), nw.t, nb.t, 1e-5), axes=1, eps=1e-5)
    h = c.op("linear", [n, w1, b1], F.linear(n.t, w1.t, b1.t))
    g = c.op("gelu", [h], F.gelu(h.t), approximate="none")
    o = c.op("linear", [g, w2], F.linear(g.t, w2.t))
    r = c.op("add", [n, o], n.t + o.t)
    s = c.op("add", [r, bias], r.t + bias.t)
    f = c.op("reshape", [s], s.t.reshape(2, 12))
    y = c.op("clamp", [f], torch.clamp(f.t, max=1.0), min=-math.inf, max=1.0)
    return y, n


@case("aliasing")
def _(c):
    # a reshape shares its operand's buffer: the relu below must not overwrite it in place,
    # and an op reading one value twice must see it unchanged
    x = c.input("x", randn(2, 6))
    a = c.op("scale", [x], x.t * 1.5 + 0.25, scale=1.5, bias=0.25)
    v = c.op("reshape", [a], a.t.reshape(3, 4))
    r = c.op("relu", [a], torch.relu(a.t))
    sq = c.op("mul", [r, r], r.t * r.t)
    t = c.op("reshape", [sq], sq.t.reshape(3, 4))
    s = c.op("sub", [v, t], v.t - t.t)
    unused = c.op("tanh", [s], torch.tanh(s.t))  # dead: computed and dropped
    return c.op("sigmoid", [s], torch.sigmoid(s.t)), v


# ------------------------------------------------------------------ fused ops (passes/fuse_*.go)
FUSED_ACT = ops.ACTIVATIONS

CONV_FUSED = [
    # x shape, w shape, stride, padding, dilation, groups, bias, scale, shift, residual, act
    ((2, 3, 5, 7), (4, 3, 3, 3), [1, 1], [1, 1], [1, 1], 1, True, 1.0, 0.0, True, "relu"),  # TAESD
    ((1, 5, 6, 9), (40, 5, 3, 3), [2, 1], [1, 0], [1, 2], 1, False, 0.5, -0.25, False, "silu"),
    ((2, 4, 7, 5), (32, 4, 1, 1), [1, 1], [0, 0], [1, 1], 1, True, -1.5, 0.0, True, "gelu_tanh"),
    ((1, 6, 5, 6), (6, 1, 3, 3), [1, 1], [1, 1], [1, 1], 6, True, 1.0, 0.0, True, "sigmoid"),  # depthwise
    ((2, 4, 6, 5), (6, 2, 3, 3), [1, 1], [1, 1], [1, 1], 2, False, 2.0, 0.5, False, "tanh"),  # grouped
    ((1, 3, 8, 8), (33, 3, 4, 4), [4, 4], [0, 0], [1, 1], 1, True, 1.0, 0.0, False, "gelu"),  # patchify
    ((2, 3, 4, 6), (5, 3, 1, 1), [1, 1], [0, 0], [1, 1], 1, True, 1.0, 0.0, True, "none"),
    ((1, 2, 5, 5), (64, 2, 3, 3), [1, 1], [1, 1], [1, 1], 1, True, 0.75, 0.125, True, "gelu_sigmoid"),
]
for _i, (_xs, _ws, _s, _p, _d, _g, _bias, _sc, _sh, _res, _act) in enumerate(CONV_FUSED):

    @case(f"conv2d_fused_{_i}", fused=True)
    def _(c, xs=_xs, ws=_ws, s=_s, p=_p, d=_d, g=_g, bias=_bias, sc=_sc, sh=_sh, res=_res, act=_act):
        x = c.input("x", randn(*xs))
        args, w, b = c.layer("Conv2d", "conv", x, randn(*ws) / 3, randn(ws[0]) if bias else None)
        y = F.conv2d(x.t, w, b, stride=s, padding=p, dilation=d, groups=g) * sc + sh
        if res:
            r = c.input("r", randn(*y.shape))
            args.append(r)
            y = y + r.t
        return c.op("conv2d_fused", args, FUSED_ACT[act](y), stride=s, padding=p, dilation=d, groups=g,
                    scale=sc, shift=sh, residual=res, act=act)


LINEAR_FUSED = [
    # x shape, (out, in), bias, scale, shift, residual, act
    ((2, 3, 7), (5, 7), True, 1.0, 0.0, True, "gelu"),  # a transformer's feed-forward, then its residual
    ((9,), (4, 9), False, 2.0, -0.5, False, "sigmoid"),
    ((3, 4, 6), (6, 6), True, 1.0, 0.0, True, "none"),
    ((4, 5), (3, 5), False, 1.0, 0.0, True, "relu"),
]
for _i, (_xs, _ws, _bias, _sc, _sh, _res, _act) in enumerate(LINEAR_FUSED):

    @case(f"linear_fused_{_i}", fused=True)
    def _(c, xs=_xs, ws=_ws, bias=_bias, sc=_sc, sh=_sh, res=_res, act=_act):
        x = c.input("x", randn(*xs))
        args, w, b = c.layer("Linear", "proj", x, randn(*ws) / math.sqrt(ws[1]), randn(ws[0]) if bias else None)
        y = F.linear(x.t, w, b) * sc + sh
        if res:
            r = c.input("r", randn(*y.shape))
            args.append(r)
            y = y + r.t
        return c.op("linear_fused", args, FUSED_ACT[act](y), scale=sc, shift=sh, residual=res, act=act)


@case("group_norm_act", fused=True)
def _(c):
    # TAEF2's mid-block pool: GroupNorm(4 groups) then ReLU
    x = c.input("x", randn(2, 8, 3, 5))
    w = c.param("GroupNorm.weight", randn(8), key="gn.weight")
    b = c.param("GroupNorm.bias", randn(8), key="gn.bias")
    y = torch.relu(F.group_norm(x.t, 4, w.t, b.t, 1e-5))
    return c.op("group_norm_act", [x, w, b], y, groups=4, eps=1e-5, act="relu")


@case("group_norm_act_plain", fused=True)
def _(c):
    x = c.input("x", randn(3, 6, 7))
    y = F.silu(F.group_norm(x.t, 3, None, None, 1e-6))
    return c.op("group_norm_act", [x], y, groups=3, eps=1e-6, act="silu")


@case("layer_norm_act", fused=True)
def _(c):
    x = c.input("x", randn(2, 3, 4, 5))
    w = c.param("LayerNorm.weight", randn(4, 5), key="ln.weight")
    b = c.param("LayerNorm.bias", randn(4, 5), key="ln.bias")
    y = F.gelu(F.layer_norm(x.t, (4, 5), w.t, b.t, 1e-5), approximate="tanh")
    return c.op("layer_norm_act", [x, w, b], y, axes=2, eps=1e-5, act="gelu_tanh")


for _i, (_act, _bias) in enumerate([("gelu", True), ("sigmoid", False), ("cos", True)]):

    @case(f"linear_glu_{_i}", fused=True)
    def _(c, act=_act, bias=_bias):
        # GEGLU and kin: the linear doubles the width, GLU halves it
        x = c.input("x", randn(2, 3, 5))
        args, w, b = c.layer("Linear", "proj", x, randn(8, 5) / math.sqrt(5), randn(8) if bias else None)
        h = F.linear(x.t, w, b)
        a, g = h.chunk(2, dim=-1)
        return c.op("linear_glu", args, a * GLU_ACT[act](g), activation=act)



# ------------------------------------------------------------------ exp, arange
# Last, so that the random draws of every case above stay as they were.
@case("exp")
def _(c):
    x = c.input("x", torch.cat([randn(2, 9, scale=2.0), torch.linspace(-6, 6, 18).reshape(2, 9)], -1))
    return c.op("exp", [x], torch.exp(x.t))


@case("glu_exp")
def _(c):
    gate = torch.linspace(-3, 3, 30)[torch.randperm(30)].reshape(2, 3, 5)
    value = 1 + 0.1 * randn(2, 3, 5)
    x = c.input("x", torch.cat([value, gate], -1))
    a, g = x.t.chunk(2, dim=-1)
    return c.op("glu", [x], a * torch.exp(g), activation="exp")


@case("arange_f32")
def _(c):
    # no input at all: the module is a constant
    return c.arange(-3, 8, 2, "f32")


@case("arange_mul")
def _(c):
    # Refiners' timestep embedding multiplies by a range: arange as an operand, reshaped
    x = c.input("x", randn(2, 6))
    r = c.arange(0, 6, 1, "f32")
    row = c.op("reshape", [r], r.t.reshape(1, 6))
    return c.op("mul", [x, row], x.t * row.t)


@case("arange_i64_embedding")
def _(c):
    # CLIP's position ids: arange → Embedding
    w = c.param("Embedding.weight", randn(10, 4), key="pos.weight")
    ids = c.arange(1, 9, 2, "i64")
    return c.op("embedding", [ids, w], F.embedding(ids.t, w.t)), ids


@case("arange_i32")
def _(c):
    w = c.param("table", randn(11, 3))
    ids = c.arange(10, -2, -3, "i32")
    return c.op("embedding", [ids, w], F.embedding(ids.t.long(), w.t)), ids


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    for path, cases, tensors in ((OUT, CASES, TENSORS), (FUSED_OUT, FUSED_CASES, FUSED_TENSORS)):
        st.save(path, tensors, dict(cases))
        size = os.path.getsize(path)
        assert size < 300 * 1024, f"{path} is {size} bytes: keep golden files small"
        print(f"{path}: {len(cases)} cases, {size} bytes")


if __name__ == "__main__":
    main()
