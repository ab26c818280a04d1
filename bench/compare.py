#!/usr/bin/python3
"""rfc against PyTorch on the CPU, in one go: for the TAEF2 decoder (32×64×64 latent → 512×512
image, the real weights of testdata/taef2) and the ViT of models/vit.rfn at its default size
(batch 1, random weights), it times

  - rfc compiled with every pass of the pipeline (the default of rfc compile),
  - rfc compiled with every optional pass disabled (rfc compile --disable …),
  - PyTorch (Debian's python3-torch, the references of scripts/golden/),

each in a process of its own on the same input, with the same thread count, and prints the best
time of each, the ratios, each side's peak resident memory (/usr/bin/time -f %M), the largest
difference between the outputs, and how far each is from the machine's FLOP/s limit: the
model's FLOPs (counted from its IR: convolutions, linears, matmuls, attention) over the time,
against the best GFLOP/s of the SGEMM benchmark (go test -bench Sgemm ./kernels).

Stable Diffusion 1.5 (--models sd15unet,sd15unet2,sd15dec,clip, with --sd15 DIR: full-size
random weights written by scripts/golden/sd15.py --full DIR, loaded from DIR/single-file
.safetensors, float16 as published checkpoints are): the UNet on one 64×64 latent (batch 1)
and on a guided step's batch of two, the decoder 64→512, the text encoder on 77 tokens. For
these PyTorch runs twice, each in its own process: as shipped, and tuned
(MALLOC_MMAP_MAX_=0 OMP_WAIT_POLICY=PASSIVE and OpenBLAS as its BLAS, --openblas DIR:
Debian's python3-torch otherwise takes the system's reference BLAS for its Linear layers).

Run from the repository root:  /usr/bin/python3 bench/compare.py [--runs 3] [--threads 2]
[--models taef2dec,vit] [--sd15 DIR] [--no-peak]. Generated packages live in a temporary Go module that
replaces github.com/rfc-project/rfc with this checkout (as examples/ does); random ViT weights
are written once to --cache.
"""
import argparse
import os
import re
import shutil
import sys
import tempfile

from common import (GO_RUNTIME, ROOT, best_ms, best_of, build_driver, build_rfc, default_openblas, go_driver, go_module,
                    model_args, sh, timed, tuned_env, worker_files)

sys.path.insert(0, os.path.join(ROOT, "scripts", "golden"))

# name: (.rfn, model, --set, weights (None: random, written by PyTorch; "sd15": --sd15 DIR),
# input shape of x, or the inputs as (name, shape, dtype))
MODELS = {
    "taef2dec": ("models/taesd.rfn", "TAEF2Decoder", {"batch": "1", "height": "64", "width": "64"},
                 os.path.join(ROOT, "testdata/taef2/decoder.safetensors"), (1, 32, 64, 64)),
    "vit": ("models/vit.rfn", "ViT", {"batch": "1"}, None, (1, 3, 384, 384)),
    "sd15unet": ("models/sd15.rfn", "SD1UNet", {"batch": "1", "height": "64", "width": "64", "tokens": "77"}, "sd15",
                 [("x", (1, 4, 64, 64), "f32"), ("timestep", (1,), "f32"), ("clip_text_embedding", (1, 77, 768), "f32")]),
    "sd15unet2": ("models/sd15.rfn", "SD1UNet", {"batch": "2", "height": "64", "width": "64", "tokens": "77"}, "sd15",
                  [("x", (2, 4, 64, 64), "f32"), ("timestep", (1,), "f32"), ("clip_text_embedding", (2, 77, 768), "f32")]),
    "sd15dec": ("models/sd15.rfn", "SD1Decoder", {"batch": "1", "height": "64", "width": "64"}, "sd15",
                [("x", (1, 4, 64, 64), "f32")]),
    "clip": ("models/sd15.rfn", "CLIPTextEncoderL", {"batch": "1"}, "sd15", [("ids", (1, 77), "i64")]),
}
SD15 = {"sd15unet", "sd15unet2", "sd15dec", "clip"}


def model_inputs(name):
    """The inputs of a model as (name, shape, dtype)."""
    spec = MODELS[name][4]
    return spec if isinstance(spec, list) else [("x", spec, "f32")]

# ViT's defaults in models/vit.rfn, for the PyTorch reference (scripts/golden/vit.py).
VIT_DEFAULT = dict(embedding_dim=512, patch_size=16, image_size=384, num_layers=12, num_heads=8)

# A go_format template: %[1]s the package, %[2]s the lines reading its inputs, %[3]s the
# arguments of its Forward.
DRIVER = go_driver(['model "rfcbench/%[1]s"', GO_RUNTIME], """
func main() {
	weights, input, output := os.Args[1], os.Args[2], os.Args[3]
	runs, _ := strconv.Atoi(os.Args[4])
	m, err := model.Load(weights)
	check(err)
	f, err := runtime.OpenSafetensors(input)
	check(err)
	tensor := func(name string) *runtime.Tensor {
		t, err := f.Tensor(name)
		check(err)
		return t
	}
%[2]s
	var y []float32
	best := time.Duration(1 << 62)
	for i := 0; i <= runs; i++ { // the first run warms the caches and pools: not counted
		start := time.Now()
		y, err = m.Forward(%[3]s)
		check(err)
		if d := time.Since(start); i > 0 {
			best = min(best, d)
		}
	}
	out := map[string]*runtime.Tensor{"y": runtime.FromF32(y, model.YShape[:]...)}
	check(runtime.WriteSafetensors(output, out, nil))
	fmt.Printf("best_ms %%.3f\\n", float64(best.Microseconds())/1000)
}
""")


def go_format(template, *args):
    """Fills a Go template that uses fmt's %[n]s, as Go's fmt.Sprintf would."""
    out = template
    for i, a in enumerate(args, 1):
        out = out.replace(f"%[{i}]s", a)
    return out.replace("%%", "%")


# ------------------------------------------------------------------ FLOPs from the IR
SHAPE = r"f32\[([\d, ]*)\]"


def dims(s):
    return [int(d) for d in s.split(",") if d.strip()]


def prod(xs):
    n = 1
    for x in xs:
        n *= x
    return n


def count_flops(ir_text):
    """Multiply-adds ×2 of the compute-bound ops of an IR text (ir.Print form)."""
    shapes = {}
    for m in re.finditer(r"^(?:input |param )?([%@][\w.]+): " + SHAPE, ir_text, re.M):
        shapes[m.group(1)] = dims(m.group(2))
    flops = 0
    for m in re.finditer(r"^%\d+: " + SHAPE + r" = (\w+)\(([^)]*)\)", ir_text, re.M):
        out, op, args = dims(m.group(1)), m.group(2), [a.strip() for a in m.group(3).split(",")]
        a = [shapes.get(x) for x in args]
        if op.startswith("conv2d"):
            k, cg, kh, kw = a[1]
            flops += 2 * prod(out) * cg * kh * kw
        elif op.startswith("linear"):
            n_out, n_in = a[1]
            flops += 2 * prod(a[0][:-1]) * n_out * n_in
        elif op == "matmul":
            flops += 2 * prod(out) * a[0][-1]
        elif op.startswith("sdpa"):
            (b, lq, dq), (_, lk, _), (_, _, dv) = a[0], a[1], a[2]
            flops += 2 * b * lq * lk * (dq + dv)
        elif op == "conv_transpose2d":
            c, kg, kh, kw = a[1]
            flops += 2 * prod(a[0]) * kg * kh * kw
    return flops


def sgemm_peak():
    """The best GFLOP/s of kernels' SGEMM benchmark (square sizes), on this machine."""
    out = sh(["go", "test", "-run", "XXX", "-bench", "^BenchmarkSgemm$", "./kernels"], cwd=ROOT).stdout
    rates = [float(x) for x in re.findall(r"([\d.]+) GFLOP/s", out)]
    return max(rates) if rates else float("nan")


# ------------------------------------------------------------------ PyTorch side
def torch_worker(a):
    import torch
    import st
    torch.set_num_threads(a.threads)
    inputs = st.load(a.input)[0]
    x = inputs.get("x")
    if a.torch in SD15:
        return sd15_worker(a, inputs)
    if a.torch == "taef2dec":
        import taesd
        model = taesd.load(taesd.decoder(32, True), a.weights)
    else:
        import vit
        model = vit.vit(**VIT_DEFAULT).eval()
        model.load_state_dict({k: v.float() for k, v in st.load(a.weights)[0].items()}, strict=True)
    with torch.no_grad():
        best, y = best_of(a.runs, lambda: model(x))
    st.save(a.output, {"y": y.contiguous()})
    print(f"best_ms {best * 1000:.3f}")


def sd15_worker(a, inputs):
    """The Refiners-structured SD1.5 models of scripts/golden/sd15.py at full size, loaded from
    the single file through its key map, timed as the other models are."""
    import st
    import sd15
    import fluxion as fl
    build = {"sd15unet": "unet", "sd15unet2": "unet", "sd15dec": "autoencoder", "clip": "clip"}[a.torch]
    prefix = {"unet": "model.diffusion_model.", "autoencoder": "first_stage_model.", "clip": "cond_stage_model."}[build]
    tensors = st.load(a.weights, want=lambda k: k.startswith(prefix))[0]
    with fl.on_device("meta"):
        model = {"unet": lambda: sd15.build_unet(sd15.FULL_UNET), "clip": lambda: sd15.build_clip(sd15.FULL_CLIP),
                 "autoencoder": lambda: sd15.build_autoencoder(sd15.FULL_AE)}[build]()
    model = model.to_empty(device="cpu")
    if build == "autoencoder":
        model = model._modules["Decoder"]
        rows = sd15.keymap(sd15.decoder_modules(), model.state_dict(), "Decoder.")
        sd = {k[len("Decoder."):]: v.float() for k, v in sd15.from_layout(rows, tensors, 1).items()}
        run = lambda: sd15.run_decoder(model, inputs["x"])
    elif build == "unet":
        rows = sd15.keymap(sd15.unet_modules(), model.state_dict())
        sd = {k: v.float() for k, v in sd15.from_layout(rows, tensors, 1).items()}
        run = lambda: sd15.run_unet(model, inputs["x"], inputs["timestep"], inputs["clip_text_embedding"])
    else:
        rows = sd15.keymap(sd15.clip_modules(sd15.FULL_CLIP["num_layers"]), model.state_dict())
        sd = {k: v.float() for k, v in sd15.from_layout(rows, tensors, 1).items()}
        run = lambda: sd15.run_clip(model, inputs["ids"])
    del tensors
    model.load_state_dict(sd, strict=True)
    del sd
    model.eval()
    best, y = best_of(a.runs, run)
    st.save(a.output, {"y": y.contiguous()})
    print(f"best_ms {best * 1000:.3f}")


def make_inputs(cache, names, sd15_dir=None):
    """Writes each model's input (and the random ViT weights, once) with PyTorch."""
    import torch
    import st
    torch.manual_seed(0)
    paths = {}
    for name in names:
        _, _, _, weights, _ = MODELS[name]
        inp = os.path.join(cache, f"{name}_input.safetensors")
        if not os.path.exists(inp):
            tensors = {}
            for iname, shape, dtype in model_inputs(name):
                if dtype == "i64":
                    t = torch.randint(0, 49406, shape)
                    t[:, 0], t[:, -1] = 49406, 49407
                elif iname == "timestep":
                    t = torch.full(shape, 500.0)
                else:
                    t = torch.rand(*shape) if name == "vit" else torch.randn(*shape)
                tensors[iname] = t
            st.save(inp, tensors)
        if weights == "sd15":
            if not sd15_dir:
                raise SystemExit(f"{name} needs --sd15 DIR (full-size weights: scripts/golden/sd15.py --full DIR)")
            weights = os.path.join(sd15_dir, "single-file.safetensors")
        if weights is None:
            weights = os.path.join(cache, f"{name}_default_weights.safetensors")
            if not os.path.exists(weights):
                import vit
                torch.manual_seed(1234)
                model = vit.vit(**VIT_DEFAULT).eval()
                vit.randomize_norms(model)
                st.save(weights, {k: v.detach().contiguous() for k, v in model.state_dict().items()})
        paths[name] = (weights, inp)
    return paths


def max_diff(p, q):
    import st
    a, b = st.load(p)[0]["y"].double(), st.load(q)[0]["y"].double()
    return float((a - b).abs().max()), float(a.abs().max())


# ------------------------------------------------------------------ rfc side
def build_packages(work, names, rfc):
    mod = go_module(work)
    optional = optional_passes()
    bins = {}
    for name in names:
        rfn, model, sets, _, _ = MODELS[name]
        args = [rfc, "compile"] + model_args(rfn, model, sets)
        for variant, extra in (("opt", []), ("noopt", sum((["--disable", p] for p in optional), []))):
            pkg = f"{name}{variant}"
            sh(args + extra + ["-o", os.path.join(mod, pkg), "--pkg", pkg])
            reads, call = [], []
            for i, (iname, _, dtype) in enumerate(model_inputs(name)):
                reads.append(f"\tin{i} := tensor({iname!r})".replace("'", '"'))
                call.append(f"in{i}.I64" if dtype == "i64" else f"in{i}.F32")
            source = go_format(DRIVER, pkg, "\n".join(reads), ", ".join(call))
            bins[(name, variant)] = build_driver(mod, work, pkg, source)
    return bins


def optional_passes():
    """The passes rfc compile may --disable: asked from the passes package itself."""
    src = ('package main\nimport ("fmt"; "github.com/rfc-project/rfc/passes")\n'
           'func main() { for _, p := range passes.Passes() { if !p.Required && !p.Disabled { fmt.Println(p.Name) } } }\n')
    d = tempfile.mkdtemp(prefix="rfc-passes-")
    try:
        path = os.path.join(d, "main.go")
        with open(path, "w") as f:
            f.write(src)
        return sh(["go", "run", path], cwd=ROOT).stdout.split()
    finally:
        shutil.rmtree(d)


def ir_flops(rfc, name):
    rfn, model, sets, _, _ = MODELS[name]
    return count_flops(sh([rfc, "ir"] + model_args(rfn, model, sets)).stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="timed runs per side (best reported), after one warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="taef2dec,vit")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "rfc-compare-cache"))
    ap.add_argument("--no-peak", action="store_true", help="skip the SGEMM benchmark")
    ap.add_argument("--sd15", help="folder of full-size SD1.5 weights (scripts/golden/sd15.py --full DIR)")
    ap.add_argument("--openblas", default=default_openblas(), help="folder of OpenBLAS's libblas.so.3 for tuned PyTorch")
    ap.add_argument("--torch", help=argparse.SUPPRESS)  # worker mode: run one PyTorch model
    worker_files(ap, "--weights", "--input", "--output")
    a = ap.parse_args()
    if a.torch:
        return torch_worker(a)

    names = [n for n in a.models.split(",") if n]
    for n in names:
        if n not in MODELS:
            raise SystemExit(f"unknown model {n!r} (models: {', '.join(MODELS)})")
    os.makedirs(a.cache, exist_ok=True)
    paths = make_inputs(a.cache, names, a.sd15)
    work = tempfile.mkdtemp(prefix="rfc-compare-")
    try:
        rfc = build_rfc(work)
        bins = build_packages(work, names, rfc)
        peak = float("nan") if a.no_peak else sgemm_peak()
        env = dict(os.environ, GOMAXPROCS=str(a.threads))
        rows = []
        for name in names:
            weights, inp = paths[name]
            res = {}
            for variant in ("opt", "noopt"):
                out = os.path.join(work, f"{name}_{variant}_y.safetensors")
                text, rss = timed([bins[(name, variant)], weights, inp, out, str(a.runs)], env=env)
                res[variant] = (best_ms(text), rss, out)
            variants = [("torch", None)]
            if name in SD15:
                variants = [("torch", None), ("torch_tuned", tuned_env(a.openblas))]
            for label, tenv in variants:
                out = os.path.join(work, f"{name}_{label}_y.safetensors")
                text, rss = timed([sys.executable, os.path.abspath(__file__), "--torch", name, "--weights", weights,
                                   "--input", inp, "--output", out, "--runs", str(a.runs), "--threads", str(a.threads)],
                                  env=tenv)
                res[label] = (best_ms(text), rss, out)
            diff, scale = max_diff(res["torch"][2], res["opt"][2])
            rows.append((name, res, ir_flops(rfc, name), diff, scale))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{a.threads} threads, best of {a.runs} runs; SGEMM peak {peak:.1f} GFLOP/s (go test -bench Sgemm ./kernels); "
          "'vs torch' is the time of PyTorch (tuned where it ran tuned) over each side's")
    head = f"{'model':10}{'side':15}{'ms':>10}{'vs torch':>10}{'RSS MB':>9}{'GFLOP/s':>9}{'% peak':>8}"
    print(head)
    print("-" * len(head))
    for name, res, flops, diff, scale in rows:
        t_torch = res.get("torch_tuned", res["torch"])[0]
        for variant, label in (("opt", "rfc"), ("noopt", "rfc no-passes"), ("torch", "PyTorch"), ("torch_tuned", "PyTorch tuned")):
            if variant not in res:
                continue
            ms, rss, _ = res[variant]
            rate = flops / (ms / 1000) / 1e9
            print(f"{name:10}{label:15}{ms:10.1f}{t_torch / ms:10.2f}{rss:9.0f}{rate:9.1f}{100 * rate / peak:8.1f}")
        print(f"{'':10}{flops / 1e9:.2f} GFLOP per forward; max|rfc−torch| {diff:.3g} (max|y| {scale:.3g}); "
              f"passes speed-up {res['noopt'][0] / res['opt'][0]:.2f}×")


if __name__ == "__main__":
    sys.exit(main())
