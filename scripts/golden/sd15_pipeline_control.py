#!/usr/bin/python3
"""Stable Diffusion 1.5 text-to-image with ControlNets and T2I-Adapters as Refiners runs it, in
PyTorch: the goldens of `sd15 generate --controlnet/--t2i-adapter` (package sd15, cmd/sd15), on
the reduced models.

The pipeline is sd15_pipeline.py's (Refiners' LatentDiffusionModel, solvers.py's solvers,
classifier-free guidance on a batch of two); the adapters are sd15_control.py's transcriptions
of Refiners' SD1ControlnetAdapter and SD1T2IAdapter, injected into the UNet in the order of the
flags (so that, as in Refiners, a ControlNet given later runs first and adds its residuals
first). A condition image is prepared as a Refiners user does it: PIL's Image.resize to the
output size (its default filter, bicubic), then image_to_tensor (/255, [1, 3, H, W] in [0, 1]);
one condition serves both halves of the guided batch (Refiners broadcasts the condition
encoder's [1, …] output over the batch; the T2I features, computed once, likewise). LoRAs, as in
sd15_pipeline.py, are unmerged branches on the UNet only.

The adapters' reduced weights are those under testdata/sd15/control (sd15_control.py writes
them), read back from the files the flags name.

Writes testdata/sd15_pipeline/control/CASE.safetensors (run from the repository root:
/usr/bin/python3 scripts/golden/sd15_pipeline_control.py): the noise x, the golden latents and
image, and in the metadata "args", the sd15 generate flags (CHECKPOINT, NOISE, CONTROL/ for
testdata/sd15/control/, IMAGES/ for testdata/images/ and TESTDATA/ for testdata/sd15_pipeline/
are placeholders the Go tests replace).
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import sd15  # noqa: E402
import sd15_control as C  # noqa: E402
import sd15_pipeline as P  # noqa: E402

ROOT = P.ROOT
OUT = os.path.join(P.OUT, "control")
CONTROL = os.path.join(ROOT, "testdata", "sd15", "control")
IMAGES = os.path.join(ROOT, "testdata", "images")


def load_controlnet(rel_path, name):
    """A reduced ControlNet from its file under CONTROL, in whichever layout rel_path holds."""
    maps = C.model_keymaps(C.build_controlnet(C.REDUCED_CN), C.build_t2i(C.REDUCED_T2I),
                           C.build_t2i_light(C.REDUCED_T2I_LIGHT), C.REDUCED_T2I, C.REDUCED_T2I_LIGHT)
    path = os.path.join(CONTROL, rel_path)
    if os.path.isdir(path):
        path = os.path.join(path, "diffusion_pytorch_model.safetensors")
        sd = sd15.from_layout(maps["controlnet"], {k: v.float() for k, v in st.load(path)[0].items()}, 2)
    elif rel_path.endswith("refiners.safetensors"):
        sd = {k: v.float() for k, v in st.load(path)[0].items()}
    else:
        sd = sd15.from_layout(maps["controlnet"], {k: v.float() for k, v in st.load(path)[0].items()}, 1)
    return sd


def load_t2i(rel_path, light):
    maps = C.model_keymaps(C.build_controlnet(C.REDUCED_CN), C.build_t2i(C.REDUCED_T2I),
                           C.build_t2i_light(C.REDUCED_T2I_LIGHT), C.REDUCED_T2I, C.REDUCED_T2I_LIGHT)
    key = "t2i_adapter_light" if light else "t2i_adapter"
    path = os.path.join(CONTROL, rel_path)
    if os.path.isdir(path):
        sd = sd15.from_layout(maps[key], {k: v.float() for k, v in st.load(
            os.path.join(path, "diffusion_pytorch_model.safetensors"))[0].items()}, 2)
    elif rel_path.endswith("refiners.safetensors"):
        sd = {k: v.float() for k, v in st.load(path)[0].items()}
    else:
        sd = sd15.from_layout(maps[key], {k: v.float() for k, v in st.load(path)[0].items()}, 1)
    enc = C.build_t2i_light(C.REDUCED_T2I_LIGHT) if light else C.build_t2i(C.REDUCED_T2I)
    enc.load_state_dict(sd)
    return enc


def condition(image_name, width, height):
    """Refiners' user side: PIL resize (bicubic) to the output size, image_to_tensor."""
    img = Image.open(os.path.join(IMAGES, image_name)).convert("RGB").resize((width, height))
    return torch.tensor(np.array(img).astype(np.float32).transpose(2, 0, 1) / 255.0).unsqueeze(0)


class ControlledModels(P.Models):
    """The reduced models, the UNet run with the adapters injected and their inputs given."""

    def __init__(self, base, conditions, features):
        super().__init__(base.clip, base.unet, base.ae, base.embedding_dim)
        self.conditions, self.features = conditions, features

    def predict(self, x, timestep, embedding):
        return C.run_unet(self.unet, x, timestep, embedding, self.conditions, self.features)


# Each case: name, adapters [(kind, file under CONTROL, image, scale or None)], solver, steps,
# guidance, noise seed, LoRAs [(file under TESTDATA, scale)].
CASES = [
    ("controlnet", [("cn", "controlnet_a/diffusers", "astronaut.png", None)], "dpm", 3, 7.5, 21, []),
    ("controlnet_stacked", [("cn", "controlnet_a/single-file.safetensors", "astronaut.png", 0.8),
                            ("cn", "controlnet_b/single-file.safetensors", "coffee.png", 0.6)], "ddim", 3, 7.5, 22, []),
    ("t2i_adapter", [("t2i", "t2i_adapter/tencentarc.safetensors", "coffee.png", 0.7)], "dpm", 3, 7.5, 23, []),
    ("controlnet_t2i_lora", [("cn", "controlnet_a/refiners.safetensors", "coffee.png", 1.2),
                             ("light", "t2i_adapter_light/diffusers", "astronaut.png", 0.5)], "dpm", 3, 5.0, 24,
     [("lora_kohya.safetensors", 0.8)]),
]


def main():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(OUT, exist_ok=True)
    base = P.reduced_models(P.WEIGHTS)
    loras = {}
    for name, naming, picks, rank, seed, alpha in (("lora_kohya", "kohya", (P.UNET_PICKS_A, P.CLIP_PICKS_A), 4, 100, 2.0),):
        tensors, branches = P.make_lora(P.lora_targets(base, *picks), naming, rank, seed, alpha)
        # the same LoRA as sd15_pipeline.py writes (same seed): check it is that file's
        saved = st.load(os.path.join(P.OUT, name + ".safetensors"))[0]
        assert all(torch.equal(saved[k].float(), v.float()) for k, v in tensors.items()), "lora_kohya differs"
        loras[name + ".safetensors"] = branches
    width = height = P.SIZE
    for name, adapters, solver, steps, guidance, seed, use in CASES:
        conditions, features, injected, args = {}, {}, [], []
        for i, (kind, rel, image, scale) in enumerate(adapters):
            cond = condition(image, width, height)
            tag = f"{kind}{i}"
            s = 1.0 if scale is None else scale
            flag = "--controlnet" if kind == "cn" else "--t2i-adapter"
            args += [flag, f"CONTROL/{rel}:IMAGES/{image}" + ("" if scale is None else f":{scale}")]
            if kind == "cn":
                a = C.SD1ControlnetAdapter(base.unet, tag, s, cfg=C.REDUCED_CN, weights=load_controlnet(rel, tag))
                conditions[tag] = cond
            else:
                enc = load_t2i(rel, kind == "light")
                a = C.SD1T2IAdapter(base.unet, tag, enc, s)
                features[tag] = a.compute_condition_features(cond)
            injected.append(a.inject())
        handles = []
        for lname, scale in use:
            handles += P.attach(loras[lname], scale)
            args += ["--lora", f"TESTDATA/{lname}:{scale}"]
        shape = (1, 4, height // 8, width // 8)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        models = ControlledModels(base, conditions, features)
        latents, pixels = P.generate(models, P.PROMPT, "", steps, solver, guidance, noise)
        for h in handles:
            h.remove()
        for a in reversed(injected):
            a.eject()
        flags = ["--checkpoint", "CHECKPOINT", "--prompt", P.PROMPT, "--width", str(width), "--height", str(height)]
        flags += args + ["--noise", "NOISE", "--steps", str(steps), "--solver", solver, "--guidance", str(guidance)]
        tensors = {"x": noise.contiguous(), "latents": latents.contiguous(),
                   "image": torch.tensor(pixels.astype(np.float32))}
        st.save(os.path.join(OUT, name + ".safetensors"), tensors, {"args": json.dumps(flags)})
        print(f"  {name:20} |latents| max {latents.abs().max():.4f}  image mean {pixels.mean():.1f}")
    # the base generation with the same noise as the first case, to show the control changes it
    noise = torch.randn((1, 4, height // 8, width // 8), generator=torch.Generator().manual_seed(CASES[0][5]))
    latents, _ = P.generate(base, P.PROMPT, "", CASES[0][3], CASES[0][2], CASES[0][4], noise)
    st.save(os.path.join(OUT, "no_control_latents.safetensors"), {"latents": latents.contiguous()})


if __name__ == "__main__":
    main()
