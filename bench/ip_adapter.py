#!/usr/bin/python3
"""IP-Adapter's cost at full size (issue #16), on the CPU: the UNet step it adds to and the
image encoder it adds.

  1. The per-step overhead: SD1.5's UNet (models/sd15.rfn) compiled for a step with
     classifier-free guidance at 512x512 (batch 2, 64x64 latents, 77 text tokens), without
     the IP-Adapter and with it (models/ip_adapter.rfn's ImageCrossAttention on the 16
     cross-attentions), the latter run with base's 4 image tokens and plus's 16 (one package:
     the token count is a size known at run time). One process holds both UNets and
     alternates the three forwards, keeping each one's best: on a shared machine whose load
     changes, separate processes measured minutes apart disagree by more than the overhead.
  2. The image encoder: CLIPImageEncoderH (clip.rfn, ViT-H/14 at 224x224, batch 1, both of
     its outputs) compiled by rfc, against PyTorch running Refiners' CLIPImageEncoderH
     (scripts/golden/sd15_ip.py), shipped (Debian's python3-torch, its defaults) and tuned
     (torch.set_num_threads, MALLOC_MMAP_MAX_=0 OMP_WAIT_POLICY=PASSIVE and OpenBLAS as its
     BLAS when --openblas names a folder with OpenBLAS's libblas.so.3: Debian's torch takes
     the system's reference BLAS otherwise, about 2 GFLOP/s; without changing the system's:
     apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb /tmp/openblas,
     whose openblas-pthread folder is the default), with
     the largest difference of the outputs. Shipped is timed only with --shipped: with the
     reference BLAS it takes minutes per run here.

Random float16-exact weights (sd15.randomize's rule) are written once into --cache (the
UNet 1.7 GB, the encoder 1.3 GB, the IP-Adapter 44 MB; float16). Each side runs in a process
of its own, one after the other, with --threads threads; each time is the best of --runs
after a warm-up. Generated packages live in a temporary Go module that replaces
github.com/rfc-project/rfc with this checkout, as bench/compare.py does.

Measured here (2 threads of a 2-core VM shared with other jobs, load average about 8; best of
3 after a warm-up): the UNet step 10.45 s, with IP-Adapter base 10.90 s (+4.2 %), plus 11.09 s
(+6.1 %); CLIPImageEncoderH 2.12 s in rfc, 7.97 s in PyTorch tuned (OpenBLAS 0.3.21): 0.27×,
outputs agreeing to 1.2e-6 (max|Δ|/max|y|, full size, random weights). Reference-only control
(--only refonly, best of 2, load average about 4): the UNet step 14.99 s, the reference-only
UNet's step (batch 4) 37.93 s, 2.53x: twice the rows, and each self-attention attends to twice
the keys.

Run from the repository root:
  /usr/bin/python3 bench/ip_adapter.py [--runs 3] [--threads 2] [--openblas DIR] [--shipped] [--check]
                                       [--only unet|encoder|refonly]
--check also runs the three UNets in PyTorch on the inputs rfc took and prints how far rfc's
outputs are (the full-size check of the adapted UNet; the encoder's is always printed).
"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import time

from common import (GO_RUNTIME, ROOT, best_ms, best_of, build_driver, build_rfc, default_openblas, go_driver, go_module,
                    model_args, sh, timed, tuned_env, worker_files)

sys.path.insert(0, os.path.join(ROOT, "scripts", "golden"))

UNET_SET = {"batch": "2", "tokens": "77", "height": "64", "width": "64"}
IP_SELECT = ["--adapter", "ip=ImageCrossAttention", "--select", "ScaledDotProductAttention@**.Residual_2.Attention.*"]

ENCODER_DRIVER = go_driver(['model "rfcbench/enc"', GO_RUNTIME], """
func main() {
	weights, input, output := os.Args[1], os.Args[2], os.Args[3]
	runs, _ := strconv.Atoi(os.Args[4])
	m, err := model.Load(weights)
	check(err)
	f, err := runtime.OpenSafetensors(input)
	check(err)
	x, err := f.Tensor("x")
	check(err)
	var y0, y1 []float32
	best := time.Duration(1 << 62)
	for i := 0; i <= runs; i++ { // the first run warms the caches and pools: not counted
		start := time.Now()
		y0, y1, err = m.Forward(x.F32)
		check(err)
		if d := time.Since(start); i > 0 {
			best = min(best, d)
		}
	}
	out := map[string]*runtime.Tensor{"embedding": runtime.FromF32(y0, model.Y0Shape[:]...), "penultimate": runtime.FromF32(y1, model.Y1Shape[:]...)}
	check(runtime.WriteSafetensors(output, out, nil))
	fmt.Printf("best_ms %.3f\\n", float64(best.Microseconds())/1000)
}
""")

# The drivers that alternate several forwards in one process, so that a machine whose load
# changes treats them alike, add deterministic inputs (fill) and the alternation itself.
ALTERNATE = """
func fill(n int, seed uint32) []float32 {
	out := make([]float32, n)
	for i := range out {
		seed = seed*1664525 + 1013904223
		out[i] = float32(seed>>8)/float32(1<<24)*2 - 1
	}
	return out
}

type call struct {
	name string
	f    func() ([]float32, error)
}

// alternate runs the calls in turn, runs+1 rounds (the first warms caches and plans: not
// counted), prints each one's best time as "best_ms NAME MS" and returns each one's last output.
func alternate(runs int, calls []call) map[string][]float32 {
	out := map[string][]float32{}
	best := make([]time.Duration, len(calls))
	for i := 0; i <= runs; i++ {
		for k, c := range calls {
			start := time.Now()
			y, err := c.f()
			check(err)
			if d := time.Since(start); i > 0 && (best[k] == 0 || d < best[k]) {
				best[k] = d
			}
			out[c.name] = append(out[c.name][:0], y...)
		}
	}
	for k, c := range calls {
		fmt.Printf("best_ms %s %.3f\\n", c.name, float64(best[k].Microseconds())/1000)
	}
	return out
}
"""

# Both UNets in one process, their forwards alternated: plain, base's 4 tokens, plus's 16.
UNET_DRIVER = go_driver(['"rfcbench/unet"', '"rfcbench/unetip"', GO_RUNTIME], ALTERNATE, """
func main() {
	unetWeights, ipWeights, output := os.Args[1], os.Args[2], os.Args[4]
	runs, _ := strconv.Atoi(os.Args[3])
	plain, err := unet.Load(unetWeights)
	check(err)
	ip, err := unetip.Load(unetWeights, ipWeights)
	check(err)
	in := map[string][]float32{"x": fill(2*4*64*64, 1), "text": fill(2*77*768, 2), "tokens_base": fill(2*4*768, 3), "tokens_plus": fill(2*16*768, 4)}
	t := []float32{500}
	out := alternate(runs, []call{
		{"plain", func() ([]float32, error) { return plain.Forward(in["x"], t, in["text"]) }},
		{"base", func() ([]float32, error) {
			return ip.Forward(in["x"], t, in["text"], in["tokens_base"], []int{2, 4, 768}, []float32{1})
		}},
		{"plus", func() ([]float32, error) {
			return ip.Forward(in["x"], t, in["text"], in["tokens_plus"], []int{2, 16, 768}, []float32{1})
		}},
	})
	shapes := map[string][]int{"x": {2, 4, 64, 64}, "text": {2, 77, 768}, "tokens_base": {2, 4, 768}, "tokens_plus": {2, 16, 768},
		"plain": {2, 4, 64, 64}, "base": {2, 4, 64, 64}, "plus": {2, 4, 64, 64}}
	tensors := map[string]*runtime.Tensor{}
	for k, v := range in {
		tensors[k] = runtime.FromF32(v, shapes[k]...)
	}
	for k, v := range out {
		tensors[k] = runtime.FromF32(v, shapes[k]...)
	}
	check(runtime.WriteSafetensors(output, tensors, nil))
}
""")

# Reference-only control (--only refonly): the plain UNet's step with guidance (batch 2)
# against the reference-only UNet's, which runs the generation's two rows and the noised
# reference's in one call of four (models/ip_adapter.rfn's ReferenceOnlyAttention, what
# package sd15 runs), alternated in one process.
REF_DRIVER = go_driver(['"rfcbench/unet"', '"rfcbench/unetref"'], ALTERNATE, """
func main() {
	weights := os.Args[1]
	runs, _ := strconv.Atoi(os.Args[2])
	plain, err := unet.Load(weights)
	check(err)
	ref, err := unetref.Load(weights)
	check(err)
	x, text := fill(4*4*64*64, 1), fill(2*77*768, 2)
	text4 := append(append([]float32(nil), text...), text...)
	t := []float32{500}
	alternate(runs, []call{
		{"plain", func() ([]float32, error) { return plain.Forward(x[:2*4*64*64], t, text) }},
		{"refonly", func() ([]float32, error) { return ref.Forward(x, t, text4, []float32{0.5}) }},
	})
}
""")
REF_SELECT = ["--adapter", "reference=ReferenceOnlyAttention",
              "--select", "ScaledDotProductAttention@**.CrossAttentionBlock.Residual_1.SelfAttention.*"]


def write_weights(cache):
    """Full-size random weights, float16, once: the UNet (Refiners' keys), the image encoder
    (transformers' keys, as published), an IP-Adapter base file (published keys)."""
    import fluxion as fl
    import sd15
    import sd15_ip
    import st
    os.makedirs(cache, exist_ok=True)
    paths = {k: os.path.join(cache, f"{k}.safetensors") for k in ("unet", "encoder", "ip_base", "encoder_input")}
    if not os.path.exists(paths["unet"]) or not os.path.exists(paths["ip_base"]):
        t0 = time.time()
        with fl.on_device("meta"):
            unet = sd15.build_unet(sd15.FULL_UNET)
        unet = unet.to_empty(device="cpu")
        sd15.randomize(unet, 2)
        st.save(paths["unet"], sd15.half(unet.state_dict()))
        proj = sd15_ip.ImageProjection(**sd15_ip.FULL_BASE).eval()
        sd15.randomize(proj, 302)
        u, adapters = sd15_ip.ip_unet(unet, seed=104)
        tensors = sd15_ip.to_published(sd15_ip.base_map(), proj.state_dict())
        usd = u.state_dict()
        tensors.update({p: usd[r] for r, p, _k in sd15_ip.ip_cross_attention_map(unet)})
        st.save(paths["ip_base"], sd15.half(tensors))
        del unet, u, usd
        print(f"  wrote the UNet and IP-Adapter weights ({time.time() - t0:.0f} s)", flush=True)
    if not os.path.exists(paths["encoder"]):
        t0 = time.time()
        enc = sd15_ip.CLIPImageEncoderH().eval()
        sd15.randomize(enc, 301)
        st.save(paths["encoder"], sd15.half(sd15_ip.to_published(sd15_ip.encoder_map(32), enc.state_dict())))
        del enc
        print(f"  wrote the image encoder's weights ({time.time() - t0:.0f} s)", flush=True)
    if not os.path.exists(paths["encoder_input"]):
        pixels = sd15_ip.preprocess_image(sd15_ip.load_photo("coffee.png"), 224)
        st.save(paths["encoder_input"], {"x": pixels.contiguous()})
    return paths


def torch_encoder(a):
    """Worker: Refiners' CLIPImageEncoderH in PyTorch on the published weights."""
    import torch
    import sd15_ip
    import st
    torch.set_num_threads(a.threads)
    enc = sd15_ip.CLIPImageEncoderH().eval()
    tensors, _ = st.load(a.weights)
    sd = sd15_ip.from_published(sd15_ip.encoder_map(32), tensors, "image encoder")
    enc.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    grid = sd15_ip.grid_encoder(enc)
    x = st.load(a.input)[0]["x"]
    with torch.no_grad():
        best, y = best_of(a.runs, lambda: sd15_ip.run_encoder(enc, x))
        g = sd15_ip.run_grid(grid, x)
    st.save(a.output, {"embedding": y.contiguous(), "penultimate": g.contiguous()})
    print(f"best_ms {best * 1000:.3f}")


def build(work, rfc):
    mod = go_module(work)
    packages = {
        "enc": model_args("models/clip.rfn", "CLIPImageEncoderH", {"batch": "1"}),
        "unet": model_args("models/sd15.rfn", "SD1UNet", UNET_SET),
        "unetip": model_args("models/ip_adapter.rfn", "SD1UNet", UNET_SET) + IP_SELECT,
        "unetref": model_args("models/ip_adapter.rfn", "SD1UNet", dict(UNET_SET, batch="4")) + REF_SELECT,
    }
    for pkg, args in packages.items():
        sh([rfc, "compile"] + args + ["-o", os.path.join(mod, pkg), "--pkg", pkg])
    return {name: build_driver(mod, work, name, driver)
            for name, driver in (("enc", ENCODER_DRIVER), ("unets", UNET_DRIVER), ("refonly", REF_DRIVER))}


def alternated_bests(text):
    """The best times, in ms by name, that a driver alternating its forwards printed."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"best_ms (\w+) ([\d.]+)", text)}


def torch_unets(a):
    """Worker: the plain and IP-adapted UNets in PyTorch (Refiners' structure, float32) on
    the inputs the rfc driver wrote; prints how far rfc's outputs are from them."""
    import torch
    import fluxion as fl
    import sd15
    import sd15_ip
    import st
    torch.set_num_threads(a.threads)
    with fl.on_device("meta"):
        unet = sd15.build_unet(sd15.FULL_UNET)
    unet = unet.to_empty(device="cpu")
    tensors, _ = st.load(a.weights)
    unet.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    del tensors
    ip_tensors, _ = st.load(a.ip)
    rows = sd15_ip.ip_cross_attention_map(unet)
    u, adapters = sd15_ip.ip_unet(unet, weights={r: ip_tensors[p].float() for r, p, _k in rows})
    d, _ = st.load(a.input)
    t = torch.tensor([500.0])
    for name, model, tokens in (("plain", unet, None), ("base", u, d["tokens_base"]), ("plus", u, d["tokens_plus"])):
        y = sd15_ip.run_unet(model, d["x"], t, d["text"], image_embedding=tokens)
        print(f"agree {name} {float((d[name].double() - y.double()).abs().max() / y.double().abs().max()):.1e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--openblas", default=default_openblas(), help="folder with OpenBLAS's libblas.so.3 for PyTorch tuned")
    ap.add_argument("--shipped", action="store_true", help="also time PyTorch shipped (slow here: the reference BLAS)")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "rfc-ip-bench-cache"))
    ap.add_argument("--only", choices=["unet", "encoder", "refonly"],
                    help="one part; refonly (reference-only control's step) runs only when asked")
    ap.add_argument("--check", action="store_true",
                    help="also run the UNets in PyTorch on the same inputs and print how far rfc's outputs are")
    ap.add_argument("--torch-encoder", action="store_true", help=argparse.SUPPRESS)  # worker mode
    ap.add_argument("--torch-unets", action="store_true", help=argparse.SUPPRESS)
    worker_files(ap, "--ip", "--weights", "--input", "--output")
    a = ap.parse_args()
    if a.torch_encoder:
        return torch_encoder(a)
    if a.torch_unets:
        return torch_unets(a)
    paths = write_weights(a.cache)
    work = tempfile.mkdtemp(prefix="rfc-ip-bench-")
    env = dict(os.environ, GOMAXPROCS=str(a.threads))
    class Lines(list):
        def append(self, line):  # printed as they come: a full run takes minutes
            print(line, flush=True)
            super().append(line)

    lines = Lines()
    lines.append(f"{a.threads} threads, best of {a.runs} runs after a warm-up")
    try:
        rfc = build_rfc(work)
        bins = build(work, rfc)
        if a.only == "refonly":
            text, rss = timed([bins["refonly"], paths["unet"], str(a.runs)], env)
            best = alternated_bests(text)
            lines.append(f"UNet step, 512x512 with guidance (batch 2), alternated with reference-only control's "
                         f"(peak RSS {rss / 1024:.2f} GB for both UNets): {best['plain'] / 1000:.2f} s")
            lines.append(f"  with reference-only control (the generation's two rows and the reference's, batch 4): "
                         f"{best['refonly'] / 1000:.2f} s, {best['refonly'] / best['plain']:.2f}x")
            return
        if a.only != "encoder":
            unet_out = os.path.join(work, "unets.safetensors")
            text, rss = timed([bins["unets"], paths["unet"], paths["ip_base"], str(a.runs), unet_out], env)
            best = alternated_bests(text)
            base = best["plain"]
            lines.append(f"UNet step, 512x512 with guidance (batch 2), the three alternated in one process "
                         f"(peak RSS {rss / 1024:.2f} GB for both UNets): {base / 1000:.2f} s")
            for kind, n in (("base", 4), ("plus", 16)):
                t = best[kind]
                lines.append(f"  with IP-Adapter ({kind}, {n} image tokens): {t / 1000:.2f} s, "
                             f"overhead {100 * (t - base) / base:+.1f} %")
            if a.check:
                text, _ = timed([sys.executable, os.path.abspath(__file__), "--torch-unets", "--weights", paths["unet"],
                                 "--ip", paths["ip_base"], "--input", unet_out, "--threads", str(a.threads)],
                                tuned_env(a.openblas))
                lines.append("  against PyTorch (Refiners' SD1UNet and SD1IPAdapter, float32), max|Δ|/max|y|: " +
                             ", ".join(re.findall(r"^agree (\w+ [\d.e+-]+)$", text, re.M)))
        if a.only != "unet":
            out = os.path.join(work, "enc_rfc.safetensors")
            text, rss_rfc = timed([bins["enc"], paths["encoder"], paths["encoder_input"], out, str(a.runs)], env)
            t_rfc = best_ms(text)
            lines.append(f"CLIPImageEncoderH, 224x224, batch 1: rfc {t_rfc / 1000:.2f} s (peak RSS {rss_rfc / 1024:.2f} GB)")
            import st
            ours = st.load(out)[0]
            for name, tuned in (("PyTorch shipped", False), ("PyTorch tuned", True)):
                if not tuned and not a.shipped:
                    continue
                penv = tuned_env(a.openblas) if tuned else dict(os.environ)
                tout = os.path.join(work, f"enc_{tuned}.safetensors")
                text, rss = timed([sys.executable, os.path.abspath(__file__), "--torch-encoder", "--weights",
                                   paths["encoder"], "--input", paths["encoder_input"], "--output", tout, "--runs",
                                   str(a.runs), "--threads", str(a.threads)], penv)
                t = best_ms(text)
                theirs = st.load(tout)[0]
                diff = max(float((ours[k].double() - theirs[k].double()).abs().max() / theirs[k].double().abs().max())
                           for k in ("embedding", "penultimate"))
                blas = f", BLAS {a.openblas or 'the system libblas'}" if tuned else ""
                lines.append(f"  {name}{blas}: {t / 1000:.2f} s (peak RSS {rss / 1024:.2f} GB); rfc/PyTorch time "
                             f"{t_rfc / t:.2f}; outputs agree to {diff:.1e} (max|Δ|/max|y|)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
