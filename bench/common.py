"""What the benchmarks of bench/ share: running a command and reading its peak memory, the
environment of PyTorch tuned, the temporary Go module in which rfc's generated packages are
built against this checkout, and the best-of-N loop of the PyTorch workers.

The scripts import it from their own folder (python puts a script's folder first on sys.path).
"""
import argparse
import os
import re
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    """Runs cmd; on failure exits with its command line and output, which say what went wrong."""
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")
    return out


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time from the repository root; returns its output (stdout, then
    stderr, which ends with a line "maxrss KB wall SECONDS") and its peak RSS in MB."""
    out = subprocess.run(["/usr/bin/time", "-f", "maxrss %M wall %e"] + cmd, capture_output=True, text=True,
                         env=env, cwd=ROOT)
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{text}")
    return text, int(re.findall(r"maxrss (\d+)", text)[-1]) / 1024


def best_ms(text):
    """The "best_ms N" a driver or worker prints."""
    return float(re.search(r"best_ms ([\d.]+)", text).group(1))


def default_openblas():
    """The folder of an OpenBLAS libblas.so.3 for PyTorch tuned, unpacked under /tmp or
    installed; "" when there is none."""
    for d in ("/tmp/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread", "/usr/lib/x86_64-linux-gnu/openblas-pthread"):
        if os.path.exists(os.path.join(d, "libblas.so.3")):
            return d
    return ""


def tuned_env(openblas):
    """PyTorch tuned: no mmap'd mallocs, passive OpenMP waits, and OpenBLAS first on the library
    path when given, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset so that it picks its
    kernels for this CPU (bench/gemm/README.md)."""
    env = dict(os.environ, MALLOC_MMAP_MAX_="0", OMP_WAIT_POLICY="PASSIVE")
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    if openblas:
        env["LD_LIBRARY_PATH"] = openblas + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def worker_files(ap, *flags):
    """Adds the flags that hand a PyTorch worker (the script run again in worker mode) its
    files, hidden from --help."""
    for flag in flags:
        ap.add_argument(flag, help=argparse.SUPPRESS)


def build_rfc(work):
    """Builds this checkout's rfc command into work; returns its path."""
    rfc = os.path.join(work, "rfc")
    sh(["go", "build", "-o", rfc, "./cmd/rfc"], cwd=ROOT)
    return rfc


def go_module(work):
    """Writes the Go module rfcbench in work/mod, which replaces github.com/rfc-project/rfc with
    this checkout (as examples/ does), with the checksums of both of the repository's modules;
    returns its folder."""
    mod = os.path.join(work, "mod")
    os.makedirs(mod, exist_ok=True)
    with open(os.path.join(mod, "go.mod"), "w") as f:
        f.write("module rfcbench\n\ngo 1.26\n\nrequire github.com/rfc-project/rfc v0.0.0\n\n"
                f"replace github.com/rfc-project/rfc => {ROOT}\n")
    sums = set()
    for p in (os.path.join(ROOT, "go.sum"), os.path.join(ROOT, "examples", "go.sum")):
        if os.path.exists(p):
            with open(p) as f:
                sums.update(f.read().splitlines())
    with open(os.path.join(mod, "go.sum"), "w") as f:
        f.write("\n".join(sorted(s for s in sums if s)) + "\n")
    return mod


def model_args(rfn, model, sets):
    """The arguments of rfc compile or rfc ir that pick a model of a .rfn (a path under the
    repository root) at the sizes of sets."""
    args = [os.path.join(ROOT, rfn), "--model", model]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    return args


GO_RUNTIME = '"github.com/rfc-project/rfc/runtime"'  # the import spec of package runtime


def go_driver(imports, *parts):
    """The source of a Go driver: package main importing fmt, os, strconv, time and imports
    (import specs such as 'model "rfcbench/enc"'), check (which exits on an error), then parts."""
    own = sorted(imports, key=lambda spec: spec.split('"')[1])  # as gofmt orders them
    head = ('package main\n\nimport (\n\t"fmt"\n\t"os"\n\t"strconv"\n\t"time"\n\n'
            + "".join(f"\t{spec}\n" for spec in own) + ")\n")
    check = """
func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
"""
    return head + check + "".join(parts)


def build_driver(mod, work, name, source):
    """Writes source as the main package mod/cmd/NAME and builds it into work/NAME; returns the
    binary's path."""
    drv = os.path.join(mod, "cmd", name)
    os.makedirs(drv, exist_ok=True)
    with open(os.path.join(drv, "main.go"), "w") as f:
        f.write(source)
    exe = os.path.join(work, name)
    sh(["go", "build", "-o", exe, "./cmd/" + name], cwd=mod, env=dict(os.environ, GOFLAGS="-mod=mod"))
    return exe


def best_of(runs, fn):
    """Calls fn runs + 1 times, the first a warm-up that is not counted; returns the best time in
    seconds and fn's last result."""
    best, y = float("inf"), None
    for i in range(runs + 1):
        t0 = time.perf_counter()
        y = fn()
        if i > 0:
            best = min(best, time.perf_counter() - t0)
    return best, y
