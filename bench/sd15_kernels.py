#!/usr/bin/python3
"""rfc's kernels against PyTorch on every distinct layer shape of Stable Diffusion 1.5, in one
run: the UNet at 64×64 latents (batch 1, and batch 2 for one guided step) and the autoencoder's
decoder from 64×64 latents to 512×512 pixels.

The shapes come from the Go benchmark BenchmarkSD15 (kernels/sd15_bench_test.go), whose
sub-benchmark names spell out every parameter. The script runs it (go test -bench) at the given
thread count, then times PyTorch (Debian's python3-torch, float32) on the same shapes with the
same thread count, and prints, per shape: the best time of each, GFLOP/s (GB/s for the
memory-bound ops) and the share of the SGEMM peak measured in the same run (a 2048² MatMul, the
peak/sgemm case), for rfc with float32 weights (f32, as the layer is called today) and with
float16 weights packed ahead (f16p, as a float16 checkpoint is meant to run), and the ratio
PyTorch time / rfc time (above 1: rfc is faster).

PyTorch's attention is timed as Refiners and diffusers run it under 1.13 (no fused attention):
baddbmm, softmax, bmm on heads already split, the whole score matrix in memory. GEGLU is linear,
chunk, gelu, mul; GroupNorm with a: 1 is followed by SiLU.

Clocks: --clock wall (default) takes the fastest of --runs iterations; --clock cpu divides the
work by the process's CPU time over them instead, which other processes on a shared machine do
not inflate (exact with --threads 1; with more threads it counts spinning workers too, on both
sides).

PyTorch "tuned": Debian's torch calls libblas.so.3 for linear, bmm and mm (its convolutions go
through oneDNN). When that is the reference BLAS (the default alternative, some 100 times slower),
give an OpenBLAS with --blas; the script preloads it into the PyTorch process only, with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset so that OpenBLAS picks its kernels for this CPU
(see bench/gemm/README.md). Without installing it system-wide:
    (cd /tmp/ob && apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb root)
    --blas /tmp/ob/root/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
An installed OpenBLAS (/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3) is used without
asking.

Run from the repository root:
    /usr/bin/python3 bench/sd15_kernels.py [--threads 2] [--runs 3] [--models unet1,unet2,decoder]
        [--ops conv,linear,geglu,attn,gn,ln,up] [--match REGEXP] [--clock wall|cpu] [--blas PATH]
"""
import json
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(r"^BenchmarkSD15/(\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$")


def run_go(a):
    models = a.models.split(",") + ["peak"]
    ops = a.ops.split(",") + ["sgemm"]
    bench = f"^BenchmarkSD15$/^({'|'.join(models)})$/^({'|'.join(ops)})$"
    if a.match:
        bench += f"/({a.match}|^m=2048$)"  # the peak case always
    env = dict(os.environ, GOMAXPROCS=str(a.threads))
    cmd = ["go", "test", "-run", "^$", "-bench", bench, "-benchtime", f"{a.runs}x", "-timeout", "0", "./kernels"]
    print("$ GOMAXPROCS=%d %s" % (a.threads, " ".join(cmd)), file=sys.stderr)
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stdout + out.stderr)
    results = {}
    for line in out.stdout.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        name, rest = m.group(1), m.group(3)
        metrics = {unit: float(v) for v, unit in re.findall(r"([\d.e+-]+|NaN) (\S+)", rest)}
        model, op, params, fmt = name.split("/")
        key = (model, op, params)
        results.setdefault(key, {})[fmt] = metrics
    return results


def params_of(s):
    return {k: int(v) for k, v in (kv.split("=") for kv in s.split(","))}


def work(op, p):
    """FLOPs (positive) or bytes moved (negative) of a case, as the Go benchmark counts them."""
    if op == "conv":
        oh = (p["h"] + 2 * p["p"] - p["r"]) // p["s"] + 1
        ow = (p["w"] + 2 * p["p"] - p["r"]) // p["s"] + 1
        return 2 * p["n"] * p["k"] * oh * ow * p["c"] * p["r"] * p["r"]
    if op in ("linear", "geglu"):
        return 2 * p["m"] * p["i"] * p["o"]
    if op == "attn":
        return 4 * p["b"] * p["h"] * p["q"] * p["k"] * p["d"]
    if op == "sgemm":
        return 2 * p["m"] ** 3
    if op == "gn":
        return -8 * p["n"] * p["c"] * p["hw"]
    if op == "ln":
        return -8 * p["m"] * p["c"]
    if op == "up":
        return -20 * p["n"] * p["c"] * p["h"] * p["w"]
    raise ValueError(op)


def torch_case(torch, F, op, p):
    """Returns a function running the PyTorch version of the case on random inputs."""
    r = torch.randn
    if op == "conv":
        x, w, b = r(p["n"], p["c"], p["h"], p["w"]), r(p["k"], p["c"], p["r"], p["r"]), r(p["k"])
        return lambda: F.conv2d(x, w, b, p["s"], p["p"])
    if op == "linear":
        x, w, b = r(p["m"], p["i"]), r(p["o"], p["i"]), r(p["o"])
        return lambda: F.linear(x, w, b)
    if op == "geglu":
        x, w, b = r(p["m"], p["i"]), r(p["o"], p["i"]), r(p["o"])

        def geglu():
            a, g = F.linear(x, w, b).chunk(2, dim=-1)
            return a * F.gelu(g)
        return geglu
    if op == "attn":
        bh, lq, lk, d = p["b"] * p["h"], p["q"], p["k"], p["d"]
        q, k, v = r(bh, lq, d), r(bh, lk, d), r(bh, lk, d)
        scale = d ** -0.5
        empty = torch.empty(bh, lq, lk)

        def attn():
            s = torch.baddbmm(empty, q, k.transpose(1, 2), beta=0, alpha=scale)
            return torch.bmm(s.softmax(dim=-1), v)
        return attn
    if op == "gn":
        x, w, b = r(p["n"], p["c"], p["hw"]), r(p["c"]), r(p["c"])
        if p["a"]:
            return lambda: F.silu(F.group_norm(x, p["g"], w, b, 1e-5))
        return lambda: F.group_norm(x, p["g"], w, b, 1e-5)
    if op == "ln":
        x, w, b = r(p["m"], p["c"]), r(p["c"]), r(p["c"])
        return lambda: F.layer_norm(x, (p["c"],), w, b, 1e-5)
    if op == "up":
        x = r(p["n"], p["c"], p["h"], p["w"])
        return lambda: F.interpolate(x, scale_factor=2, mode="nearest")
    if op == "sgemm":
        x, y = r(p["m"], p["m"]), r(p["m"], p["m"])
        return lambda: torch.mm(x, y)
    raise ValueError(op)


def time_torch(torch, F, op, p, runs, clock):
    """Seconds per call: the fastest of runs (wall), or CPU time over runs / runs."""
    with torch.no_grad():
        fn = torch_case(torch, F, op, p)
        fn()  # warm up
        if clock == "cpu":
            c0 = time.process_time()
            for _ in range(runs):
                fn()
            return (time.process_time() - c0) / runs
        best = float("inf")
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best


def rfc_seconds(metrics, w, clock):
    """Seconds per call from the Go benchmark's metrics (w: the case's work)."""
    if metrics is None:
        return None
    if clock == "cpu":
        rate = metrics.get("GFLOP/cpu-s") or metrics.get("GB/cpu-s")
        return abs(w) / (rate * 1e9) if rate else None
    return metrics["best-ns"] / 1e9


def conv_key(n, c, h, k, r=3, s=1):
    return ("conv", f"n={n},c={c},h={h},w={h},k={k},r={r},s={s},p={r // 2}")


def unet_counts(n):
    """How many times each shape runs in one SD1.5 UNet forward at 64×64 latents, batch n
    (diffusers' UNet2DConditionModel; the time embedding's linears all counted as 1280→1280)."""
    c = {}

    def add(key, k=1):
        c[key] = c.get(key, 0) + k
    for args, k in [((4, 64, 320), 1), ((320, 64, 320), 7), ((320, 64, 320, 3, 2), 1), ((320, 32, 640), 1),
                    ((640, 32, 640), 6), ((640, 32, 640, 3, 2), 1), ((640, 16, 1280), 1), ((1280, 16, 1280), 7),
                    ((1280, 16, 1280, 3, 2), 1), ((1280, 8, 1280), 11), ((2560, 8, 1280), 3), ((2560, 16, 1280), 2),
                    ((1920, 16, 1280), 1), ((1280, 32, 1280), 1), ((1920, 32, 640), 1), ((1280, 32, 640), 1),
                    ((960, 32, 640), 1), ((640, 64, 640), 1), ((960, 64, 320), 1), ((640, 64, 320), 2),
                    ((320, 64, 4), 1),
                    # 1×1: resnet skips, transformer proj_in / proj_out
                    ((320, 32, 640, 1), 1), ((640, 16, 1280, 1), 1), ((2560, 8, 1280, 1), 3), ((2560, 16, 1280, 1), 2),
                    ((1920, 16, 1280, 1), 1), ((1920, 32, 640, 1), 1), ((1280, 32, 640, 1), 1), ((960, 32, 640, 1), 1),
                    ((960, 64, 320, 1), 1), ((640, 64, 320, 1), 2), ((320, 64, 320, 1), 10), ((640, 32, 640, 1), 10),
                    ((1280, 16, 1280, 1), 10), ((1280, 8, 1280, 1), 2)]:
        add(conv_key(n, *args), k)
    for (tokens, ch, d), blocks in [((4096, 320, 40), 5), ((1024, 640, 80), 5), ((256, 1280, 160), 5), ((64, 1280, 160), 1)]:
        m = n * tokens
        add(("linear", f"m={m},i={ch},o={ch}"), 6 * blocks)
        add(("geglu", f"m={m},i={ch},o={8 * ch}"), blocks)
        add(("linear", f"m={m},i={4 * ch},o={ch}"), blocks)
        add(("linear", f"m={n * 77},i=768,o={ch}"), 2 * blocks)
        add(("ln", f"m={m},c={ch}"), 3 * blocks)
        add(("attn", f"b={n},h=8,q={tokens},k={tokens},d={d}"), blocks)
        add(("attn", f"b={n},h=8,q={tokens},k=77,d={d}"), blocks)
        add(("gn", f"n={n},c={ch},hw={m // n},g=32,a=0"), blocks)
    add(("linear", f"m={n},i=1280,o=1280"), 24)
    for (ch, h), k in [((320, 64), 8), ((320, 32), 1), ((640, 32), 6), ((640, 16), 1), ((1280, 16), 6), ((1280, 8), 11),
                       ((2560, 8), 3), ((2560, 16), 2), ((1920, 16), 1), ((1920, 32), 1), ((1280, 32), 1),
                       ((960, 32), 1), ((960, 64), 1), ((640, 64), 2)]:
        add(("gn", f"n={n},c={ch},hw={h * h},g=32,a=1"), k)
    for ch, h in [(1280, 8), (1280, 16), (640, 32)]:
        add(("up", f"n={n},c={ch},h={h},w={h}"))
    return c


def decoder_counts():
    """How many times each shape runs in the SD1.5 autoencoder's decoder, 64×64 → 512×512."""
    c = {}
    for args, k in [((4, 64, 512), 1), ((512, 64, 512), 10), ((512, 128, 512), 7), ((512, 256, 512), 1),
                    ((512, 256, 256), 1), ((256, 256, 256), 5), ((256, 512, 256), 1), ((256, 512, 128), 1),
                    ((128, 512, 128), 5), ((128, 512, 3), 1), ((512, 256, 256, 1), 1), ((256, 512, 128, 1), 1)]:
        c[conv_key(1, *args)] = k
    c[("linear", "m=4096,i=512,o=512")] = 4
    c[("attn", "b=1,h=1,q=4096,k=4096,d=512")] = 1
    for (ch, h), k in [((512, 64), 10), ((512, 128), 6), ((512, 256), 1), ((256, 256), 5), ((256, 512), 1), ((128, 512), 6)]:
        c[("gn", f"n=1,c={ch},hw={h * h},g=32,a=1")] = k
    c[("gn", "n=1,c=512,hw=4096,g=32,a=0")] = 1
    for ch, h in [(512, 64), (512, 128), (256, 256)]:
        c[("up", f"n=1,c={ch},h={h},w={h}")] = 1
    return c


MODEL_COUNTS = {"unet1": lambda: unet_counts(1), "unet2": lambda: unet_counts(2), "decoder": decoder_counts}


SYSTEM_OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"


def torch_times(a, keys):
    """Times the cases in a PyTorch process of its own (with the BLAS preloaded): returns
    {key: seconds}."""
    blas = a.blas or (SYSTEM_OPENBLAS if os.path.exists(SYSTEM_OPENBLAS) else "")
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    if blas:
        env["LD_PRELOAD"] = blas
    else:
        print("warning: no OpenBLAS given (--blas): PyTorch's linear, bmm and mm run on the "
              "system libblas.so.3, likely the slow reference BLAS", file=sys.stderr)
    job = json.dumps({"threads": a.threads, "runs": a.runs, "clock": a.clock, "keys": keys})
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker"], input=job,
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stdout + out.stderr)
    res = json.loads(out.stdout)
    return {tuple(k): t for k, t in zip(res["keys"], res["times"])}, res["blas"], blas


def torch_worker():
    job = json.loads(sys.stdin.read())
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    times = [time_torch(torch, F, op, params_of(params), job["runs"], job["clock"])
             for _, op, params in job["keys"]]
    blas = "?"
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
        blas = "OpenBLAS" if "openblas" in maps.lower() else "reference BLAS (libblas.so.3)"
    except OSError:
        pass
    json.dump({"keys": job["keys"], "times": times, "blas": blas}, sys.stdout)


def main():
    if sys.argv[1:] == ["--torch-worker"]:
        torch_worker()
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed calls per case and side")
    ap.add_argument("--models", default="unet1,unet2,decoder")
    ap.add_argument("--ops", default="conv,linear,geglu,attn,gn,ln,up")
    ap.add_argument("--match", default="", help="regexp on the parameters level of the names")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--blas", default="", help="an OpenBLAS libblas.so.3 to preload into PyTorch")
    a = ap.parse_args()

    results = run_go(a)
    t_torch_all, blas_seen, blas = torch_times(a, [list(k) for k in results])

    peak_key = ("peak", "sgemm", "m=2048")
    rows = []
    for key in results:
        model, op, params = key
        w = work(op, params_of(params))
        rfc = {f: rfc_seconds(results[key].get(f), w, a.clock) for f in ("f32", "f16p")}
        rows.append((key, w, t_torch_all[key], rfc))
    by_key = {r[0]: r for r in rows}
    if peak_key not in by_key:
        raise SystemExit("no peak/sgemm result")
    peak = by_key[peak_key][1] / by_key[peak_key][3]["f32"] / 1e9
    peak_torch = by_key[peak_key][1] / by_key[peak_key][2] / 1e9

    print(f"{a.threads} threads, {a.runs} runs per case, clock {a.clock}; PyTorch on {blas_seen} "
          f"{'(' + blas + ')' if blas else ''}")
    print(f"SGEMM peak (2048² MatMul, same run): rfc {peak:.1f} GFLOP/s, PyTorch {peak_torch:.1f}; "
          f"%pk is against rfc's")
    head = (f"{'case':58}{'torch ms':>10}{'rfc f32':>10}{'rfc f16p':>10}"
            f"{'torch':>9}{'f32':>9}{'%pk':>5}{'f16p':>9}{'%pk':>5}{'speedup':>9}")
    print(head)
    print(f"{'':58}{'':>10}{'ms':>10}{'ms':>10}{'GF/s|GB/s':>27}{'':>10}{'torch/rfc':>9}")
    total = {"torch": 0.0, "rfc": 0.0}
    for (model, op, params), w, t_torch, rfc in rows:
        if model == "peak":
            continue
        best = rfc["f16p"] or rfc["f32"]
        rate = lambda t: abs(w) / t / 1e9 if t else float("nan")
        pk = lambda t: f"{100 * rate(t) / peak:5.0f}" if w > 0 and t else f"{'':5}"
        ms = lambda t: f"{1e3 * t:10.2f}" if t else f"{'-':>10}"
        print(f"{model + ' ' + op + ' ' + params:58}{ms(t_torch)}{ms(rfc['f32'])}{ms(rfc['f16p'])}"
              f"{rate(t_torch):9.1f}{rate(rfc['f32']):9.1f}{pk(rfc['f32'])}"
              f"{rate(rfc['f16p']) if rfc['f16p'] else float('nan'):9.1f}{pk(rfc['f16p'])}"
              f"{t_torch / best:9.2f}")
        total["torch"] += t_torch
        total["rfc"] += best
    print(f"sum over the shapes listed (each once): PyTorch {total['torch']:.3f} s, rfc {total['rfc']:.3f} s "
          f"(f16p where the kernel takes weights), speedup {total['torch'] / total['rfc']:.2f}")
    # Whole models: each shape's time times how often the model runs it (kernels only: no
    # residual adds, concatenations, reshapes).
    times = {(op, params): (w, t, rfc) for (model, op, params), w, t, rfc in rows}
    for model, counts in MODEL_COUNTS.items():
        per = {k: v for k, v in counts().items()}
        if not all(k in times and any(times[k][2].values()) for k in per):
            continue
        tt = sum(k * times[key][1] for key, k in per.items())
        t32 = sum(k * (times[key][2]["f32"] or 0) for key, k in per.items())
        t16 = sum(k * (times[key][2]["f16p"] or times[key][2]["f32"]) for key, k in per.items())
        flops = sum(k * times[key][0] for key, k in per.items() if times[key][0] > 0)
        print(f"{model} forward, kernels only ({sum(per.values())} calls, {flops / 1e12:.2f} TFLOP): "
              f"PyTorch {tt:.2f} s, rfc f32 {t32:.2f} s, rfc f16p {t16:.2f} s ({tt / t16:.2f}× faster, "
              f"{100 * flops / t16 / 1e9 / peak:.0f}% of the SGEMM peak)")


if __name__ == "__main__":
    main()
