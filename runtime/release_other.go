//go:build !linux

package runtime

// releasePages is advice the platform is not given here (Linux's madvise); see
// release_linux.go.
func releasePages([]byte, int64, int64) {}
