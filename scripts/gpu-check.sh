#!/usr/bin/env bash
# Runs rfc's CUDA target on this machine's GPU, with binaries built elsewhere: no Go
# toolchain is needed here, only the NVIDIA driver (libcuda.so.1), the repository's
# testdata, and for the time reference a python3 with a CUDA-enabled torch.
#
#   scripts/gpu-check.sh [BIN]      BIN: the cuda-tagged rfc-gpucheck (default bin/rfc-gpucheck)
#
# Build BIN on a machine with Go, nvcc and the CUDA headers: scripts/cuda-build-check.sh -o
# bin/rfc-gpucheck (it generates the check's packages, compiles their PTX, which BIN embeds,
# and builds BIN), then run this script from a copy of the tree that holds BIN.
#
# Prints, per model: max|Δ| of the GPU output against the CPU tests' PyTorch goldens (ViT,
# ViT with float16 weights, TAEF2 encoder and decoder at the golden sizes), the Forward and
# kernel times; at the default sizes (ViT 384², TAEF2 512²) rfc's times, then PyTorch's on the
# same GPU and max|Δ| between the two. Exit status non-zero when an accuracy check fails.
# Environment: RUNS (timed runs, default 20), PYTHON (default python3), RFC_CUDA_DEVICE.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/rfc-gpucheck}
runs=${RUNS:-20}
python=${PYTHON:-python3}

if [ ! -x "$bin" ]; then
  echo "gpu-check: $bin is missing: build it with scripts/cuda-build-check.sh -o $bin (Go, nvcc, cgo and the CUDA headers needed)" >&2
  exit 2
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
else
  echo "gpu-check: nvidia-smi not found; trying anyway"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
"$bin" -root . -out "$work" -runs "$runs" || status=$?

if "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  "$python" scripts/gpu/torch_reference.py --dir "$work" --runs "$runs" || status=1
else
  echo "gpu-check: skipped the PyTorch reference: $python has no CUDA-enabled torch"
fi
exit $status
