#!/usr/bin/python3
"""One guided 512×512 Stable Diffusion 1.5 step with one ControlNet, rfc against PyTorch on the
CPU, side by side: the UNet on a batch of two 64×64 latents (classifier-free guidance) with 77
tokens, alone and with a ControlNet on a 512×512 condition; full-size random weights.

  - rfc, as a program runs it (issue #15): the ControlNet alone (SD1Controlnet of
    models/controlnet.rfn, the condition given for both halves), its 13 residuals scaled in
    Go, then the UNet with those inputs (rfc compile --control-inputs); and the plain UNet
    (SD1UNet) for the ControlNet's share. Packages compiled for these sizes in a temporary Go
    module (as bench/compare.py does), GOMAXPROCS=--threads.
  - PyTorch tuned: Refiners' SD1UNet with its SD1ControlnetAdapter injected (the structures of
    scripts/golden/sd15.py and sd15_control.py, float32, the condition of batch 1 broadcast as
    Refiners does), torch.set_num_threads(--threads), MALLOC_MMAP_MAX_=0,
    OMP_WAIT_POLICY=PASSIVE, and OpenBLAS as its BLAS when found (bench/compare.py's tuned
    PyTorch: Debian's python3-torch otherwise takes the reference BLAS): --openblas DIR, a
    folder holding OpenBLAS's libblas.so.3 (apt-get download libopenblas0-pthread && dpkg -x
    libopenblas0-pthread_*.deb /tmp/openblas gives
    /tmp/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread, the default when it exists).

Each side in a process of its own, best of --runs after one warm-up run; it prints the times,
rfc's time over PyTorch's (goal ≤ 0.5), what the ControlNet adds to each side's step (goal ≤ 45 %
for rfc), peak RSS, and how far rfc's output is from PyTorch's.

Weights (float16, written once to --cache, 2.4 GB): the UNet under Refiners' names, the
ControlNet in the original single-file layout (control_model.*).

Run from the repository root:  /usr/bin/python3 bench/controlnet.py [--runs 2] [--threads 2]
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

UNET_SET = {"batch": "2", "height": "64", "width": "64", "tokens": "77"}
CN_SET = dict(UNET_SET, condition_height="512", condition_width="512")

# What both drivers use besides go_driver's check.
HELPERS = """
func tensor(f *runtime.SafetensorsFile, name string) []float32 {
	t, err := f.Tensor(name)
	check(err)
	return t.F32
}

// writeY writes the UNet's output y as the tensor "y" of a safetensors file.
func writeY(path string, y []float32, shape []int) {
	check(runtime.WriteSafetensors(path, map[string]*runtime.Tensor{"y": runtime.FromF32(y, shape...)}, nil))
}
"""

# The plain UNet: the step without a ControlNet.
DRIVER_PLAIN = go_driver([GO_RUNTIME, 'unet "rfcbench/unetplain"'], HELPERS, """
func main() {
	weights, input, output := os.Args[1], os.Args[2], os.Args[3]
	runs, _ := strconv.Atoi(os.Args[4])
	m, err := unet.Load(weights)
	check(err)
	f, err := runtime.OpenSafetensors(input)
	check(err)
	x, t, c := tensor(f, "x"), tensor(f, "timestep"), tensor(f, "clip_text_embedding")
	var y []float32
	best := time.Duration(1 << 62)
	for i := 0; i <= runs; i++ {
		start := time.Now()
		y, err = m.Forward(x, t, c)
		check(err)
		if d := time.Since(start); i > 0 {
			best = min(best, d)
		}
	}
	writeY(output, y, unet.YShape[:])
	fmt.Printf("best_ms %.3f\\n", float64(best.Microseconds())/1000)
}
""")

# The step with one ControlNet, as a program takes it: the ControlNet, its residuals times
# the scale, the UNet with them (no T2I-Adapter: zero features).
DRIVER_CONTROL = go_driver([GO_RUNTIME, 'cn "rfcbench/controlnet"', 'unet "rfcbench/unetcontrol"'], HELPERS, """
func main() {
	unetWeights, cnWeights, input, output := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	runs, _ := strconv.Atoi(os.Args[5])
	const scale = 1.0
	m, err := unet.Load(unetWeights)
	check(err)
	c, err := cn.Load(cnWeights)
	check(err)
	f, err := runtime.OpenSafetensors(input)
	check(err)
	x, t, txt := tensor(f, "x"), tensor(f, "timestep"), tensor(f, "clip_text_embedding")
	one := tensor(f, "condition")
	cond := append(append([]float32(nil), one...), one...) // the same condition for both halves
	f0, f1 := make([]float32, unet.ControlFeatures0Len), make([]float32, unet.ControlFeatures1Len)
	f2, f3 := make([]float32, unet.ControlFeatures2Len), make([]float32, unet.ControlFeatures3Len)
	var y []float32
	// The step, and each half's best apart: the two halves of one process, interleaved, tell
	// the ControlNet's share with less noise than two processes do.
	best, bestCN, bestUNet := time.Duration(1<<62), time.Duration(1<<62), time.Duration(1<<62)
	for i := 0; i <= runs; i++ {
		start := time.Now()
		r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, err := c.Forward(x, t, txt, cond)
		check(err)
		for _, r := range [][]float32{r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12} {
			for j := range r {
				r[j] *= scale
			}
		}
		cnDone := time.Since(start)
		y, err = m.Forward(x, t, txt, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, f0, f1, f2, f3)
		check(err)
		if d := time.Since(start); i > 0 {
			best, bestCN, bestUNet = min(best, d), min(bestCN, cnDone), min(bestUNet, d-cnDone)
		}
	}
	writeY(output, y, unet.YShape[:])
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("best_ms %.3f controlnet_ms %.3f unet_ms %.3f\\n", ms(best), ms(bestCN), ms(bestUNet))
}
""")


def full_cfgs():
    import sd15
    import sd15_control
    return sd15.FULL_UNET, sd15_control.FULL_CN


def make_files(cache):
    """Random full-size weights (float16) and the inputs, written once."""
    import torch
    import st
    import sd15
    import sd15_control as sc
    unet_cfg, cn_cfg = full_cfgs()
    paths = {k: os.path.join(cache, f) for k, f in (("unet", "unet_refiners.safetensors"),
                                                    ("controlnet", "controlnet_single_file.safetensors"),
                                                    ("input", "step_input.safetensors"))}
    if not os.path.exists(paths["unet"]):
        unet = sd15.build_unet(unet_cfg)
        sd15.randomize(unet, 1)
        st.save(paths["unet"], sd15.half(unet.state_dict()))
        del unet
    if not os.path.exists(paths["controlnet"]):
        cn = sc.build_controlnet(cn_cfg)
        sd15.randomize(cn, 2)
        sd = cn.state_dict()
        st.save(paths["controlnet"], sd15.half(sd15.to_ldm(sd15.keymap(sc.controlnet_modules(), sd), sd)))
        del cn
    if not os.path.exists(paths["input"]):
        st.save(paths["input"], {"x": sd15.randn([2, 4, 64, 64], 3), "timestep": torch.tensor([500.0]),
                                 "clip_text_embedding": sd15.randn([2, 77, 768], 4),
                                 "condition": sc.condition_image(1, 512, 512, 5)})
    return paths


def torch_worker(a):
    import torch
    import st
    import sd15
    import sd15_control as sc
    torch.set_num_threads(a.threads)
    unet_cfg, cn_cfg = full_cfgs()
    import fluxion as fl
    unet = sd15.build_unet(unet_cfg)
    unet.load_state_dict(st.load(a.unet)[0])  # float16 tensors, copied into the float32 model
    with fl.on_device("meta"):  # the key map needs the names and shapes only
        maps = sd15.keymap(sc.controlnet_modules(), sc.build_controlnet(cn_cfg).state_dict())
    cn_sd = sd15.from_layout(maps, st.load(a.controlnet)[0], 1)
    inp = st.load(a.input)[0]
    x, t, txt, cond = inp["x"], inp["timestep"], inp["clip_text_embedding"], inp["condition"]
    plain, _ = best_of(a.runs, lambda: sc.run_unet(unet, x, t, txt))
    adapter = sc.SD1ControlnetAdapter(unet, "cn", 1.0, cn_cfg, cn_sd).inject()
    del cn_sd
    control, y = best_of(a.runs, lambda: sc.run_unet(unet, x, t, txt, conditions={"cn": cond}))
    adapter.eject()
    st.save(a.output, {"y": y.contiguous()})
    print(f"plain_ms {plain * 1000:.3f} control_ms {control * 1000:.3f}")


def build(work, rfc):
    mod = go_module(work)

    def compile_(model, sets, pkg, *extra):
        sh([rfc, "compile"] + model_args("models/controlnet.rfn", model, sets) + list(extra)
           + ["-o", os.path.join(mod, pkg), "--pkg", pkg])

    compile_("SD1UNet", UNET_SET, "unetplain")
    compile_("SD1UNet", UNET_SET, "unetcontrol", "--control-inputs")
    compile_("SD1Controlnet", CN_SET, "controlnet")
    return {name: build_driver(mod, work, name, src)
            for name, src in (("plain", DRIVER_PLAIN), ("control", DRIVER_CONTROL))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2, help="timed runs per side (best reported), after one warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "rfc-controlnet-bench"))
    ap.add_argument("--openblas", default=default_openblas(), help="a folder holding OpenBLAS's libblas.so.3")
    ap.add_argument("--torch", action="store_true", help=argparse.SUPPRESS)  # worker mode
    worker_files(ap, "--unet", "--controlnet", "--input", "--output")
    a = ap.parse_args()
    if a.torch:
        return torch_worker(a)

    os.makedirs(a.cache, exist_ok=True)
    paths = make_files(a.cache)
    work = tempfile.mkdtemp(prefix="rfc-controlnet-bench-")
    try:
        rfc = build_rfc(work)
        bins = build(work, rfc)
        env = dict(os.environ, GOMAXPROCS=str(a.threads))
        out_plain, out_ctl, out_torch = (os.path.join(work, f) for f in ("plain.safetensors", "control.safetensors",
                                                                           "torch.safetensors"))
        text, rss_plain = timed([bins["plain"], paths["unet"], paths["input"], out_plain, str(a.runs)], env=env)
        rfc_plain = best_ms(text)
        text, rss_ctl = timed([bins["control"], paths["unet"], paths["controlnet"], paths["input"], out_ctl,
                               str(a.runs)], env=env)
        m = re.search(r"best_ms ([\d.]+) controlnet_ms ([\d.]+) unet_ms ([\d.]+)", text)
        rfc_ctl, rfc_cn, rfc_unet = float(m.group(1)), float(m.group(2)), float(m.group(3))
        tenv, blas = tuned_env(a.openblas), bool(a.openblas)
        text, rss_torch = timed([sys.executable, os.path.abspath(__file__), "--torch", "--unet", paths["unet"],
                                 "--controlnet", paths["controlnet"], "--input", paths["input"], "--output", out_torch,
                                 "--runs", str(a.runs), "--threads", str(a.threads)], env=tenv)
        m = re.search(r"plain_ms ([\d.]+) control_ms ([\d.]+)", text)
        torch_plain, torch_ctl = float(m.group(1)), float(m.group(2))
        import st
        y, ref = st.load(out_ctl)[0]["y"].double(), st.load(out_torch)[0]["y"].double()
        diff, scale = float((y - ref).abs().max()), float(ref.abs().max())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"SD1.5 guided step (batch 2, 64×64 latents, 77 tokens) with one ControlNet (512×512 condition); "
          f"{a.threads} threads, best of {a.runs}; PyTorch tuned{' with OpenBLAS' if blas else ' (no OpenBLAS found)'}")
    print(f"{'':26}{'rfc s':>9}{'PyTorch s':>11}{'rfc/PyTorch':>13}")
    print(f"{'UNet alone':26}{rfc_plain / 1000:9.2f}{torch_plain / 1000:11.2f}{rfc_plain / torch_plain:13.2f}")
    print(f"{'UNet + ControlNet':26}{rfc_ctl / 1000:9.2f}{torch_ctl / 1000:11.2f}{rfc_ctl / torch_ctl:13.2f}")
    print(f"{'  the ControlNet (best)':26}{rfc_cn / 1000:9.2f}")
    print(f"{'  the UNet with inputs':26}{rfc_unet / 1000:9.2f}")
    print(f"the ControlNet adds {100 * rfc_cn / rfc_unet:.0f} % to rfc's step (its best over the UNet's, one process; "
          f"{100 * (rfc_ctl / rfc_plain - 1):.0f} % against the plain UNet's process), "
          f"{100 * (torch_ctl / torch_plain - 1):.0f} % to PyTorch's")
    print(f"peak RSS: rfc {rss_plain:.0f} MB alone, {rss_ctl:.0f} MB with the ControlNet; PyTorch {rss_torch:.0f} MB")
    print(f"max|rfc − PyTorch| {diff:.3g} (max|y| {scale:.3g})")


if __name__ == "__main__":
    sys.exit(main())
