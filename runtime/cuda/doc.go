// Package cuda is what the Go packages of rfc's CUDA target link against: a thin layer over
// the CUDA driver API of gorgonia.org/cu that holds a generated model's context, stream,
// kernels and its two device allocations (activations and weights), and moves float32,
// float16 and int64 data between host slices and device memory.
//
// Everything but this file is behind the build tag cuda: gorgonia.org/cu needs cgo with the
// CUDA headers and libcuda, and its package initialization calls cuInit and exits the
// process when no driver or GPU is there. Build with -tags cuda on a machine with the CUDA
// headers (Debian: nvidia-cuda-dev); run where an NVIDIA driver is installed.
//
// The device is the one RFC_CUDA_DEVICE names (an ordinal), device 0 by default. Errors
// say what was being done ("uploading weights", "launching k3_linear", "running the
// model") and carry the driver's message.
package cuda
