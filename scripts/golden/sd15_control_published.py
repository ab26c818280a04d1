"""ControlNet and T2I-Adapter for SD1.5 in the PUBLISHED structures: the independent check of
sd15_control.py.

Written from the maths of the original code, not from Refiners:
  - diffusers models/controlnets/controlnet.py (ControlNetModel, ControlNetConditioningEmbedding),
    models/unets/unet_2d_condition.py (UNet2DConditionModel.forward: down_block_additional_residuals,
    mid_block_additional_residual, down_intrablock_additional_residuals), unet_2d_blocks.py
    (CrossAttnDownBlock2D's additional_residuals), models/adapter.py (T2IAdapter, FullAdapter,
    AdapterBlock, AdapterResnetBlock, LightAdapter, LightAdapterBlock, LightAdapterResnetBlock);
  - lllyasviel ControlNet cldm/cldm.py (ControlNet: time_embed, input_hint_block, input_blocks,
    zero_convs, middle_block, middle_block_out; ControlledUnetModel.forward);
  - TencentARC T2I-Adapter ldm/modules/encoders/adapter.py (Adapter with ResnetBlock(ksize=1,
    sk=True, use_conv=False), Adapter_light with extractor / ResnetBlock_light) and its UNet
    forward (features added after input_blocks[id] for (id + 1) % 3 == 0, before hs.append).
Each model's attribute names are the checkpoint's, so a published state_dict loads BY ITS OWN
NAMES (load_state_dict strict). The UNet building blocks come from sd15_published (same
independence: nothing here imports fluxion.py, sd15.py or sd15_control.py).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import sd15_published as pub


# ------------------------------------------------------------------ diffusers ControlNetModel

class ControlNetConditioningEmbedding(nn.Module):
    def __init__(self, embedding_channels, conditioning_channels=3, block_out_channels=(16, 32, 96, 256)):
        super().__init__()
        self.conv_in = nn.Conv2d(conditioning_channels, block_out_channels[0], 3, padding=1)
        self.blocks = nn.ModuleList()
        for i in range(len(block_out_channels) - 1):
            cin, cout = block_out_channels[i], block_out_channels[i + 1]
            self.blocks.append(nn.Conv2d(cin, cin, 3, padding=1))
            self.blocks.append(nn.Conv2d(cin, cout, 3, padding=1, stride=2))
        self.conv_out = nn.Conv2d(block_out_channels[-1], embedding_channels, 3, padding=1)

    def forward(self, cond):
        h = F.silu(self.conv_in(cond))
        for block in self.blocks:
            h = F.silu(block(h))
        return self.conv_out(h)


class ControlNetModel(nn.Module):
    """diffusers ControlNetModel for SD1.5 (down path and mid block of UNet2DConditionModel,
    conditioning embedding, 1x1 'zero' convolutions); forward returns (13 down residuals scaled,
    mid residual scaled), as ControlNetModel.forward with guess_mode False."""

    def __init__(self, in_channels, block_out_channels, cross_attention_dim, attention_heads, norm_num_groups,
                 conditioning_embedding_out_channels):
        super().__init__()
        u = pub.UNet2DConditionModel(in_channels, block_out_channels, cross_attention_dim, attention_heads,
                                     norm_num_groups)
        self.c0 = block_out_channels[0]
        self.conv_in = u.conv_in
        self.time_embedding = u.time_embedding
        self.controlnet_cond_embedding = ControlNetConditioningEmbedding(
            block_out_channels[0], 3, conditioning_embedding_out_channels)
        self.down_blocks = u.down_blocks
        widths = [block_out_channels[0]]
        for i, w in enumerate(block_out_channels):
            widths += [w, w] + ([w] if i < len(block_out_channels) - 1 else [])
        self.controlnet_down_blocks = nn.ModuleList(nn.Conv2d(w, w, 1) for w in widths)
        self.controlnet_mid_block = nn.Conv2d(block_out_channels[-1], block_out_channels[-1], 1)
        self.mid_block = u.mid_block

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale=1.0):
        temb = pub.time_embedding(self.time_embedding, self.c0, timestep, sample)
        h = self.conv_in(sample)
        h = h + self.controlnet_cond_embedding(controlnet_cond)
        h, res = pub.down_path(self.down_blocks, h, temb, encoder_hidden_states)
        h = pub.mid_path(self.mid_block, h, temb, encoder_hidden_states)
        down = [conv(r) * conditioning_scale for conv, r in zip(self.controlnet_down_blocks, res)]
        return down, self.controlnet_mid_block(h) * conditioning_scale


def multi_controlnet(outputs):
    """diffusers MultiControlNetModel: the residuals of several ControlNets summed in order."""
    down, mid = outputs[0]
    for d, m in outputs[1:]:
        down = [a + b for a, b in zip(down, d)]
        mid = mid + m
    return down, mid


def diffusers_unet_forward(unet, sample, timestep, encoder_hidden_states, down_block_additional_residuals=None,
                           mid_block_additional_residual=None, down_intrablock_additional_residuals=None):
    """UNet2DConditionModel.forward with ControlNet residuals (added to the 12+1 skip samples
    after the down path, and to the mid block's output) and T2I-Adapter features
    (down_intrablock_additional_residuals, added as pub.down_path says)."""
    u, context = unet, encoder_hidden_states
    temb = pub.time_embedding(u.time_embedding, u.c0, timestep, sample)
    h, res = pub.down_path(u.down_blocks, u.conv_in(sample), temb, context, down_intrablock_additional_residuals)
    if down_block_additional_residuals is not None:
        res = [a + b for a, b in zip(res, down_block_additional_residuals)]
    h = pub.mid_path(u.mid_block, h, temb, context)
    if mid_block_additional_residual is not None:
        h = h + mid_block_additional_residual
    h = pub.up_path(u.up_blocks, h, res, temb, context)
    return u.conv_out(F.silu(u.conv_norm_out(h)))


# ------------------------------------------------------------------- lllyasviel cldm names

class LDMControlNet(nn.Module):
    """cldm.ControlNet for SD1.5 (the keys of a control_v11*_sd15_* file without the
    'control_model.' prefix). forward returns the 13 outputs (12 zero_convs, middle_block_out)."""

    def __init__(self, in_channels, channels, context_dim, heads, groups, hint_channels=(16, 32, 96, 256)):
        super().__init__()
        u = pub.LDMUNetModel(in_channels, channels, context_dim, heads, groups)
        self.model_channels = u.model_channels
        self.time_embed = u.time_embed
        self.input_blocks = u.input_blocks
        widths = [channels[0]]
        for i, w in enumerate(channels):
            widths += [w, w] + ([w] if i < len(channels) - 1 else [])
        self.zero_convs = nn.ModuleList(nn.ModuleList([nn.Conv2d(w, w, 1)]) for w in widths)
        hc = hint_channels
        layers = [nn.Conv2d(3, hc[0], 3, padding=1), nn.SiLU()]
        for i in range(len(hc) - 1):
            layers += [nn.Conv2d(hc[i], hc[i], 3, padding=1), nn.SiLU(),
                       nn.Conv2d(hc[i], hc[i + 1], 3, padding=1, stride=2), nn.SiLU()]
        layers.append(nn.Conv2d(hc[-1], channels[0], 3, padding=1))
        self.input_hint_block = nn.Sequential(*layers)
        self.middle_block = u.middle_block
        self.middle_block_out = nn.ModuleList([nn.Conv2d(channels[-1], channels[-1], 1)])

    def forward(self, x, hint, timesteps, context):
        timesteps = timesteps.expand(x.shape[0])
        emb = self.time_embed(pub.sinusoidal(timesteps, self.model_channels).to(x.dtype))
        guided_hint = self.input_hint_block(hint)
        outs, h = [], x
        for module, zero_conv in zip(self.input_blocks, self.zero_convs):
            h = module(h, emb, context)
            if guided_hint is not None:
                h = h + guided_hint  # cldm: h += guided_hint after input_blocks[0]
                guided_hint = None
            outs.append(zero_conv[0](h))
        h = self.middle_block(h, emb, context)
        outs.append(self.middle_block_out[0](h))
        return outs


def ldm_unet_forward(unet, x, timesteps, context, control=None, features_adapter=None):
    """cldm.ControlledUnetModel.forward (control: 13 tensors, already scaled: the last is added
    to the middle block's output, the others to the skips as they are popped) combined with
    TencentARC's UNet forward (features_adapter: 4 tensors, added to h after input_blocks[id]
    for (id + 1) % 3 == 0, before hs.append)."""
    u = unet
    timesteps = timesteps.expand(x.shape[0])
    emb = u.time_embed(pub.sinusoidal(timesteps, u.model_channels).to(x.dtype))
    hs, h = [], x
    adapter_idx = 0
    for i, block in enumerate(u.input_blocks):
        h = block(h, emb, context)
        if features_adapter is not None and (i + 1) % 3 == 0:
            h = h + features_adapter[adapter_idx]
            adapter_idx += 1
        hs.append(h)
    h = u.middle_block(h, emb, context)
    control = list(control) if control is not None else None
    if control is not None:
        h = h + control.pop()
    for block in u.output_blocks:
        skip = hs.pop()
        if control is not None:
            skip = skip + control.pop()
        h = block(torch.cat([h, skip], dim=1), emb, context)
    return u.out(h)


# --------------------------------------------------------------- diffusers T2IAdapter names

class AdapterResnetBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block1 = nn.Conv2d(c, c, 3, padding=1)
        self.block2 = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return self.block2(F.relu(self.block1(x))) + x


class AdapterBlock(nn.Module):
    def __init__(self, cin, cout, num_res_blocks, down=False):
        super().__init__()
        self.down = down
        if cin != cout:
            self.in_conv = nn.Conv2d(cin, cout, 1)
        self.resnets = nn.Sequential(*[AdapterResnetBlock(cout) for _ in range(num_res_blocks)])

    def forward(self, x):
        if self.down:
            x = F.avg_pool2d(x, 2, 2, ceil_mode=True)
        if hasattr(self, "in_conv"):
            x = self.in_conv(x)
        return self.resnets(x)


def outputs_in_turn(blocks, x):
    """x through the blocks one after the other; returns every block's output (the features)."""
    out = []
    for block in blocks:
        x = block(x)
        out.append(x)
    return out


class FullAdapter(nn.Module):
    def __init__(self, in_channels, channels, num_res_blocks, downscale_factor):
        super().__init__()
        self.f = downscale_factor
        self.conv_in = nn.Conv2d(in_channels * downscale_factor ** 2, channels[0], 3, padding=1)
        self.body = nn.ModuleList([AdapterBlock(channels[0], channels[0], num_res_blocks)] +
                                  [AdapterBlock(channels[i - 1], channels[i], num_res_blocks, down=True)
                                   for i in range(1, len(channels))])

    def forward(self, x):
        return outputs_in_turn(self.body, self.conv_in(F.pixel_unshuffle(x, self.f)))


class LightAdapterResnetBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block1 = nn.Conv2d(c, c, 3, padding=1)
        self.block2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.block2(F.relu(self.block1(x))) + x


class LightAdapterBlock(nn.Module):
    def __init__(self, cin, cout, num_res_blocks, down=False):
        super().__init__()
        mid = cout // 4
        self.down = down
        self.in_conv = nn.Conv2d(cin, mid, 1)
        self.resnets = nn.Sequential(*[LightAdapterResnetBlock(mid) for _ in range(num_res_blocks)])
        self.out_conv = nn.Conv2d(mid, cout, 1)

    def forward(self, x):
        if self.down:
            x = F.avg_pool2d(x, 2, 2, ceil_mode=True)
        return self.out_conv(self.resnets(self.in_conv(x)))


class LightAdapter(nn.Module):
    """channels as in diffusers' config: 3 widths, 4 blocks (the last repeats the last width)."""

    def __init__(self, in_channels, channels, num_res_blocks, downscale_factor):
        super().__init__()
        self.f = downscale_factor
        cin = in_channels * downscale_factor ** 2
        self.body = nn.ModuleList([LightAdapterBlock(cin, channels[0], num_res_blocks)] +
                                  [LightAdapterBlock(channels[i], channels[i + 1], num_res_blocks, down=True)
                                   for i in range(len(channels) - 1)] +
                                  [LightAdapterBlock(channels[-1], channels[-1], num_res_blocks, down=True)])

    def forward(self, x):
        return outputs_in_turn(self.body, F.pixel_unshuffle(x, self.f))


class T2IAdapter(nn.Module):
    """diffusers T2IAdapter: the keys of its diffusion_pytorch_model.safetensors ('adapter.*')."""

    def __init__(self, in_channels=3, channels=(320, 640, 1280, 1280), num_res_blocks=2, downscale_factor=8,
                 adapter_type="full_adapter"):
        super().__init__()
        if adapter_type == "full_adapter":
            self.adapter = FullAdapter(in_channels, channels, num_res_blocks, downscale_factor)
        elif adapter_type == "light_adapter":
            self.adapter = LightAdapter(in_channels, channels, num_res_blocks, downscale_factor)
        else:
            raise ValueError(adapter_type)

    def forward(self, x):
        return self.adapter(x)


# ------------------------------------------------------------ TencentARC original names

class TencentResnetBlock(nn.Module):
    """adapter.ResnetBlock(in_c, out_c, down, ksize=1, sk=True, use_conv=False): the SD1.x
    adapters' setting (in_conv only when the width changes, 1x1 block2, no skep)."""

    def __init__(self, cin, cout, down):
        super().__init__()
        if cin != cout:
            self.in_conv = nn.Conv2d(cin, cout, 1)
        self.block1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.block2 = nn.Conv2d(cout, cout, 1)
        self.down = down

    def forward(self, x):
        if self.down:
            x = F.avg_pool2d(x, 2, 2)
        if hasattr(self, "in_conv"):
            x = self.in_conv(x)
        return self.block2(F.relu(self.block1(x))) + x


class TencentAdapter(nn.Module):
    def __init__(self, channels, nums_rb, cin):
        super().__init__()
        self.body = nn.ModuleList()
        for i in range(len(channels)):
            for j in range(nums_rb):
                if i != 0 and j == 0:
                    self.body.append(TencentResnetBlock(channels[i - 1], channels[i], True))
                else:
                    self.body.append(TencentResnetBlock(channels[i], channels[i], False))
        self.conv_in = nn.Conv2d(cin, channels[0], 3, padding=1)
        self.channels, self.nums_rb = channels, nums_rb

    def forward(self, x):
        x = self.conv_in(F.pixel_unshuffle(x, 8))
        out = []
        for i in range(len(self.channels)):
            for j in range(self.nums_rb):
                x = self.body[i * self.nums_rb + j](x)
            out.append(x)
        return out


class TencentExtractor(nn.Module):
    def __init__(self, cin, inter, cout, nums_rb, down):
        super().__init__()
        self.in_conv = nn.Conv2d(cin, inter, 1)
        # TencentARC's ResnetBlock_light: diffusers' LightAdapterResnetBlock, the same names
        self.body = nn.Sequential(*[LightAdapterResnetBlock(inter) for _ in range(nums_rb)])
        self.out_conv = nn.Conv2d(inter, cout, 1)
        self.down = down

    def forward(self, x):
        if self.down:
            x = F.avg_pool2d(x, 2, 2)
        return self.out_conv(self.body(self.in_conv(x)))


class TencentAdapterLight(nn.Module):
    def __init__(self, channels, nums_rb, cin):
        super().__init__()
        self.body = nn.ModuleList(
            TencentExtractor(cin if i == 0 else channels[i - 1], channels[i] // 4, channels[i], nums_rb, i != 0)
            for i in range(len(channels)))

    def forward(self, x):
        x = F.pixel_unshuffle(x, 8)
        out = []
        for block in self.body:
            x = block(x)
            out.append(x)
        return out
