//go:build !unix

package runtime

import (
	"errors"
	"os"
)

// Without mmap the file is read through ReadAt, which the caller falls back to on this error.
func mapFile(*os.File, int64) ([]byte, error) { return nil, errors.New("no mmap on this platform") }

func unmapFile([]byte) error { return nil }

func releaseMapped([]byte) {}
