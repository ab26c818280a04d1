#!/usr/bin/python3
"""Stable Diffusion 1.5 text-to-image and image-to-image as Refiners runs it, in PyTorch: the
goldens of package sd15 and the sd15 command (reduced size), and the PyTorch side of
bench/sd15.py (full size).

The pipeline, transcribed (maths, not code) from finegrain-ai/refiners:
src/refiners/foundationals/latent_diffusion/model.py (LatentDiffusionModel.init_latents and
forward, stored version d607ed27), stable_diffusion_1/model.py (compute_clip_text_embedding:
negative prompt first), auto_encoder.py (image_to_latents: image_to_tensor, 2x-1, encode;
latents_to_image: decode, (x+1)/2) and fluxion/utils.py (image_to_tensor; tensor_to_image:
clamp(0, 1), x255, astype uint8, i.e. truncated), with

  - the tokenizer: OpenAI CLIP's, as transcribed in clip_tokenizer.py (77 ids, end-token
    padding), the one package tokenizer reproduces;
  - the models: Refiners' CLIPTextEncoderL, SD1UNet and SD1Autoencoder as sd15.py builds
    them, loaded from testdata/sd15's Refiners files, computed in float32 as rfc does;
  - the solvers: solvers.py's transcriptions of Refiners' DPMSolver, DDIM, Euler and LCM;
  - classifier-free guidance: the UNet on a batch of two (negative prompt's embedding, then
    the prompt's) at one timestep, uncond + scale*(cond - uncond); a scale of 1 skips the
    negative half (the UNet on the prompt alone), as package sd15 does;
  - image-to-image: PIL's resize to the output size (bicubic), encode, solver.add_noise to
    the first step round((1 - strength)*(steps - 1));
  - LoRAs made up for the reduced model, in three namings (kohya from diffusers module
    paths, kohya from LDM paths, PEFT with unet./text_encoder. prefixes), applied the way
    Refiners' LoRA adapters run them: UNMERGED, each adapted Linear/Conv2d's output plus
    scale*(alpha/rank)*up(down(x)) (down a Conv2d with the target's kernel, stride and
    padding, up a 1x1 Conv2d), so that rfc's merged weights are checked against the branch
    form.

Writes testdata/sd15_pipeline/ (run from the repository root: /usr/bin/python3
scripts/golden/sd15_pipeline.py):
  lora_kohya.safetensors, lora_kohya_ldm.safetensors, lora_peft.safetensors
  infotext.json: Python's repr of some floats and sd-webui's quote of some texts
  CASE.safetensors for each case: noise (x, step_noise for LCM), the golden latents
    (latents [1,4,H/8,W/8]) and image (image [H,W,3] as float32 0..255; 64x64 but for the
    size_ and _72x56 cases), and in the metadata
    "args": the sd15 generate flags of the case (JSON list; CHECKPOINT, NOISE and TESTDATA
    are placeholders the Go tests replace).

Full size, for bench/sd15.py: --bench CHECKPOINT runs one generation from a full-size single
file (float16; sd15.py --full writes one), 512x512, --steps (20), guidance 7.5, DPM, the noise
of solvers.NoiseSource for --seed, and prints the time of each stage and the total.
"""
import argparse
import json
import math
import mmap
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import solvers as S  # noqa: E402
import clip_tokenizer  # noqa: E402
import sd15  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "sd15_pipeline")
WEIGHTS = os.path.join(ROOT, "testdata", "sd15", "refiners")
PHOTO = os.path.join(ROOT, "testdata", "images", "astronaut.png")
MERGES = os.path.join(ROOT, "tokenizer", "bpe_simple_vocab_16e6.txt.gz")
SIZE = 64  # the reduced models' image size (8x8 latents)


# ================================================================================ models

class Models:
    def __init__(self, clip, unet, ae, embedding_dim):
        self.clip, self.unet, self.ae, self.embedding_dim = clip, unet, ae, embedding_dim
        self.tok = clip_tokenizer.ClipTokenizer(MERGES)

    def text(self, prompt):
        ids = torch.tensor([self.tok.tokenize(prompt)], dtype=torch.int64)
        return sd15.run_clip(self.clip, ids)

    def predict(self, x, timestep, embedding):
        return sd15.run_unet(self.unet, x, timestep, embedding)

    def encode(self, image):
        return sd15.run_encoder(self.ae._modules["Encoder"], image)

    def decode(self, latents):
        return sd15.run_decoder(self.ae._modules["Decoder"], latents)


def reduced_models(weights_dir):
    clip = sd15.build_clip(sd15.REDUCED_CLIP)
    unet = sd15.build_unet(sd15.REDUCED_UNET)
    ae = sd15.build_autoencoder(sd15.REDUCED_AE)
    for model, name in ((clip, "text_encoder"), (unet, "unet"), (ae, "autoencoder")):
        tensors, _ = st.load(os.path.join(weights_dir, name + ".safetensors"))
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return Models(clip, unet, ae, sd15.REDUCED_CLIP["embedding_dim"])


class LazyFile:
    """A safetensors file read tensor by tensor through mmap, so that a full-size checkpoint
    costs its float32 models in memory, not the file on top."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.mm = mmap.mmap(self.f.fileno(), 0, access=mmap.ACCESS_READ)
        n = int.from_bytes(self.mm[:8], "little")
        self.header = json.loads(self.mm[8:8 + n])
        self.header.pop("__metadata__", None)
        self.base = 8 + n

    def tensor(self, key):
        info = self.header[key]
        dt = {"F16": np.float16, "F32": np.float32, "BF16": None}[info["dtype"]]
        b, e = info["data_offsets"]
        if dt is None:
            raw = np.frombuffer(self.mm, dtype="<i2", count=(e - b) // 2, offset=self.base + b)
            t = torch.from_numpy(raw.astype(np.int32) << 16).view(torch.float32)
        else:
            t = torch.from_numpy(np.frombuffer(self.mm, dtype=dt, count=(e - b) // np.dtype(dt).itemsize,
                                               offset=self.base + b).astype(np.float32))
        return t.reshape(info["shape"])


def full_models(single_file):
    """The full-size models from an LDM single file, through sd15.py's key maps."""
    lazy = LazyFile(single_file)
    models = []
    for name, build, modules in (("clip", lambda: sd15.build_clip(sd15.FULL_CLIP),
                                  lambda m: sd15.keymap(sd15.clip_modules(sd15.FULL_CLIP["num_layers"]), m.state_dict())),
                                 ("unet", lambda: sd15.build_unet(sd15.FULL_UNET),
                                  lambda m: sd15.keymap(sd15.unet_modules(), m.state_dict())),
                                 ("ae", lambda: sd15.build_autoencoder(sd15.FULL_AE),
                                  lambda m: sd15.keymap(sd15.encoder_modules(), m._modules["Encoder"].state_dict(), "Encoder.")
                                  + sd15.keymap(sd15.decoder_modules(), m._modules["Decoder"].state_dict(), "Decoder."))):
        with sd15.fl.on_device("meta"):
            model = build()
        model = model.to_empty(device="cpu")
        rows = modules(model)
        params = dict(model.state_dict(keep_vars=True))
        with torch.no_grad():
            for r, l, _d, rshape, _lshape, _dshape in rows:
                params[r].copy_(lazy.tensor(l).reshape(rshape))
        models.append(model.eval())
    return Models(models[0], models[1], models[2], sd15.FULL_CLIP["embedding_dim"])


# ================================================================================= LoRAs

def lora_targets(models, unet_picks, clip_picks):
    """(Refiners module, ldm module path, diffusers module path) of the picked modules: UNet
    picks are indexes into sd15.unet_modules(), CLIP picks into clip_modules()."""
    unet_rows = [r for r in sd15.unet_modules() if r[3] != "shortcut" or has_module(models.unet, r[0])]
    clip_rows = sd15.clip_modules(sd15.REDUCED_CLIP["num_layers"] if models.embedding_dim == 8 else 12)
    out = []
    for rows, model, picks, word in ((unet_rows, models.unet, unet_picks, "unet"), (clip_rows, models.clip, clip_picks, "te")):
        for pick in picks:
            r, l, d, _ = next(row for row in rows if row[2] == pick or row[1].endswith("." + pick))
            out.append((word, get_module(model, r), l, d))
    return out


def has_module(model, path):
    try:
        get_module(model, path)
        return True
    except KeyError:
        return False


def get_module(model, path):
    m = model
    for part in path.split("."):
        if part not in m._modules:
            raise KeyError(path)
        m = m._modules[part]
    return m


def make_lora(targets, naming, rank, seed, alpha):
    """Random down/up tensors for each target (scaled so that the branch changes outputs by
    a few percent) in one naming; returns (tensors to save, [(module, down, up, alpha)])."""
    g = torch.Generator().manual_seed(seed)
    tensors, branches = {}, []
    for word, module, ldm, diffusers in targets:
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            down = torch.randn(rank, module.in_channels, kh, kw, generator=g) / math.sqrt(module.in_channels * kh * kw)
            up = torch.randn(module.out_channels, rank, 1, 1, generator=g) * 0.5 / math.sqrt(rank)
        else:
            down = torch.randn(rank, module.in_features, generator=g) / math.sqrt(module.in_features)
            up = torch.randn(module.out_features, rank, generator=g) * 0.5 / math.sqrt(rank)
        down, up = down.half().float(), up.half().float()  # stored as float16, exact
        if naming == "kohya":  # kohya from diffusers paths: lora_unet_down_blocks_0_…, lora_te_text_model_…
            stem = f"lora_{word}_" + diffusers.replace(".", "_")
            tensors[stem + ".lora_down.weight"], tensors[stem + ".lora_up.weight"] = down.half(), up.half()
            tensors[stem + ".alpha"] = torch.tensor(alpha, dtype=torch.float16)
        elif naming == "kohya_ldm":  # kohya from LDM paths: lora_unet_input_blocks_1_1_…, lora_te_text_model_…
            prefix = "model.diffusion_model." if word == "unet" else "cond_stage_model.transformer."
            assert ldm.startswith(prefix), ldm
            stem = f"lora_{word}_" + ldm[len(prefix):].replace(".", "_")
            tensors[stem + ".lora_down.weight"], tensors[stem + ".lora_up.weight"] = down.half(), up.half()
            tensors[stem + ".alpha"] = torch.tensor(alpha, dtype=torch.float32)
        else:  # PEFT / diffusers: unet.down_blocks.0….lora_A.weight, text_encoder.text_model.…; 2-D for 1x1
            stem = ("unet." if word == "unet" else "text_encoder.") + diffusers
            d, u = down, up
            if d.dim() == 4 and d.shape[2:] == (1, 1):
                d, u = d.flatten(1), u.flatten(1)
            tensors[stem + ".lora_A.weight"], tensors[stem + ".lora_B.weight"] = d, u
            if alpha is not None:
                tensors[stem + ".alpha"] = torch.tensor(alpha, dtype=torch.float32)
        branches.append((module, down, up, rank if alpha is None else alpha))
    return tensors, branches


def attach(branches, scale):
    """Refiners-style unmerged LoRA: each target's output plus scale*(alpha/rank)*up(down(x))."""
    handles = []
    for module, down, up, alpha in branches:
        rank = down.shape[0]
        factor = scale * alpha / rank

        def hook(m, inputs, output, down=down, up=up, factor=factor):
            x = inputs[0]
            if isinstance(m, torch.nn.Conv2d):
                h = F.conv2d(x, down, stride=m.stride, padding=m.padding, dilation=m.dilation)
                return output + factor * F.conv2d(h, up)
            return output + factor * F.linear(F.linear(x, down), up)

        handles.append(module.register_forward_hook(hook))
    return handles


# ============================================================================= the pipeline

def encode_image(models, image, size):
    """Refiners' image_to_latents of a PIL image resized to size (width, height) with PIL's
    default filter, bicubic: image-to-image's init latents, reference-only control's reference."""
    x = torch.tensor(np.array(image.resize(size)).astype(np.float32).transpose(2, 0, 1) / 255.0).unsqueeze(0)
    with torch.no_grad():
        return models.encode(2 * x - 1)


def generate(models, prompt, negative, steps, solver_name, guidance, noise, step_noise=None,
             image=None, strength=None, size=(SIZE, SIZE), timings=None, predict=None):
    """One image; returns (latents, uint8 image [H, W, 3]). size is (width, height). predict,
    when given, runs the UNet instead of models.predict: predict(latents, timestep, embedding,
    solver, step), for a UNet whose extra inputs depend on the step."""
    t0 = time.time()
    guided = guidance != 1
    with torch.no_grad():
        cond = models.text(prompt)
        embedding = torch.cat([models.text(negative), cond]) if guided else cond
    t1 = time.time()
    first = S.first_step_for(strength, steps) if image is not None else 0
    solver = S.make(solver_name, steps, first)
    x = S.init_latents(solver, noise, encode_image(models, image, size) if image is not None else None)
    noises = list(step_noise) if step_noise is not None else []
    with torch.no_grad():
        for step in range(first, steps):
            timestep = torch.tensor([float(solver.timesteps[step])])
            latents = torch.cat([x, x]) if guided else x
            latents = solver.scale_model_input(latents, step)
            if predict is None:
                out = models.predict(latents, timestep, embedding)
            else:
                out = predict(latents, timestep, embedding, solver, step)
            if guided:
                uncond, cond_pred = out.chunk(2)
                eps = uncond + guidance * (cond_pred - uncond)
            else:
                eps = out
            n = noises.pop(0) if solver_name == "lcm" and step < steps - 1 else None
            x = solver.step(x, eps, step, n)
        t2 = time.time()
        decoded = models.decode(x)
    t3 = time.time()
    pixels = ((decoded + 1) / 2).clamp(0, 1).squeeze(0).permute(1, 2, 0).numpy() * 255
    pixels = pixels.astype("uint8")  # Refiners' tensor_to_image truncates
    if timings is not None:
        timings.update(text=t1 - t0, steps=t2 - t1, decode=t3 - t2, per_step=(t2 - t1) / max(steps - first, 1))
    return x, pixels


# ================================================================================ goldens

UNET_PICKS_A = ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
                "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v",
                "down_blocks.0.attentions.0.proj_in",  # a 1x1 Conv2d
                "down_blocks.1.resnets.0.conv1",  # a 3x3 Conv2d (LoCon)
                "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj",
                "up_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k",
                "up_blocks.1.resnets.2.time_emb_proj",
                "conv_out"]
CLIP_PICKS_A = ["text_model.encoder.layers.0.self_attn.q_proj", "text_model.encoder.layers.1.mlp.fc1"]
UNET_PICKS_B = ["input_blocks.4.1.proj_out", "output_blocks.5.1.transformer_blocks.0.attn1.to_out.0",
                "middle_block.0.in_layers.2", "output_blocks.2.1.conv"]  # LDM paths: the names differ most here
CLIP_PICKS_B = ["text_model.encoder.layers.0.self_attn.out_proj"]
UNET_PICKS_C = ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",  # stacks on A's
                "up_blocks.3.attentions.2.proj_out", "down_blocks.2.downsamplers.0.conv"]
CLIP_PICKS_C = ["text_model.encoder.layers.1.self_attn.k_proj"]

PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry, low quality"


def write_case(name, args, noise, step_noise, latents, pixels):
    tensors = {"x": noise.contiguous(), "latents": latents.contiguous(),
               "image": torch.tensor(pixels.astype(np.float32))}
    if step_noise is not None:
        tensors["step_noise"] = torch.stack(step_noise).contiguous()
    st.save(os.path.join(OUT, name + ".safetensors"), tensors, {"args": json.dumps(args)})
    print(f"  {name:16} |latents| max {latents.abs().max():.4f}  image mean {pixels.mean():.1f}")


def goldens(weights_dir):
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    models = reduced_models(weights_dir)
    def randn(seed, shape):
        return torch.randn(shape, generator=torch.Generator().manual_seed(seed))

    photo = Image.open(PHOTO).convert("RGB")
    loras = {}
    for name, naming, picks, rank, seed, alpha in (
            ("lora_kohya", "kohya", (UNET_PICKS_A, CLIP_PICKS_A), 4, 100, 2.0),
            ("lora_kohya_ldm", "kohya_ldm", (UNET_PICKS_B, CLIP_PICKS_B), 2, 101, 3.0),
            ("lora_peft", "peft", (UNET_PICKS_C, CLIP_PICKS_C), 3, 102, None)):
        targets = lora_targets(models, *picks)
        tensors, branches = make_lora(targets, naming, rank, seed, alpha)
        st.save(os.path.join(OUT, name + ".safetensors"), tensors)
        loras[name] = branches
    base = ["--checkpoint", "CHECKPOINT", "--prompt", PROMPT]
    cases = []  # (name, extra args, solver, steps, guidance, negative, noise kind, loras, strength[, size])
    cases.append(("dpm", ["--negative-prompt", NEGATIVE], "dpm", 4, 7.5, NEGATIVE, 1, [], None))
    cases.append(("ddim", ["--negative-prompt", NEGATIVE], "ddim", 3, 5.0, NEGATIVE, 2, [], None))
    cases.append(("euler", [], "euler", 3, 7.5, "", 3, [], None))
    cases.append(("lcm", [], "lcm", 4, 1.0, "", 4, [], None))
    cases.append(("dpm_seed", ["--seed", "42"], "dpm", 3, 7.5, "", "seed42", [], None))
    cases.append(("lcm_seed", ["--seed", "7"], "lcm", 3, 1.0, "", "seed7", [], None))
    cases.append(("lora", ["--lora", "TESTDATA/lora_kohya.safetensors:0.8", "--lora", "TESTDATA/lora_peft.safetensors"],
                  "dpm", 4, 7.5, "", 5, [("lora_kohya", 0.8), ("lora_peft", 1.0)], None))
    cases.append(("lora_ldm", ["--lora", "TESTDATA/lora_kohya_ldm.safetensors:1.5"], "ddim", 3, 7.5, "", 6,
                  [("lora_kohya_ldm", 1.5)], None))
    cases.append(("img2img", ["--init-image", "PHOTO", "--strength", "0.6"], "dpm", 6, 7.5, "", 7, [], 0.6))
    cases.append(("img2img_lcm", ["--init-image", "PHOTO", "--strength", "0.5"], "lcm", 4, 1.0, "", 8, [], 0.5))
    cases.append(("img2img_lora", ["--init-image", "PHOTO", "--strength", "0.8", "--lora",
                                   "TESTDATA/lora_kohya.safetensors"], "ddim", 5, 7.5, "", 9, [("lora_kohya", 1.0)], 0.8))
    # Other sizes: latents of 10x6 and 9x7, whose odd sides the UNet's upsamplings restore.
    cases.append(("size_80x48", ["--negative-prompt", NEGATIVE], "dpm", 3, 7.5, NEGATIVE, 10, [], None, (80, 48)))
    cases.append(("img2img_72x56", ["--init-image", "PHOTO", "--strength", "0.7", "--lora",
                                    "TESTDATA/lora_kohya_ldm.safetensors"], "ddim", 4, 6.0, "", 11, [("lora_kohya_ldm", 1.0)],
                  0.7, (72, 56)))
    for name, extra, solver, steps, guidance, negative, noise_kind, use, strength, *rest in cases:
        width, height = rest[0] if rest else (SIZE, SIZE)
        shape = (1, 4, height // 8, width // 8)
        n = 4 * (height // 8) * (width // 8)
        first = S.first_step_for(strength, steps) if strength is not None else 0
        noisy_steps = max(0, steps - 1 - first) if solver == "lcm" else 0
        if isinstance(noise_kind, str):  # solvers.NoiseSource's stream: initial noise, then LCM's
            seed = int(noise_kind[4:])
            stream = torch.from_numpy(S.seeded_noise(seed, n * (1 + noisy_steps)))
            noise = stream[:n].reshape(shape)
            step_noise = [stream[n * (k + 1):n * (k + 2)].reshape(shape) for k in range(noisy_steps)] or None
            noise_args = []
        else:
            noise = randn(noise_kind, shape)
            step_noise = [randn(1000 * noise_kind + k, shape) for k in range(noisy_steps)] or None
            noise_args = ["--noise", "NOISE"]
        handles = []
        for lname, scale in use:
            handles += attach(loras[lname], scale)
        latents, pixels = generate(models, PROMPT, negative, steps, solver, guidance, noise, step_noise,
                                   photo if strength is not None else None, strength, (width, height))
        for h in handles:
            h.remove()
        size_args = ["--width", str(width), "--height", str(height)]
        args = base + size_args + extra + noise_args + ["--steps", str(steps), "--solver", solver, "--guidance", str(guidance)]
        write_case(name, args, noise, step_noise if not isinstance(noise_kind, str) else None, latents, pixels)


# sd-webui's infotext formatting (modules/infotext_utils.py quote; Python's repr of the float
# parameters), for the Go transcription in sd15/png.go.
INFOTEXT_FLOATS = [7.5, 7.0, 1.0, 0.6, 0.8, 1e-05, 0.0001, 12.25, 1e16, 1e15, 123456789.0, 0.1, 1 / 3, 2.5e-07,
                   -3.0, 100.0, 0.30000000000000004]
INFOTEXT_STRINGS = ["plain", "a, b", "key: value", "two\nlines", 'say "hi"', "back\\slash", "tab\there",
                    "caf\u00e9, na\u00efve", "\u6771\u4eac: tokyo", "<b>&amp;</b>, x", "bell\x07, x", "del\x7f, x",
                    "line\u2028sep, x", "emoji \U0001F600, ok"]


def infotext_goldens():
    def quote(text):  # sd-webui's
        if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
            return text
        return json.dumps(text, ensure_ascii=False)

    data = {"floats": [[f.hex(), repr(f)] for f in INFOTEXT_FLOATS],
            "quotes": [[t, quote(t)] for t in INFOTEXT_STRINGS]}
    with open(os.path.join(OUT, "infotext.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")


def bench(checkpoint, steps, seed, threads, out):
    if threads:
        torch.set_num_threads(threads)
    t0 = time.time()
    models = full_models(checkpoint)
    t1 = time.time()
    shape = (1, 4, 64, 64)
    noise = torch.from_numpy(S.seeded_noise(seed, 4 * 64 * 64)).reshape(shape)
    timings = {}
    latents, pixels = generate(models, PROMPT, NEGATIVE, steps, "dpm", 7.5, noise, size=(512, 512), timings=timings)
    t2 = time.time()
    if out:
        Image.fromarray(pixels).save(out)
        st.save(out + ".latents.safetensors", {"latents": latents.contiguous()})
    print(f"load {t1 - t0:.2f} s")
    print(f"text {timings['text']:.2f} s")
    print(f"steps {timings['steps']:.2f} s ({timings['per_step']:.3f} s/step)")
    print(f"decode {timings['decode']:.2f} s")
    print(f"generate {t2 - t1:.2f} s")
    print(f"total {t2 - t0:.2f} s")
    print(f"threads {torch.get_num_threads()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=WEIGHTS, help="folder of the reduced Refiners files")
    ap.add_argument("--bench", metavar="CHECKPOINT", help="time one full-size generation from a single file")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    ap.add_argument("--out", help="with --bench: write the image (and OUT.latents.safetensors)")
    a = ap.parse_args()
    if a.bench:
        bench(a.bench, a.steps, a.seed, a.threads, a.out)
        return
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(OUT, exist_ok=True)
    infotext_goldens()
    goldens(a.weights)


if __name__ == "__main__":
    main()
