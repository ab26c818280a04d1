// Package kernels holds the CPU kernels that generated code and the interpreter call.
//
// Conventions: tensors are contiguous row-major float32 slices; images are NCHW. A kernel
// writes its result into a caller-provided output slice and never allocates on the hot path
// beyond what its doc comment says (packing buffers and job structs come from free lists that live as long as the process). Shapes are passed
// as ints; kernels trust them (the compiler and the interpreter have checked them).
//
// Weights. The linear and convolution kernels also come in W variants (LinearW, LinearFusedW,
// LinearGLUW, Conv2dW, Conv2dFusedW, ConvTranspose2dW) that take their weights as a Weights:
// float32 (F32Weights), IEEE half (F16Weights) or bfloat16 (BF16Weights) bits, as a checkpoint
// stores them. Half-precision weights stay resident at half the size and are widened to
// float32 inside the kernels (while packing, or by the micro-kernel as it loads them); the
// widening is exact and the sums run in the same order, so the results equal those of the
// float32 kernels on the widened weights, bit for bit. PackWeights lays weights out once in
// the GEMM micro-kernel's panels (keeping their precision), which spares every call the
// packing: loaders should pack each linear and convolution weight once and keep only the
// packed form. The float32 entry points (Linear, Conv2d, …) are the W variants on F32Weights.
package kernels
