// Package seedcorpus keeps a fuzz target's committed seed corpus (testdata/fuzz/FuzzX/NAME,
// in go test's corpus format) in step with the seeds a test builds, so that the seeds are
// made by code and the files that `go test -fuzz` reads cannot drift from it.
package seedcorpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// File is the text of a corpus file whose arguments are the byte slices args.
func File(args ...[]byte) []byte {
	b := []byte("go test fuzz v1\n")
	for _, a := range args {
		b = fmt.Appendf(b, "[]byte(%q)\n", a)
	}
	return b
}

// Sync writes files (name → content) into dir when update is set. Otherwise it reports each
// one that is missing from dir or differs, naming rerun, the command that rewrites them.
func Sync(t testing.TB, dir string, files map[string][]byte, update bool, rerun string) {
	t.Helper()
	for name, want := range files {
		path := filepath.Join(dir, name)
		if update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %s is missing or stale; run %s", path, rerun)
		}
	}
}
