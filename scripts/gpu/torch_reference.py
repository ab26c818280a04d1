#!/usr/bin/env python3
"""PyTorch on the same GPU as rfc-gpucheck: the time reference, and a second opinion on the
default-size models that have no CPU golden.

rfc-gpucheck -out DIR writes, for vitbase, taef2enc512 and taef2dec64, the weights it used
(vitbase only: random; TAEF2 uses testdata/taef2), its input and its output. This script
builds the same models with the torch.nn code of scripts/golden/ (vit.py, taesd.py), loads
the same weights, runs the same input on CUDA and prints, per model: max|Δ| between rfc's
output and PyTorch's (float32 with TF32 off, so both compute in float32), and PyTorch's
median times: the model alone (inputs already on the GPU, torch.cuda.synchronize() after)
in strict float32 and with PyTorch's default TF32 settings, and end to end (host input to
host output, as rfc's Forward).

Run by scripts/gpu-check.sh: python3 scripts/gpu/torch_reference.py --dir DIR [--runs N]
"""
import argparse
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "golden"))
import st  # noqa: E402
import taesd  # noqa: E402
import vit  # noqa: E402


def build(name, dir_):
    if name == "vitbase":
        model = vit.vit(embedding_dim=512, patch_size=16, image_size=384, num_layers=12, num_heads=8)
        tensors, _ = st.load(os.path.join(dir_, "vitbase_weights.safetensors"))
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
        return model.eval()
    if name == "taef2enc512":
        return taesd.load(taesd.encoder(32, True), os.path.join(ROOT, "testdata/taef2/encoder.safetensors"))
    return taesd.load(taesd.decoder(32, True), os.path.join(ROOT, "testdata/taef2/decoder.safetensors"))


def timed(fn, runs):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="the -out directory of rfc-gpucheck")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_reference: skipped: torch.cuda.is_available() is false")
        return 0
    dev = torch.device("cuda")
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    failed = False
    for name in ("vitbase", "taef2enc512", "taef2dec64"):
        path = os.path.join(args.dir, f"{name}_input.safetensors")
        if not os.path.exists(path):
            print(f"{name:12s} skipped: no {path}")
            continue
        x = st.load(path)[0]["x"].float()
        y_rfc = st.load(os.path.join(args.dir, f"{name}_output.safetensors"))[0]["y"].float()
        model = build(name, args.dir).to(dev)
        xd = x.to(dev)
        with torch.no_grad():
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            y = model(xd).float().cpu()
            strict = timed(lambda: model(xd), args.runs)
            e2e = timed(lambda: model(x.to(dev)).cpu(), args.runs)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            tf32 = timed(lambda: model(xd), args.runs)
        d = float((y - y_rfc).abs().max())
        scale = max(1.0, float(y.abs().max()))
        status = "ok" if d <= 1e-3 * scale else "FAIL"
        failed |= status != "ok"
        print(f"{name:12s} max|Δ| rfc vs PyTorch {d:.3g} (tolerance {1e-3 * scale:.3g}): {status}; "
              f"PyTorch model {strict:.3f} ms (fp32), {tf32:.3f} ms (default TF32), end to end {e2e:.3f} ms (fp32); medians of {args.runs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
