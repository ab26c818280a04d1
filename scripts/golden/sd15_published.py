"""Stable Diffusion 1.5 in the PUBLISHED structures, the independent check of sd15.py.

Written from the maths of the original code, not from Refiners: CompVis latent-diffusion /
stable-diffusion (ldm/modules/diffusionmodules/openaimodel.py: UNetModel, ResBlock,
SpatialTransformer in ldm/modules/attention.py; ldm/modules/diffusionmodules/model.py:
Encoder, Decoder, ResnetBlock, AttnBlock), diffusers (models/unets/unet_2d_condition.py,
unet_2d_blocks.py, resnet.py, attention.py, attention_processor.py, autoencoders/vae.py) and
transformers (models/clip/modeling_clip.py: CLIPTextModel). Each model's attribute names are
the checkpoint's, so a state_dict of the published layout loads BY ITS OWN NAMES
(load_state_dict(strict=True)); sd15.py compares the outputs with the Refiners-structured
models loaded through its key maps. Nothing here imports fluxion.py or sd15.py.

Sizes are parameters (channels per level etc.); the structure is SD1.5's: 4 levels, 2 res
blocks per level going down and 3 going up, cross-attention at levels 0-2, one transformer
block per attention, 1-head attention in the autoencoder's mid block.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def group_norm(groups, channels, eps):
    return nn.GroupNorm(groups, channels, eps=eps)


def sinusoidal(timesteps, dim):
    # cos half first, then sin; frequencies exp(-ln(10000)·i/half), computed in float32.
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = timesteps.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def attention(q, k, v, heads, causal=False):
    b, n, d = q.shape
    hd = d // heads
    q = q.view(b, n, heads, hd).permute(0, 2, 1, 3)
    k = k.view(b, k.shape[1], heads, hd).permute(0, 2, 1, 3)
    v = v.view(b, v.shape[1], heads, hd).permute(0, 2, 1, 3)
    w = torch.einsum("bhid,bhjd->bhij", q * hd ** -0.5, k)
    if causal:
        w = w + torch.full((n, n), torch.finfo(w.dtype).min, dtype=w.dtype).triu(1)
    out = torch.einsum("bhij,bhjd->bhid", w.softmax(dim=-1), v)
    return out.permute(0, 2, 1, 3).reshape(b, n, d)


# ---------------------------------------------------------------- CLIP (transformers names)
# One encoder layer for the text model and (ip_published.py) the vision model, as transformers
# has: the text model's attention is causal and its activation quick_gelu (its config's
# hidden_act); the vision model passes its own.

def causal_attention(q, k, v, heads):
    return attention(q, k, v, heads, causal=True)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class CLIPAttention(nn.Module):
    def __init__(self, dim, heads, attend):
        super().__init__()
        self.heads, self.attend = heads, attend
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        return self.out_proj(self.attend(self.q_proj(x), self.k_proj(x), self.v_proj(x), self.heads))


class CLIPMLP(nn.Module):
    def __init__(self, dim, inner, act):
        super().__init__()
        self.act = act
        self.fc1, self.fc2 = nn.Linear(dim, inner), nn.Linear(inner, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, dim, heads, inner, eps, attend=causal_attention, act=quick_gelu):
        super().__init__()
        self.self_attn = CLIPAttention(dim, heads, attend)
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = CLIPMLP(dim, inner, act)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class CLIPEmbeddings(nn.Module):
    def __init__(self, vocab, positions, dim):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, dim)
        self.position_embedding = nn.Embedding(positions, dim)

    def forward(self, ids):
        return self.token_embedding(ids) + self.position_embedding(torch.arange(ids.shape[1]))[None]


class CLIPEncoder(nn.Module):
    def __init__(self, layers, dim, heads, inner, eps, attend=causal_attention, act=quick_gelu):
        super().__init__()
        self.layers = nn.ModuleList(CLIPEncoderLayer(dim, heads, inner, eps, attend, act) for _ in range(layers))


class CLIPTextTransformer(nn.Module):
    def __init__(self, vocab, positions, dim, layers, heads, inner, eps):
        super().__init__()
        self.embeddings = CLIPEmbeddings(vocab, positions, dim)
        self.encoder = CLIPEncoder(layers, dim, heads, inner, eps)
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)


class CLIPTextModel(nn.Module):
    """last_hidden_state of transformers' CLIPTextModel (quick_gelu, causal mask)."""

    def __init__(self, vocab_size, max_position_embeddings, hidden_size, num_hidden_layers, num_attention_heads,
                 intermediate_size, layer_norm_eps):
        super().__init__()
        self.text_model = CLIPTextTransformer(vocab_size, max_position_embeddings, hidden_size, num_hidden_layers,
                                              num_attention_heads, intermediate_size, layer_norm_eps)

    def forward(self, ids):
        tm = self.text_model
        x = tm.embeddings(ids)
        for layer in tm.encoder.layers:
            x = layer(x)
        return tm.final_layer_norm(x)


# ------------------------------------------------- transformer block (same names in both UNets)

class CrossAttention(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, context):
        return self.to_out[0](attention(self.to_q(x), self.to_k(context), self.to_v(context), self.heads))


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.attn1 = CrossAttention(dim, dim, heads)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim) for _ in range(3))

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x), self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """LDM's SpatialTransformer = diffusers' Transformer2DModel (conv projections)."""

    def __init__(self, channels, context_dim, heads, groups):
        super().__init__()
        self.norm = group_norm(groups, channels, 1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(channels, context_dim, heads)])
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        t = self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(b, h * w, c)
        for block in self.transformer_blocks:
            t = block(t, context)
        return x + self.proj_out(t.reshape(b, h, w, c).permute(0, 3, 1, 2))


def upsample_nearest(x, size):
    return F.interpolate(x, size=size, mode="nearest")


# ------------------------------------------------------------------------- LDM UNet names

class LDMResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim, groups):
        super().__init__()
        self.in_layers = nn.Sequential(group_norm(groups, cin, 1e-5), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, cout))
        self.out_layers = nn.Sequential(group_norm(groups, cout, 1e-5), nn.SiLU(), nn.Identity(),
                                        nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class LDMDownsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.op = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class LDMUpsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TimestepEmbedSequential(nn.ModuleList):
    def forward(self, x, emb, context):
        for layer in self:
            if isinstance(layer, LDMResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            else:
                x = layer(x)
        return x


class LDMUNetModel(nn.Module):
    """openaimodel.UNetModel for SD1.5 (channel_mult 1,2,4,4 given as widths; attention at
    levels 0-2; num_res_blocks 2; transformer_depth 1; use_linear_in_transformer False)."""

    def __init__(self, in_channels, channels, context_dim, heads, groups, out_channels=4):
        super().__init__()
        mc = channels[0]
        self.model_channels = mc
        emb = 4 * mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential([nn.Conv2d(in_channels, mc, 3, padding=1)])])
        chans, ch = [mc], mc
        for level, width in enumerate(channels):
            for _ in range(2):
                layers = [LDMResBlock(ch, width, emb, groups)]
                ch = width
                if level < 3:
                    layers.append(SpatialTransformer(ch, context_dim, heads, groups))
                self.input_blocks.append(TimestepEmbedSequential(layers))
                chans.append(ch)
            if level != len(channels) - 1:
                self.input_blocks.append(TimestepEmbedSequential([LDMDownsample(ch)]))
                chans.append(ch)
        self.middle_block = TimestepEmbedSequential([LDMResBlock(ch, ch, emb, groups),
                                                     SpatialTransformer(ch, context_dim, heads, groups),
                                                     LDMResBlock(ch, ch, emb, groups)])
        self.output_blocks = nn.ModuleList()
        for level in reversed(range(len(channels))):
            for i in range(3):
                layers = [LDMResBlock(ch + chans.pop(), channels[level], emb, groups)]
                ch = channels[level]
                if level < 3:
                    layers.append(SpatialTransformer(ch, context_dim, heads, groups))
                if level and i == 2:
                    layers.append(LDMUpsample(ch))
                self.output_blocks.append(TimestepEmbedSequential(layers))
        self.out = nn.Sequential(group_norm(groups, ch, 1e-5), nn.SiLU(), nn.Conv2d(ch, out_channels, 3, padding=1))

    def forward(self, x, timesteps, context):
        timesteps = timesteps.expand(x.shape[0])
        emb = self.time_embed(sinusoidal(timesteps, self.model_channels).to(x.dtype))
        hs, h = [], x
        for block in self.input_blocks:
            h = block(h, emb, context)
            hs.append(h)
        h = self.middle_block(h, emb, context)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb, context)
        return self.out(h)


# -------------------------------------------------------------------- diffusers UNet names

class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps):
        super().__init__()
        self.norm1 = group_norm(groups, cin, eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        if temb:
            self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = group_norm(groups, cout, eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.conv_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if temb is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if hasattr(self, "conv_shortcut") else x) + h


class Downsample2D(nn.Module):
    def __init__(self, c, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, size=None):
        return self.conv(upsample_nearest(x, size if size is not None else [2 * d for d in x.shape[2:]]))


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(cin, dim), nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class UNetBlock(nn.Module):
    """down_blocks.i / mid_block / up_blocks.i: resnets, attentions, down/upsamplers."""

    def __init__(self):
        super().__init__()


def time_embedding(embedding, width, timestep, sample):
    """UNet2DConditionModel.forward's temb: timestep broadcast to sample's batch, its sinusoid
    of width channels through the TimestepEmbedding."""
    t = timestep.expand(sample.shape[0])
    return embedding(sinusoidal(t, width).to(sample.dtype))


def down_path(down_blocks, h, temb, context, features=None):
    """UNet2DConditionModel.forward's down blocks from conv_in's output h: returns h and the skip
    samples (h first). features, a T2I-Adapter's (down_intrablock_additional_residuals), are
    added in a CrossAttnDownBlock2D to the output of its last resnet+attention pair before it is
    stored as a skip sample; after a DownBlock2D (no attention, the last level) IN PLACE to h,
    as diffusers' `sample += ...`, h being the block's last skip sample, which sees it too."""
    res = [h]
    features = list(features) if features is not None else []
    for blk in down_blocks:
        cross = hasattr(blk, "attentions")
        extra = features.pop(0) if cross and features else None
        for j, r in enumerate(blk.resnets):
            h = r(h, temb)
            if cross:
                h = blk.attentions[j](h, context)
                if j == len(blk.resnets) - 1 and extra is not None:
                    h = h + extra
            res.append(h)
        if hasattr(blk, "downsamplers"):
            h = blk.downsamplers[0](h)
            res.append(h)
        if not cross and features:
            h += features.pop(0)
    return h, res


def mid_path(mid_block, h, temb, context):
    h = mid_block.resnets[0](h, temb)
    h = mid_block.attentions[0](h, context)
    return mid_block.resnets[1](h, temb)


def up_path(up_blocks, h, res, temb, context):
    """The up blocks, each resnet taking the last skip sample left in res."""
    for blk in up_blocks:
        for j, r in enumerate(blk.resnets):
            h = r(torch.cat([h, res.pop()], dim=1), temb)
            if hasattr(blk, "attentions"):
                h = blk.attentions[j](h, context)
        if hasattr(blk, "upsamplers"):
            h = blk.upsamplers[0](h, res[-1].shape[2:])
    return h


class UNet2DConditionModel(nn.Module):
    def __init__(self, in_channels, block_out_channels, cross_attention_dim, attention_heads, norm_num_groups,
                 out_channels=4):
        super().__init__()
        c = block_out_channels
        g = norm_num_groups
        self.c0 = c[0]
        temb = 4 * c[0]
        self.conv_in = nn.Conv2d(in_channels, c[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(c[0], temb)
        self.down_blocks = nn.ModuleList()
        prev = c[0]
        for i, w in enumerate(c):
            blk = UNetBlock()
            blk.resnets = nn.ModuleList([ResnetBlock2D(prev, w, temb, g, 1e-5), ResnetBlock2D(w, w, temb, g, 1e-5)])
            if i < 3:  # CrossAttnDownBlock2D
                blk.attentions = nn.ModuleList(SpatialTransformer(w, cross_attention_dim, attention_heads, g)
                                               for _ in range(2))
            if i < len(c) - 1:
                blk.downsamplers = nn.ModuleList([Downsample2D(w, padding=1)])
            self.down_blocks.append(blk)
            prev = w
        self.mid_block = UNetBlock()
        self.mid_block.resnets = nn.ModuleList([ResnetBlock2D(prev, prev, temb, g, 1e-5) for _ in range(2)])
        self.mid_block.attentions = nn.ModuleList([SpatialTransformer(prev, cross_attention_dim, attention_heads, g)])
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(c))
        for i, w in enumerate(rev):
            skip_widths = [rev[i], rev[i], rev[min(i + 1, len(c) - 1)]]  # what each resnet concatenates
            blk = UNetBlock()
            resnets = []
            for j in range(3):
                resnets.append(ResnetBlock2D(prev + skip_widths[j], w, temb, g, 1e-5))
                prev = w
            blk.resnets = nn.ModuleList(resnets)
            if i > 0:  # CrossAttnUpBlock2D
                blk.attentions = nn.ModuleList(SpatialTransformer(w, cross_attention_dim, attention_heads, g)
                                               for _ in range(3))
            if i < len(c) - 1:
                blk.upsamplers = nn.ModuleList([Upsample2D(w)])
            self.up_blocks.append(blk)
        self.conv_norm_out = group_norm(g, c[0], 1e-5)
        self.conv_out = nn.Conv2d(c[0], out_channels, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        temb = time_embedding(self.time_embedding, self.c0, timestep, sample)
        h, res = down_path(self.down_blocks, self.conv_in(sample), temb, encoder_hidden_states)
        h = mid_path(self.mid_block, h, temb, encoder_hidden_states)
        h = up_path(self.up_blocks, h, res, temb, encoder_hidden_states)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


# --------------------------------------------------------------------------- LDM VAE names

class LDMResnetBlock(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = group_norm(groups, cin, 1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = group_norm(groups, cout, 1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class LDMAttnBlock(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = group_norm(groups, c, 1e-6)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
        k = k.reshape(b, c, hh * ww)
        w = torch.bmm(q, k) * (int(c) ** -0.5)
        w = w.softmax(dim=2)
        h = torch.bmm(v.reshape(b, c, hh * ww), w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class LDMLevel(nn.Module):
    def __init__(self):
        super().__init__()


class LDMMid(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.block_1 = LDMResnetBlock(c, c, groups)
        self.attn_1 = LDMAttnBlock(c, groups)
        self.block_2 = LDMResnetBlock(c, c, groups)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class LDMVAEDownsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class LDMEncoder(nn.Module):
    def __init__(self, channels, z_channels, groups):
        super().__init__()
        self.conv_in = nn.Conv2d(3, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        prev = channels[0]
        for i, w in enumerate(channels):
            lvl = LDMLevel()
            lvl.block = nn.ModuleList([LDMResnetBlock(prev, w, groups), LDMResnetBlock(w, w, groups)])
            if i != len(channels) - 1:
                lvl.downsample = LDMVAEDownsample(w)
            self.down.append(lvl)
            prev = w
        self.mid = LDMMid(prev, groups)
        self.norm_out = group_norm(groups, prev, 1e-6)
        self.conv_out = nn.Conv2d(prev, 2 * z_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for lvl in self.down:
            for b in lvl.block:
                h = b(h)
            if hasattr(lvl, "downsample"):
                h = lvl.downsample(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class LDMDecoder(nn.Module):
    def __init__(self, channels, z_channels, groups):
        super().__init__()
        ch = channels[-1]
        self.conv_in = nn.Conv2d(z_channels, ch, 3, padding=1)
        self.mid = LDMMid(ch, groups)
        ups = []
        for i in reversed(range(len(channels))):
            lvl = LDMLevel()
            blocks = []
            for _ in range(3):
                blocks.append(LDMResnetBlock(ch, channels[i], groups))
                ch = channels[i]
            lvl.block = nn.ModuleList(blocks)
            if i != 0:
                lvl.upsample = LDMUpsample(ch)
            ups.insert(0, lvl)
        self.up = nn.ModuleList(ups)
        self.norm_out = group_norm(groups, ch, 1e-6)
        self.conv_out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            for b in self.up[i].block:
                h = b(h)
            if hasattr(self.up[i], "upsample"):
                h = self.up[i].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class KLAutoencoder(nn.Module):
    """What ldm's and diffusers' AutoencoderKL compute alike, around their own encoder and
    decoder: encode_scaled is the posterior mean (the first half of quant_conv's moments) times
    the latent scale (ldm's scale_factor, diffusers' scaling_factor), decode_scaled decodes
    post_quant_conv(z / scale)."""

    def __init__(self, encoder, decoder, z_channels, scale):
        super().__init__()
        self.scale = scale
        self.encoder, self.decoder = encoder, decoder
        self.quant_conv = nn.Conv2d(2 * z_channels, 2 * z_channels, 1)
        self.post_quant_conv = nn.Conv2d(z_channels, z_channels, 1)

    def encode_scaled(self, x):
        mean, _logvar = torch.chunk(self.quant_conv(self.encoder(x)), 2, dim=1)
        return self.scale * mean

    def decode_scaled(self, z):
        return self.decoder(self.post_quant_conv(z / self.scale))


class LDMAutoencoderKL(KLAutoencoder):
    """ldm.models.autoencoder.AutoencoderKL."""

    def __init__(self, channels, z_channels, groups, scale_factor):
        super().__init__(LDMEncoder(channels, z_channels, groups), LDMDecoder(channels, z_channels, groups), z_channels,
                         scale_factor)


# ---------------------------------------------------------------------- diffusers VAE names

class VAEAttention(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.group_norm = group_norm(groups, c, 1e-6)
        self.to_q, self.to_k, self.to_v = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c)])

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.group_norm(x).view(b, c, h * w).transpose(1, 2)
        out = self.to_out[0](attention(self.to_q(t), self.to_k(t), self.to_v(t), 1))
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class VAEMid(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, 0, groups, 1e-6) for _ in range(2)])
        self.attentions = nn.ModuleList([VAEAttention(c, groups)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class DiffusersVAEEncoder(nn.Module):
    def __init__(self, c, latent, groups):
        super().__init__()
        self.conv_in = nn.Conv2d(3, c[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        prev = c[0]
        for i, w in enumerate(c):
            blk = UNetBlock()
            blk.resnets = nn.ModuleList([ResnetBlock2D(prev, w, 0, groups, 1e-6), ResnetBlock2D(w, w, 0, groups, 1e-6)])
            if i < len(c) - 1:
                blk.downsamplers = nn.ModuleList([Downsample2D(w, padding=0)])
            self.down_blocks.append(blk)
            prev = w
        self.mid_block = VAEMid(prev, groups)
        self.conv_norm_out = group_norm(groups, prev, 1e-6)
        self.conv_out = nn.Conv2d(prev, 2 * latent, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for blk in self.down_blocks:
            for r in blk.resnets:
                h = r(h)
            if hasattr(blk, "downsamplers"):
                h = blk.downsamplers[0](h)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(h))))


class DiffusersVAEDecoder(nn.Module):
    def __init__(self, c, latent, groups):
        super().__init__()
        rev = list(reversed(c))
        self.conv_in = nn.Conv2d(latent, rev[0], 3, padding=1)
        self.mid_block = VAEMid(rev[0], groups)
        self.up_blocks = nn.ModuleList()
        prev = rev[0]
        for i, w in enumerate(rev):
            blk = UNetBlock()
            blk.resnets = nn.ModuleList([ResnetBlock2D(prev if j == 0 else w, w, 0, groups, 1e-6) for j in range(3)])
            if i < len(c) - 1:
                blk.upsamplers = nn.ModuleList([Upsample2D(w)])
            self.up_blocks.append(blk)
            prev = w
        self.conv_norm_out = group_norm(groups, prev, 1e-6)
        self.conv_out = nn.Conv2d(prev, 3, 3, padding=1)

    def forward(self, z):
        h = self.mid_block(self.conv_in(z))
        for blk in self.up_blocks:
            for r in blk.resnets:
                h = r(h)
            if hasattr(blk, "upsamplers"):
                h = blk.upsamplers[0](h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class AutoencoderKL(KLAutoencoder):
    """diffusers AutoencoderKL: latent_dist.mean · scaling_factor, decode(z / scaling_factor)."""

    def __init__(self, block_out_channels, latent_channels, norm_num_groups, scaling_factor):
        super().__init__(DiffusersVAEEncoder(block_out_channels, latent_channels, norm_num_groups),
                         DiffusersVAEDecoder(block_out_channels, latent_channels, norm_num_groups), latent_channels,
                         scaling_factor)
