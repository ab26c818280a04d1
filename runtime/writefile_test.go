package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Outputs are written into folders that do not exist yet, and errors name the file asked
// for, never the temporary file beside it; a failed write leaves nothing behind.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	nested := filepath.Join(dir, "a", "b", "x.safetensors")
	if err := WriteSafetensors(nested, map[string]*Tensor{"x": NewTensor(2)}, nil); err != nil {
		t.Fatalf("nested output: %v", err)
	}
	if err := SaveImage(filepath.Join(dir, "c", "d.png"), NewTensor(1, 3, 2, 2)); err != nil {
		t.Fatalf("nested image: %v", err)
	}
	if info, err := os.Stat(nested); err != nil || info.Mode().Perm() != 0o644 {
		t.Fatalf("stat: %v %v", info, err)
	}

	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, []byte("x"), 0o644)
	isDir := filepath.Join(dir, "a")
	cases := []struct {
		name, path, want string
		write            func(io.Writer) error
	}{
		{"folder is a file", filepath.Join(blocker, "x.safetensors"), "cannot create its folder", nil},
		{"path is a folder", isDir, "is a directory", nil},
		{"writer fails", filepath.Join(dir, "w.bin"), "disk on fire", func(io.Writer) error { return errors.New("disk on fire") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			write := c.write
			if write == nil {
				write = func(w io.Writer) error { _, err := fmt.Fprint(w, "data"); return err }
			}
			err := WriteFileAtomic(c.path, write)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, c.path+": ") || !strings.Contains(msg, c.want) || strings.Contains(msg, ".tmp") {
				t.Errorf("want %q naming %s and no temporary file, got %q", c.want, c.path, msg)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "w.bin")); err == nil {
		t.Errorf("a failed write left its file")
	}
}

// A checkpoint of another model gives a headline and ten problems, then a count.
func TestLocateWeightsSummarizes(t *testing.T) {
	dir := t.TempDir()
	tensors := map[string]*Tensor{}
	var specs []WeightSpec
	for i := range 30 {
		tensors[fmt.Sprintf("other.%02d", i)] = NewTensor(2)
		specs = append(specs, WeightSpec{Key: fmt.Sprintf("mine.%02d", i), Param: fmt.Sprintf("L%d.weight", i), Shape: []int{2}})
	}
	f := mustOpen(t, filepath.Join(dir, "other.safetensors"), tensors)
	defer f.Close()
	_, err := LocateWeights("M", specs, f)
	var werr *WeightsError
	if !errors.As(err, &werr) || len(werr.Problems) != 31 {
		t.Fatalf("want a WeightsError with 31 problems (the file, then 30 missing weights), got %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 12 {
		t.Fatalf("want 12 lines (headline, 10 problems, count), got %d:\n%v", len(lines), err)
	}
	if !strings.Contains(lines[0], "none of the 30 keys of "+f.Path()+" is a parameter of module M") {
		t.Errorf("headline: %s", lines[0])
	}
	if lines[11] != "and 21 more problems (31 in all)" {
		t.Errorf("last line: %s", lines[11])
	}
}
