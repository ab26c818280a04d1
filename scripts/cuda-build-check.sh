#!/usr/bin/env bash
# Checks rfc's CUDA target as far as this machine allows, without a GPU, and builds the GPU
# check (cmd/rfc-gpucheck/_cuda):
#   - with nvcc: generates the GPU check's packages into cmd/rfc-gpucheck/_cuda/NAME
#     (git-ignored), as the go:generate lines of _cuda/main.go say: rfc compile --target cuda,
#     nvcc compiling each model.cu to PTX with warnings as errors; with ptxas, assembles the
#     PTX for the H100 and H200 (sm_90), which catches resource limits that PTX does not;
#   - with the CUDA headers (cuda.h) and cgo: vets and builds the cuda-tagged packages
#     (runtime/cuda; with the PTX, the generated packages and rfc-gpucheck).
# Whatever is missing is skipped with a line saying so and the exit status is 0 (go test
# ./cmd/rfc generates the packages in memory and type-checks them, nvcc or not).
#
#   scripts/cuda-build-check.sh -o BIN   also write the cuda-tagged rfc-gpucheck to BIN (run it
#                                        with scripts/gpu-check.sh BIN); then a missing tool
#                                        is an error (exit status 2)
#
# CUDA_HOME, when set, is where the headers are (else /usr/local/cuda, /usr, /opt/cuda);
# CGO_CFLAGS and CGO_LDFLAGS are passed on to cgo (libcuda.so must be on the linker's path).
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
if [ "${1:-}" = "-o" ]; then
  out=${2:?"-o needs a path"}
elif [ $# -gt 0 ]; then
  echo "usage: scripts/cuda-build-check.sh [-o BIN]" >&2
  exit 2
fi

# skip WHAT: without -o a line saying what is skipped; with -o, BIN cannot be built: an error.
skip() {
  if [ -n "$out" ]; then
    echo "cuda-build-check: cannot build $out: $1" >&2
    exit 2
  fi
  echo "cuda-build-check: skipped: $1"
}

gpucheck=cmd/rfc-gpucheck/_cuda
pkgs=()
if command -v nvcc >/dev/null 2>&1; then
  echo "cuda-build-check: $(nvcc --version | tail -1)"
  # Only generated packages live in the folders of _cuda: start from none, so that a variant
  # dropped from main.go leaves nothing behind.
  find "$gpucheck" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
  (cd "$gpucheck" && go generate -tags cuda .)
  mapfile -t pkgs < <(find "$gpucheck" -mindepth 2 -maxdepth 2 -name model.cu -exec dirname {} \; | sort)
  if [ ${#pkgs[@]} -eq 0 ]; then
    echo "cuda-build-check: go generate in $gpucheck made no package" >&2
    exit 1
  fi
  for d in "${pkgs[@]}"; do
    if [ ! -f "$d/model.ptx" ]; then
      echo "cuda-build-check: rfc compile made no $d/model.ptx (nvcc is on PATH)" >&2
      exit 1
    fi
  done
  echo "cuda-build-check: nvcc compiled the model.cu of ${#pkgs[@]} package(s) in $gpucheck to PTX"
  if command -v ptxas >/dev/null 2>&1; then
    for d in "${pkgs[@]}"; do
      ptxas -arch=sm_90 -o /dev/null "$d/model.ptx"
    done
    echo "cuda-build-check: ptxas -arch=sm_90 assembled the PTX of ${#pkgs[@]} package(s)"
  else
    echo "cuda-build-check: skipped: no ptxas on PATH (the PTX is not assembled for sm_90)"
  fi
else
  skip "no nvcc on PATH: the GPU check's packages are not generated and compiled to PTX (install nvidia-cuda-toolkit)"
fi

header=""
dirs=(/usr/local/cuda/include /usr/include /opt/cuda/include)
if [ -n "${CUDA_HOME:-}" ]; then
  dirs=("$CUDA_HOME/include")
fi
for dir in "${dirs[@]}"; do
  if [ -f "$dir/cuda.h" ]; then
    header=$dir/cuda.h
    break
  fi
done
if [ -z "$header" ]; then
  skip "no CUDA headers/cuda.h (install nvidia-cuda-dev or set CUDA_HOME): cuda-tagged packages not built"
  exit 0
fi
if [ "$(go env CGO_ENABLED)" != "1" ]; then
  skip "cgo is disabled (CGO_ENABLED=0): cuda-tagged packages not built"
  exit 0
fi
export CGO_CFLAGS="${CGO_CFLAGS:-} -I$(dirname "$header")"

go vet -tags cuda ./runtime/cuda
go build -tags cuda ./...
echo "cuda-build-check: go build -tags cuda ./... ok (headers: $header)"
if [ ${#pkgs[@]} -eq 0 ]; then
  # Without nvcc there is no model.ptx, which the generated packages embed.
  exit 0
fi
go vet -tags cuda "./$gpucheck" "${pkgs[@]/#/./}"
if [ -z "$out" ]; then
  go build -tags cuda -o /dev/null "./$gpucheck"
  echo "cuda-build-check: go vet and go build -tags cuda of $gpucheck and its packages ok"
else
  mkdir -p "$(dirname "$out")"
  # Written beside BIN, then renamed: a failed build leaves no partial BIN.
  go build -tags cuda -o "$out.tmp" "./$gpucheck"
  mv "$out.tmp" "$out"
  echo "cuda-build-check: wrote $out (needs libcuda.so.1 and glibc >= $(objdump -T "$out" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1 | cut -d_ -f2) where it runs)"
fi
