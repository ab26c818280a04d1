//go:build unix

package runtime

import (
	"errors"
	"os"
	"syscall"
)

// mapFile maps the whole file read-only. The mapping is shared so that pages come from the
// page cache without a copy; a file truncated while mapped would fault, as with any mmap.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, errors.New("cannot map a file of this size")
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

func unmapFile(b []byte) error { return syscall.Munmap(b) }
