#!/usr/bin/python3
"""TAEF2 on the same 512x512 photo: rfc's compiled encoder/decoder (examples/taesd) and the
PyTorch reference (scripts/golden/taesd.py), one after the other, same thread count; prints
both times (best of N runs), the ratio, and each side's peak resident memory.

Run from the repository root: /usr/bin/python3 bench/taesd.py [--runs 3] [--threads 2]
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rfc(runs, threads, photo):
    exe = os.path.join("/tmp", "rfc-taesd-bench")
    subprocess.run(["go", "build", "-o", exe, "./taesd"], cwd=os.path.join(ROOT, "examples"), check=True)
    env = dict(os.environ, GOMAXPROCS=str(threads))
    out = subprocess.run(["/usr/bin/time", "-f", "maxrss %M", exe, "-in", photo, "-out", "/tmp/rfc-taesd-bench.png",
                          "-weights", os.path.join(ROOT, "testdata/taef2"), "-runs", str(runs)],
                         env=env, capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    enc = re.search(r"encoder ([\d.]+)(m?s)", text)
    dec = re.search(r"decoder ([\d.]+)(m?s)", text)
    psnr = re.search(r"PSNR ([\d.]+)", text)
    rss = re.search(r"maxrss (\d+)", text)

    def ms(m):
        return float(m.group(1)) * (1 if m.group(2) == "ms" else 1000)
    return ms(enc), ms(dec), float(psnr.group(1)), int(rss.group(1)) / 1024


def pytorch(runs, threads, photo):
    out = subprocess.run(["/usr/bin/time", "-f", "maxrss %M", "/usr/bin/python3", os.path.join(ROOT, "scripts/golden/taesd.py"),
                          "--photo", photo, "--out", "/tmp", "--threads", str(threads), "--time", "--runs", str(runs)],
                         capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    enc = float(re.search(r"encoder ([\d.]+) ms", text).group(1))
    dec = float(re.search(r"decoder ([\d.]+) ms", text).group(1))
    psnr = float(re.search(r"PSNR ([\d.]+)", text).group(1))
    rss = int(re.search(r"maxrss (\d+)", text).group(1)) / 1024
    return enc, dec, psnr, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--photo", default=os.path.join(ROOT, "testdata/images/astronaut.png"))
    a = ap.parse_args()
    r = rfc(a.runs, a.threads, a.photo)
    p = pytorch(a.runs, a.threads, a.photo)
    print(f"TAEF2, {os.path.basename(a.photo)} 512x512, {a.threads} threads, best of {a.runs}")
    print(f"{'':10}{'rfc (ms)':>12}{'PyTorch (ms)':>14}{'PyTorch/rfc':>13}")
    for name, i in (("encoder", 0), ("decoder", 1)):
        print(f"{name:10}{r[i]:12.1f}{p[i]:14.1f}{p[i] / r[i]:13.2f}")
    print(f"{'PSNR dB':10}{r[2]:12.2f}{p[2]:14.2f}")
    print(f"{'peak RSS':10}{r[3]:10.0f}MB{p[3]:12.0f}MB{p[3] / r[3]:13.2f}")


if __name__ == "__main__":
    sys.exit(main())
