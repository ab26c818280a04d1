#!/usr/bin/env bash
# Regenerates the CUDA packages of cmd/rfc-gpucheck/internal with this tree's rfc (the
# go:generate line of each generate.go), compiles each model.cu to model.ptx with nvcc, and
# records in cmd/rfc-gpucheck/internal/ptx.sum which model.cu each model.ptx was compiled
# from. go test ./cmd/rfc (TestGPUCheckPackagesAreCurrent) fails when the committed files and
# the generators disagree, or when a model.ptx is not the one ptx.sum lists for its model.cu.
#
# Needs nvcc: the PTX is committed so that go build -tags cuda works where nvcc is missing,
# and must be compiled from the model.cu beside it. Run it after a change to codegen/cuda,
# the runtime's CUDA kernels or models/*.rfn that the check reports, and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=cmd/rfc-gpucheck/internal

if ! command -v nvcc >/dev/null 2>&1; then
  echo "gpucheck-generate: needs nvcc on PATH to compile model.cu to the committed model.ptx" >&2
  exit 2
fi
echo "gpucheck-generate: $(nvcc --version | tail -1)"
for gen in "$dir"/*/generate.go; do
  d=$(dirname "$gen")
  rm -f "$d/model.ptx"
  # rfc compile, then shapes.go's nvcc line: both in the package's own go:generate lines.
  (cd "$d" && go generate .)
  if [ ! -f "$d/model.ptx" ]; then
    echo "gpucheck-generate: go generate made no $d/model.ptx" >&2
    exit 1
  fi
  echo "gpucheck-generate: $d ok"
done
{
  echo "# SHA-256 of model.cu and of the model.ptx that nvcc compiled from it, per package;"
  echo "# written by scripts/gpucheck-generate.sh, checked by go test ./cmd/rfc."
  for gen in "$dir"/*/generate.go; do
    d=$(dirname "$gen")
    cu=$(sha256sum < "$d/model.cu" | cut -d' ' -f1)
    ptx=$(sha256sum < "$d/model.ptx" | cut -d' ' -f1)
    echo "$cu $ptx $(basename "$d")"
  done
} > "$dir/ptx.sum"
echo "gpucheck-generate: wrote $dir/ptx.sum"
