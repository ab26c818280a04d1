package seedcorpus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFile(t *testing.T) {
	got := string(File([]byte("a\x00\""), nil))
	want := "go test fuzz v1\n[]byte(\"a\\x00\\\"\")\n[]byte(\"\")\n"
	if got != want {
		t.Errorf("File = %q, want %q", got, want)
	}
}

// recorder is a testing.TB that keeps the errors Sync reports.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}

func TestSync(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fuzz", "FuzzX")
	files := map[string][]byte{"a": File([]byte("1")), "b": File([]byte("2"))}
	r := &recorder{TB: t}
	Sync(r, dir, files, false, "go test -update-seeds")
	if len(r.errors) != 2 {
		t.Fatalf("missing corpus: %d errors, want 2", len(r.errors))
	}
	Sync(t, dir, files, true, "")
	r.errors = nil
	Sync(r, dir, files, false, "go test -update-seeds")
	if len(r.errors) != 0 {
		t.Fatalf("written corpus: errors %v", r.errors)
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	Sync(r, dir, files, false, "go test -update-seeds")
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "missing or stale") {
		t.Fatalf("stale file: errors %v, want one", r.errors)
	}
}
