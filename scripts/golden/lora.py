#!/usr/bin/python3
"""LoRA goldens: a small ViT (vit.py's fluxion-named re-implementation) with LoRA adapters,
computed with Refiners' LinearLora/Conv2dLora math:

    y = target(x) + scale * (alpha / rank) * up(down(x))

where down and up are bias-free Linear layers (LinearLora), or for a Conv2d target a
Conv2d with the target's kernel, stride and padding followed by a 1x1 Conv2d (Conv2dLora).
Stacked LoRAs add their branches to the target's output, the one injected last first.

LoRAs (each adapts every Linear of every Attention: Distribute.Linear_1..3 and the output
Linear, in both layers, except c):
  a: rank 3, alpha 2.0, scale 0.8
  b: rank 2, alpha 5.0, scale 1.3 (stacked on a)
  c: Conv2dLora on the patch-embedding Conv2d, rank 2, alpha 1.5, scale 0.6

Each LoRA is written twice with the same numbers:
  - kohya / sd-webui naming, lora_<name>_<F>.lora_down.weight, .lora_up.weight, .alpha, where
    F is the layer's checkpoint key with dots replaced by underscores, e.g.
    lora_vit_Chain_1_Residual_1_Attention_Distribute_Linear_1.lora_down.weight;
  - PEFT naming in a PEFT directory (adapter_model.safetensors + adapter_config.json),
    base_model.model.<key>.lora_A.weight (down) and .lora_B.weight (up); alpha in the config.

Writes under testdata/golden/:
  lora_weights.safetensors   the base ViT (Refiners keys)
  lora_input.safetensors     x
  lora_output.safetensors    y_base, y_a, y_ab, y_c; the scales in the metadata
  lora_{a,b,c}_kohya.safetensors, lora_{a,b}_peft/{adapter_model.safetensors,adapter_config.json}
Run from the repository root: /usr/bin/python3 scripts/golden/lora.py
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import vit  # noqa: E402

OUT = vit.OUT
CFG = dict(embedding_dim=18, patch_size=4, image_size=12, num_layers=2, num_heads=3)


def attention_linear_keys():
    keys = []
    for i in range(1, CFG["num_layers"] + 1):
        att = f"Chain_{i}.Residual_1.Attention"
        keys += [f"{att}.Distribute.Linear_{j}" for j in (1, 2, 3)] + [f"{att}.Linear"]
    return keys


class LoraWrap(torch.nn.Module):
    """target(x) plus the branches of the LoRAs in self.loras, the last injected first."""

    def __init__(self, target, conv=False):
        super().__init__()
        self.target, self.conv, self.loras = target, conv, []

    def branch(self, lora, x):
        down, up, alpha, scale = lora
        rank = down.shape[0]
        if self.conv:
            t = self.target
            h = F.conv2d(x, down, stride=t.stride, padding=t.padding, dilation=t.dilation)
            h = F.conv2d(h, up)
        else:
            h = F.linear(F.linear(x, down), up)
        return h * (alpha / rank) * scale

    def forward(self, x):
        y = self.target(x)
        for lora in reversed(self.loras):
            y = y + self.branch(lora, x)
        return y


def module_at(model, key):
    m = model
    for part in key.split("."):
        m = getattr(m, part)
    return m


def wrap(model, key, conv=False):
    parent_key, _, name = key.rpartition(".")
    parent = module_at(model, parent_key) if parent_key else model
    w = LoraWrap(getattr(parent, name), conv)
    parent._modules[name] = w  # keeps the position (and so the Chain's order)
    return w


def make_lora(shapes, rank, alpha, gen):
    """shapes: key -> (down shape, up shape); returns key -> (down, up, alpha)."""
    out = {}
    for key, (dshape, ushape) in shapes.items():
        down = torch.randn(*dshape, generator=gen) * 0.3
        up = torch.randn(*ushape, generator=gen) * 0.2
        out[key] = (down, up, alpha)
    return out


def save_kohya(path, lora):
    tensors = {}
    for key, (down, up, alpha) in lora.items():
        stem = "lora_vit_" + key.replace(".", "_")
        tensors[stem + ".lora_down.weight"] = down
        tensors[stem + ".lora_up.weight"] = up
        tensors[stem + ".alpha"] = torch.tensor(alpha, dtype=torch.float16)  # a scalar, as kohya writes it
    st.save(path, tensors, {"ss_network_module": "networks.lora"})


def save_peft(directory, lora, rank, alpha):
    os.makedirs(directory, exist_ok=True)
    tensors = {}
    for key, (down, up, _) in lora.items():
        tensors[f"base_model.model.{key}.lora_A.weight"] = down
        tensors[f"base_model.model.{key}.lora_B.weight"] = up
    st.save(os.path.join(directory, "adapter_model.safetensors"), tensors)
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": sorted(lora), "bias": "none"}
    with open(os.path.join(directory, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(2024)
    model = vit.vit(**CFG).eval()
    vit.randomize_norms(model)
    base = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, CFG["image_size"], CFG["image_size"])

    gen = torch.Generator().manual_seed(77)
    d = CFG["embedding_dim"]
    lin = {k: ((3, d), (d, 3)) for k in attention_linear_keys()}
    lora_a = make_lora(lin, 3, 2.0, gen)
    lin = {k: ((2, d), (d, 2)) for k in attention_linear_keys()}
    lora_b = make_lora(lin, 2, 5.0, gen)
    p = CFG["patch_size"]
    lora_c = make_lora({"Conv2d": ((2, 3, p, p), (d, 2, 1, 1))}, 2, 1.5, gen)
    scales = {"a": 0.8, "b": 1.3, "c": 0.6}

    wraps = {k: wrap(model, k) for k in attention_linear_keys()}
    conv = wrap(model, "Conv2d", conv=True)
    outputs = {}
    with torch.no_grad():
        outputs["y_base"] = model(x)
        for k, w in wraps.items():
            w.loras = [(*lora_a[k], scales["a"])]
        outputs["y_a"] = model(x)
        for k, w in wraps.items():
            w.loras = [(*lora_a[k], scales["a"]), (*lora_b[k], scales["b"])]
        outputs["y_ab"] = model(x)
        for w in wraps.values():
            w.loras = []
        conv.loras = [(*lora_c["Conv2d"], scales["c"])]
        outputs["y_c"] = model(x)

    st.save(os.path.join(OUT, "lora_weights.safetensors"), base)
    st.save(os.path.join(OUT, "lora_input.safetensors"), {"x": x})
    meta = {f"scale_{k}": repr(v) for k, v in scales.items()}
    meta["config"] = json.dumps(CFG, sort_keys=True)
    st.save(os.path.join(OUT, "lora_output.safetensors"), {k: v.contiguous() for k, v in outputs.items()}, meta)
    save_kohya(os.path.join(OUT, "lora_a_kohya.safetensors"), lora_a)
    save_kohya(os.path.join(OUT, "lora_b_kohya.safetensors"), lora_b)
    save_kohya(os.path.join(OUT, "lora_c_kohya.safetensors"), lora_c)
    save_peft(os.path.join(OUT, "lora_a_peft"), lora_a, 3, 2.0)
    save_peft(os.path.join(OUT, "lora_b_peft"), lora_b, 2, 5.0)
    for k, v in outputs.items():
        print(k, tuple(v.shape), "max|y - y_base|", float((v - outputs["y_base"]).abs().max()))


if __name__ == "__main__":
    main()
