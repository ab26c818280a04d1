"""IP-Adapter, its image encoder and reference-only control in the PUBLISHED structures: the
independent check of sd15_ip.py.

Written from the maths of the original code, not from Refiners:
  - transformers models/clip/modeling_clip.py: CLIPVisionModelWithProjection (embeddings
    with class_embedding / patch_embedding / position_embedding, pre_layrnorm, encoder
    layers with exact-erf GELU and non-causal attention, post_layernorm on the class token,
    visual_projection without bias; hidden_states[0] is the pre_layrnorm output and
    hidden_states[i] the output of layer i, so hidden_states[-2] is the penultimate layer's);
  - tencent-ailab/IP-Adapter ip_adapter/ip_adapter.py (ImageProjModel; IPAdapter.set_ip_adapter
    and load_ip_adapter: one processor per entry of unet.attn_processors, in that order, the
    self-attentions' without parameters, loaded as a ModuleList, hence the keys N.to_k_ip.weight
    with N odd), ip_adapter/resampler.py (Resampler, PerceiverAttention, FeedForward) and
    ip_adapter/attention_processor.py (IPAttnProcessor: the image tokens are the LAST
    num_tokens of encoder_hidden_states, text attention + scale · image attention, then
    to_out);
  - reference-only control as sd-webui-controlnet and diffusers' community
    stable_diffusion_reference pipeline write it: the reference pass stores each transformer
    block's norm1 output in a bank; the main pass's attn1 attends to cat([norm1(x)] + bank);
    on the unconditional rows the result is mixed with plain self-attention,
    style_fidelity · plain + (1 − style_fidelity) · with-bank (note: the opposite weighting of
    Refiners' style_cfg, equal at 0.5; sd15_ip.py compares them with fidelity ↔ 1 − style_cfg).

The UNet is sd15_published.UNet2DConditionModel (diffusers names); its attn2 / transformer
blocks are patched here per instance. The vision encoder's layers are sd15_published's CLIP
encoder layers (transformers names, one class for both models as in transformers). Nothing
here imports fluxion.py, sd15.py or sd15_ip.py.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import sd15_published as pub


def attention(q, k, v, heads):
    """softmax(q·kᵀ·d^-½)·v per head, diffusers' get_attention_scores order (scale on the scores)."""
    b, n, d = q.shape
    hd = d // heads

    def split(t):
        return t.reshape(b, t.shape[1], heads, hd).permute(0, 2, 1, 3).reshape(b * heads, t.shape[1], hd)

    scores = torch.bmm(split(q), split(k).transpose(1, 2)) * hd ** -0.5
    out = torch.bmm(scores.softmax(dim=-1), split(v))
    return out.reshape(b, heads, n, hd).permute(0, 2, 1, 3).reshape(b, n, d)


# ------------------------------------------------------- transformers CLIPVisionModelWithProjection

class CLIPVisionEmbeddings(nn.Module):
    def __init__(self, hidden, image_size, patch):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.zeros(hidden))
        self.patch_embedding = nn.Conv2d(3, hidden, patch, stride=patch, bias=False)
        self.num_positions = (image_size // patch) ** 2 + 1
        self.position_embedding = nn.Embedding(self.num_positions, hidden)

    def forward(self, pixels):
        b = pixels.shape[0]
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(b, 1, -1)
        x = torch.cat([cls, patches], dim=1)
        return x + self.position_embedding(torch.arange(self.num_positions)[None])


class CLIPVisionTransformer(nn.Module):
    def __init__(self, hidden, image_size, patch, layers, heads, inner, eps):
        super().__init__()
        self.embeddings = CLIPVisionEmbeddings(hidden, image_size, patch)
        self.pre_layrnorm = nn.LayerNorm(hidden, eps=eps)  # sic: transformers' spelling
        # sd15_published's text encoder layers, with the vision model's non-causal attention and
        # hidden_act "gelu" (exact erf)
        self.encoder = pub.CLIPEncoder(layers, hidden, heads, inner, eps, attend=attention, act=F.gelu)
        self.post_layernorm = nn.LayerNorm(hidden, eps=eps)


class CLIPVisionModelWithProjection(nn.Module):
    """forward(pixels) -> (image_embeds [b, projection_dim], hidden_states tuple of layers+1)."""

    def __init__(self, hidden_size, image_size, patch_size, num_hidden_layers, num_attention_heads,
                 intermediate_size, projection_dim, layer_norm_eps=1e-5):
        super().__init__()
        self.vision_model = CLIPVisionTransformer(hidden_size, image_size, patch_size, num_hidden_layers,
                                                  num_attention_heads, intermediate_size, layer_norm_eps)
        self.visual_projection = nn.Linear(hidden_size, projection_dim, bias=False)

    def forward(self, pixels):
        vm = self.vision_model
        h = vm.pre_layrnorm(vm.embeddings(pixels))
        states = [h]
        for layer in vm.encoder.layers:
            h = layer(h)
            states.append(h)
        pooled = vm.post_layernorm(h[:, 0, :])
        return self.visual_projection(pooled), tuple(states)


# -------------------------------------------------------------------- IP-Adapter projections

class ImageProjModel(nn.Module):
    def __init__(self, cross_attention_dim, clip_embeddings_dim, clip_extra_context_tokens=4):
        super().__init__()
        self.cross_attention_dim = cross_attention_dim
        self.tokens = clip_extra_context_tokens
        self.proj = nn.Linear(clip_embeddings_dim, clip_extra_context_tokens * cross_attention_dim)
        self.norm = nn.LayerNorm(cross_attention_dim)

    def forward(self, embeds):
        return self.norm(self.proj(embeds).reshape(-1, self.tokens, self.cross_attention_dim))


def resampler_feed_forward(dim, mult):
    inner = int(dim * mult)
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, inner, bias=False), nn.GELU(),
                         nn.Linear(inner, dim, bias=False))


class PerceiverAttention(nn.Module):
    def __init__(self, dim, dim_head, heads):
        super().__init__()
        self.dim_head, self.heads = dim_head, heads
        inner = dim_head * heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x, latents):
        x = self.norm1(x)
        latents = self.norm2(latents)
        b, length, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat((x, latents), dim=-2)).chunk(2, dim=-1)

        def heads(t):
            return t.view(b, t.shape[1], self.heads, -1).transpose(1, 2)

        q, k, v = heads(q), heads(k), heads(v)
        # the scale split over q and k, as the original does ("more stable with f16")
        scale = 1 / math.sqrt(math.sqrt(self.dim_head))
        w = ((q * scale) @ (k * scale).transpose(-2, -1)).softmax(dim=-1)
        return self.to_out((w @ v).permute(0, 2, 1, 3).reshape(b, length, -1))


class Resampler(nn.Module):
    def __init__(self, dim, depth, dim_head, heads, num_queries, embedding_dim, output_dim, ff_mult=4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim ** 0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(nn.ModuleList([PerceiverAttention(dim, dim_head, heads),
                                                   resampler_feed_forward(dim, ff_mult)]) for _ in range(depth))

    def forward(self, x):
        latents = self.latents.repeat(x.size(0), 1, 1)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))


# ------------------------------------------------------------ the UNet's attention processors

def attn_processor_names(unet):
    """diffusers' UNet2DConditionModel.attn_processors order: named_children order of the real
    model, i.e. down_blocks, up_blocks, then mid_block (diffusers registers the two ModuleLists
    before it builds the mid block); attn1 before attn2 in each transformer block."""
    names = []

    def blocks(prefix, blk):
        for j, att in enumerate(getattr(blk, "attentions", [])):
            for t, tb in enumerate(att.transformer_blocks):
                for a in ("attn1", "attn2"):
                    names.append((f"{prefix}.attentions.{j}.transformer_blocks.{t}.{a}.processor", tb, a))

    for i, blk in enumerate(unet.down_blocks):
        blocks(f"down_blocks.{i}", blk)
    for i, blk in enumerate(unet.up_blocks):
        blocks(f"up_blocks.{i}", blk)
    blocks("mid_block", unet.mid_block)
    return names


class AttnProcessor(nn.Module):
    """The self-attentions' processor: no parameters (it only fills a slot of the ModuleList)."""


class IPAttnProcessor(nn.Module):
    def __init__(self, hidden_size, cross_attention_dim, scale=1.0, num_tokens=4):
        super().__init__()
        self.scale, self.num_tokens = scale, num_tokens
        self.to_k_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.to_v_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)

    def __call__(self, attn, hidden_states, encoder_hidden_states):
        query = attn.to_q(hidden_states)
        end = encoder_hidden_states.shape[1] - self.num_tokens
        text, ip = encoder_hidden_states[:, :end], encoder_hidden_states[:, end:]
        h = attention(query, attn.to_k(text), attn.to_v(text), attn.heads)
        ip_h = attention(query, self.to_k_ip(ip), self.to_v_ip(ip), attn.heads)
        return attn.to_out[0](h + self.scale * ip_h)


def set_ip_adapter(unet, cross_attention_dim, num_tokens, scale):
    """IP-Adapter's set_ip_adapter on the published-structure UNet: returns the ModuleList of
    processors in attn_processors order, to be loaded with the file's ip_adapter.* tensors."""
    procs = []
    for name, tb, a in attn_processor_names(unet):
        if a == "attn1":
            procs.append(AttnProcessor())
            continue
        hidden = tb.attn2.to_q.out_features
        p = IPAttnProcessor(hidden, cross_attention_dim, scale, num_tokens)
        procs.append(p)
        attn = tb.attn2

        def forward(x, context, attn=attn, p=p):
            return p(attn, x, context)

        attn.forward = forward
    return nn.ModuleList(procs)


# ------------------------------------------------------------------- reference-only (bank)

class ReferenceBank:
    """Patches every BasicTransformerBlock of a published-structure UNet: mode "write" stores
    norm1(x) in the block's bank; mode "read" attends to cat([norm1(x)] + bank) and, on the
    rows listed in uc_rows, mixes in plain self-attention with style_fidelity."""

    def __init__(self, unet, style_fidelity=0.5):
        self.mode, self.style_fidelity, self.uc_rows = "off", style_fidelity, []
        self.blocks = []
        for _name, tb, a in attn_processor_names(unet):
            if a != "attn1":
                continue
            tb.bank = []
            self.blocks.append(tb)

            def forward(x, context, tb=tb):
                n = tb.norm1(x)
                if self.mode == "write":
                    tb.bank.append(n.clone())
                    a1 = tb.attn1(n, n)
                elif self.mode == "read":
                    uc = tb.attn1(n, torch.cat([n] + tb.bank, dim=1))
                    c = uc.clone()
                    if self.uc_rows and self.style_fidelity > 1e-5:
                        rows = self.uc_rows
                        c[rows] = tb.attn1(n[rows], n[rows])
                    a1 = self.style_fidelity * c + (1.0 - self.style_fidelity) * uc
                else:
                    a1 = tb.attn1(n, n)
                x = x + a1
                x = x + tb.attn2(tb.norm2(x), context)
                return x + tb.ff(tb.norm3(x))

            tb.forward = forward

    def clear(self):
        for tb in self.blocks:
            tb.bank = []


def reference_only(unet, bank, x, timestep, context, reference):
    """One guided UNet call with reference-only control: the write pass on the noised
    reference latents, then the read pass on x."""
    bank.clear()
    bank.mode = "write"
    unet(reference, timestep, context)
    bank.mode = "read"
    y = unet(x, timestep, context)
    bank.mode = "off"
    bank.clear()
    return y
