#!/usr/bin/env bash
# Checks rfc's CUDA target as far as this machine allows, without a GPU:
#   - with nvcc: compiles every generated model.cu in the tree to PTX (go generate -run nvcc,
#     warnings are errors) and, with ptxas, assembles the PTX for the H100 (sm_90);
#   - with the CUDA headers (cuda.h) and libcuda: vets and builds the cuda-tagged packages
#     (runtime/cuda, the generated packages, cmd/rfc-gpucheck).
# Whatever is missing is skipped with a line saying so; the exit status is 0 then.
#
#   scripts/cuda-build-check.sh [-o BIN]   also write the cuda-tagged rfc-gpucheck to BIN
#
# CUDA_HOME, when set, is where the headers are (else /usr/local/cuda, /usr, /opt/cuda);
# CGO_CFLAGS and CGO_LDFLAGS are passed on to cgo (libcuda.so must be on the linker's path).
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
if [ "${1:-}" = "-o" ]; then
  out=${2:?"-o needs a path"}
fi

# The generated packages of the tree (each has a model.cu beside its shapes.go).
mapfile -t pkgs < <(find . -name model.cu -not -path './.git/*' -exec dirname {} \; | sort)

have_nvcc=false
if command -v nvcc >/dev/null 2>&1; then
  have_nvcc=true
fi

if $have_nvcc; then
  echo "cuda-build-check: $(nvcc --version | tail -1)"
  for d in "${pkgs[@]}"; do
    rm -f "$d/model.ptx"
    (cd "$d" && go generate -run '^//go:generate nvcc ' .)
    if [ ! -f "$d/model.ptx" ]; then
      echo "cuda-build-check: go generate made no $d/model.ptx (is the nvcc line of shapes.go there?)" >&2
      exit 1
    fi
    echo "cuda-build-check: $d/model.cu -> model.ptx ok"
    if command -v ptxas >/dev/null 2>&1; then
      ptxas -arch=sm_90 -o /dev/null "$d/model.ptx"
    fi
  done
  if command -v ptxas >/dev/null 2>&1; then
    echo "cuda-build-check: ptxas -arch=sm_90 assembled the PTX of ${#pkgs[@]} package(s)"
  fi
else
  echo "cuda-build-check: skipped: no nvcc on PATH (the generated .cu is not compiled to PTX)"
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
  echo "cuda-build-check: skipped: no CUDA headers/cuda.h (install nvidia-cuda-dev or set CUDA_HOME); cuda-tagged packages not built"
  exit 0
fi
if [ "$(go env CGO_ENABLED)" != "1" ]; then
  echo "cuda-build-check: skipped: cgo is disabled (CGO_ENABLED=0); cuda-tagged packages not built"
  exit 0
fi
export CGO_CFLAGS="${CGO_CFLAGS:-} -I$(dirname "$header")"

missing_ptx=()
for d in "${pkgs[@]}"; do
  [ -f "$d/model.ptx" ] || missing_ptx+=("$d")
done
if [ ${#missing_ptx[@]} -gt 0 ]; then
  # Without nvcc nothing can make model.ptx, which the packages embed: build the rest.
  echo "cuda-build-check: no model.ptx in ${missing_ptx[*]} and no nvcc to make it: building runtime/cuda only"
  go vet -tags cuda ./runtime/cuda
  go build -tags cuda ./runtime/cuda
  exit 0
fi

go vet -tags cuda ./runtime/cuda/... ./cmd/rfc-gpucheck/...
go build -tags cuda ./...
echo "cuda-build-check: go build -tags cuda ./... ok (headers: $header)"
if [ -n "$out" ]; then
  mkdir -p "$(dirname "$out")"
  go build -tags cuda -o "$out" ./cmd/rfc-gpucheck
  echo "cuda-build-check: wrote $out (needs libcuda.so.1 and glibc >= $(objdump -T "$out" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1 | cut -d_ -f2) where it runs)"
fi
