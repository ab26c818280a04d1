#!/usr/bin/python3
"""Stable Diffusion 1.5 text-to-image, whole generation, rfc against PyTorch: 512x512, 20 DPM
steps, guidance 7.5 (a batch of two per step), the same prompts and the same initial noise
(solvers.NoiseSource for --seed), from one full-size float16 single-file checkpoint.

Three processes, one after the other, each timed from start to the written image, with its
peak resident memory (/usr/bin/time -f %M):

  - rfc: `sd15 generate` (cmd/sd15, built here), GOMAXPROCS=--threads;
  - PyTorch shipped: scripts/golden/sd15_pipeline.py --bench (Refiners' pipeline on the
    models of scripts/golden/sd15.py, float32), PyTorch's defaults;
  - PyTorch tuned: the same with MALLOC_MMAP_MAX_=0 OMP_WAIT_POLICY=PASSIVE,
    torch.set_num_threads(--threads), and OpenBLAS as its BLAS (--openblas DIR, a folder
    holding OpenBLAS's libblas.so.3, put first on LD_LIBRARY_PATH). Debian's python3-torch is
    built with BLAS_INFO=generic and takes the system's libblas.so.3, which here is the
    reference BLAS (about 2 GFLOP/s on a 512x512 matrix product, against 35 with OpenBLAS on
    2 threads): its convolutions run on oneDNN, its Linear layers and attention products on
    that BLAS. To get OpenBLAS without changing the system's:
        apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb /tmp/openblas
    then --openblas /tmp/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread (the default
    when that folder, or the system's openblas-pthread folder, exists).

It prints the times (load, steps, total), seconds per step, peak RSS, the ratio of rfc's
total time to each PyTorch's, and how far rfc's final latents are from PyTorch's.

The checkpoint: full-size random weights written by `scripts/golden/sd15.py --full DIR`
(DIR/single-file.safetensors, float16, 2.1 GB), or any SD1.5 single file.

Run from the repository root:
  /usr/bin/python3 bench/sd15.py --checkpoint DIR/single-file.safetensors [--steps 20] [--threads 2]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import common
from common import ROOT, default_openblas, tuned_env

sys.path.insert(0, os.path.join(ROOT, "scripts", "golden"))
import st  # noqa: E402
import sd15_pipeline  # noqa: E402

PROMPT, NEGATIVE = sd15_pipeline.PROMPT, sd15_pipeline.NEGATIVE


def timed(cmd, env=None):
    """common.timed, with the peak RSS in GB and the wall-clock seconds."""
    text, rss = common.timed(cmd, env)
    return text, rss / 1024, float(re.findall(r"wall ([\d.]+)", text)[-1])


def rfc(checkpoint, steps, seed, threads, tmp):
    exe = os.path.join(tmp, "sd15")
    subprocess.run(["go", "build", "-o", exe, "./cmd/sd15"], cwd=ROOT, check=True)
    env = dict(os.environ, GOMAXPROCS=str(threads))
    lat = os.path.join(tmp, "rfc_latents.safetensors")
    text, rss, wall = timed([exe, "generate", "--checkpoint", checkpoint, "--prompt", PROMPT, "--negative-prompt", NEGATIVE,
                             "--steps", str(steps), "--solver", "dpm", "--guidance", "7.5", "--seed", str(seed),
                             "--latents-out", lat, "-o", os.path.join(tmp, "rfc.png")], env)
    m = re.search(r"loading ([\d.]+) s, (\d+) steps ([\d.]+) s \(([\d.]+) s/step\)", text)
    if not m:
        sys.exit(f"unexpected output of sd15 generate:\n{text}")
    return dict(load=float(m.group(1)), steps=float(m.group(3)), per_step=float(m.group(4)), total=wall, rss=rss,
                latents=st.load(lat)[0]["latents"].float())


def pytorch(checkpoint, steps, seed, threads, tmp, tuned, openblas):
    env = tuned_env(openblas) if tuned else dict(os.environ)
    cmd = ["/usr/bin/python3", os.path.join("scripts", "golden", "sd15_pipeline.py"), "--bench", checkpoint,
           "--steps", str(steps), "--seed", str(seed)]
    name = "torch_tuned" if tuned else "torch_shipped"
    cmd += ["--out", os.path.join(tmp, name + ".png")]
    if tuned:
        cmd += ["--threads", str(threads)]
    text, rss, wall = timed(cmd, env)

    def num(key):
        return float(re.search(rf"^{key} ([\d.]+)", text, re.M).group(1))
    per_step = float(re.search(r"\(([\d.]+) s/step\)", text).group(1))
    threads_used = int(re.search(r"^threads (\d+)", text, re.M).group(1))
    latents = st.load(os.path.join(tmp, name + ".png.latents.safetensors"))[0]["latents"].float()
    return dict(load=num("load"), steps=num("steps"), per_step=per_step, total=wall, rss=rss, threads=threads_used,
                latents=latents)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="a full-size SD1.5 single file (scripts/golden/sd15.py --full DIR)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shipped-steps", type=int, default=0,
                    help="steps for PyTorch shipped (0: --steps); it is slow enough here to time on fewer")
    ap.add_argument("--openblas", default=default_openblas(),
                    help="folder with OpenBLAS's libblas.so.3 for PyTorch tuned ('' for none)")
    ap.add_argument("--only", choices=["rfc", "shipped", "tuned"], action="append",
                    help="run only these sides (repeatable; default all three)")
    a = ap.parse_args()
    checkpoint = os.path.abspath(a.checkpoint)
    sides = a.only or ["rfc", "shipped", "tuned"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "rfc" in sides:
            results["rfc"] = rfc(checkpoint, a.steps, a.seed, a.threads, tmp)
        if "shipped" in sides:
            results["PyTorch shipped"] = pytorch(checkpoint, a.shipped_steps or a.steps, a.seed, a.threads, tmp, False, "")
        if "tuned" in sides:
            results["PyTorch tuned"] = pytorch(checkpoint, a.steps, a.seed, a.threads, tmp, True, a.openblas)
    print(f"SD1.5 512x512, {a.steps} DPM steps, guidance 7.5 (batch 2), {os.path.basename(checkpoint)}, "
          f"{a.threads} threads for rfc and PyTorch tuned (BLAS: {a.openblas or 'the system libblas'})")
    print(f"{'':26}{'load s':>9}{'steps s':>10}{'s/step':>9}{'total s':>10}{'peak RSS':>11}{'rfc/this':>10}")
    for name, r in results.items():
        if name == "PyTorch shipped" and a.shipped_steps and a.shipped_steps != a.steps:
            # Timed on fewer steps: its total for --steps, extrapolated from its s/step.
            print(f"(PyTorch shipped ran {a.shipped_steps} steps; its steps and total are extrapolated to {a.steps})")
            extra = r["per_step"] * (a.steps - a.shipped_steps)
            r["steps"] += extra
            r["total"] += extra
        ratio = results["rfc"]["total"] / r["total"] if "rfc" in results else float("nan")
        label = name + (f" ({r['threads']} thr)" if "threads" in r else "")
        print(f"{label:26}{r['load']:9.1f}{r['steps']:10.1f}{r['per_step']:9.2f}{r['total']:10.1f}"
              f"{r['rss']:9.2f}GB{ratio:10.2f}")
    if "rfc" in results:
        ref = results["rfc"]["latents"]
        for name, r in results.items():
            if name != "rfc" and not (name == "PyTorch shipped" and a.shipped_steps and a.shipped_steps != a.steps):
                d = float((r["latents"] - ref).abs().max()) / float(r["latents"].abs().max())
                print(f"rfc's final latents vs {name}: max|Δ| / max|latent| = {d:.2e}")


if __name__ == "__main__":
    main()
