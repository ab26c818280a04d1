package runtime

import (
	"os"
	"syscall"
)

// releasePages tells the kernel that the process no longer needs the whole pages of
// mapped[begin:end] (read already): they leave its resident set, stay in the page cache,
// and are read back on a later access. Loading a checkpoint thus costs its converted
// weights in resident memory, not the file's pages on top. Errors are ignored: it is
// advice.
func releasePages(mapped []byte, begin, end int64) {
	page := int64(os.Getpagesize())
	begin = (begin + page - 1) / page * page
	end = end / page * page
	if end > begin {
		_ = syscall.Madvise(mapped[begin:end], syscall.MADV_DONTNEED)
	}
}
