#!/usr/bin/python3
"""ControlNet and T2I-Adapter for SD1.5 in Refiners' structure: the SPEC and the ORACLE for the
.rfn models and adapters of issue #15.

Transcribed from finegrain-ai/refiners (read through the search tool; files and the commits of
the stored versions): src/refiners/foundationals/latent_diffusion/stable_diffusion_1/
controlnet.py @d607ed27 (ConditionEncoder, Controlnet, SD1ControlnetAdapter), latent_diffusion/
t2i_adapter.py @58fcb159 (Downsample2d, ResidualBlock, ResidualBlocks, StatefulResidualBlocks,
ConditionEncoder, T2IFeatures, T2IAdapter), stable_diffusion_1/t2i_adapter.py @35ac52fe
(SD1T2IAdapter: four T2IFeatures made at construction with the adapter's scale),
stable_diffusion_1/unet.py @0c57922d (ResidualAccumulator, SD1UNet),
scripts/conversion/convert_diffusers_controlnet.py @0f476ea1 and convert_diffusers_t2i_adapter.py
@65ce9200 (which modules the Refiners files hold). The UNet pieces come from sd15.py, the
containers from fluxion.py, so state_dict() keys are Refiners' keys. sd15_control_published.py is
the independent check (diffusers ControlNetModel / T2IAdapter / UNet2DConditionModel.forward,
lllyasviel cldm ControlNet / ControlledUnetModel, TencentARC Adapter / Adapter_light).

Run from the repository root with /usr/bin/python3 (needs testdata/sd15 written by sd15.py):
  scripts/golden/sd15_control.py               writes testdata/sd15/control/ (~7 min on 2 cores)
  scripts/golden/sd15_control.py --check-keys  full-size counts and key maps only (3 s)

WHAT rfc NEEDS (three models, two adapters on SD1UNet)
  Controlnet        a model run INSIDE the UNet's forward, once per UNet call: inputs the UNet's
                    x [b,4,h,w] (Refiners slices x[:, :4]: a 9-channel inpainting UNet feeds it
                    its first 4 channels), the UNet's timestep and text embedding (same context
                    entries), and its condition image [1 or b, 3, 8h, 8w] in [0, 1]; outputs 13
                    residuals. Its own TimestepEncoder (its own weights) embeds the timestep.
  T2I ConditionEncoder (full; "light" below) a separate model run ONCE per condition image,
                    outside the UNet: image [1 or b, in_channels, 8h, 8w] in [0, 1] -> 4 feature
                    maps [., c0, h, w], [., c1, h/2, w/2], [., c2, h/4, w/4], [., c3, h/8, w/8].
                    The features are inputs of the adapted UNet at every step.
  Adapters on SD1UNet (any number, any mix; each with its own name, condition and scale):
    ControlNet k:   residuals_n := h_n + Σ_k scale_k · r_{k,n}   (n = 0..11)
                    MiddleBlock out := MiddleBlock(x) + Σ_k scale_k · r_{k,12}
    T2I-Adapter j:  at the END of DownBlocks chain n ∈ {2, 5, 8, 11} (0-based; Refiners
                    DownBlocks.Chain_3/_6/_9/_12), BEFORE its ResidualAccumulator:
                    h_n := h_n + Σ_j scale_j · f_{j,i}, i = index of n in (2, 5, 8, 11)
  where h_n is the UNet's main path at the end of DownBlocks chain n (what sd15.rfn stores as
  context "unet"/"residuals_n" and UpBlocks' ResidualConcatenator(n) reads back). So:
    - a ControlNet residual changes ONLY the stored skip (residuals_n), never the main path
      going down (Refiners' ResidualAccumulator is a Passthrough: it stores x + residuals[n]
      and returns x); its 13th residual changes the middle block's output (Refiners' Sum of
      UseContext(residuals[-1]) and MiddleBlock), which is the main path going up.
    - a T2I feature changes the main path (and therefore everything after it, including the
      Downsample / MiddleBlock that follows and the stored skip of that chain).
    - with both: residuals_n = (h_n + t2i) + controlnet, i.e. the skip gets the T2I feature
      AND the ControlNet residual; the ControlNet itself never sees the T2I features.
  In Refiners' numbering residual n is DownBlocks.Chain_{n+1}; in LDM input_blocks.n (its
  hs[n]); in diffusers down_block_res_samples[n]. Widths: n = 0..3: c0; 4..6: c1; 7..9: c2;
  10..12: c3; spatial sizes: n = 0..2 full, 3..5 /2, 6..8 /4, 9..12 /8 (see
  controlnet_a_residuals.safetensors).
  Scale 0 gives the base UNet exactly (x + 0·r = x). Eject gives the base graph back.

ORDER OF THE ADDITIONS (only float rounding depends on it; the goldens are float64)
  Refiners' Controlnet is inserted as the UNet's FIRST child (target.insert(0, controlnet)), so
  a ControlNet injected later runs earlier: with A injected then B the UNet's children are
  Controlnet_1 (B), Controlnet_2 (A), TimestepEncoder, ... Each Controlnet does
  residuals[n] = residuals[n] + r_n · scale (starting from 0.0), then the UNet's accumulator
  stores (residuals[n] + h_n). T2IFeatures is a Residual: (scale · f) + h.

REFINERS' TREES (testdata/sd15/control/refiners_tree.txt prints the reduced ones)
  Controlnet (Passthrough: returns its input) = TimestepEncoder(context_key =
     "timestep_embedding_{name}"), Slicing(dim=1, end=4), DownBlocks(in_channels=4),
     MiddleBlock — sd15.py's classes, with RangeAdapter2d injected into every ResidualBlock
     reading range_adapter/timestep_embedding_{name}, and:
     DownBlocks.Chain_1 = Conv2d(4 -> c0), Residual(UseContext("controlnet",
        "condition_{name}"), ConditionEncoder), Passthrough(Conv2d 1x1 c0, Lambda store 0)
        i.e. h_0 = conv_in(x) + ConditionEncoder(condition) (the condition enters ONCE, here,
        and flows through the whole ControlNet down path and middle block)
     DownBlocks.Chain_{n+1}, n = 1..11: the UNet's blocks, then Passthrough(Conv2d 1x1 (width
        of chain n), Lambda: residuals[n] = residuals[n] + x · scale)
     MiddleBlock = ResidualBlock_1, CLIPLCrossAttention, ResidualBlock_2, Passthrough(Conv2d 1x1
        c3, Lambda store 12)
     No ResidualAccumulator, no UpBlocks, no output convolution.
  ConditionEncoder (ControlNet's) = Chain_1(Conv2d 3 -> 16, SiLU), Chain_{i+2}(Conv2d_1 3x3
     w_i -> w_i, SiLU_1, Conv2d_2 3x3 stride 2 w_i -> w_{i+1}, SiLU_2) for i = 0..2,
     Conv2d 3x3 256 -> c0 (no activation after it). Widths (16, 32, 96, 256) (Refiners: fixed;
     diffusers: conditioning_embedding_out_channels; cldm: hard-coded). All padding 1.
  T2I ConditionEncoder = PixelUnshuffle(8) ([b,C,H,W] -> [b,64C,H/8,W/8], channel c·64 + 8i + j
     takes pixel (i, j) of each 8x8 cell), Conv2d 3x3 64C -> c0, StatefulResidualBlocks_1..4,
     UseContext("t2iadapter", "features") (the list the four SetContexts appended to).
     StatefulResidualBlocks_k = ResidualBlocks(preproc, shortcut, Chain(ResidualBlock_1,
     ResidualBlock_2)), SetContext(push). preproc: Identity (level 0) or Downsample2d =
     AvgPool2d(2, stride 2) (levels 1-3); shortcut: Conv2d 1x1 when the width changes (levels
     1, 2 as published), else Identity. ResidualBlock = Residual(Conv2d_1 3x3, ReLU, Conv2d_2
     1x1). Names: level 0 has "Identity_1", "Identity_2" (no parameters).
  T2I ConditionEncoderLight (NO Refiners class: rfc's names, shaped like the full one) =
     PixelUnshuffle(8), StatefulLightResidualBlocks_1..4, UseContext; level k =
     LightResidualBlocks(Identity | Downsample2d, Conv2d_1 1x1 in -> out/4 (in_conv),
     Chain(LightResidualBlock_1..4 = Residual(Conv2d_1 3x3, ReLU, Conv2d_2 3x3)), Conv2d_2 1x1
     out/4 -> out (out_conv)), SetContext. No conv_in; level 0 takes the 64C unshuffled
     channels directly. Widths out = channels (c0, c1, c2, c3) with c3 = c2 as published:
     diffusers' config lists 3 widths and repeats the last for the 4th block (TencentARC:
     channels [320, 640, 1280, 1280]).
  T2IFeatures(name, index, scale) = Residual(UseContext("t2iadapter",
     "condition_features_{name}").compose(scale · features[index])), inserted by
     SD1T2IAdapter.inject with insert_before_type(ResidualAccumulator) into DownBlocks children
     2, 5, 8, 11 (parameterless; two adapters: T2IFeatures_1, T2IFeatures_2 in the chain).

CONTEXT KEYS (context / key: who writes, who reads)
  controlnet / condition_{name}            the caller (SD1ControlnetAdapter.set_controlnet_
                                           condition); the Controlnet's DownBlocks.Chain_1
                                           .Residual.UseContext
  range_adapter / timestep_embedding_{name} the Controlnet's TimestepEncoder; its RangeAdapter2ds
  diffusion / timestep, cross_attention_block / clip_text_embedding   the UNet's, read as is
  unet / residuals                         list of 13 (0.0 initially); Controlnet k adds
                                           scale_k·r into [n]; the UNet's accumulators and the
                                           middle Sum read them (rfc: the adds of residuals_n)
  sampling / shapes                        the Controlnet's 3 Downsamples push as well (never
                                           popped by it): 6 entries, the UNet pops its own 3 (LIFO,
                                           the Controlnet ran first). rfc's per-level
                                           shapes_{level} keys get the same value written twice.
  flatten / sizes                          balanced inside each CLIPLCrossAttention, as in the UNet
  t2iadapter / condition_features_{name}   the caller (SD1T2IAdapter.set_condition_features
                                           with compute_condition_features(condition)); read by
                                           that adapter's four T2IFeatures
  t2iadapter / features                    the ConditionEncoder's own list (its init_context
                                           resets it to [] per run)

SCALES
  ControlNet: Controlnet.scale (SD1ControlnetAdapter(scale=1.0), set_scale), multiplies each of
  the 13 outputs of the 1x1 convs (r · scale), applied inside the Controlnet; diffusers:
  conditioning_scale (guess_mode off); cldm: control_scales. T2I: T2IFeatures.scale
  (T2IAdapter.scale sets all four), scale · features[i]; diffusers' pipeline:
  adapter_conditioning_scale. Runtime knobs: changing one must not recompile.

CLASSIFIER-FREE GUIDANCE AND THE BATCH
  Refiners' sampler doubles x (cat([x, x])), passes a [2,77,d] text embedding and a [1]
  timestep; the condition stays as given ([1,3,H,W] from image_to_tensor): the ControlNet's
  Residual adds ConditionEncoder(condition) [1,c0,h,w] to conv_in(x) [2,c0,h,w] by
  broadcasting, so both halves get the same condition, and everything after is batch 2. The
  T2I features are [1,...] and broadcast in each T2IFeatures add the same way. diffusers
  repeats the image to the batch instead (same numbers). A condition of batch b (one per
  sample) works as well (case controlnet_a_per_half). The goldens follow Refiners: conditions
  [1,3,128,192] against x [2,4,16,24].

EPSILONS
  The ControlNet's down path and middle block: the UNet's (ResidualBlock GroupNorms 1e-5,
  CLIPLCrossAttention GroupNorm 1e-6, LayerNorms 1e-5). The condition encoders and the
  T2I-Adapters have no normalisation.

KEY MAPS (testdata/sd15/control/keys_{controlnet,t2i_adapter,t2i_adapter_light}.tsv, FULL size)
  Columns: refiners key, published key A, diffusers key, then the shape in each layout (the
  same in all three: no reshapes). A is the original single file for the ControlNet
  ("control_model.*", lllyasviel's control_v11*_sd15_*.pth and their safetensors
  conversions) and TencentARC's original .pth keys for the T2I-Adapters (t2iadapter_*.pth,
  no prefix). Checked: every key and shape against the independent models built at full size
  (340 / 38 / 80 keys), and every parameter count.
  ControlNet, Refiners -> single file -> diffusers:
    TimestepEncoder.RangeEncoder.Linear_{1,2}  control_model.time_embed.{0,2}  time_embedding.linear_{1,2}
    DownBlocks.Chain_1.Conv2d                  control_model.input_blocks.0.0  conv_in
    DownBlocks.Chain_1.Residual.ConditionEncoder.Chain_1.Conv2d
                                               input_hint_block.0   controlnet_cond_embedding.conv_in
      ...Chain_{i+2}.Conv2d_{j+1} (i 0..2, j 0..1)  input_hint_block.{4i+2j+2}  controlnet_cond_embedding.blocks.{2i+j}
      ...ConditionEncoder.Conv2d                    input_hint_block.14         controlnet_cond_embedding.conv_out
    DownBlocks.Chain_{n+1}.Passthrough.Conv2d  control_model.zero_convs.{n}.0  controlnet_down_blocks.{n}
    MiddleBlock.Passthrough.Conv2d             control_model.middle_block_out.0  controlnet_mid_block
    DownBlocks.* / MiddleBlock.*               as the UNet's (keys_unet.tsv) with "Sum.MiddleBlock"
                                               -> "MiddleBlock" and "model.diffusion_model." ->
                                               "control_model."; diffusers names as the UNet's.
  T2I full, Refiners -> TencentARC -> diffusers (n = residual blocks per level = 2):
    Conv2d                                      conv_in             adapter.conv_in
    StatefulResidualBlocks_{i+1}.ResidualBlocks.Conv2d   body.{n·i}.in_conv   adapter.body.{i}.in_conv
    ...ResidualBlocks.Chain.ResidualBlock_{j+1}.Conv2d_{k}  body.{n·i+j}.block{k}
                                                adapter.body.{i}.resnets.{j}.block{k}
  T2I light, rfc -> TencentARC -> diffusers:
    StatefulLightResidualBlocks_{i+1}.LightResidualBlocks.Conv2d_1 / Conv2d_2   body.{i}.in_conv / out_conv
        adapter.body.{i}.in_conv / out_conv;
    ...Chain.LightResidualBlock_{j+1}.Conv2d_{k}   body.{i}.body.{j}.block{k}   adapter.body.{i}.resnets.{j}.block{k}
  Loader notes: a single file may hold more than the ControlNet (ControlNet 1.0's control_sd15_*
  hold the whole SD model: model.diffusion_model.*, first_stage_model.*, cond_stage_model.*)
  — read only control_model.*; some community files prefix "model.control_model." (ComfyUI
  accepts both). diffusers ControlNet configs to refuse or honour: controlnet_conditioning_
  channel_order "bgr" (diffusers flips the condition's channels), global_pool_conditions true
  (diffusers averages every residual over h, w), conditioning_channels != 3. T2I configs:
  adapter_type "full_adapter" | "light_adapter" ("full_adapter_xl" is SDXL's), in_channels 1
  for TencentARC's canny/sketch sd15v2 (conv_in 64 -> 320, the image is grey), 3 otherwise;
  num_res_blocks 2 (full), 4 (light); downscale_factor 8. Refiners-converted ControlNet files
  made before the Residual version of controlnet.py name the condition encoder
  "DownBlocks.Chain_1.Sum.Chain.ConditionEncoder.*" (Sum(Identity, Chain(UseContext,
  ConditionEncoder)), same maths).

PARAMETER COUNTS (full size, asserted)
  Controlnet 361,279,120 (acceptance; = diffusers ControlNetModel = cldm ControlNet);
  T2I ConditionEncoder full (320/640/1280/1280, 2 blocks a level, 3 input channels)
  77,369,280 (acceptance; = diffusers FullAdapter = TencentARC Adapter); light 18,689,200.

SURPRISES
  - diffusers adds the last T2I feature (DownBlock2D, no attention) with an IN-PLACE
    `sample += feature` after the block: `sample` is the same tensor as that block's last skip
    sample, so the skip does include the feature, as in Refiners and TencentARC's UNet.
    (An implementation copying diffusers with an out-of-place add would differ.)
  - diffusers' AdapterBlock pools with AvgPool2d(2, 2, ceil_mode=True), Refiners and TencentARC
    with floor mode: identical when each pooled side is even, i.e. the condition's sides are
    multiples of 64 (latent sides multiples of 8), which SD sizes are and the goldens use.
  - In PyTorch float32 the T2I case at scale 0 is NOT bit-identical to the base UNet (~1e-6):
    CLIPLCrossAttention's output is laid out channels-last, h + 0·f comes out contiguous and the
    next convolution picks another algorithm. With every module's inputs made contiguous it is
    exact (checked); rfc, with one layout, must be exact.
  - The ControlNet condition encoder runs at every UNet call (Refiners: "caching is not worth
    it"); the T2I features are computed once per image (compute_condition_features) and then
    are plain inputs of each step.
  - Refiners has no light T2I-Adapter (TencentARC t2iadapter_color_sd14v1 is one); its trees
    here are rfc's.

REDUCED CONFIGURATION (testdata/sd15/control, 3.4 MB)
  Base UNet: testdata/sd15's reduced UNet (refiners/unet.safetensors; single-file and diffusers
  for the independent check). ControlNet: the same UNet config (channels [8,16,24,24], 8 heads,
  4 groups, text width 8) with condition widths [4, 6, 10, 12]. T2I full: channels [8,16,24,24],
  2 blocks a level; light: channels [8,16,24,24] (mid widths 2, 4, 6, 6), 4 blocks a level;
  both 3 input channels, downscale 8. Reduced parameters: ControlNet 149,348, T2I 44,112,
  light 7,882. Weights: sd15.randomize (seeds 41 A, 42 B, 43 T2I, 44 light; the "zero" convs
  are random, not zero, so that they matter), float16-exact.
  Files: controlnet_a/{single-file.safetensors (control_model.*, F16), diffusers/
  {config.json, diffusion_pytorch_model.safetensors (F32)}, refiners.safetensors (F16)};
  controlnet_b/single-file.safetensors only (the size budget); t2i_adapter/{diffusers/...,
  refiners.safetensors, tencentarc.safetensors (TencentARC's names, F16)};
  t2i_adapter_light/{diffusers/..., tencentarc.safetensors}; keys_*.tsv; refiners_tree.txt.
  inputs.safetensors: x [2,4,16,24], timestep [1] = 400 (broadcast), clip_text_embedding
  [2,77,8], condition_a, condition_b, condition_t2i [1,3,128,192] in [0,1]. The per-half
  condition of controlnet_a_per_half is cat([condition_a, condition_b]) (not stored).
  Goldens <case>_output.safetensors {"y": [2,4,16,24]} (adapters injected in this order):
    base                       the UNet alone (scale-0 and eject references)
    controlnet_a_1.0           A, scale 1.0, condition_a
    controlnet_a_0.5           A, scale 0.5, condition_a
    controlnet_a_per_half      A, scale 1.0, condition [2,...] = cat([condition_a, condition_b])
    controlnet_a_b             A (scale 0.8, condition_a) then B (scale 0.6, condition_b)
    t2i_adapter                T2I full, scale 1.0, condition_t2i
    t2i_adapter_0.7            T2I full, scale 0.7
    t2i_adapter_light          light, scale 1.0, condition_t2i
    controlnet_a_t2i_adapter   A (1.0, condition_a) then T2I full (0.5, condition_t2i)
  Intermediates: controlnet_a_residuals.safetensors residual_0..12 (A alone, scale 1,
  condition_a, batch 2), t2i_adapter{,_light}_features.safetensors feature_0..3 (batch 1).
  Goldens: the Refiners structures (weights re-read from the written files) in float64,
  stored float32; float32 runs differ by ≤ 1.5e-6 relative (printed).
  Checks each run: full-size counts and maps; the Refiners structures loaded through the maps
  from every layout give the goldens exactly; eject restores the tree, the keys and the base
  output bit for bit; scale 0 (A; T2I; A + B + T2I) equals the base bit for bit in float32
  and float64 (contiguous inputs, see above); the independent published-structure models,
  loaded by their own names (diffusers ControlNetModel + UNet2DConditionModel.forward with
  down/mid/intrablock residuals, MultiControlNet sum; cldm ControlNet + ControlledUnetModel;
  TencentARC Adapter / Adapter_light + their UNet forward), agree to ≤ 1e-5 relative (in
  practice ≤ 3.5e-15); with two zero convs or two T2I blocks swapped they do not (> 1e-3).
"""
import argparse
import contextlib
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import fluxion as fl  # noqa: E402
import sd15  # noqa: E402
import sd15_control_published as cpub  # noqa: E402
import sd15_published as pub  # noqa: E402

ROOT = sd15.ROOT
OUT = os.path.join(ROOT, "testdata", "sd15", "control")
SD15_DIR = os.path.join(ROOT, "testdata", "sd15")

# Published sizes. ControlNet: the UNet's down path and middle block at SD1.5's sizes plus the
# condition encoder's widths (diffusers conditioning_embedding_out_channels, hard-coded in cldm).
FULL_CN = dict(in_channels=4, channels=[320, 640, 1280, 1280], clip_embedding_dim=768, num_heads=8, num_groups=32,
               condition_channels=[16, 32, 96, 256])
FULL_T2I = dict(in_channels=3, channels=[320, 640, 1280, 1280], num_residual_blocks=2, downscale_factor=8)
FULL_T2I_LIGHT = dict(in_channels=3, channels=[320, 640, 1280, 1280], num_residual_blocks=4, downscale_factor=8)
FULL_PARAMS = dict(controlnet=361_279_120, t2i_adapter=77_369_280)

# Reduced: the UNet of testdata/sd15 (channels [8,16,24,24], 4 groups, 8 heads, text width 8);
# the condition encoder's widths shrunk to [4,6,10,12] (all distinct from the UNet's).
REDUCED_CN = dict(sd15.REDUCED_UNET, condition_channels=[4, 6, 10, 12])
REDUCED_T2I = dict(in_channels=3, channels=[8, 16, 24, 24], num_residual_blocks=2, downscale_factor=8)
REDUCED_T2I_LIGHT = dict(in_channels=3, channels=[8, 16, 24, 24], num_residual_blocks=4, downscale_factor=8)

T2I_RESIDUAL_INDICES = (2, 5, 8, 11)  # Refiners' SD1T2IAdapter.residual_indices (DownBlocks children)


# ============================================================ Refiners' ControlNet (SD1)

class ConditionEncoder(fl.Chain):
    """ControlNet's condition encoder: [b,3,H,W] -> [b,c0,H/8,W/8]."""

    def __init__(self, out_channels=(16, 32, 96, 256), embedding_channels=320):
        oc = out_channels
        super().__init__(
            fl.Chain(fl.Conv2d(3, oc[0], 3, stride=1, padding=1), fl.SiLU()),
            *(fl.Chain(fl.Conv2d(oc[i], oc[i], 3, padding=1), fl.SiLU(),
                       fl.Conv2d(oc[i], oc[i + 1], 3, stride=2, padding=1), fl.SiLU())
              for i in range(len(oc) - 1)),
            fl.Conv2d(oc[-1], embedding_channels, 3, padding=1),
        )


def down_widths(channels):
    """Width of each of the 12 DownBlocks chains (= of each skip connection)."""
    c0, c1, c2, c3 = channels
    return [c0, c0, c0, c0, c1, c1, c1, c2, c2, c2, c3, c3]


class Controlnet(fl.Passthrough):
    """Refiners' Controlnet: runs beside the UNet (inserted as the UNet's FIRST child), returns
    its input unchanged and adds scale · zero_conv_n(h_n) into CONTEXT['unet']['residuals'][n]."""

    def __init__(self, name, scale=1.0, in_channels=4, channels=(320, 640, 1280, 1280), clip_embedding_dim=768,
                 num_heads=8, num_groups=32, condition_channels=(16, 32, 96, 256)):
        self.name, self.scale = name, scale
        c0 = channels[0]
        super().__init__(
            sd15.TimestepEncoder(c0, 4 * c0, context_key=f"timestep_embedding_{name}"),
            fl.Slicing(dim=1, end=4),  # Refiners: "support inpainting" (a 9-channel UNet input)
            sd15.DownBlocks(4, channels, clip_embedding_dim, num_heads, num_groups),
            sd15.MiddleBlock(channels, clip_embedding_dim, num_heads, num_groups),
        )
        self.name, self.scale = name, scale
        down = self._modules["DownBlocks"]
        down.children_list()[0].append(
            fl.Residual(fl.UseContext("controlnet", f"condition_{name}"), ConditionEncoder(condition_channels, c0)))
        for block in [m for m in self.modules() if isinstance(m, sd15.ResidualBlock)]:
            chain = block._modules["Chain"]
            target = chain._modules["Conv2d_1"]
            chain.replace(target, sd15.RangeAdapter2d(target, block.out_channels, 4 * c0,
                                                       f"timestep_embedding_{name}"))
        for n, (block, w) in enumerate(zip(down.children_list(), down_widths(channels))):
            block.append(fl.Passthrough(fl.Conv2d(w, w, 1), fl.Lambda(self._store_nth_residual(n),
                                                                      f"residuals[{n}] += x * scale")))
        self._modules["MiddleBlock"].append(fl.Passthrough(
            fl.Conv2d(channels[-1], channels[-1], 1), fl.Lambda(self._store_nth_residual(12),
                                                                "residuals[12] += x * scale")))

    def _store_nth_residual(self, n):
        def store(x):
            residuals = fl.CONTEXT["unet"]["residuals"]
            residuals[n] = residuals[n] + x * self.scale
            return x
        return store


class SD1ControlnetAdapter:
    """inject: the Controlnet becomes the UNet's first child; eject removes it."""

    def __init__(self, target, name, scale=1.0, cfg=None, weights=None):
        self.target, self.name = target, name
        self.controlnet = Controlnet(name, scale, **(cfg or {})).eval()
        if weights is not None:
            self.controlnet.load_state_dict(weights)

    def inject(self):
        for m in self.target.children_list():
            assert not (isinstance(m, Controlnet) and m.name == self.name), f"Controlnet {self.name} already injected"
        self.target.insert(0, self.controlnet)
        return self

    def eject(self):
        self.target.remove(self.controlnet)

    def set_scale(self, scale):
        self.controlnet.scale = scale


# ============================================================ Refiners' T2I-Adapter

class Downsample2d(torch.nn.AvgPool2d):
    """Refiners' t2i_adapter.Downsample2d: AvgPool2d(kernel = stride = scale_factor), floor mode."""

    def __init__(self, scale_factor):
        super().__init__(kernel_size=scale_factor, stride=scale_factor)

    def describe(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class T2IResidualBlock(fl.Residual):
    def __init__(self, channels):
        super().__init__(fl.Conv2d(channels, channels, 3, padding=1), fl.ReLU(), fl.Conv2d(channels, channels, 1))


T2IResidualBlock.__name__ = T2IResidualBlock.__qualname__ = "ResidualBlock"  # Refiners' class name


class ResidualBlocks(fl.Chain):
    def __init__(self, in_channels, out_channels, num_residual_blocks=2, downsample=False):
        super().__init__(
            Downsample2d(2) if downsample else fl.Identity(),
            fl.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else fl.Identity(),
            fl.Chain(*(T2IResidualBlock(out_channels) for _ in range(num_residual_blocks))),
        )


class StatefulResidualBlocks(fl.Chain):
    """A level of the condition encoder, its output also appended to the encoder's features."""

    LEVEL = ResidualBlocks  # StatefulLightResidualBlocks' is LightResidualBlocks

    def __init__(self, in_channels, out_channels, num_residual_blocks=2, downsample=False):
        super().__init__(
            self.LEVEL(in_channels, out_channels, num_residual_blocks, downsample),
            fl.SetContext("t2iadapter", "features", callback=lambda features, x: features.append(x),
                          doc="features.append(x)"),
        )


class T2IConditionEncoder(fl.Chain):
    """Refiners' t2i_adapter.ConditionEncoder (SD1.5): 4 feature maps at 1/8, 1/16, 1/32, 1/64."""

    def __init__(self, in_channels=3, channels=(320, 640, 1280, 1280), num_residual_blocks=2, downscale_factor=8):
        super().__init__(
            fl.PixelUnshuffle(downscale_factor),
            fl.Conv2d(in_channels * downscale_factor ** 2, channels[0], 3, padding=1),
            StatefulResidualBlocks(channels[0], channels[0], num_residual_blocks),
            *(StatefulResidualBlocks(channels[i - 1], channels[i], num_residual_blocks, downsample=True)
              for i in range(1, len(channels))),
            fl.UseContext("t2iadapter", "features"),
        )

    def init_context(self):
        return {"t2iadapter": {"features": []}}


T2IConditionEncoder.__name__ = T2IConditionEncoder.__qualname__ = "ConditionEncoder"


# The light variant (TencentARC Adapter_light, diffusers LightAdapter) has NO Refiners class.
# Structure and names below are rfc's, shaped like the full one: each level is
# LightResidualBlocks = (Identity | Downsample2d, Conv2d_1 = in_conv 1x1 to out/4,
# Chain(LightResidualBlock_1..n), Conv2d_2 = out_conv 1x1 to out); a LightResidualBlock is a
# Residual(Conv2d_1 3x3, ReLU, Conv2d_2 3x3) (the full one's second conv is 1x1). No conv_in.

class LightResidualBlock(fl.Residual):
    def __init__(self, channels):
        super().__init__(fl.Conv2d(channels, channels, 3, padding=1), fl.ReLU(),
                         fl.Conv2d(channels, channels, 3, padding=1))


class LightResidualBlocks(fl.Chain):
    def __init__(self, in_channels, out_channels, num_residual_blocks=4, downsample=False):
        mid = out_channels // 4
        super().__init__(
            Downsample2d(2) if downsample else fl.Identity(),
            fl.Conv2d(in_channels, mid, 1),
            fl.Chain(*(LightResidualBlock(mid) for _ in range(num_residual_blocks))),
            fl.Conv2d(mid, out_channels, 1),
        )


class StatefulLightResidualBlocks(StatefulResidualBlocks):
    LEVEL = LightResidualBlocks


class ConditionEncoderLight(fl.Chain):
    def __init__(self, in_channels=3, channels=(320, 640, 1280, 1280), num_residual_blocks=4, downscale_factor=8):
        super().__init__(
            fl.PixelUnshuffle(downscale_factor),
            StatefulLightResidualBlocks(in_channels * downscale_factor ** 2, channels[0], num_residual_blocks),
            *(StatefulLightResidualBlocks(channels[i - 1], channels[i], num_residual_blocks, downsample=True)
              for i in range(1, len(channels))),
            fl.UseContext("t2iadapter", "features"),
        )

    def init_context(self):
        return {"t2iadapter": {"features": []}}


class T2IFeatures(fl.Residual):
    """x + scale · features[index], features = CONTEXT['t2iadapter'][f'condition_features_{name}']."""

    def __init__(self, name, index, scale=1.0):
        self.name, self.index, self.scale = name, index, scale
        super().__init__(fl.UseContext("t2iadapter", f"condition_features_{name}").compose(
            lambda features: self.scale * features[self.index], f"scale * features[{index}]"))
        self.name, self.index, self.scale = name, index, scale


class SD1T2IAdapter:
    """inject: a T2IFeatures before the ResidualAccumulator of DownBlocks children 2, 5, 8, 11."""

    def __init__(self, target, name, condition_encoder, scale=1.0):
        self.target, self.name, self.condition_encoder, self._scale = target, name, condition_encoder, scale

    def _blocks(self):
        return [(n, b) for n, b in enumerate(self.target._modules["DownBlocks"].children_list())
                if n in T2I_RESIDUAL_INDICES]

    def inject(self):
        for n, block in self._blocks():
            for m in block.children_list():
                assert not (isinstance(m, T2IFeatures) and m.name == self.name), f"T2I {self.name} already injected"
            block.insert_before_type(sd15.ResidualAccumulator,
                                     T2IFeatures(self.name, T2I_RESIDUAL_INDICES.index(n), self._scale))
        return self

    def eject(self):
        for _n, block in self._blocks():
            layers = [m for m in block.children_list() if isinstance(m, T2IFeatures) and m.name == self.name]
            assert len(layers) == 1
            block.remove(layers[0])

    def compute_condition_features(self, condition):
        sd15._reset_context(self.condition_encoder.init_context())
        with torch.no_grad():
            return tuple(self.condition_encoder(condition))


# ======================================================================== running

@contextlib.contextmanager
def contiguous_inputs(model, enabled=True):
    """Makes every module's tensor inputs contiguous while active, so that no PyTorch kernel
    picks its algorithm (and its rounding) from a memory layout."""
    def pre(_module, args):
        return tuple(a.contiguous() if torch.is_tensor(a) else a for a in args)
    handles = [m.register_forward_pre_hook(pre) for m in model.modules()] if enabled else []
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def run_unet(unet, x, timestep, clip_text_embedding, conditions=None, features=None):
    """The UNet with whatever adapters are injected. conditions: ControlNet name -> condition
    image [1 or b, 3, 8h, 8w]; features: T2I-Adapter name -> its 4 feature maps."""
    ctx = unet.init_context()
    ctx["diffusion"]["timestep"] = timestep
    ctx["cross_attention_block"] = {"clip_text_embedding": clip_text_embedding}
    ctx["converter"] = {"dtype": sd15._param_dtype(unet)}
    ctx["controlnet"] = {f"condition_{k}": v for k, v in (conditions or {}).items()}
    ctx["t2iadapter"] = {f"condition_features_{k}": v for k, v in (features or {}).items()}
    sd15._reset_context(ctx)
    with torch.no_grad():
        return unet(x)


def run_controlnet_alone(controlnet, x, timestep, clip_text_embedding, condition):
    """The 13 residuals one Controlnet adds (scale included), for debugging an implementation."""
    ctx = {"unet": {"residuals": [0.0] * 13}, "diffusion": {"timestep": timestep},
           "range_adapter": {}, "sampling": {"shapes": []}, "flatten": {"sizes": []},
           "cross_attention_block": {"clip_text_embedding": clip_text_embedding},
           "converter": {"dtype": sd15._param_dtype(controlnet)},
           "controlnet": {f"condition_{controlnet.name}": condition}}
    sd15._reset_context(ctx)
    with torch.no_grad():
        controlnet(x)
    return list(fl.CONTEXT["unet"]["residuals"])


# ======================================================================== key maps
# Rows (refiners module, published module A, diffusers module, kind) as in sd15.py; column A
# is the LDM single file for the ControlNet (control_model.*), TencentARC's original .pth for
# the T2I-Adapters.

def controlnet_modules():
    m = []
    for r, l, d, kind in sd15.unet_modules():
        if r.startswith("UpBlocks.") or r.startswith("Chain."):
            continue
        r = r.replace("Sum.MiddleBlock.", "MiddleBlock.")
        l = l.replace("model.diffusion_model.", "control_model.")
        m.append((r, l, d, kind))
    ce = "DownBlocks.Chain_1.Residual.ConditionEncoder"
    m.append((f"{ce}.Chain_1.Conv2d", "control_model.input_hint_block.0", "controlnet_cond_embedding.conv_in", ""))
    for i in range(3):
        for j in range(2):
            m.append((f"{ce}.Chain_{i + 2}.Conv2d_{j + 1}", f"control_model.input_hint_block.{4 * i + 2 * j + 2}",
                      f"controlnet_cond_embedding.blocks.{2 * i + j}", ""))
    m.append((f"{ce}.Conv2d", "control_model.input_hint_block.14", "controlnet_cond_embedding.conv_out", ""))
    for n in range(12):
        m.append((f"DownBlocks.Chain_{n + 1}.Passthrough.Conv2d", f"control_model.zero_convs.{n}.0",
                  f"controlnet_down_blocks.{n}", ""))
    m.append(("MiddleBlock.Passthrough.Conv2d", "control_model.middle_block_out.0", "controlnet_mid_block", ""))
    return m


def t2i_modules(num_levels=4, num_residual_blocks=2):
    m = [("Conv2d", "conv_in", "adapter.conv_in", "")]
    n = num_residual_blocks
    for i in range(num_levels):
        r = f"StatefulResidualBlocks_{i + 1}.ResidualBlocks"
        m.append((f"{r}.Conv2d", f"body.{i * n}.in_conv", f"adapter.body.{i}.in_conv", "shortcut"))
        for j in range(n):
            rb = f"{r}.Chain.ResidualBlock_{j + 1}" if n > 1 else f"{r}.Chain.ResidualBlock"
            for k in (1, 2):
                m.append((f"{rb}.Conv2d_{k}", f"body.{i * n + j}.block{k}",
                          f"adapter.body.{i}.resnets.{j}.block{k}", ""))
    return m


def t2i_light_modules(num_levels=4, num_residual_blocks=4):
    m = []
    n = num_residual_blocks
    for i in range(num_levels):
        r = f"StatefulLightResidualBlocks_{i + 1}.LightResidualBlocks"
        m.append((f"{r}.Conv2d_1", f"body.{i}.in_conv", f"adapter.body.{i}.in_conv", ""))
        m.append((f"{r}.Conv2d_2", f"body.{i}.out_conv", f"adapter.body.{i}.out_conv", ""))
        for j in range(n):
            rb = f"{r}.Chain.LightResidualBlock_{j + 1}" if n > 1 else f"{r}.Chain.LightResidualBlock"
            for k in (1, 2):
                m.append((f"{rb}.Conv2d_{k}", f"body.{i}.body.{j}.block{k}", f"adapter.body.{i}.resnets.{j}.block{k}",
                          ""))
    return m


def build_controlnet(cfg, name="cn"):
    return Controlnet(name, 1.0, **cfg).eval()


def build_t2i(cfg):
    return T2IConditionEncoder(**cfg).eval()


def build_t2i_light(cfg):
    return ConditionEncoderLight(**cfg).eval()


def model_keymaps(cn, t2i, t2i_light, cfg_t2i, cfg_light):
    return {
        "controlnet": sd15.keymap(controlnet_modules(), cn.state_dict()),
        "t2i_adapter": sd15.keymap(t2i_modules(len(cfg_t2i["channels"]), cfg_t2i["num_residual_blocks"]),
                                   t2i.state_dict()),
        "t2i_adapter_light": sd15.keymap(t2i_light_modules(len(cfg_light["channels"]),
                                                           cfg_light["num_residual_blocks"]), t2i_light.state_dict()),
    }


TSV_HEADERS = {
    "controlnet": "# refiners\tldm_single_file\tdiffusers\tshape\tldm_shape\tdiffusers_shape\n",
    "t2i_adapter": "# refiners\ttencentarc_original\tdiffusers\tshape\ttencentarc_shape\tdiffusers_shape\n",
    "t2i_adapter_light": "# rfc (no Refiners class)\ttencentarc_original\tdiffusers\tshape\ttencentarc_shape\t"
                         "diffusers_shape\n",
}


def write_tsv(maps, out_dir):
    for name, rows in maps.items():
        with open(os.path.join(out_dir, f"keys_{name}.tsv"), "w") as f:
            f.write(TSV_HEADERS[name])
            for r, l, d, rs, ls, ds in rows:
                f.write("\t".join([r, l, d] + [",".join(map(str, s)) for s in (rs, ls, ds)]) + "\n")


# ======================================================================= full size

@contextlib.contextmanager
def no_init():
    """Build torch.nn models without initialising (nor touching) their weights: shapes only."""
    classes = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.GroupNorm, torch.nn.LayerNorm)
    saved = [(c, c.reset_parameters) for c in classes]
    for c in classes:
        c.reset_parameters = lambda self: None
    try:
        yield
    finally:
        for c, f in saved:
            c.reset_parameters = f


def shapes(sd):
    return {k: list(v.shape) for k, v in sd.items()}


def check_full_size():
    """Parameter counts at the published sizes, and the full-size maps against the key names
    and shapes of the independent published-structure models (built without weights)."""
    with fl.on_device("meta"):
        cn, t2i, light = build_controlnet(FULL_CN), build_t2i(FULL_T2I), build_t2i_light(FULL_T2I_LIGHT)
    counts = {"controlnet": sd15.count(cn.state_dict()), "t2i_adapter": sd15.count(t2i.state_dict()),
              "t2i_adapter_light": sd15.count(light.state_dict())}
    for name, c in counts.items():
        want = FULL_PARAMS.get(name)
        print(f"  parameters {name:18s} {c:>13,d}" + (f" (acceptance {want:,d})" if want else ""))
        if want is not None and c != want:
            raise SystemExit(f"{name}: {c} parameters at full size, the acceptance says {want}")
    maps = model_keymaps(cn, t2i, light, FULL_T2I, FULL_T2I_LIGHT)
    f = FULL_CN
    with no_init():
        ind = {
            ("controlnet", 1): {"control_model." + k: v for k, v in shapes(cpub.LDMControlNet(
                f["in_channels"], f["channels"], f["clip_embedding_dim"], f["num_heads"], f["num_groups"],
                f["condition_channels"]).state_dict()).items()},
            ("controlnet", 2): shapes(cpub.ControlNetModel(
                f["in_channels"], f["channels"], f["clip_embedding_dim"], f["num_heads"], f["num_groups"],
                f["condition_channels"]).state_dict()),
            ("t2i_adapter", 1): shapes(cpub.TencentAdapter(FULL_T2I["channels"], 2, 64 * 3).state_dict()),
            ("t2i_adapter", 2): shapes(cpub.T2IAdapter(3, FULL_T2I["channels"], 2, 8, "full_adapter").state_dict()),
            ("t2i_adapter_light", 1): shapes(cpub.TencentAdapterLight(FULL_T2I_LIGHT["channels"], 4,
                                                                      64 * 3).state_dict()),
            ("t2i_adapter_light", 2): shapes(cpub.T2IAdapter(3, FULL_T2I_LIGHT["channels"][:3], 4, 8,
                                                             "light_adapter").state_dict()),
        }
    for (name, col), want in ind.items():
        got = {row[col]: row[3 + col] for row in maps[name]}
        if got != want:
            missing = sorted(set(want) - set(got))[:5]
            extra = sorted(set(got) - set(want))[:5]
            bad = [k for k in set(got) & set(want) if got[k] != want[k]][:5]
            raise SystemExit(f"{name} column {col}: map and independent model differ: missing {missing} "
                             f"extra {extra} shapes {bad}")
        print(f"  {name:18s} {['', 'original', 'diffusers'][col]:9s}: {len(got)} keys, names and shapes identical "
              f"to the independent model's, {sum(torch.Size(s).numel() for s in want.values()):,d} parameters")
    return maps


# ========================================================================= reduced

def diffusers_controlnet_config(cfg):
    return {
        "_class_name": "ControlNetModel", "_diffusers_version": "0.16.0", "act_fn": "silu",
        "attention_head_dim": cfg["num_heads"], "block_out_channels": cfg["channels"], "class_embed_type": None,
        "conditioning_embedding_out_channels": cfg["condition_channels"],
        "controlnet_conditioning_channel_order": "rgb", "cross_attention_dim": cfg["clip_embedding_dim"],
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], "downsample_padding": 1,
        "flip_sin_to_cos": True, "freq_shift": 0, "global_pool_conditions": False, "in_channels": cfg["in_channels"],
        "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": cfg["num_groups"],
        "num_class_embeds": None, "only_cross_attention": False, "projection_class_embeddings_input_dim": None,
        "resnet_time_scale_shift": "default", "upcast_attention": False, "use_linear_projection": False,
    }


def diffusers_t2i_config(cfg, light):
    return {
        "_class_name": "T2IAdapter", "_diffusers_version": "0.20.0",
        "adapter_type": "light_adapter" if light else "full_adapter",
        "channels": cfg["channels"][:3] if light else cfg["channels"], "downscale_factor": cfg["downscale_factor"],
        "in_channels": cfg["in_channels"], "num_res_blocks": cfg["num_residual_blocks"],
    }


def condition_image(b, h, w, seed):
    """A condition image in [0, 1] (what set_controlnet_condition receives), float16-exact."""
    return ((sd15.image_input(b, h, w, seed) + 1) / 2).half().float()


def file_size(path):
    return os.path.getsize(path)


def reduced(out_dir):
    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    write_tsv(check_full_size(), out_dir)

    # the base UNet: testdata/sd15's reduced UNet, from its Refiners file
    unet = sd15.build_unet(sd15.REDUCED_UNET)
    unet_sd = st.load(os.path.join(SD15_DIR, "refiners", "unet.safetensors"))[0]
    unet.load_state_dict({k: v.float() for k, v in unet_sd.items()})

    # reduced adapters with random f16-exact weights
    torch.manual_seed(0)
    cn_a, cn_b = build_controlnet(REDUCED_CN, "a"), build_controlnet(REDUCED_CN, "b")
    t2i, light = build_t2i(REDUCED_T2I), build_t2i_light(REDUCED_T2I_LIGHT)
    for m, seed in ((cn_a, 41), (cn_b, 42), (t2i, 43), (light, 44)):
        sd15.randomize(m, seed)
        sd15.f16_exact(m.state_dict())
    maps = model_keymaps(cn_a, t2i, light, REDUCED_T2I, REDUCED_T2I_LIGHT)

    # files: ControlNet A in the three layouts, B in the single-file layout only (the size budget;
    # stacking A from diffusers with B from a single file also mixes layouts), the T2I-Adapter in
    # diffusers + Refiners + TencentARC's names (as safetensors), the light one in diffusers +
    # TencentARC's names
    files = {}

    def save(rel_path, tensors, meta=None):
        path = os.path.join(out_dir, rel_path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        st.save(path, tensors, meta)
        files[rel_path] = file_size(path)

    def save_json(rel_path, obj):
        sd15.write_json(os.path.join(out_dir, rel_path), obj)

    sd = cn_a.state_dict()
    save("controlnet_a/diffusers/diffusion_pytorch_model.safetensors", sd15.to_diffusers(maps["controlnet"], sd),
         sd15.DIFFUSERS_META)
    save_json("controlnet_a/diffusers/config.json", diffusers_controlnet_config(REDUCED_CN))
    save("controlnet_a/refiners.safetensors", sd15.half(sd))
    save("controlnet_a/single-file.safetensors", sd15.half(sd15.to_ldm(maps["controlnet"], sd)))
    save("controlnet_b/single-file.safetensors", sd15.half(sd15.to_ldm(maps["controlnet"], cn_b.state_dict())))
    for tag, enc, cfg, light_variant in (("t2i_adapter", t2i, REDUCED_T2I, False),
                                         ("t2i_adapter_light", light, REDUCED_T2I_LIGHT, True)):
        sd = enc.state_dict()
        save(f"{tag}/diffusers/diffusion_pytorch_model.safetensors", sd15.to_diffusers(maps[tag], sd),
             sd15.DIFFUSERS_META)
        save_json(f"{tag}/diffusers/config.json", diffusers_t2i_config(cfg, light_variant))
        save(f"{tag}/tencentarc.safetensors", sd15.half(sd15.to_ldm(maps[tag], sd)))
        if not light_variant:
            save(f"{tag}/refiners.safetensors", sd15.half(sd))

    # trees
    with open(os.path.join(out_dir, "refiners_tree.txt"), "w") as f:
        f.write("# Refiners trees of the reduced ControlNet and T2I-Adapters (scripts/golden/sd15_control.py)\n")
        f.write(f"# ControlNet {REDUCED_CN}\n# T2I-Adapter {REDUCED_T2I}\n# T2I-Adapter light {REDUCED_T2I_LIGHT}"
                " (rfc's names: Refiners has no light variant)\n\n")
        f.write("## Controlnet (name 'a'): its state_dict keys are the Refiners file's keys\n")
        f.write(fl.tree(cn_a) + "\n")
        f.write("## T2I-Adapter ConditionEncoder (full)\n" + fl.tree(t2i) + "\n")
        f.write("## T2I-Adapter ConditionEncoderLight (rfc's structure, NOT Refiners)\n" + fl.tree(light) + "\n")
        a = SD1ControlnetAdapter(unet, "a", cfg=REDUCED_CN, weights=cn_a.state_dict()).inject()
        b = SD1ControlnetAdapter(unet, "b", cfg=REDUCED_CN, weights=cn_b.state_dict()).inject()
        t = SD1T2IAdapter(unet, "t", t2i).inject()
        f.write("## SD1UNet with Controlnets 'a' then 'b' and a T2I-Adapter 't' injected: the top level "
                "(children only) and DownBlocks.Chain_3 in full (a T2IFeatures before the accumulator)\n")
        f.write("SD1UNet (CHAIN)\n" + "".join(
            f"|-- {n}: {type(m).__name__}" + (f" (name={m.name!r})" if isinstance(m, Controlnet) else "") + "\n"
            for n, m in unet._modules.items()))
        f.write("DownBlocks.Chain_3:\n" + fl.tree(unet._modules["DownBlocks"]._modules["Chain_3"]) + "\n")
        t.eject()
        b.eject()
        a.eject()

    # inputs: a 16x24 latent (the condition at 8x: 128x192), one timestep for both halves
    dim = sd15.REDUCED_UNET["clip_embedding_dim"]
    inputs = {"x": sd15.randn([2, 4, 16, 24], 50), "timestep": torch.tensor([400.0]),
              "clip_text_embedding": sd15.randn([2, 77, dim], 51),
              "condition_a": condition_image(1, 128, 192, 52), "condition_b": condition_image(1, 128, 192, 53),
              "condition_t2i": condition_image(1, 128, 192, 55)}
    save("inputs.safetensors", inputs, {"controlnet_a_per_half": "condition = cat([condition_a, condition_b], dim=0)"})
    # one condition per half of the batch (not stored: the size budget)
    inputs["condition_a2"] = torch.cat([inputs["condition_a"], inputs["condition_b"]])

    # the cases: name -> (list of (kind, name, scale, condition key)), computed by the Refiners
    # structures re-loaded from the Refiners files (A, B, T2I) or the diffusers file (light)
    cases = {
        "base": [],
        "controlnet_a_1.0": [("cn", "a", 1.0, "condition_a")],
        "controlnet_a_0.5": [("cn", "a", 0.5, "condition_a")],
        "controlnet_a_per_half": [("cn", "a", 1.0, "condition_a2")],
        "controlnet_a_b": [("cn", "a", 0.8, "condition_a"), ("cn", "b", 0.6, "condition_b")],
        "t2i_adapter": [("t2i", "t", 1.0, "condition_t2i")],
        "t2i_adapter_0.7": [("t2i", "t", 0.7, "condition_t2i")],
        "t2i_adapter_light": [("light", "l", 1.0, "condition_t2i")],
        "controlnet_a_t2i_adapter": [("cn", "a", 1.0, "condition_a"), ("t2i", "t", 0.5, "condition_t2i")],
    }

    def reloaded(rel_path):
        return {k: v.float() for k, v in st.load(os.path.join(out_dir, rel_path))[0].items()}

    weights = {"a": reloaded("controlnet_a/refiners.safetensors"),
               "b": sd15.from_layout(maps["controlnet"], reloaded("controlnet_b/single-file.safetensors"), 1),
               "t": reloaded("t2i_adapter/refiners.safetensors")}
    light_sd = sd15.from_layout(maps["t2i_adapter_light"],
                                reloaded("t2i_adapter_light/diffusers/diffusion_pytorch_model.safetensors"), 2)

    def encoders(dtype, t2i_weights=None, light_weights=None):
        e = build_t2i(REDUCED_T2I)
        e.load_state_dict(t2i_weights or weights["t"])
        li = build_t2i_light(REDUCED_T2I_LIGHT)
        li.load_state_dict(light_weights or light_sd)
        return {"t": e.to(dtype), "l": li.to(dtype)}

    def run_case(unet_m, spec, dtype, cn_weights=None, enc=None, contiguous=False):
        """Inject the case's adapters into unet_m (in order), run, eject; returns the output and
        the T2I features computed. contiguous: every module's tensor inputs made contiguous
        (see the scale-0 check)."""
        cn_weights = cn_weights or weights
        enc = enc or encoders(dtype)
        injected, conditions, feats = [], {}, {}
        for kind, name, scale, cond in spec:
            c = inputs[cond].to(dtype)
            if kind == "cn":
                a = SD1ControlnetAdapter(unet_m, name, scale, REDUCED_CN, cn_weights[name])
                a.controlnet.to(dtype)
                injected.append(a.inject())
                conditions[name] = c
            else:
                a = SD1T2IAdapter(unet_m, name, enc["t" if kind == "t2i" else "l"], scale)
                feats[name] = a.compute_condition_features(c)
                injected.append(a.inject())
        with contiguous_inputs(unet_m, contiguous):
            y = run_unet(unet_m, inputs["x"].to(dtype), inputs["timestep"], inputs["clip_text_embedding"].to(dtype),
                         conditions, feats)
        for a in reversed(injected):
            a.eject()
        return y, feats

    tree_before = fl.tree(unet)
    keys_before = list(unet.state_dict())
    unet.double()
    gold, feats_gold = {}, {}
    for name, spec in cases.items():
        gold[name], feats_gold[name] = run_case(unet, spec, torch.float64)
        save(f"{name}_output.safetensors", {"y": gold[name].float()})
    print("  goldens (float64, stored float32):")
    for name, y in gold.items():
        print(f"    {name:26s} {sd15.desc(y)}  max|Δ vs base| {float((y - gold['base']).abs().max()):.3f}")
    # intermediate results for debugging an implementation: ControlNet A's 13 residuals at
    # scale 1 (condition_a), the T2I-Adapters' 4 features (condition_t2i)
    cn = Controlnet("a", 1.0, **REDUCED_CN).eval()
    cn.load_state_dict(weights["a"])
    cn.double()
    res = run_controlnet_alone(cn, inputs["x"].double(), inputs["timestep"], inputs["clip_text_embedding"].double(),
                               inputs["condition_a"].double())
    save("controlnet_a_residuals.safetensors", {f"residual_{n}": r.float() for n, r in enumerate(res)})
    save("t2i_adapter_features.safetensors",
         {f"feature_{n}": f.float() for n, f in enumerate(feats_gold["t2i_adapter"]["t"])})
    save("t2i_adapter_light_features.safetensors",
         {f"feature_{n}": f.float() for n, f in enumerate(feats_gold["t2i_adapter_light"]["l"])})
    print("  ControlNet A residuals: " + ", ".join(f"{n}:{list(r.shape)}" for n, r in enumerate(res)))
    print("  T2I features: " + ", ".join(str(list(f.shape)) for f in feats_gold["t2i_adapter"]["t"]))

    # eject gives the base back: same tree, same keys, the base output bit for bit
    assert fl.tree(unet.float()) == tree_before and list(unet.state_dict()) == keys_before
    unet.double()
    y_after = run_case(unet, [], torch.float64)[0]
    assert torch.equal(y_after, gold["base"]), "eject does not give the base UNet back"
    print("  eject: tree, keys and output identical to the base UNet's")

    # scale 0 = the base UNet bit for bit (float32 and float64). PyTorch alone breaks this for
    # the T2I-Adapter: CLIPLCrossAttention's output is laid out channels-last, x + 0·f comes
    # out contiguous, and the next convolution picks another algorithm (differences ~5e-6 in
    # float32). With every module's inputs made contiguous the equality is exact.
    uns = {}
    for spec in ([("cn", "a", 0.0, "condition_a")], [("t2i", "t", 0.0, "condition_t2i")],
                 [("cn", "a", 0.0, "condition_a"), ("cn", "b", 0.0, "condition_b"),
                  ("t2i", "t", 0.0, "condition_t2i")]):
        for dtype in (torch.float32, torch.float64):
            unet.to(dtype)
            base = run_case(unet, [], dtype, contiguous=True)[0]
            y = run_case(unet, spec, dtype, contiguous=True)[0]
            assert torch.equal(y, base), f"scale 0 differs from the base UNet: {spec} {dtype}"
            y = run_case(unet, spec, dtype)[0]
            uns[(len(spec), spec[0][0], dtype)] = sd15.rel(y, run_case(unet, [], dtype)[0])
    print("  scale 0 (one ControlNet, one T2I, both ControlNets + T2I): the base UNet bit for bit, float32 and "
          "float64 (module inputs contiguous); plain PyTorch layouts: max|Δ|/max|y| " +
          ", ".join(f"{k[1]}x{k[0]} {str(k[2])[6:]} {v:.1e}" for k, v in uns.items()))

    # float32 against the float64 goldens
    unet.float()
    f32 = {name: run_case(unet, spec, torch.float32)[0] for name, spec in cases.items()}
    print("  float32 vs float64 goldens, max|Δ|/max|y|: " +
          ", ".join(f"{n} {sd15.rel(f32[n], gold[n]):.1e}" for n in gold))

    # the Refiners structures loaded through the maps from each published layout: identical
    unet.double()
    # (the goldens used A and T2I from the Refiners files, B from its single file, the light
    # one from diffusers; each layout below supplies what it holds, the rest as before)
    layouts = {
        "single-file (A)": ({"a": sd15.from_layout(maps["controlnet"], reloaded(
            "controlnet_a/single-file.safetensors"), 1), "b": weights["b"]}, None, None, "a"),
        "diffusers (A, T2I)": ({"a": sd15.from_layout(maps["controlnet"], reloaded(
            "controlnet_a/diffusers/diffusion_pytorch_model.safetensors"), 2), "b": weights["b"]},
            sd15.from_layout(maps["t2i_adapter"], reloaded("t2i_adapter/diffusers/diffusion_pytorch_model.safetensors"),
                             2), None, "at"),
        "tencentarc names (T2I, light)": (weights, sd15.from_layout(
            maps["t2i_adapter"], reloaded("t2i_adapter/tencentarc.safetensors"), 1), sd15.from_layout(
            maps["t2i_adapter_light"], reloaded("t2i_adapter_light/tencentarc.safetensors"), 1), "tl"),
    }
    for layout, (cnw, t2iw, lightw, names) in layouts.items():
        enc = encoders(torch.float64, t2iw, lightw)
        for name, spec in cases.items():
            if not any(s[1] in names for s in spec):
                continue
            y = run_case(unet, spec, torch.float64, cnw, enc)[0]
            assert torch.equal(y, gold[name]), f"Refiners structure loaded from {layout} differs on {name}"
    print("  Refiners structures loaded through the maps from every layout: the goldens exactly (Δ = 0)")

    # the independent published-structure models, loaded by their own names
    agree = independent_check(inputs, gold, feats_gold, res, out_dir)
    print("  independent published-structure models vs the goldens (float64), max|Δ|/max|y|:")
    for k, v in agree.items():
        print(f"    {k:60s} {v:.2e}")
        if not k.startswith("sanity"):
            assert v <= 1e-5, f"independent implementation disagrees: {k} {v}"
    assert all(v > 1e-3 for k, v in agree.items() if k.startswith("sanity"))

    counts = {"controlnet": sd15.count(cn_a.state_dict()), "t2i_adapter": sd15.count(t2i.state_dict()),
              "t2i_adapter_light": sd15.count(light.state_dict())}
    print("  reduced parameters: " + ", ".join(f"{n} {c:,d}" for n, c in counts.items()))
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out_dir) for f in fs)
    print(f"  files: {len(files)} safetensors, {total:,d} bytes in {os.path.relpath(out_dir, ROOT)} "
          f"(largest {max(files, key=files.get)} {max(files.values()):,d})")
    print(f"  reduced: {time.time() - t0:.1f} s")


def independent_check(inputs, gold, feats_gold, residuals_a, out_dir):
    """diffusers / lllyasviel / TencentARC structures, each loading its own layout's file by
    its own names, against the goldens."""
    def load(rel_path):
        return {k: v.double() for k, v in st.load(os.path.join(out_dir, rel_path))[0].items()}

    u, c = sd15.REDUCED_UNET, REDUCED_CN
    d_unet = pub.UNet2DConditionModel(u["in_channels"], u["channels"], u["clip_embedding_dim"], u["num_heads"],
                                      u["num_groups"]).double().eval()
    sd15._load_strict(d_unet, {k: v.double() for k, v in st.load(os.path.join(
        SD15_DIR, "diffusers", "unet", "diffusion_pytorch_model.safetensors"))[0].items()}, "diffusers unet")
    l_unet = pub.LDMUNetModel(u["in_channels"], u["channels"], u["clip_embedding_dim"], u["num_heads"],
                              u["num_groups"]).double().eval()
    single = st.load(os.path.join(SD15_DIR, "single-file.safetensors"))[0]
    sd15._load_strict(l_unet, {k: v.double() for k, v in sd15._strip(single, "model.diffusion_model.").items()},
                      "LDM unet")

    def d_cn(tag):
        m = cpub.ControlNetModel(c["in_channels"], c["channels"], c["clip_embedding_dim"], c["num_heads"],
                                 c["num_groups"], c["condition_channels"]).double().eval()
        sd15._load_strict(m, load(f"{tag}/diffusers/diffusion_pytorch_model.safetensors"), f"diffusers {tag}")
        return m

    def l_cn_of(tag):
        m = cpub.LDMControlNet(c["in_channels"], c["channels"], c["clip_embedding_dim"], c["num_heads"],
                               c["num_groups"], c["condition_channels"]).double().eval()
        sd15._load_strict(m, sd15._strip(load(f"{tag}/single-file.safetensors"), "control_model."), f"LDM {tag}")
        return m

    l_cn, l_cn_b = l_cn_of("controlnet_a"), l_cn_of("controlnet_b")
    cfg, lcfg = REDUCED_T2I, REDUCED_T2I_LIGHT
    d_t2i = cpub.T2IAdapter(cfg["in_channels"], cfg["channels"], cfg["num_residual_blocks"], cfg["downscale_factor"],
                            "full_adapter").double().eval()
    sd15._load_strict(d_t2i, load("t2i_adapter/diffusers/diffusion_pytorch_model.safetensors"), "diffusers t2i")
    d_light = cpub.T2IAdapter(lcfg["in_channels"], lcfg["channels"][:3], lcfg["num_residual_blocks"],
                              lcfg["downscale_factor"], "light_adapter").double().eval()
    sd15._load_strict(d_light, load("t2i_adapter_light/diffusers/diffusion_pytorch_model.safetensors"), "d light")
    o_t2i = cpub.TencentAdapter(cfg["channels"], cfg["num_residual_blocks"], 64 * cfg["in_channels"]).double().eval()
    sd15._load_strict(o_t2i, load("t2i_adapter/tencentarc.safetensors"), "tencent t2i")
    o_light = cpub.TencentAdapterLight(lcfg["channels"], lcfg["num_residual_blocks"],
                                       64 * lcfg["in_channels"]).double().eval()
    sd15._load_strict(o_light, load("t2i_adapter_light/tencentarc.safetensors"), "tencent light")

    x, t, e = inputs["x"].double(), inputs["timestep"], inputs["clip_text_embedding"].double()

    def cond(k):
        return inputs[k].double()

    agree = {}
    with torch.no_grad():
        da = d_cn("controlnet_a")
        # ControlNet: the condition [1,...] repeated to the batch, as diffusers' pipeline does
        # under guidance (prepare_image: repeat_interleave, then torch.cat([image] * 2))
        rep = {k: cond(k).expand(2, -1, -1, -1) if cond(k).shape[0] == 1 else cond(k) for k in inputs
               if k.startswith("condition")}
        down, mid = da(x, t, e, rep["condition_a"], 1.0)
        agree["controlnet A residuals (diffusers ControlNetModel)"] = max(
            sd15.rel(r, g) for r, g in zip(down + [mid], residuals_a))
        outs = l_cn(x, rep["condition_a"], t, e)
        agree["controlnet A residuals (cldm ControlNet)"] = max(sd15.rel(r, g) for r, g in zip(outs, residuals_a))
        agree["base (diffusers UNet)"] = sd15.rel(cpub.diffusers_unet_forward(d_unet, x, t, e), gold["base"])
        agree["base (LDM UNet)"] = sd15.rel(cpub.ldm_unet_forward(l_unet, x, t, e), gold["base"])
        for name, (scale, ck) in {"controlnet_a_1.0": (1.0, "condition_a"), "controlnet_a_0.5": (0.5, "condition_a"),
                                  "controlnet_a_per_half": (1.0, "condition_a2")}.items():
            down, mid = da(x, t, e, rep[ck], scale)
            agree[f"{name} (diffusers)"] = sd15.rel(cpub.diffusers_unet_forward(d_unet, x, t, e, down, mid), gold[name])
            outs = [o * scale for o in l_cn(x, rep[ck], t, e)]
            agree[f"{name} (cldm)"] = sd15.rel(cpub.ldm_unet_forward(l_unet, x, t, e, control=outs), gold[name])
        outs = [a * 0.8 + b * 0.6
                for a, b in zip(l_cn(x, rep["condition_a"], t, e), l_cn_b(x, rep["condition_b"], t, e))]
        agree["controlnet_a_b (cldm A + cldm B, outputs summed)"] = sd15.rel(
            cpub.ldm_unet_forward(l_unet, x, t, e, control=outs), gold["controlnet_a_b"])
        down, mid = cpub.multi_controlnet([da(x, t, e, rep["condition_a"], 0.8),
                                           ([o * 0.6 for o in l_cn_b(x, rep["condition_b"], t, e)[:12]],
                                            l_cn_b(x, rep["condition_b"], t, e)[12] * 0.6)])
        agree["controlnet_a_b (diffusers A + cldm B, MultiControlNet sum)"] = sd15.rel(
            cpub.diffusers_unet_forward(d_unet, x, t, e, down, mid), gold["controlnet_a_b"])
        for name, adapter, scale in (("t2i_adapter", d_t2i, 1.0), ("t2i_adapter_0.7", d_t2i, 0.7),
                                     ("t2i_adapter_light", d_light, 1.0)):
            feats = [f * scale for f in adapter(cond("condition_t2i"))]
            agree[f"{name} (diffusers)"] = sd15.rel(
                cpub.diffusers_unet_forward(d_unet, x, t, e, down_intrablock_additional_residuals=feats), gold[name])
        for name, adapter in (("t2i_adapter", o_t2i), ("t2i_adapter_light", o_light)):
            feats = adapter(cond("condition_t2i"))
            ref = feats_gold[name]["t" if name == "t2i_adapter" else "l"]
            agree[f"{name} features (TencentARC)"] = max(sd15.rel(a, b) for a, b in zip(feats, ref))
            agree[f"{name} (TencentARC + LDM UNet)"] = sd15.rel(
                cpub.ldm_unet_forward(l_unet, x, t, e, features_adapter=feats), gold[name])
        down, mid = da(x, t, e, rep["condition_a"], 1.0)
        feats = [f * 0.5 for f in d_t2i(cond("condition_t2i"))]
        agree["controlnet_a_t2i_adapter (diffusers)"] = sd15.rel(
            cpub.diffusers_unet_forward(d_unet, x, t, e, down, mid, feats), gold["controlnet_a_t2i_adapter"])
        outs = l_cn(x, rep["condition_a"], t, e)
        feats = [f * 0.5 for f in o_t2i(cond("condition_t2i"))]
        agree["controlnet_a_t2i_adapter (cldm + TencentARC)"] = sd15.rel(
            cpub.ldm_unet_forward(l_unet, x, t, e, control=outs, features_adapter=feats),
            gold["controlnet_a_t2i_adapter"])
        # the comparison can fail: two same-shaped zero convs swapped, two T2I levels' blocks swapped
        sw = load("controlnet_a/diffusers/diffusion_pytorch_model.safetensors")
        for s in ("weight", "bias"):
            k1, k2 = f"controlnet_down_blocks.1.{s}", f"controlnet_down_blocks.2.{s}"
            sw[k1], sw[k2] = sw[k2], sw[k1]
        sd15._load_strict(da, sw, "swapped")
        down, mid = da(x, t, e, rep["condition_a"], 1.0)
        agree["sanity: zero convs 1 and 2 swapped (must differ)"] = sd15.rel(
            cpub.diffusers_unet_forward(d_unet, x, t, e, down, mid), gold["controlnet_a_1.0"])
        sw = load("t2i_adapter/diffusers/diffusion_pytorch_model.safetensors")
        for s in ("weight", "bias"):
            k1, k2 = f"adapter.body.2.resnets.0.block1.{s}", f"adapter.body.3.resnets.0.block1.{s}"
            sw[k1], sw[k2] = sw[k2], sw[k1]
        sd15._load_strict(d_t2i, sw, "swapped t2i")
        feats = d_t2i(cond("condition_t2i"))
        agree["sanity: T2I levels 2/3 block1 swapped (must differ)"] = sd15.rel(
            cpub.diffusers_unet_forward(d_unet, x, t, e, down_intrablock_additional_residuals=feats),
            gold["t2i_adapter"])
    return agree


def main():
    ap = argparse.ArgumentParser(description="SD1.5 ControlNet and T2I-Adapter goldens (see the docstring)")
    ap.add_argument("--check-keys", action="store_true", help="only the full-size counts and key maps")
    ap.add_argument("--out", default=OUT, help="output folder (testdata/sd15/control)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.check_keys:
        check_full_size()
    else:
        reduced(args.out)


if __name__ == "__main__":
    main()
