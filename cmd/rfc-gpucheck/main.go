// Command rfc-gpucheck checks rfc's CUDA target on a GPU: the packages it generates for ViT
// and TAEF2, against the CPU tests' PyTorch goldens and against PyTorch on the same GPU.
//
// The program is _cuda/main.go. Its packages are generated when it is built (rfc compile
// --target cuda, then nvcc), so it is built by scripts/cuda-build-check.sh -o bin/rfc-gpucheck
// on a machine with Go, nvcc and the CUDA headers, and run by scripts/gpu-check.sh on one with
// an NVIDIA GPU. This package is what go build ./... sees here: it says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "rfc-gpucheck: this is not the GPU check: build it with scripts/cuda-build-check.sh -o bin/rfc-gpucheck (needs nvcc, cgo and the CUDA headers) and run scripts/gpu-check.sh on a machine with an NVIDIA GPU")
	os.Exit(2)
}
