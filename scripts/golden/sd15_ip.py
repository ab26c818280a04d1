#!/usr/bin/python3
"""IP-Adapter (base and plus), its CLIP ViT-H/14 image encoder and reference-only control for
SD1.5, in Refiners' structure: the SPEC and the ORACLE for the .rfn models (issue #16).

Transcribed from finegrain-ai/refiners (read through the search tool; stored versions):
src/refiners/foundationals/clip/image_encoder.py @f97b2f76/@142da7b7 (ClassToken, PatchEncoder,
TransformerLayer, ViTEmbeddings, CLIPImageEncoder, CLIPImageEncoderH), clip/common.py
(PositionalEncoder, FeedForward), latent_diffusion/image_prompt.py @968306b6 (ImageProjection,
FeedForward, PerceiverScaledDotProductAttention, PerceiverAttention, LatentsToken, Transformer,
TransformerLayer, PerceiverResampler, ImageCrossAttention, CrossAttentionAdapter, IPAdapter:
compute_clip_image_embedding, preprocess_image, convert_to_grid_features),
stable_diffusion_1/image_prompt.py @48bfff2b (SD1IPAdapter: the sizes of the plus resampler),
latent_diffusion/reference_only_control.py @20c22990 (SaveLayerNormAdapter,
SelfAttentionInjectionAdapter, SelfAttentionInjectionPassthrough, ReferenceOnlyControlAdapter;
the only stored version; it is still in Refiners' newest tests, tests/e2e/test_diffusion.py
test_diffusion_refonly, so no older version was needed), fluxion/utils.py (image_to_tensor,
normalize), scripts/conversion/convert_diffusers_ip_adapter.py (CROSS_ATTN_MAPPING and the
image_proj key names) and convert_transformers_clip_image_model.py. fluxion.py holds the
containers; this file adds Permute, Multiply, GetArg and Refiners' structural_copy.
ip_published.py is the independent check (transformers' CLIPVisionModelWithProjection,
tencent-ailab/IP-Adapter's ImageProjModel / Resampler / IPAttnProcessor, sd-webui's reference
bank), loaded from the published layouts by their own names.

Run from the repository root with /usr/bin/python3 (needs testdata/sd15 from sd15.py):
  scripts/golden/sd15_ip.py [--reduced]   writes testdata/sd15/ip/ (about 1.5 CPU-minutes)
  scripts/golden/sd15_ip.py --check-full  full-size parameter counts and published key shapes
  scripts/golden/sd15_ip.py --full-encoder  full-size encoder + projections, numeric check on
                                          CPU against the published structures (~5 CPU-minutes,
                                          under 6 GB; measured: embedding and hidden_states[-2]
                                          agree to 1.3e-6 in float32, the projections exactly)

ENTRY POINTS (float32 in rfc; every shape below at full size)
  CLIPImageEncoderH   pixels [b, 3, 224, 224] (preprocessed) -> image embedding [b, 1024]
                      = Linear(LayerNorm_2(hidden[:, 0])) (the class token, post-LayerNorm,
                      projected without bias).
  its grid variant    pixels -> the hidden states after layer 31 of 32, [b, 257, 1280], every
                      token, NOT post-LayerNormed (transformers' hidden_states[-2]). Refiners
                      builds it as a structural copy that pops Linear, LayerNorm_2, the Lambda
                      and the last TransformerLayer (same weights; one .rfn model with two
                      outputs, or a second entry point, computes both).
  ImageProjection     (base) embedding [b, 1024] -> tokens [b, 4, 768]:
                      LayerNorm(Reshape(4, 768)(Linear 1024->3072 with bias)).
  PerceiverResampler  (plus) penultimate states [b, 257, 1280] -> tokens [b, 16, 768].
  SD1UNet + IP        as SD1UNet plus the context ip_adapter/clip_image_embedding [2, T, 768]
                      (T = 4 base, 16 plus; negative half first) and a scale.
  SD1UNet + refonly   as SD1UNet plus the context reference_only_control/guide [2, 4, h, w]:
                      the reference latents noised to the step (negative half first).

PREPROCESSING (IPAdapter.preprocess_image)
  PIL image.resize((224, 224)) with no crop (aspect ratio NOT kept; Image.resize's default
  filter, BICUBIC for RGB, what imaging/ reproduces), image_to_tensor (uint8 / 255 as float32,
  [1, 3, H, W]), then (x - mean) / std per channel in float32 with CLIP's mean
  [0.48145466, 0.4578275, 0.40821073] and std [0.26862954, 0.26130258, 0.27577711] (a
  subtraction then a division, both float32). Refiners' image_to_tensor takes the image's
  channels as they are: convert to RGB first (an RGBA or L image would break it). The
  original IP-Adapter resizes the short side and center-crops (CLIPImageProcessor): Refiners
  does not, and neither does this file.
  Golden: preprocess.safetensors (coffee.png at 224, both photos at the reduced 20).

CLIP IMAGE ENCODER (Refiners tree; refiners_tree.txt prints the reduced one)
  CLIPImageEncoder = Chain(ViTEmbeddings, LayerNorm_1 (pre), Chain(TransformerLayer_1..32),
    Lambda(x[:, 0, :]), LayerNorm_2 (post), Linear(1280 -> 1024, bias=False)).
  ViTEmbeddings = Chain(Concatenate(ClassToken(Parameter [1, 1280], expanded to the batch),
    Chain(PatchEncoder(Conv2d 3->1280, kernel 14, stride 14, NO bias; Permute(0, 2, 3, 1)),
    Reshape(256, 1280)), dim=1), Residual(PositionalEncoder(arange(257) -> Embedding 257x1280))).
    The class token comes FIRST, then the 16x16 patches in row-major order (Permute to
    [b, 16, 16, 1280] then reshape = transformers' flatten(2).transpose(1, 2)).
  TransformerLayer = Residual_1(LayerNorm, SelfAttention(16 heads of 80, q/k/v/out with bias,
    not causal)), Residual_2(LayerNorm, FeedForward(Linear 1280->5120, GeLU exact erf,
    Linear 5120->1280)). Every LayerNorm eps 1e-5. (The text encoder's GeLU is QuickGELU; the
    image encoder's is NOT.)
  Keys: keys_image_encoder.tsv (520 published keys <-> Refiners keys; the class embedding is
  [1280] published, [1, 1280] in Refiners). The published file may also hold
  vision_model.embeddings.position_ids [1, 257] int64 (transformers < 4.31 saved it): ignore it;
  the reduced file carries it so that a loader must. The published file is float16.

IP-ADAPTER PROJECTIONS
  base  ImageProjection: keys_image_proj_base.tsv (image_proj.proj.{weight,bias} = Linear,
        image_proj.norm.* = LayerNorm, eps 1e-5).
  plus  PerceiverResampler(latents_dim 768, 4 layers, 12 heads of 64, 16 tokens, input 1280,
        output 768) = Chain(Linear_1 1280->768 (proj_in, bias), SetContext(perceiver_resampler.x),
        LatentsToken(Parameter [16, 768] = image_proj.latents [1, 16, 768] squeezed, expanded to
        the batch), Transformer(TransformerLayer_1..4), Linear_2 768->768 (proj_out, bias),
        LayerNorm (norm_out)).
        TransformerLayer = Residual_1(Parallel(UseContext(perceiver_resampler.x), Identity) ->
        (x, latents), PerceiverAttention) [+ latents], Residual_2(LayerNorm (layers.i.1.0),
        FeedForward(Linear 768->3072 no bias (1.1), GeLU exact, Linear 3072->768 no bias (1.3))).
        PerceiverAttention(x, latents) = Distribute(LayerNorm_1 (norm1) on x, LayerNorm_2 (norm2)
        on latents); kv = Linear 768->1536 no bias (to_kv) of cat((x', latents'), dim=1) (the
        projected image tokens FIRST, then the latents: 257 + 16 keys); q = Linear 768->768 no bias
        (to_q) of latents'; key = kv[..., :768], value = kv[..., 768:] (halves, key first), heads
        split as [.., 12, 64]; softmax((q·s)(k·s)ᵀ) with s = 64^-1/4 (= the usual 1/√64 on the
        scores); merge heads; Linear 768->768 no bias (to_out). NB: x (the proj_in output) is the
        same in every layer; only the latents are updated. Keys: keys_image_proj_plus.tsv.
  Parameter counts (asserted, full size): CLIPImageEncoderH 632,076,800; base 3,150,336;
  plus 29,918,208.

IMAGE TOKENS AND GUIDANCE (IPAdapter.compute_clip_image_embedding)
  base: cond = proj(embedding(image)); negative = proj(zeros_like(embedding)) (a zero
  embedding through the projection: LayerNorm of the Linear's bias). plus: cond =
  proj(grid(pixels)); negative = proj(grid(zeros_like(pixels))): the encoder's features of an
  all-zero PREPROCESSED tensor (i.e. the mean colour, not a black image). The context value is
  cat((negative, cond)) [2, T, 768], matching the UNet's batch of two (negative prompt first).
  Several images: each half becomes [1, n·T, 768] (tokens concatenated along dim 1, image order);
  optional per-image weights multiply the conditional tokens only. Refiners never runs the
  batch of one: the negative half is always computed (guidance scale 1 still uses it).

WHERE THE IP-ADAPTER GOES (ip_cross_attentions.tsv)
  Every Attention of the UNet that is not a SelfAttention: the 16 cross-attentions
  ...CLIPLCrossAttention.Chain_2.CrossAttentionBlock.Residual_2.Attention (6 in DownBlocks
  Chain_2,3,5,6,8,9; Sum.MiddleBlock; 9 in UpBlocks Chain_4..12), tree order = Refiners'
  index i. Each becomes CrossAttentionAdapter(Attention') where Attention' is the target with
  its ScaledDotProductAttention replaced by Sum(ScaledDotProductAttention, ImageCrossAttention):
    ImageCrossAttention(q, k, v) = Distribute(Identity (q), Chain(UseContext(ip_adapter,
      clip_image_embedding), Linear 768->C no bias = to_k_ip), Chain(UseContext(...), Linear
      768->C no bias = to_v_ip)) -> ScaledDotProductAttention(8 heads, same as the text's) ->
      Multiply(scale).
  i.e. out = to_out(attn(q, K_text, V_text) + scale · attn(q, to_k_ip(img), to_v_ip(img))):
  the same query, the sum BEFORE the output Linear (C = 320/640/1280, heads of C/8). This is
  dsl/LANGUAGE.md's ImageCrossAttention sketch (target ScaledDotProductAttention@
  **.Residual_2.Attention.*; the Distribute's first child keeps the query), with the input
  image_tokens [batch, T, 768], T = 4 (base) or 16 (plus), where the sketch says 4.
  The published N: diffusers' attn_processors order is down_blocks, up_blocks, mid_block (the
  UNet registers both ModuleLists before its mid block), attn1 then attn2 per block, counted
  from 0; IP-Adapter loads a ModuleList over all 32 processors, the self-attentions' without
  parameters, so the cross-attentions are the ODD N: Down 1,3,5,7,9,11; Up 13..29; Mid 31.
  Refiners' i -> N = [1,3,5,7,9,11,31,13,15,...,29] (the mid block is 7th in Refiners' tree
  order, last in the file). Checked three ways: Refiners' CROSS_ATTN_MAPPING through sd15.py's
  diffusers key map, the independent model's attn_processors names (full size), and the reduced
  run of IP-Adapter's own processors loaded by N (agreement 1e-15; with N=1 and N=3 swapped it
  differs by 0.5).
  Scale: a runtime scalar (rfc's MultiplyInput). At scale 0 the adapted UNet equals the base
  UNet bit for bit (x + 0·y + 0.0 = x), asserted in float32 and float64.
  A published SD1.5 file: image_proj.* + ip_adapter.{1,3,...,31}.to_{k,v}_ip.weight (32 tensors,
  [C, 768]). SDXL files have ip_adapter.N for N up to 139 (70 cross-attentions, [C, 2048]) and a
  1280/2048-wide image_proj; other SD1.5 variants that are NOT this structure: ip-adapter-full-face
  (image_proj.proj.0/.2/.3, an MLP) and the ViT-G ones (proj [3072, 1280] with another encoder).
  Fixtures to refuse: bad/ip-adapter_missing_key.safetensors (ip_adapter.13.to_v_ip.weight
  removed), bad/ip-adapter_sdxl_layout.safetensors (the SDXL key layout, tiny tensors).

REFERENCE-ONLY CONTROL (ReferenceOnlyControlAdapter, style_cfg 0.5; no weights)
  Context keys: reference_only_control/guide (the noised reference latents [2, 4, h, w]),
  self_attention_context_{i}/norm for i = 0..15 (reference_self_attentions.tsv: the
  self-attention of every CrossAttentionBlock, tree order), self_attention_residuals_buffer.
  1. SelfAttentionInjectionPassthrough becomes the UNet's FIRST child: Passthrough(Lambda
     (save unet.residuals, set a fresh [0.0]*13), UseContext(reference_only_control, guide),
     SD1UNet' (a structural copy: every weight shared), Lambda(restore unet.residuals)). In
     SD1UNet' each CrossAttentionBlock.Residual_1.SelfAttention becomes
     SaveLayerNormAdapter(SetContext(self_attention_context_{i}, norm), SelfAttention): it stores
     its input, the LayerNorm'ed tokens n_ref = norm1(h_ref) [2, L, C]. The guide pass uses the
     same timestep and the same text embedding (both halves) as the main pass; its output is
     discarded (everything after the last SaveLayerNorm is dead code), and it must not disturb
     the main pass's context (in rfc its context writes all happen before the main pass's).
  2. In the main UNet each CrossAttentionBlock.Residual_1.SelfAttention becomes
     SelfAttentionInjectionAdapter = Chain(Parallel(SA_guided, Chain(Lambda(x[:1]), SA)),
     Lambda(blend)), with n = norm1(h) [2, L, C] its input:
       guided = SA with q from n and k, v from cat([n, n_ref], dim=1) (the tokens' own first,
                then the reference's: L + L_ref keys), same weights and output Linear;
       plain  = SA(n[:1]) (ordinary self-attention of the first row only);
       out    = guided, except out[0] = style_cfg · guided[0] + (1 − style_cfg) · plain[0].
     Row 0 is the negative (unconditional) half of the guided batch: Refiners assumes batch 2.
     The blend is after the output Linear (affine, so equal to blending before it).
  3. Per step (Refiners' e2e test): guide = solver.add_noise(cat(ref, ref), noise_step, step)
     with ref = SD1Encoder(reference image) [1, 4, h, w] (scaled latents), noise_step
     [2, 4, h, w], i.e. √ᾱ_t·ref + √(1−ᾱ_t)·noise at the step's timestep t; the reference
     image must give latents the size of the generated ones for a batch of the same size.
  NB the weighting: sd-webui-controlnet and diffusers' reference pipeline write
  style_fidelity · plain + (1 − style_fidelity) · guided on the unconditional rows: the
  complement of Refiners' style_cfg (identical at the 0.5 default). The goldens include
  style_cfg 0.25 so that a reversed weighting fails (it differs by 0.14).

NOTES FOR THE .rfn MODELS
  - Reference-only may equally target each SelfAttention's ScaledDotProductAttention: the q/k/v
    Linears have no bias and act row by row, so Linear(cat([n, n_ref])) = cat([Linear(n),
    Linear(n_ref)]); the adapter can project the saved n_ref with the target's own k/v Linears
    and concatenate after them. The plain branch on row 0 and the blend stay as above.
  - Refiners always runs the guided batch of two. With guidance 1 (a pipeline that drops the
    negative half) Refiners' refonly would blend row 0, the POSITIVE half; the sensible rfc
    behaviour is no blend (and the IP-Adapter then takes only the conditional tokens): that is
    a departure from Refiners to state, and no golden covers it.
  - The reference pass needs no output: only the 16 saved norms; everything downstream of the
    last SaveLayerNormAdapter (UpBlocks.Chain_12's self-attention) is dead.
  - The IP-Adapter and reference-only compose (Refiners' refonly copies the UNet when it is
    constructed, so an IP-Adapter injected before it also runs in the guide pass, one injected
    after it does not); no golden combines them.

REDUCED CONFIGURATION (testdata/sd15/ip, 1.6 MB; weights float16-exact, sd15.randomize's rule)
  image encoder: image_size 20, patch_size 4 (5x5 patches + class = 26 tokens), width 16,
  2 heads, 3 layers (penultimate = after layer 2), feedforward 40, output 12. No parameter was
  added to CLIPImageEncoder (Refiners already has image_size and patch_size); the grid
  encoder drops the last of any number of layers (Refiners asserts 32).
  base: 12 -> 4 tokens of 8. plus: latents 8, 2 layers, 2 heads of 6 (inner 12, unlike the
  latents' 8 so that the two cannot be confused), 16 tokens, input 16, output 8 (SD1IPAdapter's
  constants 4 / 12 / 64 / 16 made parameters). IP key/value Linears [C, 8] for C = 8/16/24,
  for the reduced UNet of testdata/sd15 (refiners/unet.safetensors; autoencoder for the
  reference image). Parameters: encoder 8,920, base 432, plus 2,240, IP k/v 4,224.
  Files (published layouts, float16): image_encoder/model.safetensors + config.json
  (transformers names), ip-adapter_sd15.safetensors, ip-adapter-plus_sd15.safetensors
  (image_proj.* + ip_adapter.N.*), refiners/image_encoder.safetensors (Refiners keys), bad/.
  Goldens (the Refiners models reloaded from the published files, float64, stored float32):
    encoder_input {x [2,3,20,20]: astronaut, coffee preprocessed}; encoder_output {embedding
      [2,12], penultimate [2,26,16], zeros_embedding [1,12], zeros_penultimate [1,26,16]
      (of an all-zero pixel tensor)}
    image_tokens {base [2,4,8], plus [2,16,8] (astronaut = x[:1]); base_two_images [2,8,8],
      plus_two_images [2,32,8] (both images)}: cat((negative, cond))
    unet_ip_input {x [2,4,16,24], timestep [1] = 400, clip_text_embedding [2,77,8],
      image_tokens_base, image_tokens_plus}; unet_ip_output {plain, base_{1.0,0.5,0.0},
      plus_{1.0,0.5,0.0}} (scale 0 == plain exactly)
    refonly_input {x, timestep, clip_text_embedding, reference_image [1,3,128,192] in [-1,1]
      (coffee resized to 192x128), reference_latents [1,4,16,24] (reduced SD1Encoder, float32),
      reference_noise [2,4,16,24], guide = add_noise(cat(ref, ref), noise, 400) float32};
      refonly_output {style_0.5, style_0.25 [2,4,16,24]; norm_0..15: the reference pass's
      saved norms [2, L_i, C_i]}
    run_input / run_output: 3 steps of Refiners' DDIM, guidance 7.5, from noise [1,4,16,24]:
      plain, base, plus (image tokens as above), refonly (reference_latents, reference_noise
      [3,2,4,16,24]: step, then negative/positive half) -> final latents [1,4,16,24].
  float32 runs differ from the float64 goldens by ≤ 2e-6 relative (printed).
  Independent published-structure models, float64, agree to ~1e-15 (printed; asserted ≤ 1e-5).
"""
import argparse
import copy
import json
import math
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import fluxion as fl  # noqa: E402
import sd15  # noqa: E402
import sd15_published as pub  # noqa: E402
import ip_published as ipp  # noqa: E402
import solvers  # noqa: E402

ROOT = sd15.ROOT
OUT = os.path.join(ROOT, "testdata", "sd15", "ip")
SD15_DIR = os.path.join(ROOT, "testdata", "sd15")
PHOTOS = os.path.join(ROOT, "testdata", "images")

# CLIP's normalization (openai/CLIP), Refiners' IPAdapter.preprocess_image defaults.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# Published sizes: CLIPImageEncoderH, SD1IPAdapter's ImageProjection / PerceiverResampler.
FULL_ENCODER = dict(image_size=224, embedding_dim=1280, output_dim=1024, patch_size=14, num_layers=32,
                    num_attention_heads=16, feedforward_dim=5120, layer_norm_eps=1e-5)
FULL_BASE = dict(clip_image_embedding_dim=1024, clip_text_embedding_dim=768, num_tokens=4)
FULL_PLUS = dict(latents_dim=768, num_attention_layers=4, num_attention_heads=12, head_dim=64, num_tokens=16,
                 input_dim=1280, output_dim=768)
FULL_PARAMS = dict(encoder=632_076_800, base=3_150_336, plus=29_918_208)

# Reduced sizes (testdata/sd15/ip): the image encoder's own parameters are Refiners'
# (image_size and patch_size included); for the plus resampler, SD1IPAdapter's constants
# (4 layers, 12 heads of 64, 16 tokens) become parameters. Widths all differ so that a mix-up
# fails: encoder width 16, projection 12, text/cross-attention width 8, resampler inner 12.
REDUCED_ENCODER = dict(image_size=20, embedding_dim=16, output_dim=12, patch_size=4, num_layers=3,
                       num_attention_heads=2, feedforward_dim=40, layer_norm_eps=1e-5)
REDUCED_BASE = dict(clip_image_embedding_dim=12, clip_text_embedding_dim=8, num_tokens=4)
REDUCED_PLUS = dict(latents_dim=8, num_attention_layers=2, num_attention_heads=2, head_dim=6, num_tokens=16,
                    input_dim=16, output_dim=8)

# Refiners' convert_diffusers_ip_adapter.py: Refiners' i-th cross-attention (tree order:
# DownBlocks, MiddleBlock, UpBlocks) is the file's N = CROSS_ATTN_MAPPING[i] (diffusers'
# attn_processors order: down, up, mid; attn1 even, attn2 odd).
CROSS_ATTN_MAPPING = list(range(1, 12, 2)) + [31] + list(range(13, 30, 2))
STYLE_CFG = 0.5  # ReferenceOnlyControlAdapter's default


# =============================================================== layers fluxion.py lacks

class Permute(fl.Leaf):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def describe(self):
        return ", ".join(map(str, self.dims))

    def forward(self, x):
        return x.permute(*self.dims)


class Multiply(fl.Leaf):
    """scale · x + bias (Refiners' fl.Multiply; the IP-Adapter scale)."""

    def __init__(self, scale=1.0, bias=0.0):
        super().__init__()
        self.scale, self.bias = scale, bias

    def describe(self):
        return f"scale={self.scale}, bias={self.bias}"

    def forward(self, x):
        return self.scale * x + self.bias


class GetArg(fl.Leaf):
    def __init__(self, index):
        super().__init__()
        self.index = index

    def describe(self):
        return f"index={self.index}"

    def forward(self, *args):
        return args[self.index]


def renamed(cls, name):
    """Refiners names children after their class: several Refiners classes share a name
    (TransformerLayer, FeedForward), which Python modules here cannot."""
    cls.__name__ = cls.__qualname__ = name
    return cls


def structural_copy(m):
    """Refiners' Chain.structural_copy: every Chain is copied, every leaf (and so every
    weight) is shared."""
    if not isinstance(m, fl.Chain):
        return m
    new = copy.copy(m)
    new._modules = OrderedDict((n, structural_copy(c)) for n, c in m._modules.items())
    return new


def parent_of(root, target):
    for m in root.modules():
        if isinstance(m, fl.Chain) and any(c is target for c in m._modules.values()):
            return m
    raise KeyError("no parent")


# ================================================================ CLIP image encoder

class ClassToken(fl.Chain):
    def __init__(self, embedding_dim):
        super().__init__(fl.Parameter(1, embedding_dim))


class PatchEncoder(fl.Chain):
    def __init__(self, in_channels, out_channels, patch_size, use_bias=False):
        super().__init__(fl.Conv2d(in_channels, out_channels, patch_size, stride=patch_size, bias=use_bias),
                         Permute(0, 2, 3, 1))


class ViTTransformerLayer(fl.Chain):
    def __init__(self, embedding_dim, feedforward_dim, num_attention_heads, layer_norm_eps):
        super().__init__(
            fl.Residual(fl.LayerNorm(embedding_dim, eps=layer_norm_eps),
                        fl.SelfAttention(embedding_dim, num_heads=num_attention_heads)),
            fl.Residual(fl.LayerNorm(embedding_dim, eps=layer_norm_eps),
                        sd15.FeedForward(embedding_dim, feedforward_dim)),  # GeLU exact (erf)
        )


renamed(ViTTransformerLayer, "TransformerLayer")


class ViTEmbeddings(fl.Chain):
    def __init__(self, image_size, embedding_dim, patch_size):
        n = (image_size // patch_size) ** 2
        super().__init__(
            fl.Concatenate(ClassToken(embedding_dim),
                           fl.Chain(PatchEncoder(3, embedding_dim, patch_size), fl.Reshape(n, embedding_dim)), dim=1),
            fl.Residual(sd15.PositionalEncoder(n + 1, embedding_dim)),
        )


class CLIPImageEncoder(fl.Chain):
    def __init__(self, image_size, embedding_dim, output_dim, patch_size, num_layers, num_attention_heads,
                 feedforward_dim, layer_norm_eps=1e-5):
        super().__init__(
            ViTEmbeddings(image_size, embedding_dim, patch_size),
            fl.LayerNorm(embedding_dim, eps=layer_norm_eps),
            fl.Chain(*(ViTTransformerLayer(embedding_dim, feedforward_dim, num_attention_heads, layer_norm_eps)
                       for _ in range(num_layers))),
            fl.Lambda(lambda x: x[:, 0, :], "x[:, 0, :] (class token)"),
            fl.LayerNorm(embedding_dim, eps=layer_norm_eps),
            fl.Linear(embedding_dim, output_dim, bias=False),
        )
        self.image_size, self.embedding_dim, self.output_dim = image_size, embedding_dim, output_dim
        self.num_layers = num_layers


class CLIPImageEncoderH(CLIPImageEncoder):
    def __init__(self, **cfg):
        super().__init__(**{**FULL_ENCODER, **cfg})


def grid_encoder(encoder):
    """IPAdapter.convert_to_grid_features: a structural copy without the projection, the
    final LayerNorm, the class-token Lambda, and without the last transformer layer: the
    hidden states after the penultimate layer, every token, [b, 1 + n_patches, embedding_dim]
    (transformers' hidden_states[-2]). Refiners asserts 32 layers; here any number."""
    clone = structural_copy(encoder)
    mods = clone.children_list()
    assert isinstance(mods[-1], fl.Linear) and isinstance(mods[-2], fl.LayerNorm) and isinstance(mods[-3], fl.Lambda)
    clone._set_children(mods[:-3])
    layers = clone.children_list()[-1]
    layers._set_children(layers.children_list()[:-1])
    return clone


# ======================================================================= projections

class ImageProjection(fl.Chain):
    def __init__(self, clip_image_embedding_dim=1024, clip_text_embedding_dim=768, num_tokens=4):
        super().__init__(
            fl.Linear(clip_image_embedding_dim, clip_text_embedding_dim * num_tokens),
            fl.Reshape(num_tokens, clip_text_embedding_dim),
            fl.LayerNorm(clip_text_embedding_dim),
        )


class IPFeedForward(fl.Chain):
    def __init__(self, embedding_dim, feedforward_dim):
        super().__init__(fl.Linear(embedding_dim, feedforward_dim, bias=False), fl.GeLU(),
                         fl.Linear(feedforward_dim, embedding_dim, bias=False))


renamed(IPFeedForward, "FeedForward")


class PerceiverScaledDotProductAttention(fl.Leaf):
    """(key_value [b, n, 2·inner], query [b, t, inner]) -> [b, t, inner]: key and value are the
    halves of key_value (key first); the scale 1/√head_dim is applied as head_dim^-¼ on q and
    on k; softmax in float32 at least (Refiners: softmax(x.float()), for float16)."""

    def __init__(self, head_dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = 1 / math.sqrt(math.sqrt(head_dim))

    def describe(self):
        return f"num_heads={self.num_heads}, scale=head_dim^-1/4 on q and k"

    def forward(self, key_value, query):
        bs, length, _ = query.shape
        key, value = key_value.chunk(2, dim=-1)

        def heads(x):
            return x.view(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)

        q, k, v = heads(query), heads(key), heads(value)
        att = (q * self.scale) @ (k * self.scale).transpose(-2, -1)
        up = torch.float64 if att.dtype == torch.float64 else torch.float32
        att = att.to(up).softmax(dim=-1).to(att.dtype)
        return (att @ v).permute(0, 2, 1, 3).reshape(bs, length, -1)


class PerceiverAttention(fl.Chain):
    def __init__(self, embedding_dim, head_dim=64, num_heads=8):
        inner = head_dim * num_heads
        super().__init__(
            fl.Distribute(fl.LayerNorm(embedding_dim), fl.LayerNorm(embedding_dim)),
            fl.Parallel(
                fl.Chain(fl.Lambda(lambda x, latents: torch.cat((x, latents), dim=-2),
                                   "to_kv: cat((x, latents), dim=-2)"),
                         fl.Linear(embedding_dim, 2 * inner, bias=False)),
                fl.Chain(GetArg(1), fl.Linear(embedding_dim, inner, bias=False)),
            ),
            PerceiverScaledDotProductAttention(head_dim, num_heads),
            fl.Linear(inner, embedding_dim, bias=False),
        )


class LatentsToken(fl.Chain):
    def __init__(self, num_tokens, latents_dim):
        super().__init__(fl.Parameter(num_tokens, latents_dim))


class Transformer(fl.Chain):
    pass


class IPTransformerLayer(fl.Chain):
    pass


renamed(IPTransformerLayer, "TransformerLayer")


class PerceiverResampler(fl.Chain):
    def __init__(self, latents_dim=1024, num_attention_layers=8, num_attention_heads=16, head_dim=64, num_tokens=8,
                 input_dim=768, output_dim=1024):
        super().__init__(
            fl.Linear(input_dim, latents_dim),
            fl.SetContext("perceiver_resampler", "x"),
            LatentsToken(num_tokens, latents_dim),
            Transformer(*(IPTransformerLayer(
                fl.Residual(fl.Parallel(fl.UseContext("perceiver_resampler", "x"), fl.Identity()),
                            PerceiverAttention(latents_dim, head_dim, num_attention_heads)),
                fl.Residual(fl.LayerNorm(latents_dim), IPFeedForward(latents_dim, 4 * latents_dim)),
            ) for _ in range(num_attention_layers))),
            fl.Linear(latents_dim, output_dim),
            fl.LayerNorm(output_dim),
        )

    def init_context(self):
        return {"perceiver_resampler": {"x": None}}


# ============================================================ IP-Adapter on the UNet

class ImageCrossAttention(fl.Chain):
    def __init__(self, text_cross_attention, scale=1.0):
        lin = text_cross_attention._modules["Distribute"].children_list()
        sdpa = text_cross_attention._modules["ScaledDotProductAttention"]
        bias = lin[0].bias is not None
        super().__init__(
            fl.Distribute(
                fl.Identity(),
                fl.Chain(fl.UseContext("ip_adapter", "clip_image_embedding"),
                         fl.Linear(lin[1].in_features, lin[1].out_features, bias=bias)),
                fl.Chain(fl.UseContext("ip_adapter", "clip_image_embedding"),
                         fl.Linear(lin[2].in_features, lin[2].out_features, bias=bias)),
            ),
            fl.ScaledDotProductAttention(num_heads=sdpa.num_heads, is_causal=sdpa.is_causal),
            Multiply(scale),
        )


class CrossAttentionAdapter(fl.Chain):
    """Wraps a structural copy of the target Attention whose ScaledDotProductAttention is
    replaced by Sum(that attention, ImageCrossAttention): the text attention's heads' output
    plus scale · the image tokens' attention, before the shared output Linear."""

    def __init__(self, target, scale=1.0):
        clone = structural_copy(target)
        sdpa = clone._modules["ScaledDotProductAttention"]
        clone.replace(sdpa, fl.Sum(sdpa, ImageCrossAttention(clone, scale)))
        super().__init__(clone)

    def image_linears(self):
        ica = self._modules["Attention"]._modules["Sum"]._modules["ImageCrossAttention"]
        d = ica._modules["Distribute"]._modules
        return d["Chain_1"]._modules["Linear"], d["Chain_2"]._modules["Linear"]

    def set_scale(self, scale):
        ica = self._modules["Attention"]._modules["Sum"]._modules["ImageCrossAttention"]
        ica._modules["Multiply"].scale = scale


def cross_attentions(unet):
    """(path, module) of every Attention that is not a SelfAttention, in tree order (Refiners'
    filter(lambda attn: type(attn) != fl.SelfAttention, target.layers(fl.Attention)))."""
    return [(n, m) for n, m in unet.named_modules() if type(m) is fl.Attention]


def inject_ip_adapter(unet, scale=1.0):
    """SD1IPAdapter.inject on a (copy of the) UNet: returns the CrossAttentionAdapters in
    Refiners' order (index i of ip_adapter.{i:03d} in Refiners' converted files)."""
    adapters = []
    for _path, attn in cross_attentions(unet):
        adapter = CrossAttentionAdapter(attn, scale)
        parent_of(unet, attn).replace(attn, adapter)
        adapters.append(adapter)
    return adapters


def set_ip_scale(adapters, scale):
    for a in adapters:
        a.set_scale(scale)


# ====================================================================== reference-only

class SaveLayerNormAdapter(fl.Chain):
    def __init__(self, target, context):
        super().__init__(fl.SetContext(context, "norm"), target)


class SelfAttentionInjectionAdapter(fl.Chain):
    """Parallel(the self-attention with keys and values cat([x, reference norm], dim=1),
    the plain self-attention on x[:1]) then x[0] = style_cfg · guided[0] + (1 − style_cfg) · plain."""

    def __init__(self, target, context, style_cfg=STYLE_CFG):
        self.context, self.style_cfg = context, style_cfg
        guided = structural_copy(target)
        first = guided.children_list()[0]
        assert isinstance(first, fl.Parallel)
        guided.replace(first, fl.Parallel(
            fl.Identity(),
            fl.Concatenate(fl.Identity(), fl.UseContext(context, "norm"), dim=1),
            fl.Concatenate(fl.Identity(), fl.UseContext(context, "norm"), dim=1),
        ))
        super().__init__(
            fl.Parallel(guided, fl.Chain(fl.Lambda(lambda x: x[:1], "x[:1]"), target)),
            fl.Lambda(self._blend, "x[0] = style_cfg * x[0] + (1 - style_cfg) * unguided_unconditioned_x"),
        )

    def _blend(self, x, plain):
        x = x.clone()
        x[0] = self.style_cfg * x[0] + (1.0 - self.style_cfg) * plain[0]
        return x


def _self_attentions(unet):
    """The SelfAttention of each CrossAttentionBlock, tree order (16 in SD1.5)."""
    out = []
    for n, m in unet.named_modules():
        if type(m).__name__ == "CrossAttentionBlock":
            res = m._modules["Residual_1"]
            out.append((f"{n}.Residual_1.SelfAttention", res, res._modules["SelfAttention"]))
    return out


class SelfAttentionInjectionPassthrough(fl.Passthrough):
    """Runs the guide UNet (a structural copy of the UNet whose self-attentions first save their
    input, the LayerNorm'ed tokens, as self_attention_context_{i}.norm) on the noised reference
    latents, with a fresh residuals list, then restores the main pass's."""

    def __init__(self, target):
        guide = structural_copy(target)
        for i, (_path, parent, sa) in enumerate(_self_attentions(guide)):
            parent.replace(sa, SaveLayerNormAdapter(sa, f"self_attention_context_{i}"))
        super().__init__(
            fl.Lambda(self._save_residuals, "_copy_diffusion_context: save unet.residuals, set [0.0]*13"),
            fl.UseContext("reference_only_control", "guide"),
            guide,
            fl.Lambda(self._restore_residuals, "_restore_diffusion_context: restore unet.residuals"),
        )

    def _save_residuals(self, x):
        fl.CONTEXT["self_attention_residuals_buffer"] = {"buffer": fl.CONTEXT["unet"]["residuals"]}
        fl.CONTEXT["unet"]["residuals"] = [0.0] * 13
        return x

    def _restore_residuals(self, x):
        fl.CONTEXT["unet"]["residuals"] = fl.CONTEXT["self_attention_residuals_buffer"]["buffer"]
        return x


def inject_reference_only(unet, style_cfg=STYLE_CFG):
    """ReferenceOnlyControlAdapter(unet, style_cfg).inject(): the passthrough is built first
    (its guide copy has no injection adapters), then each self-attention is adapted and the
    passthrough becomes the UNet's first child. Returns the adapters."""
    passthrough = SelfAttentionInjectionPassthrough(unet)
    adapters = []
    for i, (_path, parent, sa) in enumerate(_self_attentions(unet)):
        a = SelfAttentionInjectionAdapter(sa, f"self_attention_context_{i}", style_cfg)
        parent.replace(sa, a)
        adapters.append(a)
    unet.insert(0, passthrough)
    return adapters


# ======================================================================== entry points

def preprocess_image(image, size):
    """IPAdapter.preprocess_image: PIL resize to size×size (no crop; Image.resize's default
    filter, BICUBIC for RGB), image_to_tensor (uint8/255, [1,3,H,W] float32), then
    (x − mean)/std per channel in float32."""
    image = image.convert("RGB").resize((size, size))
    t = torch.tensor(np.array(image).astype(np.float32).transpose(2, 0, 1) / 255.0).unsqueeze(0)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(-1, 1, 1)
    return (t - mean) / std


def load_photo(name):
    return Image.open(os.path.join(PHOTOS, name)).convert("RGB")


def _run(model, x, contexts=None):
    fl.CONTEXT.clear()
    fl.CONTEXT.update(contexts or {})
    with torch.no_grad():
        return model(x)


def run_encoder(encoder, pixels):
    """[b,3,S,S] -> projected embedding [b, output_dim]."""
    return _run(encoder, pixels)


def run_grid(grid, pixels):
    """[b,3,S,S] -> penultimate hidden states [b, 1 + n, embedding_dim]."""
    return _run(grid, pixels)


def run_projection(proj, x):
    return _run(proj, x, proj.init_context() if hasattr(proj, "init_context") else {})


def image_tokens(kind, encoder, grid, proj, pixels):
    """IPAdapter.compute_clip_image_embedding for one image: cat((negative, conditional)).
    base: proj(embedding) and proj(zeros_like(embedding)); plus: proj(grid(pixels)) and
    proj(grid(zeros_like(pixels))) -- zero pixels after normalization, not a black image.
    With n images Refiners concatenates along the tokens: [1, n·tokens, dim] per half."""
    n = pixels.shape[0]
    if kind == "base":
        e = run_encoder(encoder, pixels)
        cond, neg = run_projection(proj, e), run_projection(proj, torch.zeros_like(e))
    else:
        cond = run_projection(proj, run_grid(grid, pixels))
        neg = run_projection(proj, run_grid(grid, torch.zeros_like(pixels)))
    if n > 1:
        neg = torch.cat(neg.chunk(n), dim=1)
        cond = torch.cat(cond.chunk(n), dim=1)
    return torch.cat((neg, cond))


def unet_contexts(unet, x, timestep, clip_text_embedding, image_embedding=None, guide=None):
    ctx = unet.init_context()
    ctx["diffusion"]["timestep"] = timestep
    ctx["cross_attention_block"] = {"clip_text_embedding": clip_text_embedding}
    ctx["converter"] = {"dtype": next(unet.parameters()).dtype}
    if image_embedding is not None:
        ctx["ip_adapter"] = {"clip_image_embedding": image_embedding}
    if guide is not None:
        ctx["reference_only_control"] = {"guide": guide}
        blocks = [n for n, m in unet.named_modules() if type(m).__name__ == "CrossAttentionBlock"
                  and not n.startswith("SelfAttentionInjectionPassthrough")]
        for i in range(len(blocks)):
            ctx[f"self_attention_context_{i}"] = {"norm": None}
    return ctx


def run_unet(unet, x, timestep, clip_text_embedding, image_embedding=None, guide=None):
    """The (adapted) UNet: x [2,4,h,w] (negative half first), timestep [1], text [2,77,d];
    image_embedding [2, tokens, d] for the IP-Adapter; guide [2,4,h',w'] (the noised
    reference latents) for reference-only control."""
    return _run(unet, x, unet_contexts(unet, x, timestep, clip_text_embedding, image_embedding, guide))


def reference_norms():
    return {k: v["norm"] for k, v in fl.CONTEXT.items() if k.startswith("self_attention_context_")}


def add_noise(latents, noise, timestep):
    """Solver.add_noise at a timestep: √ᾱ_t · x + √(1 − ᾱ_t) · noise, Refiners' float32 tables."""
    _, csf, ns = solvers.base_schedule()
    return csf[timestep] * latents + ns[timestep] * noise


# ============================================================================ key maps

def encoder_map(num_layers):
    """(refiners key, transformers key, kind) for CLIPImageEncoder <-> CLIPVisionModelWithProjection.
    kind "class": Refiners [1, D] <- transformers [D]."""
    V = "vision_model"
    rows = [("ViTEmbeddings.Concatenate.ClassToken.Parameter.weight", f"{V}.embeddings.class_embedding", "class"),
            ("ViTEmbeddings.Concatenate.Chain.PatchEncoder.Conv2d.weight",
             f"{V}.embeddings.patch_embedding.weight", ""),
            ("ViTEmbeddings.Residual.PositionalEncoder.Embedding.weight",
             f"{V}.embeddings.position_embedding.weight", "")]
    for leaf in ("weight", "bias"):
        rows.append((f"LayerNorm_1.{leaf}", f"{V}.pre_layrnorm.{leaf}", ""))
    for i in range(num_layers):
        r = f"Chain.TransformerLayer_{i + 1}" if num_layers > 1 else "Chain.TransformerLayer"
        t = f"{V}.encoder.layers.{i}"
        for a, b in ((f"{r}.Residual_1.LayerNorm", f"{t}.layer_norm1"),
                     (f"{r}.Residual_1.SelfAttention.Distribute.Linear_1", f"{t}.self_attn.q_proj"),
                     (f"{r}.Residual_1.SelfAttention.Distribute.Linear_2", f"{t}.self_attn.k_proj"),
                     (f"{r}.Residual_1.SelfAttention.Distribute.Linear_3", f"{t}.self_attn.v_proj"),
                     (f"{r}.Residual_1.SelfAttention.Linear", f"{t}.self_attn.out_proj"),
                     (f"{r}.Residual_2.LayerNorm", f"{t}.layer_norm2"),
                     (f"{r}.Residual_2.FeedForward.Linear_1", f"{t}.mlp.fc1"),
                     (f"{r}.Residual_2.FeedForward.Linear_2", f"{t}.mlp.fc2")):
            for leaf in ("weight", "bias"):
                rows.append((f"{a}.{leaf}", f"{b}.{leaf}", ""))
    for leaf in ("weight", "bias"):
        rows.append((f"LayerNorm_2.{leaf}", f"{V}.post_layernorm.{leaf}", ""))
    rows.append(("Linear.weight", "visual_projection.weight", ""))
    return rows


# A published image encoder may carry this int64 buffer (transformers < 4.31 saved it): ignore it.
ENCODER_EXTRAS = ("vision_model.embeddings.position_ids",)


def base_map():
    """(refiners ImageProjection key, published key, kind), Refiners' conversion script."""
    return [("Linear.weight", "image_proj.proj.weight", ""), ("Linear.bias", "image_proj.proj.bias", ""),
            ("LayerNorm.weight", "image_proj.norm.weight", ""), ("LayerNorm.bias", "image_proj.norm.bias", "")]


def plus_map(num_layers):
    """(refiners PerceiverResampler key, published key, kind); kind "latents": Refiners
    [T, D] <- published [1, T, D]."""
    rows = [("LatentsToken.Parameter.weight", "image_proj.latents", "latents")]
    for a, b in (("Linear_1", "proj_in"), ("Linear_2", "proj_out"), ("LayerNorm", "norm_out")):
        for leaf in ("weight", "bias"):
            rows.append((f"{a}.{leaf}", f"image_proj.{b}.{leaf}", ""))
    for i in range(num_layers):
        t, s = f"Transformer.TransformerLayer_{i + 1}", f"image_proj.layers.{i}"
        pa = f"{t}.Residual_1.PerceiverAttention"
        for leaf in ("weight", "bias"):
            rows.append((f"{pa}.Distribute.LayerNorm_1.{leaf}", f"{s}.0.norm1.{leaf}", ""))
            rows.append((f"{pa}.Distribute.LayerNorm_2.{leaf}", f"{s}.0.norm2.{leaf}", ""))
        rows += [(f"{pa}.Parallel.Chain_2.Linear.weight", f"{s}.0.to_q.weight", ""),
                 (f"{pa}.Parallel.Chain_1.Linear.weight", f"{s}.0.to_kv.weight", ""),
                 (f"{pa}.Linear.weight", f"{s}.0.to_out.weight", "")]
        for leaf in ("weight", "bias"):
            rows.append((f"{t}.Residual_2.LayerNorm.{leaf}", f"{s}.1.0.{leaf}", ""))
        rows += [(f"{t}.Residual_2.FeedForward.Linear_1.weight", f"{s}.1.1.weight", ""),
                 (f"{t}.Residual_2.FeedForward.Linear_2.weight", f"{s}.1.3.weight", "")]
    return rows


def published_shape(shape, kind):
    if kind == "class":
        return shape[1:]
    if kind == "latents":
        return [1] + shape
    return shape


def to_published(rows, sd):
    return {p: sd[r].reshape(published_shape(list(sd[r].shape), k)) for r, p, k in rows}


def from_published(rows, tensors, what, extras=()):
    """Published tensors -> Refiners keys; every problem named (what rfc's loader must refuse)."""
    want = {p for _r, p, _k in rows}
    unknown = sorted(set(tensors) - want - set(extras))
    missing = sorted(want - set(tensors))
    if missing or unknown:
        raise KeyError(f"{what}: missing {missing[:5]}, unexpected {unknown[:5]}")
    out = {}
    for r, p, k in rows:
        t = tensors[p]
        out[r] = t.reshape(list(t.shape[1:]) if k == "latents" else [1] + list(t.shape) if k == "class" else t.shape)
    return out


def _cross_attention_published(unet):
    """Per Refiners cross-attention i: (N, refiners path, diffusers module, LDM module) from
    CROSS_ATTN_MAPPING and sd15.py's UNet key map."""
    by_refiners = {r: (l, d) for r, l, d, _k in sd15.unet_modules()}
    rows = []
    for i, (path, _m) in enumerate(cross_attentions(unet)):
        l, d = by_refiners[f"{path}.Distribute.Linear_2"]
        assert l.endswith(".attn2.to_k") and d.endswith(".attn2.to_k"), (l, d)
        rows.append((CROSS_ATTN_MAPPING[i], path, d[:-len(".to_k")], l[:-len(".to_k")]))
    return rows


def ip_cross_attention_map(unet):
    """(refiners key of the adapted UNet, published key) for the 2×16 image key/value Linears;
    the Refiners key is the CrossAttentionAdapter's (target path + .CrossAttentionAdapter.…)."""
    out = []
    for n, path, _d, _l in _cross_attention_published(unet):
        base = path.rpartition(".")[0] + ".CrossAttentionAdapter.Attention.Sum.ImageCrossAttention.Distribute"
        out.append((f"{base}.Chain_1.Linear.weight", f"ip_adapter.{n}.to_k_ip.weight", ""))
        out.append((f"{base}.Chain_2.Linear.weight", f"ip_adapter.{n}.to_v_ip.weight", ""))
    return out


def ip_file_map(kind, unet, plus_layers):
    proj = [(f"image_proj::{r}", p, k) for r, p, k in (base_map() if kind == "base" else plus_map(plus_layers))]
    return proj + [(f"unet::{r}", p, k) for r, p, k in ip_cross_attention_map(unet)]


# ============================================================ full-size facts and TSVs

def full_size_facts():
    """Parameter counts and the published shapes at full size, on the meta device; the maps
    checked against the independent published-structure models' own state_dict shapes."""
    with fl.on_device("meta"):
        enc = CLIPImageEncoderH()
        base = ImageProjection(**FULL_BASE)
        plus = PerceiverResampler(**FULL_PLUS)
        unet = sd15.build_unet(sd15.FULL_UNET)
    counts = {"encoder": sd15.count(enc.state_dict()), "base": sd15.count(base.state_dict()),
              "plus": sd15.count(plus.state_dict())}
    for name, want in FULL_PARAMS.items():
        print(f"  parameters {name:8s} {counts[name]:>13,d} (table {want:,d})")
        if counts[name] != want:
            raise SystemExit(f"{name}: {counts[name]} parameters at full size, the table says {want}")
    # the independent models' own shapes, built on the meta device with torch's own factory
    ind_enc = _meta(lambda: ipp.CLIPVisionModelWithProjection(1280, 224, 14, 32, 16, 5120, 1024))
    ind_base = _meta(lambda: ipp.ImageProjModel(768, 1024, 4))
    ind_plus = _meta(lambda: ipp.Resampler(768, 4, 64, 12, 16, 1280, 768))
    ind_unet = _meta(lambda: pub.UNet2DConditionModel(4, [320, 640, 1280, 1280], 768, 8, 32))
    procs = _meta(lambda: ipp.set_ip_adapter(ind_unet, 768, 4, 1.0))
    checks = (("image encoder", encoder_map(32), enc.state_dict(), ind_enc.state_dict(), ""),
              ("base image_proj", base_map(), base.state_dict(), ind_base.state_dict(), "image_proj."),
              ("plus image_proj", plus_map(4), plus.state_dict(), ind_plus.state_dict(), "image_proj."))
    for what, rows, ref_sd, ind_sd, prefix in checks:
        got = {p: published_shape(list(ref_sd[r].shape), k) for r, p, k in rows}
        want = {prefix + k: list(v.shape) for k, v in ind_sd.items()}
        wrong = [k for k in got if k in want and got[k] != want[k]]
        assert got == want, f"{what}: map and published model disagree: {sorted(set(got) ^ set(want))[:6]} {wrong[:6]}"
        print(f"  {what}: {len(got)} published keys, names and shapes as the published structure's")
    ip_unet = structural_copy(unet)
    inject_ip_adapter(ip_unet)
    ip_sd = ip_unet.state_dict()
    got = {p: list(ip_sd[r].shape) for r, p, _k in ip_cross_attention_map(unet)}
    want = {"ip_adapter." + k: list(v.shape) for k, v in procs.state_dict().items()}
    assert got == want, f"ip_adapter keys disagree: {sorted(set(got) ^ set(want))[:6]}"
    names = [n for n, _tb, _a in ipp.attn_processor_names(ind_unet)]
    for n, path, d, _l in _cross_attention_published(unet):
        assert names[n] == d + ".processor", f"N={n}: {names[n]} is not {d} ({path})"
    print(f"  ip_adapter.N: {len(got)} keys (N = {sorted({int(k.split('.')[1]) for k in got})[:3]}… odd), "
          "as IP-Adapter's ModuleList of the diffusers attn_processors")
    return enc, base, plus, unet


class _MetaParams:
    """torch 1.13 has no default-device context: while active, every parameter a module
    registers becomes a meta tensor of the same shape (the full-size published-structure
    models are only read for their names and shapes)."""

    def __enter__(self):
        self._orig = torch.nn.Module.register_parameter

        def register(mod, name, param):
            if param is not None:
                param = torch.nn.Parameter(torch.empty(param.shape, device="meta"), requires_grad=False)
            return self._orig(mod, name, param)

        torch.nn.Module.register_parameter = register
        return self

    def __exit__(self, *a):
        torch.nn.Module.register_parameter = self._orig
        return False


def _meta(build):
    with _MetaParams():
        return build()


def write_tsvs(out_dir, enc, base, plus, unet):
    def shape(t):
        return ",".join(map(str, t))

    with open(os.path.join(out_dir, "keys_image_encoder.tsv"), "w") as f:
        f.write("# refiners (CLIPImageEncoderH)\ttransformers (image_encoder/model.safetensors)"
                "\tshape\tpublished_shape\n")
        sd = enc.state_dict()
        for r, p, k in encoder_map(FULL_ENCODER["num_layers"]):
            s = list(sd[r].shape)
            f.write(f"{r}\t{p}\t{shape(s)}\t{shape(published_shape(s, k))}\n")
    for name, rows, sd in (("base", base_map(), base.state_dict()),
                           ("plus", plus_map(FULL_PLUS["num_attention_layers"]), plus.state_dict())):
        with open(os.path.join(out_dir, f"keys_image_proj_{name}.tsv"), "w") as f:
            cls = "ImageProjection" if name == "base" else "PerceiverResampler"
            published = "ip-adapter_sd15" if name == "base" else "ip-adapter-plus_sd15"
            f.write(f"# refiners ({cls})\tpublished ({published}.safetensors)\tshape\tpublished_shape\n")
            for r, p, k in rows:
                s = list(sd[r].shape)
                f.write(f"{r}\t{p}\t{shape(s)}\t{shape(published_shape(s, k))}\n")
    with open(os.path.join(out_dir, "ip_cross_attentions.tsv"), "w") as f:
        f.write("# N (published ip_adapter.N.to_{k,v}_ip.weight)\trefiners_index (Refiners' converted files: "
                "ip_adapter.{i:03d})\tattention (Refiners / models/sd15.rfn tree path of the cross-attention's "
                "Attention)\tdiffusers_module\tldm_module\tshape (to_k_ip = to_v_ip = [channels, 768])\n")
        for i, (n, path, d, l) in enumerate(_cross_attention_published(unet)):
            lin = dict(unet.named_modules())[f"{path}.Distribute.Linear_2"]
            f.write(f"{n}\t{i}\t{path}\t{d}\t{l}\t{lin.out_features},{lin.in_features}\n")
    with open(os.path.join(out_dir, "reference_self_attentions.tsv"), "w") as f:
        f.write("# context (self_attention_context_{i}.norm)\tself-attention (Refiners / models/sd15.rfn tree path)"
                "\tdiffusers_module\tldm_module\tchannels\ttokens at 512x512\n")
        by_refiners = {r: (l, d) for r, l, d, _k in sd15.unet_modules()}
        tokens = {320: 4096, 640: 1024, 1280: 256}
        for i, (path, _p, sa) in enumerate(_self_attentions(unet)):
            l, d = by_refiners[f"{path}.Distribute.Linear_1"]
            c = sa._modules["Distribute"].children_list()[0].in_features
            n = tokens[c] if "MiddleBlock" not in path else 64
            f.write(f"{i}\t{path}\t{d[:-len('.to_q')]}\t{l[:-len('.to_q')]}\t{c}\t{n}\n")


def ddim_run(predict, noise, steps, guidance=7.5, reference_latents=None, reference_noise=None):
    """A txt2img run as Refiners' StableDiffusion_1 does it with Refiners' DDIM (solvers.py),
    from x = noise [1,4,h,w]: per step, predict(cat(x, x), timestep [t_step], guide) -> the
    UNet's [2,4,h,w] (negative half first), uncond + guidance · (cond − uncond), solver step.
    Reference-only: per step the guide is add_noise(cat(ref, ref), reference_noise[step],
    t_step) in float32 (reference_noise [steps, 2, 4, h, w]: negative half, then positive),
    the recipe of Refiners' e2e test; otherwise guide is None."""
    solver = solvers.DDIM(steps)
    x = noise
    for step in range(steps):
        t = int(solver.timesteps[step])
        guide = None
        if reference_latents is not None:
            ref = torch.cat((reference_latents, reference_latents))
            guide = add_noise(ref.float(), reference_noise[step].float(), t).to(noise.dtype)
        uncond, cond = predict(torch.cat((x, x)), torch.tensor([float(t)], dtype=noise.dtype), guide).chunk(2)
        x = solver.step(x, uncond + guidance * (cond - uncond), step)
    return x


def denoise(unet, noise, text, steps, guidance=7.5, image_embedding=None, reference_latents=None,
            reference_noise=None):
    """ddim_run with the Refiners-structured (adapted) UNet; the IP-Adapter's image_embedding
    [2, tokens, d] (negative first) is the same at every step."""
    def predict(x2, t, guide):
        return run_unet(unet, x2, t, text, image_embedding=image_embedding, guide=guide)

    return ddim_run(predict, noise, steps, guidance, reference_latents, reference_noise)


# ============================================================================= reduced

def randomize_linears(linears, seed):
    """sd15.randomize's rule for weights (N(0,1)/√fan_in, float16-exact), in the given order."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for lin in linears:
            w = torch.randn(lin.weight.shape, generator=g) / math.sqrt(lin.weight.shape[1])
            lin.weight.copy_(w.half().float())


def load_reduced_sd15():
    unet = sd15.build_unet(sd15.REDUCED_UNET)
    ae = sd15.build_autoencoder(sd15.REDUCED_AE)
    for model, name in ((unet, "unet"), (ae, "autoencoder")):
        tensors, _ = st.load(os.path.join(SD15_DIR, "refiners", f"{name}.safetensors"))
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return unet, ae._modules["Encoder"]


def encoder_config_json(cfg):
    return {"architectures": ["CLIPVisionModelWithProjection"], "attention_dropout": 0.0, "dropout": 0.0,
            "hidden_act": "gelu", "hidden_size": cfg["embedding_dim"], "image_size": cfg["image_size"],
            "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": cfg["feedforward_dim"],
            "layer_norm_eps": cfg["layer_norm_eps"], "model_type": "clip_vision_model",
            "num_attention_heads": cfg["num_attention_heads"], "num_channels": 3,
            "num_hidden_layers": cfg["num_layers"], "patch_size": cfg["patch_size"],
            "projection_dim": cfg["output_dim"], "torch_dtype": "float16"}


def tree_depth(module, name, depth):
    """fl.tree cut at a depth (deeper Chains shown as '…')."""
    lines = fl.tree(module, name).splitlines()
    return "\n".join(ln for ln in lines if (len(ln) - len(ln.lstrip("|` -"))) // 4 <= depth) + "\n"


def subtree(root, path):
    m = dict(root.named_modules())[path]
    return f"{path}:\n" + fl.tree(m)


def build_reduced_models():
    torch.manual_seed(0)  # construction only; every weight is overwritten
    enc = CLIPImageEncoder(**REDUCED_ENCODER).eval()
    base = ImageProjection(**REDUCED_BASE).eval()
    plus = PerceiverResampler(**REDUCED_PLUS).eval()
    sd15.randomize(enc, 101)
    sd15.randomize(base, 102)
    sd15.randomize(plus, 103)
    return enc, base, plus


def ip_unet(unet, weights=None, seed=None, scale=1.0):
    """A structural copy of unet with the IP-Adapter injected; its image key/value Linears get
    random weights (seed) or the given Refiners-keyed weights."""
    u = structural_copy(unet)
    adapters = inject_ip_adapter(u, scale)
    dtype = next(unet.parameters()).dtype
    for a in adapters:
        for lin in a.image_linears():
            lin.to(dtype)
    if seed is not None:
        randomize_linears([lin for a in adapters for lin in a.image_linears()], seed)
    if weights is not None:
        sd = u.state_dict()
        for k, v in weights.items():
            assert k in sd, k
            sd[k].copy_(v)
    return u, adapters


def save(path, tensors, metadata=None):
    st.save(path, {k: v.contiguous() for k, v in tensors.items()}, metadata)


def reduced(out_dir):
    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    enc_f, base_f, plus_f, unet_f = full_size_facts()
    write_tsvs(out_dir, enc_f, base_f, plus_f, unet_f)
    del enc_f, base_f, plus_f, unet_f

    enc, base, plus = build_reduced_models()
    unet, ae_enc = load_reduced_sd15()
    for m in (enc, base, plus):
        sd15.f16_exact(m.state_dict())
    nl, pl = REDUCED_ENCODER["num_layers"], REDUCED_PLUS["num_attention_layers"]
    u_base, _ = ip_unet(unet, seed=104)
    u_plus, _ = ip_unet(unet, seed=105)
    ip_rows = ip_cross_attention_map(unet)

    # ---- published-layout files (float16, as published)
    edir = os.path.join(out_dir, "image_encoder")
    os.makedirs(edir, exist_ok=True)
    enc_pub = sd15.half(to_published(encoder_map(nl), enc.state_dict()))
    n_pos = (REDUCED_ENCODER["image_size"] // REDUCED_ENCODER["patch_size"]) ** 2 + 1
    enc_pub["vision_model.embeddings.position_ids"] = torch.arange(n_pos, dtype=torch.int64)[None]
    save(os.path.join(edir, "model.safetensors"), enc_pub, {"format": "pt"})
    sd15.write_json(os.path.join(edir, "config.json"), encoder_config_json(REDUCED_ENCODER))
    rdir = os.path.join(out_dir, "refiners")
    os.makedirs(rdir, exist_ok=True)
    save(os.path.join(rdir, "image_encoder.safetensors"), sd15.half(enc.state_dict()))
    files = {}
    for kind, proj, u, rows in (("base", base, u_base, base_map()), ("plus", plus, u_plus, plus_map(pl))):
        t = to_published(rows, proj.state_dict())
        usd = u.state_dict()
        t.update({p: usd[r] for r, p, _k in ip_rows})
        name = "ip-adapter_sd15.safetensors" if kind == "base" else "ip-adapter-plus_sd15.safetensors"
        files[kind] = os.path.join(out_dir, name)
        save(files[kind], sd15.half(t))
    # refusal fixtures: a key missing; an SDXL file's layout (70 cross-attentions, N up to 139)
    bad = os.path.join(out_dir, "bad")
    os.makedirs(bad, exist_ok=True)
    t, _ = st.load(files["base"])
    t.pop("ip_adapter.13.to_v_ip.weight")
    save(os.path.join(bad, "ip-adapter_missing_key.safetensors"), t)
    sdxl = {"image_proj.proj.weight": torch.zeros(4 * 2048, 1280, dtype=torch.float16)[:8, :8].contiguous(),
            "image_proj.proj.bias": torch.zeros(8, dtype=torch.float16),
            "image_proj.norm.weight": torch.ones(8, dtype=torch.float16),
            "image_proj.norm.bias": torch.zeros(8, dtype=torch.float16)}
    for n in range(1, 140, 2):
        for kv in ("k", "v"):
            sdxl[f"ip_adapter.{n}.to_{kv}_ip.weight"] = torch.zeros(8, 8, dtype=torch.float16)
    save(os.path.join(bad, "ip-adapter_sdxl_layout.safetensors"), sdxl)

    # ---- reload everything from the published files (rfc's loader path), float64
    enc_t, _ = st.load(os.path.join(edir, "model.safetensors"))
    enc2 = CLIPImageEncoder(**REDUCED_ENCODER).eval()
    sd15._load_strict(enc2, {k: v.double() for k, v in
                             from_published(encoder_map(nl), enc_t, "image encoder", ENCODER_EXTRAS).items()},
                      "image encoder")
    enc2.double()
    grid2 = grid_encoder(enc2)
    projs, ip_w = {}, {}
    for kind in ("base", "plus"):
        t, _ = st.load(files[kind])
        rows = ip_file_map(kind, unet, pl)
        sd = from_published(rows, t, files[kind])
        proj = (ImageProjection(**REDUCED_BASE) if kind == "base" else PerceiverResampler(**REDUCED_PLUS)).eval()
        sd15._load_strict(proj, {k[len("image_proj::"):]: v.double() for k, v in sd.items()
                                 if k.startswith("image_proj::")}, f"{kind} image_proj")
        projs[kind] = proj.double()
        ip_w[kind] = {k[len("unet::"):]: v.double() for k, v in sd.items() if k.startswith("unet::")}
    unet64 = copy.deepcopy(unet).double()

    # ---- inputs
    photos = {n: load_photo(f"{n}.png") for n in ("astronaut", "coffee")}
    S = REDUCED_ENCODER["image_size"]
    pre = {f"{n}_{S}": preprocess_image(im, S) for n, im in photos.items()}
    pre["coffee_224"] = preprocess_image(photos["coffee"], 224)
    save(os.path.join(out_dir, "preprocess.safetensors"), pre,
         {"photos": "testdata/images/astronaut.png (512x512), coffee.png (400 wide x 600 high)",
          "recipe": "PIL Image.resize((S, S)) default filter (BICUBIC), /255, (x - mean) / std in float32"})
    pixels = torch.cat([pre[f"astronaut_{S}"], pre[f"coffee_{S}"]])
    dim = sd15.REDUCED_UNET["clip_embedding_dim"]
    x = sd15.randn([2, 4, 16, 24], 201)
    timestep = torch.tensor([400.0])
    text = sd15.randn([2, 77, dim], 202)

    def encoder_goldens(e, g, dtype):
        return {"embedding": run_encoder(e, pixels.to(dtype)), "penultimate": run_grid(g, pixels.to(dtype)),
                "zeros_embedding": run_encoder(e, torch.zeros_like(pixels[:1]).to(dtype)),
                "zeros_penultimate": run_grid(g, torch.zeros_like(pixels[:1]).to(dtype))}

    gold_enc = encoder_goldens(enc2, grid2, torch.float64)
    save(os.path.join(out_dir, "encoder_input.safetensors"), {"x": pixels})
    save(os.path.join(out_dir, "encoder_output.safetensors"), {k: v.float() for k, v in gold_enc.items()})

    one = pixels[:1].double()
    tokens = {"base": image_tokens("base", enc2, grid2, projs["base"], one),
              "plus": image_tokens("plus", enc2, grid2, projs["plus"], one),
              "base_two_images": image_tokens("base", enc2, grid2, projs["base"], pixels.double()),
              "plus_two_images": image_tokens("plus", enc2, grid2, projs["plus"], pixels.double())}
    save(os.path.join(out_dir, "image_tokens.safetensors"), {k: v.float() for k, v in tokens.items()},
         {"inputs": "encoder_input x[:1] (astronaut) for base/plus, x (astronaut, coffee) for *_two_images",
          "layout": "cat((negative, conditional)); with two images each half is [1, 2*tokens, dim]"})

    # ---- UNet with the IP-Adapter (image tokens as float32, as rfc would feed them)
    ip_in = {"x": x, "timestep": timestep, "clip_text_embedding": text,
             "image_tokens_base": tokens["base"].float(), "image_tokens_plus": tokens["plus"].float()}
    save(os.path.join(out_dir, "unet_ip_input.safetensors"), ip_in)
    u64 = {k: ip_unet(unet64, weights=ip_w[k]) for k in ("base", "plus")}
    gold_ip = {"plain": run_unet(unet64, x.double(), timestep, text.double())}
    for kind in ("base", "plus"):
        u, adapters = u64[kind]
        for scale in (1.0, 0.5, 0.0):
            set_ip_scale(adapters, scale)
            gold_ip[f"{kind}_{scale}"] = run_unet(u, x.double(), timestep, text.double(),
                                                  image_embedding=ip_in[f"image_tokens_{kind}"].double())
        set_ip_scale(adapters, 1.0)
        assert torch.equal(gold_ip[f"{kind}_0.0"], gold_ip["plain"]), f"{kind}: scale 0 differs from the base UNet"
    save(os.path.join(out_dir, "unet_ip_output.safetensors"), {k: v.float() for k, v in gold_ip.items()})

    # ---- reference-only: the reference image -> SD1Encoder -> noised to the step -> the UNet
    ref_image = photos["coffee"].resize((192, 128))  # PIL BICUBIC, width x height
    ref_t = torch.tensor(np.array(ref_image).astype(np.float32).transpose(2, 0, 1) / 255.0)[None] * 2 - 1
    ref_lat = sd15.run_encoder(ae_enc, ref_t)  # float32, as a pipeline computes it
    ref_noise = sd15.randn([2, 4, 16, 24], 203)
    guide = add_noise(torch.cat((ref_lat, ref_lat)), ref_noise, int(timestep.item()))
    ro_in = {"x": x, "timestep": timestep, "clip_text_embedding": text, "reference_image": ref_t,
             "reference_latents": ref_lat, "reference_noise": ref_noise, "guide": guide}
    save(os.path.join(out_dir, "refonly_input.safetensors"), ro_in,
         {"guide": "add_noise(cat(reference_latents, reference_latents), reference_noise, timestep 400), float32"})
    gold_ro, norms = {}, None
    for style in (0.5, 0.25):
        u = structural_copy(unet64)
        inject_reference_only(u, style)
        gold_ro[f"style_{style}"] = run_unet(u, x.double(), timestep, text.double(), guide=guide.double())
        if norms is None:
            norms = {f"norm_{k.rsplit('_', 1)[1]}": v.float() for k, v in reference_norms().items()}
    save(os.path.join(out_dir, "refonly_output.safetensors"),
         {**{k: v.float() for k, v in gold_ro.items()}, **norms})

    # ---- full runs (3 DDIM steps, guidance 7.5) with each: the `--noise` run's PyTorch side
    steps = 3
    run_in = {"noise": sd15.randn([1, 4, 16, 24], 204), "clip_text_embedding": text,
              "image_tokens_base": ip_in["image_tokens_base"], "image_tokens_plus": ip_in["image_tokens_plus"],
              "reference_latents": ref_lat, "reference_noise": sd15.randn([steps, 2, 4, 16, 24], 205)}
    save(os.path.join(out_dir, "run_input.safetensors"), run_in,
         {"run": json.dumps({"solver": "ddim", "steps": steps, "guidance": 7.5,
                             "timesteps": solvers.DDIM(steps).timesteps.tolist()})})
    runs = {"plain": denoise(unet64, run_in["noise"].double(), text.double(), steps)}
    for kind in ("base", "plus"):
        runs[kind] = denoise(u64[kind][0], run_in["noise"].double(), text.double(), steps,
                             image_embedding=run_in[f"image_tokens_{kind}"].double())
    u = structural_copy(unet64)
    inject_reference_only(u)
    runs["refonly"] = denoise(u, run_in["noise"].double(), text.double(), steps,
                              reference_latents=ref_lat.double(), reference_noise=run_in["reference_noise"].double())
    save(os.path.join(out_dir, "run_output.safetensors"), {k: v.float() for k, v in runs.items()})

    # ---- float32 runs against the float64 goldens
    enc32, grid32 = copy.deepcopy(enc2).float(), None
    grid32 = grid_encoder(enc32)
    e32 = encoder_goldens(enc32, grid32, torch.float32)
    f32 = {f"encoder {k}": sd15.rel(e32[k], gold_enc[k]) for k in gold_enc}
    p32 = {k: copy.deepcopy(v).float() for k, v in projs.items()}
    f32["tokens base"] = sd15.rel(image_tokens("base", enc32, grid32, p32["base"], pixels[:1]), tokens["base"])
    f32["tokens plus"] = sd15.rel(image_tokens("plus", enc32, grid32, p32["plus"], pixels[:1]), tokens["plus"])
    unet32 = copy.deepcopy(unet).float()
    plain32 = run_unet(unet32, x, timestep, text)
    for kind in ("base", "plus"):
        u, adapters = ip_unet(unet32, weights={k: v.float() for k, v in ip_w[kind].items()})
        for scale in (1.0, 0.5, 0.0):
            set_ip_scale(adapters, scale)
            y = run_unet(u, x, timestep, text, image_embedding=ip_in[f"image_tokens_{kind}"])
            f32[f"unet {kind} {scale}"] = sd15.rel(y, gold_ip[f"{kind}_{scale}"])
            if scale == 0.0:
                assert torch.equal(y, plain32), f"float32 {kind}: scale 0 differs from the base UNet"
    for style in (0.5, 0.25):
        u = structural_copy(unet32)
        inject_reference_only(u, style)
        f32[f"refonly {style}"] = sd15.rel(run_unet(u, x, timestep, text, guide=guide), gold_ro[f"style_{style}"])
    f32["run plain"] = sd15.rel(denoise(unet32, run_in["noise"], text, steps), runs["plain"])
    u = structural_copy(unet32)
    inject_reference_only(u)
    f32["run refonly"] = sd15.rel(denoise(u, run_in["noise"], text, steps, reference_latents=ref_lat,
                                          reference_noise=run_in["reference_noise"]), runs["refonly"])
    print("  float32 vs float64 goldens, max|Δ|/max|y|: " + ", ".join(f"{k} {v:.1e}" for k, v in f32.items()))
    print("  scale 0: the adapted UNet equals the base UNet bit for bit (float64 and float32)")

    independent_checks(out_dir, files, pixels, x, timestep, text, tokens, ip_in, gold_enc, gold_ip, gold_ro,
                       guide, nl, pl, run_in, runs, steps)

    # ---- trees
    with open(os.path.join(out_dir, "refiners_tree.txt"), "w") as f:
        f.write("# Refiners trees of the reduced configuration (scripts/golden/sd15_ip.py)\n")
        f.write(f"# image encoder {REDUCED_ENCODER}\n# base {REDUCED_BASE}\n# plus {REDUCED_PLUS}\n\n")
        f.write(fl.tree(enc, "CLIPImageEncoderH") + "\n")
        f.write("# the plus variant's encoder (IPAdapter.convert_to_grid_features): shares every weight\n")
        f.write(fl.tree(grid_encoder(enc), "CLIPImageEncoderH") + "\n")
        f.write(fl.tree(base) + "\n" + fl.tree(plus) + "\n")
        f.write("# SD1UNet with SD1IPAdapter injected: every cross-attention's Attention (16, "
                "ip_cross_attentions.tsv) becomes this (here the first one):\n")
        f.write(subtree(u_base, "DownBlocks.Chain_2.CLIPLCrossAttention.Chain_2.CrossAttentionBlock.Residual_2") + "\n")
        ro = structural_copy(unet)
        inject_reference_only(ro)
        f.write("# SD1UNet with ReferenceOnlyControlAdapter injected: the passthrough first (depth 2)\n")
        f.write(tree_depth(ro, "SD1UNet", 2) + "\n")
        f.write("# ... each CrossAttentionBlock's Residual_1 in the main UNet (16, reference_self_attentions.tsv):\n")
        f.write(subtree(ro, "DownBlocks.Chain_2.CLIPLCrossAttention.Chain_2.CrossAttentionBlock.Residual_1") + "\n")
        f.write("# ... and in the guide UNet (the passthrough's structural copy; weights shared):\n")
        f.write(subtree(ro, "SelfAttentionInjectionPassthrough.SD1UNet.DownBlocks.Chain_2.CLIPLCrossAttention.Chain_2"
                            ".CrossAttentionBlock.Residual_1") + "\n")

    for name, d in (("encoder", gold_enc), ("image tokens", tokens), ("unet ip", gold_ip), ("refonly", gold_ro),
                    ("run (3 DDIM)", runs)):
        for k, v in d.items():
            print(f"  golden {name:12s} {k:18s} {sd15.desc(v)}")
    counts = {"encoder": sd15.count(enc.state_dict()), "base": sd15.count(base.state_dict()),
              "plus": sd15.count(plus.state_dict()),
              "ip k/v": sum(t.numel() for r, _p, _k in ip_rows for t in [u_base.state_dict()[r]])}
    print("  reduced parameters: " + ", ".join(f"{k} {v:,d}" for k, v in counts.items()))
    total = 0
    for dirpath, _d, fnames in os.walk(out_dir):
        total += sum(os.path.getsize(os.path.join(dirpath, n)) for n in fnames)
    print(f"  testdata/sd15/ip: {total / 1e6:.2f} MB; {time.time() - t0:.1f} s")


# ================================================================== independent checks

def independent_checks(out_dir, files, pixels, x, timestep, text, tokens, ip_in, gold_enc, gold_ip, gold_ro, guide,
                       nl, pl, run_in, runs, steps):
    """The published-structure models (ip_published.py, sd15_published.py), loaded BY THEIR OWN
    NAMES from the published-layout files, against the Refiners-structured goldens (float64)."""
    rel = sd15.rel
    agree = {}
    E, B, P, U = REDUCED_ENCODER, REDUCED_BASE, REDUCED_PLUS, sd15.REDUCED_UNET
    with torch.no_grad():
        t, _ = st.load(os.path.join(out_dir, "image_encoder", "model.safetensors"))
        pos = t.pop("vision_model.embeddings.position_ids")
        assert torch.equal(pos, torch.arange(pos.shape[1])[None])
        ie = ipp.CLIPVisionModelWithProjection(E["embedding_dim"], E["image_size"], E["patch_size"], E["num_layers"],
                                               E["num_attention_heads"], E["feedforward_dim"], E["output_dim"],
                                               E["layer_norm_eps"])
        sd15._load_strict(ie, {k: v.double() for k, v in t.items()}, "transformers image encoder")
        ie.double().eval()
        emb, states = ie(pixels.double())
        agree["encoder embedding (transformers)"] = rel(emb, gold_enc["embedding"])
        agree["encoder hidden_states[-2] (transformers)"] = rel(states[-2], gold_enc["penultimate"])
        one = pixels[:1].double()
        for kind in ("base", "plus"):
            t, _ = st.load(files[kind])
            proj_sd = {k[len("image_proj."):]: v.double() for k, v in t.items() if k.startswith("image_proj.")}
            ip_sd = {k[len("ip_adapter."):]: v.double() for k, v in t.items() if k.startswith("ip_adapter.")}
            if kind == "base":  # IPAdapter.get_image_embeds
                proj = ipp.ImageProjModel(B["clip_text_embedding_dim"], B["clip_image_embedding_dim"], B["num_tokens"])
                sd15._load_strict(proj, proj_sd, "ImageProjModel")
                proj.double()
                e = ie(one)[0]
                toks = torch.cat([proj(torch.zeros_like(e)), proj(e)])
            else:  # IPAdapterPlus.get_image_embeds
                proj = ipp.Resampler(P["latents_dim"], P["num_attention_layers"], P["head_dim"],
                                     P["num_attention_heads"], P["num_tokens"], P["input_dim"], P["output_dim"])
                sd15._load_strict(proj, proj_sd, "Resampler")
                proj.double()
                toks = torch.cat([proj(ie(torch.zeros_like(one))[1][-2]), proj(ie(one)[1][-2])])
            agree[f"image tokens {kind} (IP-Adapter)"] = rel(toks, tokens[kind])

            def diffusers_unet(ip_tensors, num_tokens):
                d = pub.UNet2DConditionModel(U["in_channels"], U["channels"], U["clip_embedding_dim"], U["num_heads"],
                                             U["num_groups"])
                ut, _ = st.load(os.path.join(SD15_DIR, "diffusers", "unet", "diffusion_pytorch_model.safetensors"))
                sd15._load_strict(d, {k: v.double() for k, v in ut.items()}, "diffusers unet")
                procs = ipp.set_ip_adapter(d, U["clip_embedding_dim"], num_tokens, 1.0)
                sd15._load_strict(procs, ip_tensors, "IP-Adapter processors")  # N.to_k_ip.weight, by position
                return d.double().eval(), procs.double()

            d, procs = diffusers_unet(ip_sd, P["num_tokens"] if kind == "plus" else B["num_tokens"])
            ctx = torch.cat([text.double(), ip_in[f"image_tokens_{kind}"].double()], dim=1)
            for scale in (1.0, 0.5, 0.0):
                for p in procs:
                    if isinstance(p, ipp.IPAttnProcessor):
                        p.scale = scale
                agree[f"unet {kind} scale {scale} (IP-Adapter processors)"] = rel(d(x.double(), timestep, ctx),
                                                                                  gold_ip[f"{kind}_{scale}"])
            for p in procs:
                if isinstance(p, ipp.IPAttnProcessor):
                    p.scale = 1.0
            toks = run_in[f"image_tokens_{kind}"].double()
            y = ddim_run(lambda x2, t, _g: d(x2, t, torch.cat([text.double(), toks], dim=1)),
                         run_in["noise"].double(), steps)
            agree[f"run {kind} (3 DDIM steps, IP-Adapter processors)"] = rel(y, runs[kind])
            if kind == "base":  # the N map must matter: N=1 and N=3 (both 8 wide) swapped
                sw = dict(ip_sd)
                for kv in ("k", "v"):
                    a, b = f"1.to_{kv}_ip.weight", f"3.to_{kv}_ip.weight"
                    sw[a], sw[b] = sw[b], sw[a]
                d2, procs2 = diffusers_unet(sw, B["num_tokens"])
                mut = rel(d2(x.double(), timestep, ctx), gold_ip["base_1.0"])
                print(f"  sanity: ip_adapter.1 and .3 swapped, the IP UNet differs by {mut:.2e} (must be ≫ 1e-5)")
                assert mut > 1e-4
        for style in (0.5, 0.25):
            d = pub.UNet2DConditionModel(U["in_channels"], U["channels"], U["clip_embedding_dim"], U["num_heads"],
                                         U["num_groups"])
            ut, _ = st.load(os.path.join(SD15_DIR, "diffusers", "unet", "diffusion_pytorch_model.safetensors"))
            sd15._load_strict(d, {k: v.double() for k, v in ut.items()}, "diffusers unet")
            d.double().eval()
            bank = ipp.ReferenceBank(d, style_fidelity=1.0 - style)  # sd-webui's weighting is the complement
            bank.uc_rows = [0]
            y = ipp.reference_only(d, bank, x.double(), timestep, text.double(), guide.double())
            what = f"refonly style_cfg {style} (sd-webui bank, fidelity {1 - style})"
            agree[what] = rel(y, gold_ro[f"style_{style}"])
            if style == 0.5:
                y = ddim_run(lambda x2, t, g: ipp.reference_only(d, bank, x2, t, text.double(), g),
                             run_in["noise"].double(), steps, reference_latents=run_in["reference_latents"].double(),
                             reference_noise=run_in["reference_noise"].double())
                agree["run refonly (3 DDIM steps, sd-webui bank)"] = rel(y, runs["refonly"])
            if style == 0.25:
                bank.style_fidelity = style
                mut = rel(ipp.reference_only(d, bank, x.double(), timestep, text.double(), guide.double()),
                          gold_ro["style_0.25"])
                print(f"  sanity: reference-only with the weighting reversed differs by {mut:.2e} (must be ≫ 1e-5)")
                assert mut > 1e-4
    print("  independent published-structure models vs the Refiners goldens (float64), max|Δ|/max|y|:")
    for k, v in agree.items():
        print(f"    {k:58s} {v:.2e}")
        assert v <= 1e-5, f"independent implementation disagrees: {k} {v}"


# ================================================================================ full

def full_encoder_check():
    """Full-size CLIPImageEncoderH and both projections with random float16-exact weights, on
    CPU in float32: Refiners structure vs the transformers / IP-Adapter structures loaded by
    their published names, on the real photo preprocessed at 224. Nothing written."""
    t0 = time.time()
    enc = CLIPImageEncoderH().eval()
    sd15.randomize(enc, 301)
    pixels = preprocess_image(load_photo("coffee.png"), 224)
    y = run_encoder(enc, pixels)
    g = run_grid(grid_encoder(enc), pixels)
    print(f"  full encoder: embedding {sd15.desc(y)}; penultimate {sd15.desc(g)} ({time.time() - t0:.0f} s)")
    pub_sd = to_published(encoder_map(32), enc.state_dict())
    del enc
    ie = ipp.CLIPVisionModelWithProjection(1280, 224, 14, 32, 16, 5120, 1024).eval()
    sd15._load_strict(ie, pub_sd, "transformers image encoder")
    del pub_sd
    with torch.no_grad():
        emb, states = ie(pixels)
    print(f"  full encoder: transformers structure agrees to {sd15.rel(emb, y):.2e} (embedding), "
          f"{sd15.rel(states[-2], g):.2e} (hidden_states[-2]) ({time.time() - t0:.0f} s)")
    for kind in ("base", "plus"):
        proj = (ImageProjection(**FULL_BASE) if kind == "base" else PerceiverResampler(**FULL_PLUS)).eval()
        sd15.randomize(proj, 302 if kind == "base" else 303)
        inp = y if kind == "base" else g
        out = run_projection(proj, inp)
        rows = base_map() if kind == "base" else plus_map(4)
        psd = {p[len("image_proj."):]: v for p, v in to_published(rows, proj.state_dict()).items()}
        ind = ipp.ImageProjModel(768, 1024, 4) if kind == "base" else ipp.Resampler(768, 4, 64, 12, 16, 1280, 768)
        sd15._load_strict(ind, psd, kind)
        with torch.no_grad():
            print(f"  full {kind} projection: {sd15.desc(out)}; IP-Adapter structure agrees to "
                  f"{sd15.rel(ind(inp), out):.2e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reduced", action="store_true", help="write testdata/sd15/ip (the default)")
    ap.add_argument("--check-full", action="store_true", help="full-size parameter counts and published key shapes")
    ap.add_argument("--full-encoder", action="store_true", help="full-size encoder/projections numeric check (CPU)")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.check_full:
        full_size_facts()
    if args.full_encoder:
        full_encoder_check()
    if args.reduced or not (args.check_full or args.full_encoder):
        reduced(args.out)


if __name__ == "__main__":
    main()
