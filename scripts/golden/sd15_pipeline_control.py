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

Writes testdata/sd15_pipeline/control/t2i_gray_weights.safetensors (a reduced one-channel
T2I-Adapter, TencentARC's layout, random weights) and CASE.safetensors (run from the repository root:
/usr/bin/python3 scripts/golden/sd15_pipeline_control.py): the noise x, the golden latents and
image, and in the metadata "args", the sd15 generate flags (CHECKPOINT, NOISE, CONTROL/ for
testdata/sd15/control/, IMAGES/ for testdata/images/ and TESTDATA/ for testdata/sd15_pipeline/
are placeholders the Go tests replace).

Full size (not in CI; a check that the full-size packages run and agree):
  --full CHECKPOINT --full-dir DIR writes into DIR a random full-size ControlNet (lllyasviel's
  single-file layout, float16) and T2I-Adapter (TencentARC's layout) unless they are there,
  runs a 64x64, 2-step DPM generation with both from the full-size single file CHECKPOINT
  (sd15.py --full writes a random one), and writes DIR/golden.safetensors (x, latents, args
  with CHECKPOINT, NOISE and DIR/ placeholders) for `sd15 generate` to be compared with.
"""
import argparse
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


REDUCED_T2I_GRAY = dict(C.REDUCED_T2I, in_channels=1)
GRAY_T2I = "t2i_gray_weights.safetensors"  # under OUT: the reduced one-channel T2I-Adapter


def gray_t2i_maps(enc):
    return C.model_keymaps(C.build_controlnet(C.REDUCED_CN), enc, C.build_t2i_light(C.REDUCED_T2I_LIGHT),
                           REDUCED_T2I_GRAY, C.REDUCED_T2I_LIGHT)["t2i_adapter"]


def write_gray_t2i():
    """A reduced one-channel T2I-Adapter (TencentARC's sd15v2 canny and sketch adapters take
    a gray condition) with random float16-exact weights, in TencentARC's layout."""
    enc = C.build_t2i(REDUCED_T2I_GRAY)
    sd15.randomize(enc, 45)
    sd15.f16_exact(enc.state_dict())
    st.save(os.path.join(OUT, GRAY_T2I), sd15.half(sd15.to_ldm(gray_t2i_maps(enc), enc.state_dict())))


def load_gray_t2i():
    enc = C.build_t2i(REDUCED_T2I_GRAY)
    sd = {k: v.float() for k, v in st.load(os.path.join(OUT, GRAY_T2I))[0].items()}
    enc.load_state_dict(sd15.from_layout(gray_t2i_maps(enc), sd, 1))
    return enc


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


def condition(image_name, width, height, mode="RGB"):
    """Refiners' user side: PIL resize (bicubic) to the output size, image_to_tensor; for a
    one-channel adapter, convert("L") first."""
    img = Image.open(os.path.join(IMAGES, image_name)).convert(mode).resize((width, height))
    a = np.array(img).astype(np.float32)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.tensor(a / 255.0).unsqueeze(0)


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
    ("t2i_adapter_gray", [("gray", GRAY_T2I, "astronaut.png", 0.9)], "ddim", 3, 7.5, 25, []),
]


def full(checkpoint, out_dir):
    """The full-size check: random full-size adapters, one generation, its golden."""
    os.makedirs(out_dir, exist_ok=True)
    cn_path = os.path.join(out_dir, "controlnet.safetensors")
    t2i_path = os.path.join(out_dir, "t2i_adapter.safetensors")
    with sd15.fl.on_device("meta"):
        maps = C.model_keymaps(C.build_controlnet(C.FULL_CN), C.build_t2i(C.FULL_T2I),
                               C.build_t2i_light(C.FULL_T2I_LIGHT), C.FULL_T2I, C.FULL_T2I_LIGHT)
    if not os.path.exists(cn_path):
        cn = C.build_controlnet(C.FULL_CN, "f")
        sd15.randomize(cn, 61)
        st.save(cn_path, sd15.half(sd15.to_ldm(maps["controlnet"], cn.state_dict())))
        del cn
    if not os.path.exists(t2i_path):
        t2i = C.build_t2i(C.FULL_T2I)
        sd15.randomize(t2i, 62)
        st.save(t2i_path, sd15.half(sd15.to_ldm(maps["t2i_adapter"], t2i.state_dict())))
        del t2i
    base = P.full_models(checkpoint)
    width = height = 64
    cn = C.SD1ControlnetAdapter(base.unet, "f", 0.9, cfg=C.FULL_CN, weights=sd15.from_layout(
        maps["controlnet"], {k: v.float() for k, v in st.load(cn_path)[0].items()}, 1))
    enc = C.build_t2i(C.FULL_T2I)
    enc.load_state_dict(sd15.from_layout(maps["t2i_adapter"], {k: v.float() for k, v in st.load(t2i_path)[0].items()}, 1))
    t2i = C.SD1T2IAdapter(base.unet, "t", enc, 0.7)
    features = {"t": t2i.compute_condition_features(condition("coffee.png", width, height))}
    cn.inject()
    t2i.inject()
    noise = torch.randn((1, 4, height // 8, width // 8), generator=torch.Generator().manual_seed(31))
    models = ControlledModels(base, {"f": condition("astronaut.png", width, height)}, features)
    latents, pixels = P.generate(models, P.PROMPT, "", 2, "dpm", 7.5, noise, size=(width, height))
    flags = ["--checkpoint", "CHECKPOINT", "--prompt", P.PROMPT, "--width", str(width), "--height", str(height),
             "--controlnet", "DIR/controlnet.safetensors:IMAGES/astronaut.png:0.9",
             "--t2i-adapter", "DIR/t2i_adapter.safetensors:IMAGES/coffee.png:0.7",
             "--noise", "NOISE", "--steps", "2", "--solver", "dpm", "--guidance", "7.5"]
    st.save(os.path.join(out_dir, "golden.safetensors"),
            {"x": noise.contiguous(), "latents": latents.contiguous(), "image": torch.tensor(pixels.astype(np.float32))},
            {"args": json.dumps(flags)})
    print(f"full size: |latents| max {latents.abs().max():.4f}; wrote {out_dir}/golden.safetensors")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", metavar="CHECKPOINT", help="the full-size check from this single file")
    ap.add_argument("--full-dir", default="out/sd15_control_full", help="with --full: the folder of its files")
    a = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if a.full:
        full(a.full, a.full_dir)
        return
    os.makedirs(OUT, exist_ok=True)
    base = P.reduced_models(P.WEIGHTS)
    loras = {}
    for name, naming, picks, rank, seed, alpha in (("lora_kohya", "kohya", (P.UNET_PICKS_A, P.CLIP_PICKS_A), 4, 100, 2.0),):
        tensors, branches = P.make_lora(P.lora_targets(base, *picks), naming, rank, seed, alpha)
        # the same LoRA as sd15_pipeline.py writes (same seed): check it is that file's
        saved = st.load(os.path.join(P.OUT, name + ".safetensors"))[0]
        assert all(torch.equal(saved[k].float(), v.float()) for k, v in tensors.items()), "lora_kohya differs"
        loras[name + ".safetensors"] = branches
    write_gray_t2i()
    width = height = P.SIZE
    for name, adapters, solver, steps, guidance, seed, use in CASES:
        conditions, features, injected, args = {}, {}, [], []
        for i, (kind, rel, image, scale) in enumerate(adapters):
            cond = condition(image, width, height, "L" if kind == "gray" else "RGB")
            tag = f"{kind}{i}"
            s = 1.0 if scale is None else scale
            flag = "--controlnet" if kind == "cn" else "--t2i-adapter"
            where = "TESTDATA/control/" if kind == "gray" else "CONTROL/"
            args += [flag, f"{where}{rel}:IMAGES/{image}" + ("" if scale is None else f":{scale}")]
            if kind == "gray":
                a = C.SD1T2IAdapter(base.unet, tag, load_gray_t2i(), s)
                features[tag] = a.compute_condition_features(cond)
            elif kind == "cn":
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
