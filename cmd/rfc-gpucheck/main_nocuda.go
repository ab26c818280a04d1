//go:build !cuda

package main

import (
	"fmt"
	"os"
)

// Without the cuda tag there is no GPU code to check: say how to build it.
func main() {
	fmt.Fprintln(os.Stderr, "rfc-gpucheck was built without -tags cuda; build it with scripts/cuda-build-check.sh -o bin/rfc-gpucheck (needs cgo and the CUDA headers) and run scripts/gpu-check.sh on a machine with an NVIDIA GPU")
	os.Exit(2)
}
