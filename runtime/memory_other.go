//go:build !linux

package runtime

// systemAvailable does not measure the memory outside Linux: AvailableMemory falls back to
// the address space's limit.
func systemAvailable() (int64, string, bool) { return 0, "", false }
