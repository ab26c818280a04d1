//go:build !amd64

package kernels

// SetVectorKernels is a no-op where the kernels have no vector paths.
func SetVectorKernels(on bool) (restore func()) { return func() {} }
