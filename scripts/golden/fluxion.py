"""A small re-implementation of Refiners' fluxion layers on torch.nn, for golden scripts.

Refiners itself cannot be installed here. What matters for loading its checkpoints by name is
its naming rule (refiners.fluxion.layers.chain.generate_unique_names: a child is named after
its class, with _1, _2, ... when that class occurs more than once among its siblings) and
each layer's computation; this file reproduces both with torch's own modules. Read from
finegrain-ai/refiners src/refiners/fluxion/layers/{chain,basics,activations,attentions,norm,
sampling}.py (see sd15.py for the commits).

Context: Refiners keeps a context provider per Chain; here one module-level dict CONTEXT
plays that role. Entry points fill it before a forward (see sd15.run_*); mutate it, never
rebind it, since other scripts import the name.

Weight layers take their device from default_device() so that a model can be built on the
meta device (shapes only, no allocation): `with on_device("meta"): build()`.
"""
import contextlib
import math

import torch
import torch.nn.functional as F

CONTEXT = {}

_DEVICE = [None]


@contextlib.contextmanager
def on_device(device):
    old = _DEVICE[0]
    _DEVICE[0] = device
    try:
        yield
    finally:
        _DEVICE[0] = old


def default_device():
    return _DEVICE[0]


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
    """Calls its children in order; a tuple result is spread over the next child's arguments."""

    TAG = "CHAIN"

    def __init__(self, *modules):
        super().__init__()
        self._set_children(modules)

    def _set_children(self, modules):
        for name in list(self._modules):
            del self._modules[name]
        for name, m in zip(unique_names(modules), modules):
            self.add_module(name, m)

    def children_list(self):
        return list(self._modules.values())

    def insert(self, index, module):
        # Refiners' Chain.insert: a negative index counts from the end, -1 appends.
        mods = self.children_list()
        if index < 0:
            index = max(0, len(mods) + index + 1)
        mods.insert(index, module)
        self._set_children(mods)

    def append(self, module):
        self.insert(-1, module)

    def remove(self, module):
        # Refiners' Chain.remove: the siblings are renamed as if the module had never been there.
        mods = self.children_list()
        mods.pop([i for i, m in enumerate(mods) if m is module][0])
        self._set_children(mods)

    def insert_before_type(self, module_type, module):
        # Refiners' Chain.insert_before_type: before the first child of that type.
        mods = self.children_list()
        self.insert([i for i, m in enumerate(mods) if isinstance(m, module_type)][0], module)

    def replace(self, old, new):
        mods = self.children_list()
        mods[[i for i, m in enumerate(mods) if m is old][0]] = new
        self._set_children(mods)

    def init_context(self):
        return {}

    def describe(self):
        return ""

    def forward(self, *args):
        result = None
        for m in self._modules.values():
            result = m(*args)
            args = result if isinstance(result, tuple) else (result,)
        return result


class Residual(Chain):
    TAG = "RES"

    def forward(self, *inputs):
        return super().forward(*inputs) + inputs[0]


class Parallel(Chain):
    TAG = "PAR"

    def forward(self, *args):
        return tuple(m(*args) for m in self._modules.values())


class Distribute(Chain):
    TAG = "DISTR"

    def forward(self, *args):
        assert len(args) == len(self._modules)
        return tuple(m(a) for m, a in zip(self._modules.values(), args))


class Passthrough(Chain):
    """Runs its children for their effect on the context; returns its own inputs."""

    TAG = "PASS"

    def forward(self, *inputs):
        super().forward(*inputs)
        return inputs if len(inputs) != 1 else inputs[0]


class Sum(Chain):
    """Calls every child on the same inputs and adds the results (broadcasting)."""

    TAG = "SUM"

    def forward(self, *inputs):
        out = None
        for m in self._modules.values():
            y = m(*inputs)
            if isinstance(y, tuple):
                y = sum(y)
            out = y if out is None else out + y
        return out


class Concatenate(Chain):
    TAG = "CAT"

    def __init__(self, *modules, dim=0):
        super().__init__(*modules)
        self.dim = dim

    def describe(self):
        return f"dim={self.dim}"

    def forward(self, *args):
        return torch.cat([m(*args) for m in self._modules.values()], dim=self.dim)


class Leaf(torch.nn.Module):
    DESCRIBED = ()  # the attributes describe() lists as name=value: the layer's arguments

    def describe(self):
        return ", ".join(f"{name}={getattr(self, name)}" for name in self.DESCRIBED)


class Identity(Leaf):
    def forward(self, x):
        return x


class UseContext(Leaf):
    def __init__(self, context, key):
        super().__init__()
        self.context, self.key = context, key
        self.func = None
        self.func_doc = ""

    def compose(self, func, doc=""):
        self.func, self.func_doc = func, doc
        return self

    def describe(self):
        s = f"context={self.context!r}, key={self.key!r}"
        return s + (f", compose={self.func_doc}" if self.func_doc else "")

    def forward(self, *args):
        v = CONTEXT[self.context][self.key]
        return self.func(v) if self.func is not None else v


class SetContext(Leaf):
    def __init__(self, context, key, callback=None, doc=""):
        super().__init__()
        self.context, self.key, self.callback, self.doc = context, key, callback, doc

    def describe(self):
        return f"context={self.context!r}, key={self.key!r}" + (f", callback={self.doc}" if self.doc else "")

    def forward(self, x):
        ctx = CONTEXT[self.context]
        if self.callback is None:
            ctx[self.key] = x
        else:
            self.callback(ctx[self.key], x)
        return x


class Lambda(Leaf):
    def __init__(self, func, doc=""):
        super().__init__()
        self.func, self.doc = func, doc

    def describe(self):
        return self.doc

    def forward(self, *args):
        return self.func(*args)


class Converter(Leaf):
    """Refiners casts to its parent's device/dtype; here the dtype comes from the context the
    entry point sets (CONTEXT['converter']['dtype'], the parameters' dtype)."""

    DESCRIBED = ("set_device", "set_dtype")

    def __init__(self, set_device=True, set_dtype=True):
        super().__init__()
        self.set_device, self.set_dtype = set_device, set_dtype

    def forward(self, x):
        if self.set_dtype and x.is_floating_point():
            return x.to(CONTEXT["converter"]["dtype"])
        return x


def _shape_doc(m):
    return " ".join(f"{n}{list(p.shape)}" for n, p in m.named_parameters(recurse=False))


class Linear(torch.nn.Linear):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features, out_features, bias, device=default_device())

    def describe(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(torch.nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                         device=default_device())

    def describe(self):
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size[0]}, stride={self.stride[0]}, padding={self.padding[0]}")


class LayerNorm(torch.nn.LayerNorm):
    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__(normalized_shape, eps=eps, device=default_device())

    def describe(self):
        return f"normalized_shape={self.normalized_shape[0]}, eps={self.eps:g}"


class GroupNorm(torch.nn.GroupNorm):
    def __init__(self, channels, num_groups, eps=1e-5):
        super().__init__(num_groups, channels, eps=eps, device=default_device())

    def describe(self):
        return f"channels={self.num_channels}, num_groups={self.num_groups}, eps={self.eps:g}"


class Embedding(torch.nn.Embedding):
    def __init__(self, num_embeddings, embedding_dim):
        super().__init__(num_embeddings, embedding_dim, device=default_device())

    def describe(self):
        return f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}"


class SiLU(Leaf):
    def forward(self, x):
        return F.silu(x)


class ReLU(Leaf):
    def forward(self, x):
        return F.relu(x)


class PixelUnshuffle(Leaf):
    """[b, c, H, W] -> [b, c·f², H/f, W/f]; output channel c·f² + i·f + j takes pixel (i, j)
    of each f×f cell (torch.nn.PixelUnshuffle)."""

    DESCRIBED = ("downscale_factor",)

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, x):
        return F.pixel_unshuffle(x, self.downscale_factor)


class GeLU(Leaf):
    """approximation: 'none' (erf), 'tanh', or 'sigmoid' (x·σ(1.702x), CLIP's QuickGELU)."""

    DESCRIBED = ("approximation",)

    def __init__(self, approximation="none"):
        super().__init__()
        self.approximation = approximation

    def forward(self, x):
        if self.approximation == "sigmoid":
            return x * torch.sigmoid(1.702 * x)
        if self.approximation == "tanh":
            return F.gelu(x, approximate="tanh")
        return F.gelu(x)


class GLU(Leaf):
    """Splits the last dimension in halves (value, gate): value · activation(gate)."""

    def __init__(self, activation):
        super().__init__()
        self.activation = activation

    def describe(self):
        return f"activation={type(self.activation).__name__}({self.activation.describe()})"

    def forward(self, x):
        value, gate = x.chunk(2, dim=-1)
        return value * self.activation(gate)


class Reshape(Leaf):
    """Keeps the batch dimension: x.reshape(x.shape[0], *shape)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def describe(self):
        return ", ".join(str(s) for s in self.shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class Flatten(Leaf):
    DESCRIBED = ("start_dim", "end_dim")

    def __init__(self, start_dim=0, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)


class Unflatten(Leaf):
    DESCRIBED = ("dim",)

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x, sizes):
        return x.unflatten(self.dim, sizes)


class Transpose(Leaf):
    DESCRIBED = ("dim0", "dim1")

    def __init__(self, dim0, dim1):
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x):
        return x.transpose(self.dim0, self.dim1)


class Slicing(Leaf):
    DESCRIBED = ("dim", "start", "end")

    def __init__(self, dim=0, start=0, end=None):
        super().__init__()
        self.dim, self.start, self.end = dim, start, end

    def forward(self, x):
        return x.narrow(self.dim, self.start, (self.end or x.shape[self.dim]) - self.start)


class Interpolate(Leaf):
    """Nearest-neighbour resize to an explicit size (the second input)."""

    DESCRIBED = ("mode",)

    def __init__(self, mode="nearest"):
        super().__init__()
        self.mode = mode

    def forward(self, x, shape):
        return F.interpolate(x, size=tuple(shape), mode=self.mode)


class Parameter(Leaf):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims
        self.weight = torch.nn.Parameter(torch.randn(*dims, device=default_device()))

    def describe(self):
        return ", ".join(str(d) for d in self.dims)

    def forward(self, x):
        return self.weight.expand(x.shape[0], *self.dims)


class ScaledDotProductAttention(Leaf):
    """Splits q, k, v [batch, seq, dim] into num_heads heads of dim/num_heads, computes
    softmax(q·kᵀ/√head_dim [+ causal mask])·v per head and merges the heads back."""

    DESCRIBED = ("num_heads", "is_causal")

    def __init__(self, num_heads=1, is_causal=False):
        super().__init__()
        self.num_heads, self.is_causal = num_heads, is_causal

    def forward(self, q, k, v):
        b, lq, _ = q.shape
        h = self.num_heads

        def split(t):
            return t.reshape(b, t.shape[1], h, t.shape[2] // h).transpose(1, 2)

        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if self.is_causal:
            mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
            scores = scores.masked_fill(~mask, float("-inf"))
        out = scores.softmax(-1) @ v
        return out.transpose(1, 2).reshape(b, lq, -1)


class Attention(Chain):
    """Distribute(q, k, v projections) → ScaledDotProductAttention → output Linear (always
    with bias; use_bias only concerns the q/k/v projections)."""

    def __init__(self, embedding_dim, num_heads=1, key_embedding_dim=None, value_embedding_dim=None,
                 use_bias=True, is_causal=False):
        kd = key_embedding_dim or embedding_dim
        vd = value_embedding_dim or embedding_dim
        super().__init__(
            Distribute(Linear(embedding_dim, embedding_dim, bias=use_bias), Linear(kd, embedding_dim, bias=use_bias),
                       Linear(vd, embedding_dim, bias=use_bias)),
            ScaledDotProductAttention(num_heads=num_heads, is_causal=is_causal),
            Linear(embedding_dim, embedding_dim),
        )


class SelfAttention(Attention):
    """Attention with Parallel(Identity ×3) inserted first, so q, k, v all come from x."""

    def __init__(self, embedding_dim, num_heads=1, use_bias=True, is_causal=False):
        super().__init__(embedding_dim, num_heads=num_heads, use_bias=use_bias, is_causal=is_causal)
        self.insert(0, Parallel(Identity(), Identity(), Identity()))


class SelfAttention2d(SelfAttention):
    """SelfAttention on [b, c, h, w]: Lambda_1 flattens to [b, h·w, c], Lambda_2 restores."""

    def __init__(self, channels, num_heads=1, use_bias=True):
        super().__init__(channels, num_heads=num_heads, use_bias=use_bias)
        self.insert(0, Lambda(self._to_sequence, "tensor_2d_to_sequence: [b,c,h,w] -> [b,h*w,c], stores h,w"))
        self.append(Lambda(self._to_2d, "sequence_to_tensor_2d: [b,h*w,c] -> [b,c,h,w]"))
        self._hw = None

    def _to_sequence(self, x):
        b, c, h, w = x.shape
        self._hw = (h, w)
        return x.reshape(b, c, h * w).transpose(1, 2)

    def _to_2d(self, x):
        h, w = self._hw
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


class Downsample(Chain):
    """SetContext('sampling','shapes') records the input's spatial size (for the UNet's
    Upsample); with padding=0 a Lambda pads (0,1,0,1) first (the autoencoder's)."""

    def __init__(self, channels, scale_factor, padding=0, register_shape=True):
        super().__init__(Conv2d(channels, channels, 3, stride=scale_factor, padding=padding))
        if padding == 0:
            self.insert(0, Lambda(lambda x: F.pad(x, (0, 1, 0, 1)), "zero_pad: F.pad(x, (0, 1, 0, 1))"))
        if register_shape:
            self.insert(0, SetContext("sampling", "shapes", callback=lambda shapes, x: shapes.append(x.shape[2:]),
                                      doc="shapes.append(x.shape[2:])"))


class Upsample(Chain):
    """Nearest resize then 3x3 conv. With upsample_factor=None (the UNet's) the target size is
    popped from CONTEXT['sampling']['shapes'], i.e. the size before the matching Downsample."""

    def __init__(self, channels, upsample_factor=None):
        if upsample_factor is None:
            size = UseContext("sampling", "shapes").compose(lambda s: s.pop(), "shapes.pop()")
        else:
            size = Lambda(lambda x: torch.Size([d * upsample_factor for d in x.shape[2:]]),
                          f"static shape: x.shape[2:] * {upsample_factor}")
        super().__init__(Parallel(Identity(), size), Interpolate(), Conv2d(channels, channels, 3, padding=1))


def tree(module, name=None):
    """Indented listing of the module tree with Refiners' child names, tags and parameters."""
    lines = []

    def visit(m, label, prefix, last, root):
        tag = f" ({m.TAG})" if isinstance(m, Chain) else ""
        desc = m.describe() if hasattr(m, "describe") else ""
        params = _shape_doc(m)
        cls = type(m).__name__
        text = (cls if root else f"{label}: {cls}") + tag
        text += (f"({desc})" if desc else "") + (f"  {params}" if params else "")
        if root:
            lines.append(text)
            child_prefix = ""
        else:
            lines.append(prefix + ("`-- " if last else "|-- ") + text)
            child_prefix = prefix + ("    " if last else "|   ")
        if isinstance(m, Chain):
            kids = list(m._modules.items())
            for i, (n, c) in enumerate(kids):
                visit(c, n, child_prefix, i == len(kids) - 1, False)

    visit(module, name or type(module).__name__, "", True, True)
    return "\n".join(lines) + "\n"
