#!/usr/bin/python3
"""The sd15 pipeline with IP-Adapter (base and plus) and reference-only control, as Refiners
runs them, in PyTorch: the goldens of `sd15 generate --ip-adapter … --ip-image …` and
`--reference …` (package sd15 and the sd15 command, reduced size).

It joins sd15_pipeline.py (Refiners' StableDiffusion_1 text-to-image loop: text encoding,
classifier-free guidance with the negative half first, the solvers, the decoding to 8 bits)
and sd15_ip.py (Refiners' CLIPImageEncoderH, ImageProjection, PerceiverResampler,
SD1IPAdapter's cross-attention adapters and ReferenceOnlyControlAdapter, transcribed there),
on the reduced models of testdata/sd15 and testdata/sd15/ip, loaded from the published
layouts as rfc loads them, computed in float32:

  - IP-Adapter (IPAdapter.compute_clip_image_embedding): the image preprocessed as
    IPAdapter.preprocess_image (PIL bicubic to the encoder's size, no crop, CLIP's mean and
    std); base: the projection of [zero embedding, the image's embedding]; plus: the
    resampler on the encoder's penultimate states of [zero pixels, the image]; the negative
    half first, the same tokens at every step, at the adapter's scale.
  - reference-only (Refiners' e2e test_diffusion_refonly): the reference image resized to the
    output size (PIL bicubic) and encoded (SD1Encoder, scaled latents); at each step the guide
    is solver.add_noise(cat(ref, ref), noise, step) with fresh noise [2, 4, h, w] (negative
    half, then positive), not scaled by scale_model_input; style_cfg is the fidelity.
  - image-to-image (sd15_pipeline.py's): the reference noised at each step run, from the first.
  - both together: the IP-Adapter injected first, so that the reference pass (the structural
    copy of the adapted UNet) runs it too, with the same tokens.
  - guidance 1 (package sd15's batch of one, a departure from Refiners, which always runs two
    halves): the IP-Adapter takes the conditional tokens alone; reference-only blends nothing
    (style_cfg 1 on a batch of one, which is the unblended attention exactly).

Noise: the initial noise, then per step the reference noise [2, 4, h, w] (before the UNet
call), then LCM's noise (after it); from --noise FILE (x, reference_noise [steps, 2, 4, h, w],
step_noise), or from solvers.NoiseSource's stream for --seed in that order.

Writes testdata/sd15_pipeline/ip/CASE.safetensors (run from the repository root with
/usr/bin/python3 scripts/golden/sd15_pipeline_ip.py; needs testdata/sd15 and testdata/sd15/ip):
the noise, the golden latents and image, and the sd15 generate flags in the metadata "args"
(CHECKPOINT, NOISE, TESTDATA/ (testdata/sd15_pipeline/), IP/ (testdata/sd15/ip/) and IMAGES/
(testdata/images/) are placeholders the Go tests replace).
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import solvers as S  # noqa: E402
import sd15  # noqa: E402
import sd15_ip as IP  # noqa: E402
import sd15_pipeline as P  # noqa: E402

ROOT = P.ROOT
OUT = os.path.join(ROOT, "testdata", "sd15_pipeline", "ip")
IPDIR = os.path.join(ROOT, "testdata", "sd15", "ip")
IMAGES = os.path.join(ROOT, "testdata", "images")
FILES = {"base": "ip-adapter_sd15.safetensors", "plus": "ip-adapter-plus_sd15.safetensors"}


class IPModels:
    """The reduced image encoder (from the published image_encoder folder) and both
    IP-Adapters (projection and the UNet's image key/value Linears from the published files)."""

    def __init__(self, unet):
        E = IP.REDUCED_ENCODER
        t, _ = st.load(os.path.join(IPDIR, "image_encoder", "model.safetensors"))
        self.encoder = IP.CLIPImageEncoder(**E).eval()
        sd15._load_strict(self.encoder, {k: v.float() for k, v in IP.from_published(
            IP.encoder_map(E["num_layers"]), t, "image encoder", IP.ENCODER_EXTRAS).items()}, "image encoder")
        self.grid = IP.grid_encoder(self.encoder)
        self.size = E["image_size"]
        self.proj, self.unet_weights = {}, {}
        for kind in ("base", "plus"):
            t, _ = st.load(os.path.join(IPDIR, FILES[kind]))
            sd = IP.from_published(IP.ip_file_map(kind, unet, IP.REDUCED_PLUS["num_attention_layers"]), t, FILES[kind])
            proj = (IP.ImageProjection(**IP.REDUCED_BASE) if kind == "base" else IP.PerceiverResampler(**IP.REDUCED_PLUS))
            sd15._load_strict(proj.eval(), {k[len("image_proj::"):]: v.float() for k, v in sd.items()
                                            if k.startswith("image_proj::")}, f"{kind} image_proj")
            self.proj[kind] = proj
            self.unet_weights[kind] = {k[len("unet::"):]: v.float() for k, v in sd.items() if k.startswith("unet::")}

    def tokens(self, kind, image):
        """cat((negative, conditional)) [2, tokens, 8] for one image."""
        pixels = IP.preprocess_image(image, self.size)
        return IP.image_tokens(kind, self.encoder, self.grid, self.proj[kind], pixels)


def adapted_unet(unet, ipm, kind, scale, fidelity):
    """A structural copy of the UNet (every weight, and so every LoRA hook, shared) with the
    IP-Adapter of kind (None: none) at scale, then reference-only at fidelity (None: none)."""
    u = IP.structural_copy(unet)
    if kind is not None:
        u, _ = IP.ip_unet(unet, weights=ipm.unet_weights[kind], scale=scale)
    if fidelity is not None:
        IP.inject_reference_only(u, fidelity)
    return u


def generate(models, unet, prompt, negative, steps, solver_name, guidance, noise, tokens=None,
             reference=None, reference_noise=None, step_noise=None, size=(P.SIZE, P.SIZE), image=None,
             strength=None):
    """P.generate with the adapted UNet: tokens [2, T, d] (negative first), reference
    latents [1, 4, h, w] and reference_noise [steps run, 2, 4, h, w]; image-to-image from
    image at strength. Returns (latents, image)."""
    guided = guidance != 1
    image_embedding = None
    if tokens is not None:
        image_embedding = tokens if guided else tokens[1:]

    def predict(latents, timestep, embedding, solver, step):
        guide = None
        if reference is not None:
            k = step - solver.first_step  # reference_noise starts at the first step run
            guide = solver.add_noise(torch.cat([reference, reference]), reference_noise[k], step)
            if not guided:
                guide = guide[1:]
        return IP.run_unet(unet, latents, timestep, embedding, image_embedding=image_embedding, guide=guide)

    return P.generate(models, prompt, negative, steps, solver_name, guidance, noise, step_noise=step_noise,
                      image=image, strength=strength, size=size, predict=predict)


def main():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(OUT, exist_ok=True)
    models = P.reduced_models(P.WEIGHTS)
    ipm = IPModels(models.unet)
    photos = {n: Image.open(os.path.join(IMAGES, n + ".png")).convert("RGB") for n in ("astronaut", "coffee")}
    loras = {}
    for name, picks, naming, rank, seed, alpha in (("lora_kohya", (P.UNET_PICKS_A, P.CLIP_PICKS_A), "kohya", 4, 100, 2.0),
                                                    ("lora_peft", (P.UNET_PICKS_C, P.CLIP_PICKS_C), "peft", 3, 102, None)):
        # the LoRAs of sd15_pipeline.py (same seeds: the files it wrote), as branches
        targets = P.lora_targets(models, *picks)
        tensors, branches = P.make_lora(targets, naming, rank, seed, alpha)
        written, _ = st.load(os.path.join(P.OUT, name + ".safetensors"))
        assert all(torch.equal(written[k], v) for k, v in tensors.items()), f"{name}: run sd15_pipeline.py first"
        loras[name] = branches

    def randn(seed, shape):
        return torch.randn(shape, generator=torch.Generator().manual_seed(seed))

    base = ["--checkpoint", "CHECKPOINT", "--prompt", P.PROMPT]
    ip_args = {k: ["--ip-adapter", "IP/" + FILES[k], "--image-encoder", "IP/image_encoder"] for k in FILES}
    # (name, extra flags, solver, steps, guidance, negative, noise seed (or "seedN"), IP kind, IP scale,
    #  reference fidelity, LoRAs)
    cases = [
        ("ip_base", ip_args["base"] + ["--ip-image", "IMAGES/coffee.png", "--negative-prompt", P.NEGATIVE],
         "dpm", 4, 7.5, P.NEGATIVE, 21, "base", 1.0, None, []),
        ("ip_plus", ip_args["plus"] + ["--ip-image", "IMAGES/coffee.png:0.7", "--lora", "TESTDATA/lora_kohya.safetensors"],
         "ddim", 3, 7.5, "", 22, "plus", 0.7, None, [("lora_kohya", 1.0)]),
        ("ip_base_unguided", ip_args["base"] + ["--ip-image", "IMAGES/astronaut.png:0.8"],
         "lcm", 3, 1.0, "", 23, "base", 0.8, None, []),
        ("reference", ["--reference", "IMAGES/coffee.png"], "ddim", 3, 7.5, "", 24, None, None, 0.5, []),
        ("reference_lora", ["--reference", "IMAGES/coffee.png:0.25", "--negative-prompt", P.NEGATIVE,
                            "--lora", "TESTDATA/lora_peft.safetensors"],
         "dpm", 4, 7.5, P.NEGATIVE, 25, None, None, 0.25, [("lora_peft", 1.0)]),
        ("reference_seed", ["--reference", "IMAGES/astronaut.png", "--seed", "5"], "dpm", 3, 7.5, "", "seed5",
         None, None, 0.5, []),
        ("reference_unguided", ["--reference", "IMAGES/coffee.png"], "ddim", 3, 1.0, "", 26, None, None, 0.5, []),
        ("ip_plus_reference", ip_args["plus"] + ["--ip-image", "IMAGES/astronaut.png", "--reference", "IMAGES/coffee.png:0.6"],
         "ddim", 3, 7.5, "", 27, "plus", 1.0, 0.6, []),
        ("reference_img2img", ["--reference", "IMAGES/coffee.png", "--init-image", "IMAGES/astronaut.png", "--strength", "0.6"],
         "ddim", 6, 7.5, "", 28, None, None, 0.5, []),
        # another size (latents 10x6): the reference resized to it, base's tokens in the batch of four
        ("ip_base_reference_80x48", ip_args["base"] + ["--ip-image", "IMAGES/coffee.png:0.5", "--reference",
                                                       "IMAGES/astronaut.png:0.4"],
         "dpm", 3, 6.0, "", 29, "base", 0.5, 0.4, [], (80, 48)),
    ]
    tokens = {}
    for name, extra, solver, steps, guidance, negative, noise_kind, kind, scale, fidelity, use, *rest in cases:
        width, height = rest[0] if rest else (P.SIZE, P.SIZE)
        shape = (1, 4, height // 8, width // 8)
        n = 4 * (height // 8) * (width // 8)
        strength = float(extra[extra.index("--strength") + 1]) if "--strength" in extra else None
        first = S.first_step_for(strength, steps) if strength is not None else 0
        ref_steps = steps - first if fidelity is not None else 0
        lcm_steps = steps - 1 if solver == "lcm" else 0
        tensors = {}
        if isinstance(noise_kind, str):  # NoiseSource: x, then per step reference noise, then LCM's
            assert lcm_steps == 0
            stream = torch.from_numpy(S.seeded_noise(int(noise_kind[4:]), n + ref_steps * 2 * n))
            noise = stream[:n].reshape(shape)
            ref_noise = stream[n:].reshape(ref_steps, 2, *shape[1:]) if ref_steps else None
            step_noise = None
            noise_args = []
        else:
            noise = randn(noise_kind, shape)
            ref_noise = randn(1000 + noise_kind, (ref_steps, 2) + shape[1:]) if ref_steps else None
            step_noise = [randn(2000 * noise_kind + k, shape) for k in range(lcm_steps)] or None
            noise_args = ["--noise", "NOISE"]
            if ref_noise is not None:
                tensors["reference_noise"] = ref_noise
            if step_noise is not None:
                tensors["step_noise"] = torch.stack(step_noise)
        ip_image = reference = None
        for i, a in enumerate(extra):
            if a == "--ip-image":
                ip_image = photos[os.path.splitext(os.path.basename(extra[i + 1].split(":")[0]))[0]]
            if a == "--reference":
                reference = photos[os.path.splitext(os.path.basename(extra[i + 1].split(":")[0]))[0]]
        toks = None
        if kind is not None:
            toks = ipm.tokens(kind, ip_image)
            tokens[name] = toks
        ref = P.encode_image(models, reference, (width, height)) if reference is not None else None
        if fidelity is not None and guidance == 1:
            fidelity = 1.0  # a batch of one: the unblended attention (see the docstring)
        handles = []
        for lname, s in use:
            handles += P.attach(loras[lname], s)
        unet = adapted_unet(models.unet, ipm, kind, scale, fidelity)
        init = photos["astronaut"] if strength is not None else None
        latents, pixels = generate(models, unet, P.PROMPT, negative, steps, solver, guidance, noise, toks, ref,
                                   ref_noise, step_noise, (width, height), init, strength)
        for h in handles:
            h.remove()
        args = base + ["--width", str(width), "--height", str(height)] + extra + noise_args + \
            ["--steps", str(steps), "--solver", solver, "--guidance", str(guidance)]
        tensors.update({"x": noise, "latents": latents, "image": torch.tensor(pixels.astype(np.float32))})
        st.save(os.path.join(OUT, name + ".safetensors"), {k: v.contiguous() for k, v in tensors.items()},
                {"args": json.dumps(args)})
        print(f"  {name:20} |latents| max {latents.abs().max():.4f}  image mean {pixels.mean():.1f}")

    # The adapters must matter: each case without its adapter differs by far more than the
    # tests' tolerance (the Go tests check the same the other way round).
    with torch.no_grad():
        plain = P.generate(models, P.PROMPT, P.NEGATIVE, 4, "dpm", 7.5, randn(21, (1, 4, P.SIZE // 8, P.SIZE // 8)))[0]
        ip = st.load(os.path.join(OUT, "ip_base.safetensors"))[0]["latents"]
        d = (plain - ip).abs().max() / ip.abs().max()
        print(f"  sanity: ip_base without the IP-Adapter differs by {d:.2e} of the largest latent")
        assert d > 1e-2


if __name__ == "__main__":
    main()
