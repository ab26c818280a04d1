// Package kernels holds the CPU kernels that generated code and the interpreter call.
//
// Conventions: tensors are contiguous row-major float32 slices; images are NCHW. A kernel
// writes its result into a caller-provided output slice and never allocates on the hot path
// beyond what its doc comment says (packing buffers come from sync.Pools). Shapes are passed
// as ints; kernels trust them (the compiler and the interpreter have checked them).
package kernels
