package runtime

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mappedRSS is the resident size in kB of the mappings of path (/proc/self/smaps).
func mappedRSS(t *testing.T, path string) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	defer f.Close()
	total, inside := 0, false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if fields := strings.Fields(line); len(fields) >= 6 && strings.Contains(fields[0], "-") {
			inside = fields[len(fields)-1] == path
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Rss:"); inside && ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			total += n
		}
	}
	return total
}

// TestLoadReleasesFilePages: once a mapped tensor is converted, its pages leave the
// process's resident set (a checkpoint costs its weights, not the file on top).
func TestLoadReleasesFilePages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.safetensors")
	const n = 8 << 20 // 32 MB of float32
	if err := WriteSafetensors(path, map[string]*Tensor{"w": NewTensor(n)}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.mapped == nil {
		t.Skip("the file is not mapped")
	}
	dst := make([]float32, n)
	if err := f.ReadF32Into("w", dst); err != nil {
		t.Fatal(err)
	}
	if rss := mappedRSS(t, path); rss > 4<<10 {
		t.Errorf("%d kB of the 32 MB file stay resident after reading it", rss)
	}
	// The data reads again after the release.
	dst[5] = 1
	if err := f.ReadF32Into("w", dst); err != nil || dst[5] != 0 {
		t.Errorf("second read: %v, %g", err, dst[5])
	}
}
