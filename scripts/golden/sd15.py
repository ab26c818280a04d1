#!/usr/bin/python3
"""Stable Diffusion 1.5 in Refiners' structure: the SPEC and the ORACLE for the .rfn models.

Transcribed from finegrain-ai/refiners (read through the search tool; files and the commits of
the stored versions): src/refiners/foundationals/latent_diffusion/stable_diffusion_1/unet.py
@471ef91d, latent_diffusion/unet.py @968306b6 (ResidualBlock, ResidualAccumulator,
ResidualConcatenator), latent_diffusion/cross_attention.py @792a0fc3, range_adapter.py
@2cb0f061, auto_encoder.py @35ac52fe (same Encoder/Decoder in the later tiled version),
foundationals/clip/text_encoder.py @6645911e and common.py @65ce9200, fluxion/layers/
chain.py @a6eb6961, attentions.py @f97b2f76, norm.py @08ca1566, sampling.py @0336bc78,
basics.py @0a161ecc, activations.py @3c45e585 (+ the GeLU(approximation=...) version).
The module trees and class names are Refiners', so state_dict() keys are Refiners' keys;
fluxion.py holds the containers and layers. sd15_published.py is the independent check.

Run from the repository root with /usr/bin/python3:
  scripts/golden/sd15.py [--reduced]   writes testdata/sd15/ (checks the key lists first
                                       when /work/shared/models/sd15 exists)
  scripts/golden/sd15.py --check-keys  full-size maps against /work/shared/models/sd15/*.txt
  scripts/golden/sd15.py --full DIR    full-size random weights + one golden per entry point

ENTRY POINTS (all floating tensors float32; rfc computes in float32)
  CLIPTextEncoderL  ids [b, 77] int64 -> y [b, 77, embedding_dim]: the last layer after the
                    final LayerNorm. Refiners' chain starts with CLIPTokenizer and
                    Converter(set_dtype=False), both parameterless, left out: the entry point
                    starts at the ids.
  SD1UNet           x [b, 4, h, w], timestep float [b] or [1], clip_text_embedding
                    [b, 77, clip_embedding_dim] -> predicted noise [b, 4, h, w]. Refiners'
                    own sampler passes timestep [1] with a batch of 2 (classifier-free
                    guidance), hence the [1] case.
  SD1Encoder        image [b, 3, H, W] in [-1, 1] -> 0.18215 · posterior mean [b, 4, H/8, W/8]:
                    Refiners' SD1Autoencoder.Encoder (which ends with quant_conv and
                    Slicing(dim=1, end=4), i.e. the mean), times SCALING_FACTOR (= SD1Autoencoder
                    .encode).
  SD1Decoder        scaled latent [b, 4, h, w] -> image [b, 3, 8h, 8w], not clamped: Refiners'
                    SD1Autoencoder.Decoder (which starts with post_quant_conv) applied to
                    x / 0.18215 (= SD1Autoencoder.decode).
  Sizes as parameters (the .rfn uses the same names): CLIP embedding_dim, max_sequence_length,
  vocabulary_size, num_layers, num_heads, feedforward_dim, layer_norm_eps; UNet in_channels,
  channels = the four levels' widths [c0, c1, c2, c3] (sinusoid width c0, time embedding
  4·c0, output 4 channels as in Refiners), clip_embedding_dim, num_heads, num_groups;
  autoencoder channels [c0..c3], latent_channels, num_groups (also used by the mid attention's
  GroupNorm and the CLIPLCrossAttention GroupNorm, 32 when published). No other parameter was
  needed to shrink the models.

ONE DELIBERATE DIFFERENCE FROM REFINERS' CODE (the brief asks for the published model)
  Refiners' autoencoder Resnet builds its GroupNorms with fl.GroupNorm's default eps 1e-5;
  the published VAE (LDM Normalize, diffusers resnet_eps) uses 1e-6 for EVERY autoencoder
  GroupNorm. Here: 1e-6 everywhere in the autoencoder (AE_EPS). Refiners' UNet and CLIP
  epsilons already equal the published ones. (The latent scale agrees: Refiners'
  SD1Autoencoder sets encoder_scale = 0.18215, stable_diffusion_1/model.py @cc73698d; only
  the base class LatentDiffusionAutoencoder says 0.18125.)

EPSILONS
  UNet ResidualBlock GroupNorm_1/GroupNorm_2 and the final Chain.GroupNorm   1e-5
  UNet CLIPLCrossAttention.Chain_1.GroupNorm (LDM SpatialTransformer.norm)    1e-6
  UNet CrossAttentionBlock LayerNorms (norm1/2/3)                             1e-5
  CLIP LayerNorms (layer_norm1/2, final_layer_norm)                           layer_norm_eps = 1e-5
  Autoencoder: every GroupNorm (Resnets, mid attention, norm_out)             1e-6

CONTEXT KEYS (context / key: who writes, who reads)
  diffusion / timestep                     the caller (SD1UNet.set_timestep); TimestepEncoder
  range_adapter / timestep_embedding       TimestepEncoder's SetContext; every RangeAdapter2d
  cross_attention_block / clip_text_embedding  the caller (set_clip_text_embedding); the two
                                           UseContext of each CrossAttentionBlock.Residual_2
  unet / residuals                         list of 13, initially 0.0: DownBlocks.Chain_k's
                                           ResidualAccumulator(k-1) writes residuals[k-1] :=
                                           residuals[k-1] + x (= x, the 0.0 is ControlNet's
                                           slot); UpBlocks.Chain_k's ResidualConcatenator(-k-1)
                                           reads residuals[12-k]; Sum's UseContext reads
                                           residuals[-1] = residuals[12] = 0.0 (never written:
                                           ControlNet's mid-block slot, so Sum = MiddleBlock(x))
  sampling / shapes                        each UNet Downsample pushes its input's [h, w]; each
                                           UNet Upsample pops it (LIFO) as its target size. The
                                           autoencoder's Downsample also pushes (unused: its
                                           Upsample has a static factor 2)
  flatten / sizes                          CLIPLCrossAttention.Chain_1.StatefulFlatten pushes
                                           [h, w]; Chain_3's UseContext pops it for Unflatten
  reshape / height, width                  SelfAttention2d (autoencoder mid attention), private
  (here a single dict fluxion.CONTEXT stands for Refiners' providers; run_* fill it.)

TIMESTEP AND ITS BROADCAST
  TimestepEncoder (a Passthrough) = UseContext(diffusion.timestep) -> RangeEncoder ->
  SetContext(range_adapter.timestep_embedding). RangeEncoder: Lambda(sinusoid) -> Converter ->
  Linear_1 (c0 -> 4c0) -> SiLU -> Linear_2. The sinusoid of t [n] is [n, c0] = cat(cos(t·f),
  sin(t·f)) (COS FIRST), f_i = exp(-ln(10000)·i/(c0/2)), i = 0..c0/2-1, computed in float32
  (exponent = -ln(10000)·arange; exponent /= half; t.float()·exp(exponent)); Converter casts
  to the model dtype. With t of shape [1] everything up to here runs at batch 1; the
  broadcast to the batch happens in each RangeAdapter2d, a Sum of the ResidualBlock's first
  conv [b, C, h, w] and Reshape(C, 1, 1)(Linear(SiLU(emb))) [1 or b, C, 1, 1].
  Precision: t·f reaches 999 rad, so float32 rounding of t·f is ~6e-5 rad; computing the
  sinusoid in float64 instead moves the reduced goldens by ~6e-7 relative (measured), well
  inside float32 tolerances, but the float32 recipe above is what the goldens use.

STRUCTURE (testdata/sd15/refiners_tree.txt prints every node of the reduced models)
  SD1UNet = Chain(TimestepEncoder, DownBlocks, Sum(UseContext(residuals[-1]), MiddleBlock),
            UpBlocks, Chain(GroupNorm, SiLU, Conv2d c0->4))
  DownBlocks.Chain_1..12 = [Conv2d in->c0] [RB c0,CA] [RB c0,CA] [Downsample] [RB c0->c1,CA]
     [RB c1,CA] [Downsample] [RB c1->c2,CA] [RB c2,CA] [Downsample] [RB c2->c3] [RB c3],
     each Chain ending with ResidualAccumulator (RB = ResidualBlock, CA = CLIPLCrossAttention)
  MiddleBlock = ResidualBlock_1, CLIPLCrossAttention, ResidualBlock_2 (width c3)
  UpBlocks.Chain_1..12, each starting with ResidualConcatenator (cat([x, skip], dim=1): x
     FIRST, then the skip): [RB 2c3->c3] [RB 2c3->c3] [RB c3+c2->c3, Upsample]
     [RB c3+c2->c2,CA] [RB 2c2->c2,CA] [RB c2+c1->c2,CA,Upsample] [RB c2+c1->c1,CA]
     [RB 2c1->c1,CA] [RB c1+c0->c1,CA,Upsample] [RB c1+c0->c0,CA] [RB 2c0->c0,CA] [RB 2c0->c0,CA]
  ResidualBlock = Sum(Chain(GroupNorm_1, SiLU_1, RangeAdapter2d(Conv2d 3x3, Chain(UseContext,
     SiLU, Linear 4c0->out, Reshape)), GroupNorm_2, SiLU_2, Conv2d 3x3), shortcut) with the
     shortcut (SECOND child) a 1x1 Conv2d when in != out, else Identity. Refiners builds the
     Chain with Conv2d_1/Conv2d_2 and then injects RangeAdapter2d in place of Conv2d_1, so the
     names are regenerated: the first conv is "Chain.RangeAdapter2d.Conv2d" and the second is
     "Chain.Conv2d" (not Conv2d_2); the shortcut is "ResidualBlock.Conv2d".
  CLIPLCrossAttention (a Residual: x + ...) = Chain_1(GroupNorm eps 1e-6, Conv2d 1x1,
     StatefulFlatten(start_dim=2), Transpose(1,2)) -> Chain_2(CrossAttentionBlock) ->
     Chain_3(Transpose(1,2), Parallel(Identity, pop sizes), Unflatten(2), Conv2d 1x1).
     CrossAttentionBlock = Residual_1(LayerNorm, SelfAttention), Residual_2(LayerNorm,
     Parallel(Identity, UseContext_1, UseContext_2), Attention: k, v from the text embedding),
     Residual_3(LayerNorm, Linear_1 C->8C, GLU(GeLU), Linear_2 4C->C). num_heads heads of
     C/num_heads; q/k/v Linears WITHOUT bias (use_bias=False), output Linear with bias.
     GLU: value, gate = chunk(2, last dim) (value = FIRST half), value · gelu(gate), exact erf
     GELU (only CLIP uses QuickGELU).
  (Self)Attention = [Parallel(Identity x3)] Distribute(Linear_1 q, Linear_2 k, Linear_3 v),
     ScaledDotProductAttention(softmax(q·kᵀ/√head_dim)·v per head, heads split from the last
     dim as [.., heads, head_dim]), Linear (output).
  UNet Downsample = SetContext + Conv2d 3x3 stride 2 padding 1. UNet Upsample =
     Parallel(Identity, UseContext(pop shape)), Interpolate(nearest, to that size), Conv2d 3x3.
     For latents whose sides are multiples of 8 this is plain 2x nearest; for other sizes
     Refiners (and diffusers) restore the recorded odd size, where LDM would fail. The goldens
     use multiples of 8 only.
  CLIPTextEncoderL = Chain(Sum(TokenEncoder, PositionalEncoder(Lambda arange, Embedding)),
     TransformerLayer_1..N, LayerNorm); TransformerLayer = Residual_1(LayerNorm,
     SelfAttention(causal, biases)), Residual_2(LayerNorm, FeedForward(Linear_1, GeLU
     approximation=sigmoid i.e. QuickGELU x·σ(1.702x), Linear_2)). TokenEncoder IS the
     Embedding ("Sum.TokenEncoder.weight") while the position table is
     "Sum.PositionalEncoder.Embedding.weight". With num_layers = 1 the layer would be named
     "TransformerLayer" (no suffix): the naming rule suffixes only repeated classes.
  Encoder = Chain(Conv2d 3->c0, Chain_1(Chain_1..Chain_4 = levels: Resnet_1 (prev->ci),
     Resnet_2, + Downsample on levels 0-2; Chain_5 = mid: Resnet_1, Residual(GroupNorm,
     SelfAttention2d), Resnet_2), Chain_2(GroupNorm, SiLU, Conv2d c3->2·latent),
     Chain_3(Conv2d 1x1 quant_conv, Slicing(dim=1, end=latent) = the mean))
  Decoder = Chain(Conv2d_1 1x1 post_quant_conv, Conv2d_2 latent->c3, Chain_1(Chain_1 = mid:
     Resnet_1, Residual, Resnet_2; Chain_2..Chain_5 = widths c3, c2, c1, c0: Resnet_1
     (prev->ci), Resnet_2, Resnet_3, + Upsample(factor 2) on Chain_2..4), Chain_2(GroupNorm,
     SiLU, Conv2d c0->3)). Decoder.Chain_1.Chain_{k+2} is LDM's decoder.up.{3-k} (LDM numbers
     the decoder levels in encoder order and runs them backwards) and diffusers' up_blocks.k.
  Resnet (autoencoder) = Sum(shortcut FIRST, Chain(GroupNorm_1, SiLU_1, Conv2d_1, GroupNorm_2,
     SiLU_2, Conv2d_2)): no adapter here, so Conv2d_1/Conv2d_2 keep their suffixes.
  Autoencoder Downsample = Lambda(pad right/bottom by 1) + Conv2d 3x3 stride 2 padding 0;
     Upsample = nearest 2x + Conv2d 3x3. Mid attention: Residual(GroupNorm, SelfAttention2d):
     1 head over h·w tokens of c3 channels, q/k/v/out Linears with bias.

KEY MAPS (testdata/sd15/keys_{clip,unet,encoder,decoder}.tsv, FULL size, written by --reduced)
  Columns: refiners key, LDM single-file key, diffusers key, then the shape in each layout
  (comma-separated). The refiners column is the key in Refiners' converted files: the
  text encoder and UNet files carry the tree paths above; the autoencoder file holds both
  halves, keys prefixed "Encoder." / "Decoder.". Shapes differ only for the autoencoder's
  mid attention q/k/v/proj_out: [c,c,1,1] 1x1 convs in the single file, [c,c] Linears in
  diffusers and Refiners. The single file also holds alphas_cumprod [1000], model_ema.decay
  [] and cond_stage_model.transformer.text_model.embeddings.position_ids [1,77] int64, which
  a loader must ignore; the diffusers text encoder has no position_ids.

REDUCED CONFIGURATION (testdata/sd15, ≤ 8 MB)
  CLIP  embedding_dim 8, 2 layers, 2 heads, feedforward 16, vocabulary 49408 (full, so real
        tokenizer ids work), max_sequence_length 77: the 49408x8 table alone is 395k of the
        397k parameters, and each parameter is stored three times (2 + 4 + 2 bytes), which is
        what sets the widths below.
  UNet  channels [8, 16, 24, 24] (c2 = c3 as published, the others distinct so that a c0/c1/c2
        mix-up fails), num_groups 4, num_heads 8 (head dims 1, 2, 3), clip_embedding_dim 8,
        in_channels 4.
  Autoencoder channels [8, 12, 16, 16], latent 4, num_groups 4 (shortcut convs where SD1.5
        has them: encoder levels 1, 2 and decoder up.1, up.0).
  Weights: N(0,1)/√fan_in for Linear/Conv weights, N(0,0.1²) biases, 1+N(0,0.1²) norm weights,
  N(0,0.1²) norm biases, N(0,1) embeddings, rounded to float16 and used so everywhere
  (single-file float16, diffusers float32, Refiners files float16: identical values).
  Files: single-file.safetensors; diffusers/{unet,text_encoder,vae}/... + config.json files and
  model_index.json; refiners/{text_encoder,unet,autoencoder}.safetensors; inputs/outputs
  clip_*, unet_* (16x24 latent, timestep [999, 250]), unet_t1_* (32x32 latent, timestep [500]
  of shape [1], broadcast), encoder_* (image [1,3,64,48]), decoder_* (latent [2,4,12,8]).
  Goldens: the Refiners models reloaded from the Refiners files, run in float64, stored as
  float32 (float32 runs differ from them by ≤ ~2e-6 relative, printed by the script).
  Checks run each time: the Refiners models loaded from the single file and from diffusers
  through the maps give the goldens exactly; the independent published-structure models
  (LDM UNetModel/AutoencoderKL, diffusers UNet2DConditionModel/AutoencoderKL, transformers
  CLIPTextModel) loaded BY THEIR OWN NAMES agree to ≤ 1e-5 relative (in practice ~1e-15);
  with attn1 to_k/to_v swapped they do not. Reduced parameter counts: CLIP 397,096,
  UNet 348,396, encoder 42,064, decoder 58,183.

FULL SIZE (--full DIR, not committed; for a comparison outside CI)
  DIR/single-file.safetensors (float16, every published key and shape, 2.1 GB),
  DIR/diffusers/{unet,text_encoder,vae}/*.safetensors (float32) + config.json/model_index.json,
  and per entry point DIR/<name>_{input,output}.safetensors: clip ids [1,77]; unet latent
  [1,4,64,64] with timestep [500] of shape [1]; encoder image [1,3,512,512]; decoder latent
  [1,4,64,64]. Outputs computed in float32 by the Refiners-structured models; the
  independent models are run too and their agreement printed. One model at a time: peak
  RSS ~10 GB.
"""
import argparse
import gc
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import fluxion as fl  # noqa: E402
import sd15_published as pub  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "sd15")
LISTS = "/work/shared/models/sd15"

# Published sizes and the parameter counts of Refiners' models at those sizes.
FULL_CLIP = dict(embedding_dim=768, max_sequence_length=77, vocabulary_size=49408, num_layers=12, num_heads=12,
                 feedforward_dim=3072, layer_norm_eps=1e-5)
FULL_UNET = dict(in_channels=4, channels=[320, 640, 1280, 1280], clip_embedding_dim=768, num_heads=8, num_groups=32)
FULL_AE = dict(channels=[128, 256, 512, 512], latent_channels=4, num_groups=32)
FULL_PARAMS = dict(clip=123_060_480, unet=859_520_964, encoder=34_163_664, decoder=49_490_199)

# The reduced configuration of testdata/sd15 (see the docstring for why these sizes).
REDUCED_CLIP = dict(embedding_dim=8, max_sequence_length=77, vocabulary_size=49408, num_layers=2, num_heads=2,
                    feedforward_dim=16, layer_norm_eps=1e-5)
REDUCED_UNET = dict(in_channels=4, channels=[8, 16, 24, 24], clip_embedding_dim=8, num_heads=8, num_groups=4)
REDUCED_AE = dict(channels=[8, 12, 16, 16], latent_channels=4, num_groups=4)

SCALING_FACTOR = 0.18215  # SD1.5's latent scale (LDM scale_factor, diffusers scaling_factor)
UNET_RESNET_EPS = 1e-5  # UNet ResidualBlock GroupNorms and the UNet's output GroupNorm
UNET_ATTENTION_EPS = 1e-6  # GroupNorm opening each CLIPLCrossAttention
LAYER_NORM_EPS = 1e-5  # every LayerNorm (CLIP, UNet transformer blocks)
AE_EPS = 1e-6  # every GroupNorm of the autoencoder (published; Refiners' Resnet uses 1e-5)


# ============================================================ Refiners' CLIP text encoder

class TokenEncoder(fl.Embedding):
    pass


class PositionalEncoder(fl.Chain):
    def __init__(self, max_sequence_length, embedding_dim):
        super().__init__(
            fl.Lambda(lambda x: torch.arange(x.shape[1], device=x.device).reshape(1, -1),
                      "position_ids: arange(seq_len)[None]"),
            fl.Embedding(max_sequence_length, embedding_dim),
        )


class FeedForward(fl.Chain):
    def __init__(self, embedding_dim, feedforward_dim):
        super().__init__(fl.Linear(embedding_dim, feedforward_dim), fl.GeLU(),
                         fl.Linear(feedforward_dim, embedding_dim))


class TransformerLayer(fl.Chain):
    def __init__(self, embedding_dim, feedforward_dim, num_attention_heads, layer_norm_eps):
        super().__init__(
            fl.Residual(fl.LayerNorm(embedding_dim, eps=layer_norm_eps),
                        fl.SelfAttention(embedding_dim, num_heads=num_attention_heads, is_causal=True)),
            fl.Residual(fl.LayerNorm(embedding_dim, eps=layer_norm_eps), FeedForward(embedding_dim, feedforward_dim)),
        )


class CLIPTextEncoderL(fl.Chain):
    """Refiners' CLIPTextEncoder(use_quick_gelu=True) from the ids on: Refiners' chain starts
    with CLIPTokenizer and Converter(set_dtype=False), both parameterless, left out here."""

    def __init__(self, embedding_dim, max_sequence_length, vocabulary_size, num_layers, num_heads,
                 feedforward_dim, layer_norm_eps):
        super().__init__(
            fl.Sum(TokenEncoder(vocabulary_size, embedding_dim), PositionalEncoder(max_sequence_length, embedding_dim)),
            *(TransformerLayer(embedding_dim, feedforward_dim, num_heads, layer_norm_eps) for _ in range(num_layers)),
            fl.LayerNorm(embedding_dim, eps=layer_norm_eps),
        )
        # use_quick_gelu: every GeLU becomes GeLU(approximation=sigmoid), x·σ(1.702x)
        for m in [m for m in self.modules() if isinstance(m, fl.Chain)]:
            for child in m.children_list():
                if isinstance(child, fl.GeLU):
                    m.replace(child, fl.GeLU(approximation="sigmoid"))


# ======================================================================= Refiners' UNet

def compute_sinusoidal_embedding(x, embedding_dim):
    # Refiners: computed in float32 whatever the model's dtype, cos half first.
    half = embedding_dim // 2
    exponent = -math.log(10000) * torch.arange(0, half, dtype=torch.float32, device=x.device)
    exponent /= half
    embedding = x.unsqueeze(1).float() * torch.exp(exponent).unsqueeze(0)
    return torch.cat([torch.cos(embedding), torch.sin(embedding)], dim=-1)


class RangeEncoder(fl.Chain):
    def __init__(self, sinusoidal_embedding_dim, embedding_dim):
        super().__init__(
            fl.Lambda(lambda x: compute_sinusoidal_embedding(x, sinusoidal_embedding_dim),
                      f"compute_sinusoidal_embedding(dim={sinusoidal_embedding_dim}): [b] -> [b,{sinusoidal_embedding_dim}]"),
            fl.Converter(set_device=False, set_dtype=True),
            fl.Linear(sinusoidal_embedding_dim, embedding_dim),
            fl.SiLU(),
            fl.Linear(embedding_dim, embedding_dim),
        )


class TimestepEncoder(fl.Passthrough):
    def __init__(self, sinusoidal_embedding_dim, embedding_dim, context_key="timestep_embedding"):
        super().__init__(
            fl.UseContext("diffusion", "timestep"),
            RangeEncoder(sinusoidal_embedding_dim, embedding_dim),
            fl.SetContext("range_adapter", context_key),
        )


class RangeAdapter2d(fl.Sum):
    """Replaces the ResidualBlock's first Conv2d: conv(x) + Reshape(Linear(SiLU(t_emb))).
    The embedding is [1 or batch, channels, 1, 1]: the sum broadcasts it over the batch."""

    def __init__(self, target, channels, embedding_dim, context_key):
        super().__init__(
            target,
            fl.Chain(fl.UseContext("range_adapter", context_key), fl.SiLU(), fl.Linear(embedding_dim, channels),
                     fl.Reshape(channels, 1, 1)),
        )


class ResidualBlock(fl.Sum):
    def __init__(self, in_channels, out_channels, num_groups, eps=UNET_RESNET_EPS):
        shortcut = fl.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else fl.Identity()
        super().__init__(
            fl.Chain(
                fl.GroupNorm(in_channels, num_groups, eps=eps), fl.SiLU(),
                fl.Conv2d(in_channels, out_channels, 3, padding=1),
                fl.GroupNorm(out_channels, num_groups, eps=eps), fl.SiLU(),
                fl.Conv2d(out_channels, out_channels, 3, padding=1),
            ),
            shortcut,
        )
        self.in_channels, self.out_channels = in_channels, out_channels


class StatefulFlatten(fl.Chain):
    def __init__(self, context, key, start_dim=0, end_dim=-1):
        super().__init__(
            fl.SetContext(context, key, callback=lambda sizes, x: sizes.append(x.shape[start_dim:]),
                          doc=f"sizes.append(x.shape[{start_dim}:])"),
            fl.Flatten(start_dim, end_dim),
        )


class CrossAttentionBlock(fl.Chain):
    def __init__(self, embedding_dim, context_embedding_dim, context_key, num_heads, use_bias):
        ctx = "cross_attention_block"
        super().__init__(
            fl.Residual(fl.LayerNorm(embedding_dim, eps=LAYER_NORM_EPS),
                        fl.SelfAttention(embedding_dim, num_heads=num_heads, use_bias=use_bias)),
            fl.Residual(fl.LayerNorm(embedding_dim, eps=LAYER_NORM_EPS),
                        fl.Parallel(fl.Identity(), fl.UseContext(ctx, context_key), fl.UseContext(ctx, context_key)),
                        fl.Attention(embedding_dim, num_heads=num_heads, key_embedding_dim=context_embedding_dim,
                                     value_embedding_dim=context_embedding_dim, use_bias=use_bias)),
            fl.Residual(fl.LayerNorm(embedding_dim, eps=LAYER_NORM_EPS),
                        fl.Linear(embedding_dim, 2 * 4 * embedding_dim),
                        fl.GLU(fl.GeLU()),
                        fl.Linear(4 * embedding_dim, embedding_dim)),
        )


class CrossAttentionBlock2d(fl.Residual):
    def __init__(self, channels, context_embedding_dim, context_key, num_attention_heads, num_groups, use_bias):
        in_block = fl.Chain(
            fl.GroupNorm(channels, num_groups, eps=UNET_ATTENTION_EPS),
            fl.Conv2d(channels, channels, 1),
            StatefulFlatten("flatten", "sizes", start_dim=2),
            fl.Transpose(1, 2),
        )
        out_block = fl.Chain(
            fl.Transpose(1, 2),
            fl.Parallel(fl.Identity(), fl.UseContext("flatten", "sizes").compose(lambda s: s.pop(), "sizes.pop()")),
            fl.Unflatten(2),
            fl.Conv2d(channels, channels, 1),
        )
        super().__init__(
            in_block,
            fl.Chain(CrossAttentionBlock(channels, context_embedding_dim, context_key, num_attention_heads, use_bias)),
            out_block,
        )


class CLIPLCrossAttention(CrossAttentionBlock2d):
    def __init__(self, channels, clip_embedding_dim, num_heads, num_groups):
        super().__init__(channels, clip_embedding_dim, "clip_text_embedding", num_heads, num_groups, use_bias=False)


class DownBlocks(fl.Chain):
    def __init__(self, in_channels, channels, clip_embedding_dim, num_heads, num_groups):
        c0, c1, c2, c3 = channels

        def rb(i, o):
            return ResidualBlock(i, o, num_groups)

        def ca(c):
            return CLIPLCrossAttention(c, clip_embedding_dim, num_heads, num_groups)

        def down(c):
            return fl.Downsample(c, scale_factor=2, padding=1)

        super().__init__(
            fl.Chain(fl.Conv2d(in_channels, c0, 3, padding=1)),
            fl.Chain(rb(c0, c0), ca(c0)), fl.Chain(rb(c0, c0), ca(c0)), fl.Chain(down(c0)),
            fl.Chain(rb(c0, c1), ca(c1)), fl.Chain(rb(c1, c1), ca(c1)), fl.Chain(down(c1)),
            fl.Chain(rb(c1, c2), ca(c2)), fl.Chain(rb(c2, c2), ca(c2)), fl.Chain(down(c2)),
            fl.Chain(rb(c2, c3)), fl.Chain(rb(c3, c3)),
        )


class UpBlocks(fl.Chain):
    def __init__(self, channels, clip_embedding_dim, num_heads, num_groups):
        c0, c1, c2, c3 = channels

        def rb(i, o):
            return ResidualBlock(i, o, num_groups)

        def ca(c):
            return CLIPLCrossAttention(c, clip_embedding_dim, num_heads, num_groups)

        super().__init__(
            fl.Chain(rb(c3 + c3, c3)), fl.Chain(rb(c3 + c3, c3)), fl.Chain(rb(c3 + c2, c3), fl.Upsample(c3)),
            fl.Chain(rb(c3 + c2, c2), ca(c2)), fl.Chain(rb(c2 + c2, c2), ca(c2)),
            fl.Chain(rb(c2 + c1, c2), ca(c2), fl.Upsample(c2)),
            fl.Chain(rb(c2 + c1, c1), ca(c1)), fl.Chain(rb(c1 + c1, c1), ca(c1)),
            fl.Chain(rb(c1 + c0, c1), ca(c1), fl.Upsample(c1)),
            fl.Chain(rb(c1 + c0, c0), ca(c0)), fl.Chain(rb(c0 + c0, c0), ca(c0)), fl.Chain(rb(c0 + c0, c0), ca(c0)),
        )


class MiddleBlock(fl.Chain):
    def __init__(self, channels, clip_embedding_dim, num_heads, num_groups):
        c = channels[-1]
        super().__init__(ResidualBlock(c, c, num_groups), CLIPLCrossAttention(c, clip_embedding_dim, num_heads,
                                                                               num_groups), ResidualBlock(c, c, num_groups))


class ResidualAccumulator(fl.Passthrough):
    def __init__(self, n):
        def update(residuals, x):
            residuals[n] = x

        super().__init__(
            fl.Residual(fl.UseContext("unet", "residuals").compose(lambda r: r[n], f"residuals[{n}]")),
            fl.SetContext("unet", "residuals", callback=update, doc=f"residuals[{n}] = x"),
        )


class ResidualConcatenator(fl.Chain):
    def __init__(self, n):
        super().__init__(
            fl.Concatenate(fl.Identity(), fl.UseContext("unet", "residuals").compose(lambda r: r[n], f"residuals[{n}]"),
                           dim=1),
        )


class SD1UNet(fl.Chain):
    def __init__(self, in_channels, channels, clip_embedding_dim, num_heads, num_groups):
        c0 = channels[0]
        super().__init__(
            TimestepEncoder(c0, 4 * c0),
            DownBlocks(in_channels, channels, clip_embedding_dim, num_heads, num_groups),
            fl.Sum(fl.UseContext("unet", "residuals").compose(lambda r: r[-1], "residuals[-1]"),
                   MiddleBlock(channels, clip_embedding_dim, num_heads, num_groups)),
            UpBlocks(channels, clip_embedding_dim, num_heads, num_groups),
            fl.Chain(fl.GroupNorm(c0, num_groups, eps=UNET_RESNET_EPS), fl.SiLU(), fl.Conv2d(c0, 4, 3, padding=1)),
        )
        for block in [m for m in self.modules() if isinstance(m, ResidualBlock)]:
            chain = block._modules["Chain"]
            target = chain._modules["Conv2d_1"]
            chain.replace(target, RangeAdapter2d(target, block.out_channels, 4 * c0, "timestep_embedding"))
        for n, block in enumerate(self._modules["DownBlocks"].children_list()):
            block.append(ResidualAccumulator(n))
        for n, block in enumerate(self._modules["UpBlocks"].children_list()):
            block.insert(0, ResidualConcatenator(-n - 2))

    def init_context(self):
        return {"unet": {"residuals": [0.0] * 13}, "diffusion": {"timestep": None},
                "range_adapter": {"timestep_embedding": None}, "sampling": {"shapes": []},
                "flatten": {"sizes": []}}


# ================================================================ Refiners' autoencoder

class Resnet(fl.Sum):
    def __init__(self, in_channels, out_channels, num_groups, eps=AE_EPS):
        shortcut = fl.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else fl.Identity()
        super().__init__(
            shortcut,
            fl.Chain(
                fl.GroupNorm(in_channels, num_groups, eps=eps), fl.SiLU(),
                fl.Conv2d(in_channels, out_channels, 3, padding=1),
                fl.GroupNorm(out_channels, num_groups, eps=eps), fl.SiLU(),
                fl.Conv2d(out_channels, out_channels, 3, padding=1),
            ),
        )
        self.out_channels = out_channels


def _mid_attention(c, num_groups):
    return fl.Residual(fl.GroupNorm(c, num_groups, eps=AE_EPS), fl.SelfAttention2d(c))


class Encoder(fl.Chain):
    def __init__(self, channels, latent_channels, num_groups):
        sizes = list(channels) + [channels[-1]]
        layers = [fl.Chain(Resnet(sizes[i - 1] if i > 0 else sizes[0], sizes[i], num_groups),
                           Resnet(sizes[i], sizes[i], num_groups)) for i in range(len(sizes))]
        for layer in layers[:3]:
            layer.append(fl.Downsample(layer.children_list()[-1].out_channels, scale_factor=2))
        layers[-1].insert(1, _mid_attention(sizes[-1], num_groups))  # insert_after_type(Resnet, ...)
        super().__init__(
            fl.Conv2d(3, sizes[0], 3, padding=1),
            fl.Chain(*layers),
            fl.Chain(fl.GroupNorm(sizes[-1], num_groups, eps=AE_EPS), fl.SiLU(),
                     fl.Conv2d(sizes[-1], 2 * latent_channels, 3, padding=1)),
            fl.Chain(fl.Conv2d(2 * latent_channels, 2 * latent_channels, 1), fl.Slicing(dim=1, end=latent_channels)),
        )

    def init_context(self):
        return {"sampling": {"shapes": []}}


class Decoder(fl.Chain):
    def __init__(self, channels, latent_channels, num_groups):
        sizes = (list(channels) + [channels[-1]])[::-1]
        layers = []
        for i in range(len(sizes)):
            if i == 0:
                layers.append(fl.Chain(Resnet(sizes[0], sizes[0], num_groups), Resnet(sizes[0], sizes[0], num_groups)))
            else:
                layers.append(fl.Chain(Resnet(sizes[i - 1], sizes[i], num_groups), Resnet(sizes[i], sizes[i], num_groups),
                                       Resnet(sizes[i], sizes[i], num_groups)))
        layers[0].insert(1, _mid_attention(sizes[0], num_groups))
        for layer in layers[1:4]:
            layer.insert(-1, fl.Upsample(layer.children_list()[-1].out_channels, upsample_factor=2))  # -1 appends
        super().__init__(
            fl.Conv2d(latent_channels, latent_channels, 1),
            fl.Conv2d(latent_channels, sizes[0], 3, padding=1),
            fl.Chain(*layers),
            fl.Chain(fl.GroupNorm(sizes[-1], num_groups, eps=AE_EPS), fl.SiLU(), fl.Conv2d(sizes[-1], 3, 3, padding=1)),
        )


class LatentDiffusionAutoencoder(fl.Chain):
    def __init__(self, channels, latent_channels, num_groups):
        super().__init__(Encoder(channels, latent_channels, num_groups), Decoder(channels, latent_channels, num_groups))


class SD1Autoencoder(LatentDiffusionAutoencoder):
    encoder_scale = SCALING_FACTOR  # encode: scale · Encoder(x); decode: Decoder(x / scale)


# ======================================================================== entry points

def build_clip(cfg):
    return CLIPTextEncoderL(**cfg).eval()


def build_unet(cfg):
    return SD1UNet(**cfg).eval()


def build_autoencoder(cfg):
    return SD1Autoencoder(**cfg).eval()


def _param_dtype(model):
    return next(model.parameters()).dtype


def _reset_context(contexts):
    fl.CONTEXT.clear()
    fl.CONTEXT.update(contexts)


def run_clip(model, ids):
    """ids [batch, seq] int64 -> [batch, seq, embedding_dim]."""
    _reset_context({})
    with torch.no_grad():
        return model(ids)


def run_unet(model, x, timestep, clip_text_embedding):
    """x [b,4,h,w], timestep float [b] or [1], clip_text_embedding [b,77,dim] -> [b,4,h,w]."""
    ctx = model.init_context()
    ctx["diffusion"]["timestep"] = timestep
    ctx["cross_attention_block"] = {"clip_text_embedding": clip_text_embedding}
    ctx["converter"] = {"dtype": _param_dtype(model)}
    _reset_context(ctx)
    with torch.no_grad():
        return model(x)


def run_encoder(encoder, image, scaling_factor=SCALING_FACTOR):
    """image [b,3,H,W] in [-1,1] -> scaling_factor · posterior mean [b,4,H/8,W/8]."""
    _reset_context(encoder.init_context())
    with torch.no_grad():
        return scaling_factor * encoder(image)


def run_decoder(decoder, latent, scaling_factor=SCALING_FACTOR):
    """scaled latent [b,4,h,w] -> image [b,3,8h,8w] (not clamped)."""
    _reset_context({})
    with torch.no_grad():
        return decoder(latent / scaling_factor)


# ============================================================================ key maps
# A map is a list of (refiners module path, LDM module path, diffusers module path, kind);
# every parameter of the Refiners module (weight, bias) maps to the same suffix. kind
# "shortcut" marks a 1x1 shortcut conv, present only where a block changes width; "conv1x1" marks a Refiners/diffusers Linear [o,i] that the LDM file stores as a 1x1 conv
# [o,i,1,1] (the autoencoder's mid attention).

def _resblock_unet(r, l, d):
    return [(f"{r}.Chain.GroupNorm_1", f"{l}.in_layers.0", f"{d}.norm1", ""),
            (f"{r}.Chain.RangeAdapter2d.Conv2d", f"{l}.in_layers.2", f"{d}.conv1", ""),
            (f"{r}.Chain.RangeAdapter2d.Chain.Linear", f"{l}.emb_layers.1", f"{d}.time_emb_proj", ""),
            (f"{r}.Chain.GroupNorm_2", f"{l}.out_layers.0", f"{d}.norm2", ""),
            (f"{r}.Chain.Conv2d", f"{l}.out_layers.3", f"{d}.conv2", ""),
            (f"{r}.Conv2d", f"{l}.skip_connection", f"{d}.conv_shortcut", "shortcut")]


def _cross_attention(r, l, d):
    b, lt, dt = f"{r}.Chain_2.CrossAttentionBlock", f"{l}.transformer_blocks.0", f"{d}.transformer_blocks.0"
    out = [(f"{r}.Chain_1.GroupNorm", f"{l}.norm", f"{d}.norm", ""),
           (f"{r}.Chain_1.Conv2d", f"{l}.proj_in", f"{d}.proj_in", ""),
           (f"{b}.Residual_1.LayerNorm", f"{lt}.norm1", f"{dt}.norm1", ""),
           (f"{b}.Residual_1.SelfAttention.Linear", f"{lt}.attn1.to_out.0", f"{dt}.attn1.to_out.0", ""),
           (f"{b}.Residual_2.LayerNorm", f"{lt}.norm2", f"{dt}.norm2", ""),
           (f"{b}.Residual_2.Attention.Linear", f"{lt}.attn2.to_out.0", f"{dt}.attn2.to_out.0", ""),
           (f"{b}.Residual_3.LayerNorm", f"{lt}.norm3", f"{dt}.norm3", ""),
           (f"{b}.Residual_3.Linear_1", f"{lt}.ff.net.0.proj", f"{dt}.ff.net.0.proj", ""),
           (f"{b}.Residual_3.Linear_2", f"{lt}.ff.net.2", f"{dt}.ff.net.2", ""),
           (f"{r}.Chain_3.Conv2d", f"{l}.proj_out", f"{d}.proj_out", "")]
    for i, qkv in enumerate("qkv"):
        out.append((f"{b}.Residual_1.SelfAttention.Distribute.Linear_{i + 1}", f"{lt}.attn1.to_{qkv}",
                    f"{dt}.attn1.to_{qkv}", ""))
        out.append((f"{b}.Residual_2.Attention.Distribute.Linear_{i + 1}", f"{lt}.attn2.to_{qkv}",
                    f"{dt}.attn2.to_{qkv}", ""))
    return out


def unet_modules():
    L = "model.diffusion_model"
    m = [("TimestepEncoder.RangeEncoder.Linear_1", f"{L}.time_embed.0", "time_embedding.linear_1", ""),
         ("TimestepEncoder.RangeEncoder.Linear_2", f"{L}.time_embed.2", "time_embedding.linear_2", ""),
         ("DownBlocks.Chain_1.Conv2d", f"{L}.input_blocks.0.0", "conv_in", ""),
         ("Chain.GroupNorm", f"{L}.out.0", "conv_norm_out", ""),
         ("Chain.Conv2d", f"{L}.out.2", "conv_out", "")]
    # DownBlocks.Chain_{k} = input_blocks.{k-1}; level = (k-2)//3, position (k-2)%3 (2 = downsample)
    for k in range(2, 13):
        level, pos = (k - 2) // 3, (k - 2) % 3
        r, l = f"DownBlocks.Chain_{k}", f"{L}.input_blocks.{k - 1}"
        if pos == 2:
            m.append((f"{r}.Downsample.Conv2d", f"{l}.0.op", f"down_blocks.{level}.downsamplers.0.conv", ""))
            continue
        m += _resblock_unet(f"{r}.ResidualBlock", f"{l}.0", f"down_blocks.{level}.resnets.{pos}")
        if level < 3:
            m += _cross_attention(f"{r}.CLIPLCrossAttention", f"{l}.1", f"down_blocks.{level}.attentions.{pos}")
    m += _resblock_unet("Sum.MiddleBlock.ResidualBlock_1", f"{L}.middle_block.0", "mid_block.resnets.0")
    m += _cross_attention("Sum.MiddleBlock.CLIPLCrossAttention", f"{L}.middle_block.1", "mid_block.attentions.0")
    m += _resblock_unet("Sum.MiddleBlock.ResidualBlock_2", f"{L}.middle_block.2", "mid_block.resnets.1")
    # UpBlocks.Chain_{k} = output_blocks.{k-1} = up_blocks.{(k-1)//3}.resnets.{(k-1)%3}
    for k in range(1, 13):
        i, j = (k - 1) // 3, (k - 1) % 3
        r, l = f"UpBlocks.Chain_{k}", f"{L}.output_blocks.{k - 1}"
        m += _resblock_unet(f"{r}.ResidualBlock", f"{l}.0", f"up_blocks.{i}.resnets.{j}")
        if i > 0:
            m += _cross_attention(f"{r}.CLIPLCrossAttention", f"{l}.1", f"up_blocks.{i}.attentions.{j}")
        if j == 2 and i < 3:
            m.append((f"{r}.Upsample.Conv2d", f"{l}.{2 if i > 0 else 1}.conv", f"up_blocks.{i}.upsamplers.0.conv", ""))
    return m


def clip_modules(num_layers):
    L, D = "cond_stage_model.transformer.text_model", "text_model"
    m = [("Sum.TokenEncoder", f"{L}.embeddings.token_embedding", f"{D}.embeddings.token_embedding", ""),
         ("Sum.PositionalEncoder.Embedding", f"{L}.embeddings.position_embedding",
          f"{D}.embeddings.position_embedding", ""),
         ("LayerNorm", f"{L}.final_layer_norm", f"{D}.final_layer_norm", "")]
    for i in range(num_layers):
        r = f"TransformerLayer_{i + 1}" if num_layers > 1 else "TransformerLayer"
        lay = [(f"{r}.Residual_1.LayerNorm", "layer_norm1"),
               (f"{r}.Residual_1.SelfAttention.Distribute.Linear_1", "self_attn.q_proj"),
               (f"{r}.Residual_1.SelfAttention.Distribute.Linear_2", "self_attn.k_proj"),
               (f"{r}.Residual_1.SelfAttention.Distribute.Linear_3", "self_attn.v_proj"),
               (f"{r}.Residual_1.SelfAttention.Linear", "self_attn.out_proj"),
               (f"{r}.Residual_2.LayerNorm", "layer_norm2"),
               (f"{r}.Residual_2.FeedForward.Linear_1", "mlp.fc1"),
               (f"{r}.Residual_2.FeedForward.Linear_2", "mlp.fc2")]
        m += [(a, f"{L}.encoder.layers.{i}.{b}", f"{D}.encoder.layers.{i}.{b}", "") for a, b in lay]
    return m


def _resnet_ae(r, l, d):
    return [(f"{r}.Chain.GroupNorm_1", f"{l}.norm1", f"{d}.norm1", ""),
            (f"{r}.Chain.Conv2d_1", f"{l}.conv1", f"{d}.conv1", ""),
            (f"{r}.Chain.GroupNorm_2", f"{l}.norm2", f"{d}.norm2", ""),
            (f"{r}.Chain.Conv2d_2", f"{l}.conv2", f"{d}.conv2", ""),
            (f"{r}.Conv2d", f"{l}.nin_shortcut", f"{d}.conv_shortcut", "shortcut")]


def _mid_ae(r, l, d):
    a = f"{r}.Residual.SelfAttention2d"
    return (_resnet_ae(f"{r}.Resnet_1", f"{l}.block_1", f"{d}.resnets.0")
            + [(f"{r}.Residual.GroupNorm", f"{l}.attn_1.norm", f"{d}.attentions.0.group_norm", ""),
               (f"{a}.Distribute.Linear_1", f"{l}.attn_1.q", f"{d}.attentions.0.to_q", "conv1x1"),
               (f"{a}.Distribute.Linear_2", f"{l}.attn_1.k", f"{d}.attentions.0.to_k", "conv1x1"),
               (f"{a}.Distribute.Linear_3", f"{l}.attn_1.v", f"{d}.attentions.0.to_v", "conv1x1"),
               (f"{a}.Linear", f"{l}.attn_1.proj_out", f"{d}.attentions.0.to_out.0", "conv1x1")]
            + _resnet_ae(f"{r}.Resnet_2", f"{l}.block_2", f"{d}.resnets.1"))


def encoder_modules():
    L = "first_stage_model"
    m = [("Encoder.Conv2d", f"{L}.encoder.conv_in", "encoder.conv_in", ""),
         ("Encoder.Chain_2.GroupNorm", f"{L}.encoder.norm_out", "encoder.conv_norm_out", ""),
         ("Encoder.Chain_2.Conv2d", f"{L}.encoder.conv_out", "encoder.conv_out", ""),
         ("Encoder.Chain_3.Conv2d", f"{L}.quant_conv", "quant_conv", "")]
    for i in range(4):
        r = f"Encoder.Chain_1.Chain_{i + 1}"
        for j in range(2):
            m += _resnet_ae(f"{r}.Resnet_{j + 1}", f"{L}.encoder.down.{i}.block.{j}",
                            f"encoder.down_blocks.{i}.resnets.{j}")
        if i < 3:
            m.append((f"{r}.Downsample.Conv2d", f"{L}.encoder.down.{i}.downsample.conv",
                      f"encoder.down_blocks.{i}.downsamplers.0.conv", ""))
    m += _mid_ae("Encoder.Chain_1.Chain_5", f"{L}.encoder.mid", "encoder.mid_block")
    return m


def decoder_modules():
    L = "first_stage_model"
    m = [("Decoder.Conv2d_1", f"{L}.post_quant_conv", "post_quant_conv", ""),
         ("Decoder.Conv2d_2", f"{L}.decoder.conv_in", "decoder.conv_in", ""),
         ("Decoder.Chain_2.GroupNorm", f"{L}.decoder.norm_out", "decoder.conv_norm_out", ""),
         ("Decoder.Chain_2.Conv2d", f"{L}.decoder.conv_out", "decoder.conv_out", "")]
    m += _mid_ae("Decoder.Chain_1.Chain_1", f"{L}.decoder.mid", "decoder.mid_block")
    # Decoder.Chain_1.Chain_{k+2} = LDM up.{3-k} (applied first to last) = diffusers up_blocks.{k}
    for k in range(4):
        r = f"Decoder.Chain_1.Chain_{k + 2}"
        for j in range(3):
            m += _resnet_ae(f"{r}.Resnet_{j + 1}", f"{L}.decoder.up.{3 - k}.block.{j}",
                            f"decoder.up_blocks.{k}.resnets.{j}")
        if k < 3:
            m.append((f"{r}.Upsample.Conv2d", f"{L}.decoder.up.{3 - k}.upsample.conv",
                      f"decoder.up_blocks.{k}.upsamplers.0.conv", ""))
    return m


def keymap(modules, state_dict, prefix=""):
    """Rows (refiners key, ldm key, diffusers key, refiners shape, ldm shape, diffusers shape)
    for every key of state_dict (Refiners keys, prefix stripped for the lookup): each key must
    fall under exactly one mapped module, and every mapped module must exist."""
    by_module = {}
    for r, l, d, kind in modules:
        assert r not in by_module, f"module {r} mapped twice"
        by_module[r] = (l, d, kind)
    rows, used = [], set()
    for key in state_dict:  # tree order
        mod, _, leaf = (prefix + key).rpartition(".")
        if mod not in by_module:
            raise KeyError(f"Refiners key {prefix + key} has no mapping")
        used.add(mod)
        l, d, kind = by_module[mod]
        shape = list(state_dict[key].shape)
        lshape = shape + [1, 1] if kind == "conv1x1" and leaf == "weight" else shape
        rows.append((prefix + key, f"{l}.{leaf}", f"{d}.{leaf}", shape, lshape, shape))
    # A shortcut conv exists only where a block changes width: only those entries may go unused.
    for r, (_l, _d, kind) in by_module.items():
        if r not in used and kind != "shortcut":
            raise KeyError(f"mapped module {r} is not in the model")
    for col in (1, 2):
        keys = [row[col] for row in rows]
        assert len(set(keys)) == len(keys), "two Refiners keys map to the same published key"
    return rows


def model_keymaps(clip, unet, ae, num_clip_layers):
    """(name -> rows) for the four entry points."""
    enc_sd = ae._modules["Encoder"].state_dict()
    dec_sd = ae._modules["Decoder"].state_dict()
    return {
        "clip": keymap(clip_modules(num_clip_layers), clip.state_dict()),
        "unet": keymap(unet_modules(), unet.state_dict()),
        "encoder": keymap(encoder_modules(), enc_sd, "Encoder."),
        "decoder": keymap(decoder_modules(), dec_sd, "Decoder."),
    }


def to_ldm(rows, tensors):
    """Refiners tensors (keyed as in the map's first column) -> LDM single-file tensors."""
    return {l: tensors[r].reshape(ls) for r, l, _d, _rs, ls, _ds in rows}


def to_diffusers(rows, tensors):
    return {d: tensors[r].reshape(ds) for r, _l, d, _rs, _ls, ds in rows}


def from_layout(rows, tensors, column):
    """Published tensors -> Refiners keys, reshaped to the Refiners shape (what rfc's loader does)."""
    out = {}
    for row in rows:
        key = row[column]
        if key not in tensors:
            raise KeyError(f"{key} missing")
        t = tensors[key]
        if list(t.shape) != row[3 + column]:
            raise ValueError(f"{key}: shape {list(t.shape)}, want {row[3 + column]}")
        out[row[0]] = t.reshape(row[3])
    return out


# ===================================================================== key lists check

def meta_models(clip_cfg=FULL_CLIP, unet_cfg=FULL_UNET, ae_cfg=FULL_AE):
    with fl.on_device("meta"):
        return build_clip(clip_cfg), build_unet(unet_cfg), build_autoencoder(ae_cfg)


def count(sd):
    return sum(t.numel() for t in sd.values())


def read_list(path):
    out = {}
    with open(path) as f:
        for line in f:
            name, _, shape = line.strip().partition(" ")
            out[name] = json.loads(shape)
    return out


LDM_EXTRAS = {"alphas_cumprod": [1000], "model_ema.decay": [],
              "cond_stage_model.transformer.text_model.embeddings.position_ids": [1, 77]}


def full_size_maps():
    """The full-size maps, built on the meta device, after checking the parameter counts."""
    clip, unet, ae = meta_models()
    counts = dict(clip=count(clip.state_dict()), unet=count(unet.state_dict()),
                  encoder=count(ae._modules["Encoder"].state_dict()), decoder=count(ae._modules["Decoder"].state_dict()))
    for name, want in FULL_PARAMS.items():
        print(f"  parameters {name:8s} {counts[name]:>13,d} (table {want:,d})")
        if counts[name] != want:
            raise SystemExit(f"{name} has {counts[name]} parameters at full size, the table says {want}")
    return model_keymaps(clip, unet, ae, FULL_CLIP["num_layers"])


def check_keys(lists_dir=LISTS):
    """Full-size maps against the published key lists; raises on any difference."""
    maps = full_size_maps()
    problems = []

    def compare(what, got, want):
        for k in sorted(set(want) - set(got)):
            problems.append(f"{what}: published key {k} {want[k]} not produced by the map")
        for k in sorted(set(got) - set(want)):
            problems.append(f"{what}: mapped key {k} {got[k]} not in the published list")
        for k in sorted(set(got) & set(want)):
            if got[k] != want[k]:
                problems.append(f"{what}: {k} shape {got[k]} != published {want[k]}")
        print(f"  {what}: {len(got)} mapped keys vs {len(want)} published: "
              f"{'identical' if set(got) == set(want) and all(got[k] == want[k] for k in got) else 'DIFFERENT'}")

    single = {r[1]: r[4] for rows in maps.values() for r in rows}
    single.update(LDM_EXTRAS)
    compare("single-file.txt (+ 3 extras)", single, read_list(os.path.join(lists_dir, "single-file.txt")))
    compare("diffusers-unet.txt", {r[2]: r[5] for r in maps["unet"]},
            read_list(os.path.join(lists_dir, "diffusers-unet.txt")))
    compare("diffusers-text_encoder.txt", {r[2]: r[5] for r in maps["clip"]},
            read_list(os.path.join(lists_dir, "diffusers-text_encoder.txt")))
    compare("diffusers-vae.txt", {r[2]: r[5] for r in maps["encoder"] + maps["decoder"]},
            read_list(os.path.join(lists_dir, "diffusers-vae.txt")))
    if problems:
        raise SystemExit("check-keys FAILED:\n  " + "\n  ".join(problems))
    print("check-keys: OK")
    return maps


def write_tsv(maps, out_dir):
    for name, rows in maps.items():
        with open(os.path.join(out_dir, f"keys_{name}.tsv"), "w") as f:
            f.write("# refiners\tldm_single_file\tdiffusers\tshape\tldm_shape\tdiffusers_shape\n")
            for r, l, d, rs, ls, ds in rows:
                f.write("\t".join([r, l, d] + [",".join(map(str, s)) for s in (rs, ls, ds)]) + "\n")


# ================================================================= random weights, I/O

def randomize(model, seed):
    """Deterministic random weights, exactly representable in float16, scaled to keep
    activations O(1): Linear/Conv weights N(0,1)/√fan_in, biases N(0, 0.1²), norm weights
    1 + N(0, 0.1²), norm biases N(0, 0.1²), embeddings N(0, 1). Keys in sorted order."""
    g = torch.Generator().manual_seed(seed)
    kinds = {}
    for name, m in model.named_modules():
        for pname, _ in m.named_parameters(recurse=False):
            kinds[f"{name}.{pname}" if name else pname] = m
    with torch.no_grad():
        for key in sorted(kinds):
            m = kinds[key]
            p = dict(m.named_parameters(recurse=False))[key.rpartition(".")[2]]
            leaf = key.rpartition(".")[2]
            if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
                v = torch.randn(p.shape, generator=g) * 0.1 + (1.0 if leaf == "weight" else 0.0)
            elif isinstance(m, torch.nn.Embedding):
                v = torch.randn(p.shape, generator=g)
            elif leaf == "bias":
                v = torch.randn(p.shape, generator=g) * 0.1
            else:
                fan_in = p[0].numel()
                v = torch.randn(p.shape, generator=g) / math.sqrt(fan_in)
            p.copy_(v.half().float())


def f16_exact(tensors):
    for k, t in tensors.items():
        if t.is_floating_point() and not torch.equal(t.half().to(t.dtype), t):
            raise AssertionError(f"{k} is not exactly representable in float16")


def half(tensors):
    return {k: v.half() for k, v in tensors.items()}


def alphas_cumprod():
    # SD1.5's schedule: scaled_linear betas from 0.00085 to 0.012 over 1000 steps.
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def desc(t):
    t = t.double()
    return f"shape {list(t.shape)} range [{float(t.min()):+.4f}, {float(t.max()):+.4f}] std {float(t.std()):.4f}"


def _load_strict(module, sd, what):
    missing, unexpected = module.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise KeyError(f"{what}: missing {missing[:5]} unexpected {unexpected[:5]}")


def _strip(sd, prefix):
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def clip_inputs(vocab):
    g = torch.Generator().manual_seed(77)
    bos, eos = 49406, 49407
    row0 = [bos] + torch.randint(0, 49406, (20,), generator=g).tolist() + [eos]
    row1 = [bos, 0, 1, 2, 100, 1000, 10000, 30000, 49405, 49404, 40000, 256, 257] + \
        torch.randint(0, 49406, (40,), generator=g).tolist() + [eos]
    assert max(row0 + row1) < vocab
    rows = [r + [eos] * (77 - len(r)) for r in (row0, row1)]
    return torch.tensor(rows, dtype=torch.int64)


def image_input(b, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    base = torch.stack([torch.sin(3 * xx + 1), torch.cos(4 * yy - 2 * xx), xx * yy])[None].repeat(b, 1, 1, 1)
    img = (0.8 * base + 0.2 * torch.randn(b, 3, h, w, generator=g)).clamp(-1, 1)
    return img.half().float()


def randn(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * scale).half().float()


# ============================================================================= reduced

DIFFUSERS_META = {"format": "pt"}


def diffusers_configs(clip_cfg, unet_cfg, ae_cfg):
    unet = {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0", "act_fn": "silu",
        "attention_head_dim": unet_cfg["num_heads"], "block_out_channels": unet_cfg["channels"],
        "center_input_sample": False, "cross_attention_dim": unet_cfg["clip_embedding_dim"],
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], "downsample_padding": 1,
        "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": unet_cfg["in_channels"], "layers_per_block": 2,
        "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": unet_cfg["num_groups"],
        "out_channels": 4, "sample_size": 64,
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    }
    vae = {
        "_class_name": "AutoencoderKL", "_diffusers_version": "0.6.0", "act_fn": "silu",
        "block_out_channels": ae_cfg["channels"], "down_block_types": ["DownEncoderBlock2D"] * 4,
        "in_channels": 3, "latent_channels": ae_cfg["latent_channels"], "layers_per_block": 2,
        "norm_num_groups": ae_cfg["num_groups"], "out_channels": 3, "sample_size": 512,
        "scaling_factor": SCALING_FACTOR, "up_block_types": ["UpDecoderBlock2D"] * 4,
    }
    text = {
        "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
        "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": clip_cfg["embedding_dim"],
        "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": clip_cfg["feedforward_dim"],
        "layer_norm_eps": clip_cfg["layer_norm_eps"], "max_position_embeddings": clip_cfg["max_sequence_length"],
        "model_type": "clip_text_model", "num_attention_heads": clip_cfg["num_heads"],
        "num_hidden_layers": clip_cfg["num_layers"], "pad_token_id": 1, "projection_dim": clip_cfg["embedding_dim"],
        "torch_dtype": "float32", "vocab_size": clip_cfg["vocabulary_size"],
    }
    index = {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0",
        "text_encoder": ["transformers", "CLIPTextModel"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    return {"unet/config.json": unet, "vae/config.json": vae, "text_encoder/config.json": text,
            "model_index.json": index}


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def independent(clip_cfg, unet_cfg, ae_cfg, which=None):
    """The published-structure models (sd15_published), one per layout naming; with which,
    only that one ("clip", "ldm_unet", "diffusers_unet", "ldm_vae", "diffusers_vae")."""
    c, u, a = clip_cfg, unet_cfg, ae_cfg
    if which is not None:
        build = {"clip": lambda: pub.CLIPTextModel(c["vocabulary_size"], c["max_sequence_length"], c["embedding_dim"],
                                                   c["num_layers"], c["num_heads"], c["feedforward_dim"],
                                                   c["layer_norm_eps"]),
                 "diffusers_unet": lambda: pub.UNet2DConditionModel(u["in_channels"], u["channels"],
                                                                    u["clip_embedding_dim"], u["num_heads"],
                                                                    u["num_groups"]),
                 "ldm_vae": lambda: pub.LDMAutoencoderKL(a["channels"], a["latent_channels"], a["num_groups"],
                                                         SCALING_FACTOR)}
        return build[which]().eval()
    clip = pub.CLIPTextModel(c["vocabulary_size"], c["max_sequence_length"], c["embedding_dim"], c["num_layers"],
                             c["num_heads"], c["feedforward_dim"], c["layer_norm_eps"])
    ldm_unet = pub.LDMUNetModel(u["in_channels"], u["channels"], u["clip_embedding_dim"], u["num_heads"],
                                u["num_groups"])
    diff_unet = pub.UNet2DConditionModel(u["in_channels"], u["channels"], u["clip_embedding_dim"], u["num_heads"],
                                         u["num_groups"])
    ldm_vae = pub.LDMAutoencoderKL(a["channels"], a["latent_channels"], a["num_groups"], SCALING_FACTOR)
    diff_vae = pub.AutoencoderKL(a["channels"], a["latent_channels"], a["num_groups"], SCALING_FACTOR)
    return clip, ldm_unet, diff_unet, ldm_vae, diff_vae


def reduced(out_dir, lists_dir):
    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    if os.path.isdir(lists_dir):
        maps_full = check_keys(lists_dir)
    else:
        print(f"note: {lists_dir} not found, the published key lists are not checked")
        maps_full = full_size_maps()
    write_tsv(maps_full, out_dir)

    # Refiners-structured models with random f16-exact weights
    torch.manual_seed(0)  # default inits are overwritten; this only makes construction deterministic
    clip, unet, ae = build_clip(REDUCED_CLIP), build_unet(REDUCED_UNET), build_autoencoder(REDUCED_AE)
    randomize(clip, 1)
    randomize(unet, 2)
    randomize(ae, 3)
    with open(os.path.join(out_dir, "refiners_tree.txt"), "w") as f:
        f.write("# Refiners trees of the reduced configuration (scripts/golden/sd15.py)\n")
        f.write(f"# CLIP {REDUCED_CLIP}\n# UNet {REDUCED_UNET}\n# autoencoder {REDUCED_AE}\n\n")
        f.write(fl.tree(clip) + "\n" + fl.tree(unet) + "\n" + fl.tree(ae) + "\n")
    maps = model_keymaps(clip, unet, ae, REDUCED_CLIP["num_layers"])
    ref = {"clip": clip.state_dict(), "unet": unet.state_dict(), "autoencoder": ae.state_dict()}
    for sd in ref.values():
        f16_exact(sd)
    by_entry = {"clip": ref["clip"], "unet": ref["unet"], "encoder": ref["autoencoder"], "decoder": ref["autoencoder"]}

    # the three layouts
    single = {}
    for name, rows in maps.items():
        single.update(to_ldm(rows, by_entry[name]))
    single = half(single)
    single["alphas_cumprod"] = alphas_cumprod()
    single["model_ema.decay"] = torch.tensor(0.9999, dtype=torch.float32)
    single["cond_stage_model.transformer.text_model.embeddings.position_ids"] = \
        torch.arange(REDUCED_CLIP["max_sequence_length"], dtype=torch.int64)[None]
    st.save(os.path.join(out_dir, "single-file.safetensors"), single)
    ddir = os.path.join(out_dir, "diffusers")
    for sub, rows in (("unet/diffusion_pytorch_model", maps["unet"]), ("text_encoder/model", maps["clip"]),
                      ("vae/diffusion_pytorch_model", maps["encoder"] + maps["decoder"])):
        os.makedirs(os.path.join(ddir, os.path.dirname(sub)), exist_ok=True)
        src = {"text_encoder": ref["clip"], "unet": ref["unet"], "vae": ref["autoencoder"]}[sub.split("/")[0]]
        tensors = to_diffusers(rows, src)
        st.save(os.path.join(ddir, sub + ".safetensors"), tensors, DIFFUSERS_META)
    for path, obj in diffusers_configs(REDUCED_CLIP, REDUCED_UNET, REDUCED_AE).items():
        write_json(os.path.join(ddir, path), obj)
    rdir = os.path.join(out_dir, "refiners")
    os.makedirs(rdir, exist_ok=True)
    st.save(os.path.join(rdir, "text_encoder.safetensors"), half(ref["clip"]))
    st.save(os.path.join(rdir, "unet.safetensors"), half(ref["unet"]))
    st.save(os.path.join(rdir, "autoencoder.safetensors"), half(ref["autoencoder"]))

    # inputs
    ids = clip_inputs(REDUCED_CLIP["vocabulary_size"])
    dim = REDUCED_UNET["clip_embedding_dim"]
    unet_cases = {
        "unet": dict(x=randn([2, 4, 16, 24], 10), timestep=torch.tensor([999.0, 250.0]),
                     clip_text_embedding=randn([2, 77, dim], 11)),
        "unet_t1": dict(x=randn([2, 4, 32, 32], 12), timestep=torch.tensor([500.0]),
                        clip_text_embedding=randn([2, 77, dim], 13)),
    }
    image = image_input(1, 64, 48, 20)
    latent = randn([2, 4, 12, 8], 21)

    # goldens: the Refiners models re-loaded from the written Refiners files, in float64
    loaded = {n: st.load(os.path.join(rdir, f"{n}.safetensors"))[0]
              for n in ("text_encoder", "unet", "autoencoder")}
    clip.load_state_dict({k: v.float() for k, v in loaded["text_encoder"].items()})
    unet.load_state_dict({k: v.float() for k, v in loaded["unet"].items()})
    ae.load_state_dict({k: v.float() for k, v in loaded["autoencoder"].items()})
    enc, dec = ae._modules["Encoder"], ae._modules["Decoder"]
    gold = {}

    def all_outputs(clip_m, unet_m, enc_m, dec_m, dtype):
        out = {"clip": run_clip(clip_m, ids)}
        for name, case in unet_cases.items():
            out[name] = run_unet(unet_m, case["x"].to(dtype), case["timestep"], case["clip_text_embedding"].to(dtype))
        out["encoder"] = run_encoder(enc_m, image.to(dtype))
        out["decoder"] = run_decoder(dec_m, latent.to(dtype))
        return out

    for m in (clip, unet, ae):
        m.double()
    gold = all_outputs(clip, unet, enc, dec, torch.float64)
    st.save(os.path.join(out_dir, "clip_input.safetensors"), {"ids": ids})
    for name, case in unet_cases.items():
        st.save(os.path.join(out_dir, f"{name}_input.safetensors"), case)
    st.save(os.path.join(out_dir, "encoder_input.safetensors"), {"x": image})
    st.save(os.path.join(out_dir, "decoder_input.safetensors"), {"x": latent})
    for name, y in gold.items():
        st.save(os.path.join(out_dir, f"{name}_output.safetensors"), {"y": y.float()})
        print(f"  golden {name:8s} {desc(y)}")

    # float32 against the float64 goldens (what an f32 implementation may expect)
    for m in (clip, unet, ae):
        m.float()
    f32 = all_outputs(clip, unet, enc, dec, torch.float32)
    print("  float32 vs float64 goldens, max|Δ|/max|y|: " +
          ", ".join(f"{n} {rel(f32[n], gold[n]):.2e}" for n in gold))

    # The Refiners models loaded from the published layouts through the maps (rfc's loader path)
    single_l, _ = st.load(os.path.join(out_dir, "single-file.safetensors"))
    diff_l = {}
    for sub in ("unet/diffusion_pytorch_model", "text_encoder/model", "vae/diffusion_pytorch_model"):
        diff_l[sub.split("/")[0]] = st.load(os.path.join(ddir, sub + ".safetensors"))[0]
    report = []
    for layout, column, sources in (("single-file", 1, {"clip": single_l, "unet": single_l, "encoder": single_l,
                                                        "decoder": single_l}),
                                    ("diffusers", 2, {"clip": diff_l["text_encoder"], "unet": diff_l["unet"],
                                                      "encoder": diff_l["vae"], "decoder": diff_l["vae"]})):
        sd = {n: from_layout(maps[n], sources[n], column) for n in maps}
        c2, u2, a2 = build_clip(REDUCED_CLIP), build_unet(REDUCED_UNET), build_autoencoder(REDUCED_AE)
        _load_strict(c2, {k: v.double() for k, v in sd["clip"].items()}, "clip")
        _load_strict(u2, {k: v.double() for k, v in sd["unet"].items()}, "unet")
        ae_sd = {k: v.double() for k, v in {**sd["encoder"], **sd["decoder"]}.items()}
        _load_strict(a2, ae_sd, "autoencoder")
        for m in (c2, u2, a2):
            m.double()
        outs = all_outputs(c2, u2, a2._modules["Encoder"], a2._modules["Decoder"], torch.float64)
        for n in gold:
            d = rel(outs[n], gold[n])
            report.append(f"refiners<-{layout} {n} {d:.1e}")
            assert d == 0.0, f"Refiners model loaded from {layout} differs on {n}: {d}"
    print("  Refiners models loaded through the maps from both layouts: identical outputs (Δ = 0)")

    # The independent published-structure models, loaded by their own names, float64
    i_clip, i_ldm_unet, i_diff_unet, i_ldm_vae, i_diff_vae = independent(REDUCED_CLIP, REDUCED_UNET, REDUCED_AE)
    ldm_clip_sd = _strip(single_l, "cond_stage_model.transformer.")
    pos_ids = ldm_clip_sd.pop("text_model.embeddings.position_ids")
    assert torch.equal(pos_ids, torch.arange(77)[None])
    _load_strict(i_clip, {k: v.double() for k, v in ldm_clip_sd.items()}, "LDM clip")
    i_clip.double()
    agree = {}
    with torch.no_grad():
        agree["clip (LDM keys)"] = rel(i_clip(ids), gold["clip"])
        _load_strict(i_clip, {k: v.double() for k, v in diff_l["text_encoder"].items()}, "diffusers clip")
        agree["clip (diffusers keys)"] = rel(i_clip(ids), gold["clip"])
        _load_strict(i_ldm_unet, {k: v.double() for k, v in _strip(single_l, "model.diffusion_model.").items()},
                     "LDM unet")
        _load_strict(i_diff_unet, {k: v.double() for k, v in diff_l["unet"].items()}, "diffusers unet")
        i_ldm_unet.double()
        i_diff_unet.double()
        for name, case in unet_cases.items():
            args = (case["x"].double(), case["timestep"], case["clip_text_embedding"].double())
            agree[f"{name} (LDM UNetModel)"] = rel(i_ldm_unet(*args), gold[name])
            agree[f"{name} (diffusers UNet2DConditionModel)"] = rel(i_diff_unet(*args), gold[name])
        ldm_vae_sd = _strip(single_l, "first_stage_model.")
        _load_strict(i_ldm_vae, {k: v.double() for k, v in ldm_vae_sd.items()}, "LDM vae")
        _load_strict(i_diff_vae, {k: v.double() for k, v in diff_l["vae"].items()}, "diffusers vae")
        i_ldm_vae.double()
        i_diff_vae.double()
        agree["encoder (LDM AutoencoderKL)"] = rel(i_ldm_vae.encode_scaled(image.double()), gold["encoder"])
        agree["encoder (diffusers AutoencoderKL)"] = rel(i_diff_vae.encode_scaled(image.double()), gold["encoder"])
        agree["decoder (LDM AutoencoderKL)"] = rel(i_ldm_vae.decode_scaled(latent.double()), gold["decoder"])
        agree["decoder (diffusers AutoencoderKL)"] = rel(i_diff_vae.decode_scaled(latent.double()), gold["decoder"])
    print("  independent published-structure models vs the Refiners goldens (float64), max|Δ|/max|y|:")
    for k, v in agree.items():
        print(f"    {k:45s} {v:.2e}")
        assert v <= 1e-5, f"independent implementation disagrees: {k} {v}"

    # Mutation check: the comparison must fail on swapped same-shaped tensors
    swapped = dict(diff_l["unet"])
    a, b = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight", \
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v.weight"
    swapped[a], swapped[b] = swapped[b], swapped[a]
    _load_strict(i_diff_unet, {k: v.double() for k, v in swapped.items()}, "swapped")
    with torch.no_grad():
        case = unet_cases["unet"]
        d = rel(i_diff_unet(case["x"].double(), case["timestep"], case["clip_text_embedding"].double()), gold["unet"])
    print(f"  sanity: with attn1 to_k/to_v swapped the diffusers UNet differs by {d:.2e} (must be ≫ 1e-5)")
    assert d > 1e-3

    counts = {n: count(s) for n, s in (("clip", ref["clip"]), ("unet", ref["unet"]),
                                         ("encoder", enc.state_dict()), ("decoder", dec.state_dict()))}
    print("  reduced parameters: " + ", ".join(f"{n} {c:,d}" for n, c in counts.items()))
    print(f"  reduced: {time.time() - t0:.1f} s")


# ================================================================================ full

def full(out_dir):
    """Full-size random weights (single file float16, diffusers float32) and one input/output
    per entry point, one model at a time."""
    os.makedirs(out_dir, exist_ok=True)
    timings = {}
    single = {}
    ddir = os.path.join(out_dir, "diffusers")
    ids = clip_inputs(FULL_CLIP["vocabulary_size"])[:1]
    for name in ("clip", "unet", "autoencoder"):
        t0 = time.time()
        torch.manual_seed(0)
        with fl.on_device("meta"):
            model = {"clip": lambda: build_clip(FULL_CLIP), "unet": lambda: build_unet(FULL_UNET),
                     "autoencoder": lambda: build_autoencoder(FULL_AE)}[name]()
        model = model.to_empty(device="cpu")
        randomize(model, {"clip": 1, "unet": 2, "autoencoder": 3}[name])
        sd = model.state_dict()
        if name == "clip":
            maps = {"clip": keymap(clip_modules(FULL_CLIP["num_layers"]), sd)}
        elif name == "unet":
            maps = {"unet": keymap(unet_modules(), sd)}
        else:
            maps = {"encoder": keymap(encoder_modules(), model._modules["Encoder"].state_dict(), "Encoder."),
                    "decoder": keymap(decoder_modules(), model._modules["Decoder"].state_dict(), "Decoder.")}
        for rows in maps.values():
            single.update(half(to_ldm(rows, sd)))
        sub = {"clip": "text_encoder/model", "unet": "unet/diffusion_pytorch_model",
               "autoencoder": "vae/diffusion_pytorch_model"}[name]
        os.makedirs(os.path.join(ddir, os.path.dirname(sub)), exist_ok=True)
        dtensors = {}
        for rows in maps.values():
            dtensors.update(to_diffusers(rows, sd))
        st.save(os.path.join(ddir, sub + ".safetensors"), dtensors, DIFFUSERS_META)
        del dtensors
        timings[f"{name} weights"] = time.time() - t0
        t0 = time.time()
        if name == "clip":
            y = run_clip(model, ids)
            timings["clip forward"] = time.time() - t0
            st.save(os.path.join(out_dir, "clip_input.safetensors"), {"ids": ids})
            st.save(os.path.join(out_dir, "clip_output.safetensors"), {"y": y})
            print(f"  full clip    {desc(y)}")
            t0 = time.time()
            ind = independent(FULL_CLIP, None, None, which="clip")
            _load_strict(ind, to_diffusers(maps["clip"], sd), "diffusers clip")
            with torch.no_grad():
                print(f"  full clip: independent transformers-structure model agrees to {rel(ind(ids), y):.2e}")
        elif name == "unet":
            x, t, emb = randn([1, 4, 64, 64], 30), torch.tensor([500.0]), randn([1, 77, 768], 31)
            y = run_unet(model, x, t, emb)
            timings["unet forward"] = time.time() - t0
            st.save(os.path.join(out_dir, "unet_input.safetensors"), {"x": x, "timestep": t,
                                                                       "clip_text_embedding": emb})
            st.save(os.path.join(out_dir, "unet_output.safetensors"), {"y": y})
            print(f"  full unet    {desc(y)}")
            t0 = time.time()
            ind = independent(None, FULL_UNET, None, which="diffusers_unet")
            _load_strict(ind, to_diffusers(maps["unet"], sd), "diffusers unet")
            with torch.no_grad():
                print(f"  full unet: independent diffusers-structure model agrees to {rel(ind(x, t, emb), y):.2e}")
        else:
            image, latent = image_input(1, 512, 512, 32), randn([1, 4, 64, 64], 33)
            y_enc = run_encoder(model._modules["Encoder"], image)
            y_dec = run_decoder(model._modules["Decoder"], latent)
            timings["encoder+decoder forward"] = time.time() - t0
            st.save(os.path.join(out_dir, "encoder_input.safetensors"), {"x": image})
            st.save(os.path.join(out_dir, "encoder_output.safetensors"), {"y": y_enc})
            st.save(os.path.join(out_dir, "decoder_input.safetensors"), {"x": latent})
            st.save(os.path.join(out_dir, "decoder_output.safetensors"), {"y": y_dec})
            print(f"  full encoder {desc(y_enc)}")
            print(f"  full decoder {desc(y_dec)}")
            t0 = time.time()
            ind = independent(None, None, FULL_AE, which="ldm_vae")
            _load_strict(ind, _strip(to_ldm(maps["encoder"] + maps["decoder"], sd), "first_stage_model."), "LDM vae")
            with torch.no_grad():
                print(f"  full encoder/decoder: independent LDM-structure model agrees to "
                      f"{rel(ind.encode_scaled(image), y_enc):.2e} / {rel(ind.decode_scaled(latent), y_dec):.2e}")
        timings[f"{name} independent check"] = time.time() - t0
        del ind
        del model, sd, maps
        gc.collect()
    t0 = time.time()
    single["alphas_cumprod"] = alphas_cumprod()
    single["model_ema.decay"] = torch.tensor(0.9999, dtype=torch.float32)
    single["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    st.save(os.path.join(out_dir, "single-file.safetensors"), single)
    timings["single-file write"] = time.time() - t0
    for path, obj in diffusers_configs(FULL_CLIP, FULL_UNET, FULL_AE).items():
        write_json(os.path.join(ddir, path), obj)
    print("  timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reduced", action="store_true", help="write testdata/sd15 (the default)")
    ap.add_argument("--check-keys", action="store_true", help="check the full-size maps against the published lists")
    ap.add_argument("--full", metavar="DIR", help="write full-size random weights and goldens into DIR")
    ap.add_argument("--lists", default=LISTS, help="folder of the published key lists")
    ap.add_argument("--out", default=OUT, help="output folder of --reduced")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.check_keys:
        check_keys(args.lists)
    if args.full:
        full(args.full)
    if args.reduced or not (args.check_keys or args.full):
        reduced(args.out, args.lists)


if __name__ == "__main__":
    main()
