//go:build openblas

package main

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

const openblasAvailable = true

func openblasSetThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// openblasInfo returns the core type OpenBLAS selected at load time and its build config.
func openblasInfo() (core, config string) {
	return C.GoString(C.openblas_get_corename()), C.GoString(C.openblas_get_config())
}

// openblasSgemm computes c = a·b for n×n-style row-major m×k and k×n matrices.
func openblasSgemm(m, n, k int, a, b, c []float32) {
	C.cblas_sgemm(C.CblasRowMajor, C.CblasNoTrans, C.CblasNoTrans, C.blasint(m), C.blasint(n), C.blasint(k),
		1, (*C.float)(&a[0]), C.blasint(k), (*C.float)(&b[0]), C.blasint(n), 0, (*C.float)(&c[0]), C.blasint(n))
}
