//go:build !openblas

package main

// Without the openblas build tag the benchmark times rfc alone.
const openblasAvailable = false

func openblasSetThreads(int)                       {}
func openblasInfo() (core, config string)          { return "", "" }
func openblasSgemm(m, n, k int, a, b, c []float32) {}
