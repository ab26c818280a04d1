package runtime

import "github.com/rfc-project/rfc/kernels"

// SetThreads sets how many goroutines the kernels split parallel work into; n < 1 means 1.
// It starts at GOMAXPROCS. This is the kernels' setting, re-exported so that generated code
// and its callers need not import kernels to tune it.
func SetThreads(n int) { kernels.SetWorkers(n) }

// Threads reports how many goroutines the kernels split parallel work into.
func Threads() int { return kernels.Workers() }
