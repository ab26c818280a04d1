//go:build unix

package runtime

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
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

// releaseMapped tells the kernel this process is done with the pages of b, a part of a
// mapping: they leave its resident set (the page cache keeps them, and touching them again
// reads them back). Loading a model reads each weight once, so a 2 GB checkpoint does not
// add 2 GB to the peak resident memory on top of the weights made from it.
func releaseMapped(b []byte) {
	page := os.Getpagesize()
	start := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % uintptr(page))
	lo := 0
	if start != 0 {
		lo = page - start
	}
	if lo >= len(b) {
		return
	}
	n := (len(b) - lo) / page * page
	if n > 0 {
		syscall.Madvise(b[lo:lo+n], syscall.MADV_DONTNEED) //nolint:errcheck // advice only
	}
}
