package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystem writes files under a temporary root, by path.
func fakeSystem(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const meminfo = "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   16000000 kB\n"

func TestLinuxAvailable(t *testing.T) {
	for _, c := range []struct {
		name   string
		files  map[string]string
		want   int64
		source string
	}{
		{"no cgroup limit", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "max\n"}, 16000000 * 1024, "MemAvailable"},
		{"cgroup v2 limit", map[string]string{
			"proc/meminfo": meminfo, "proc/self/cgroup": "0::/job/step\n",
			"sys/fs/cgroup/job/step/memory.max": "max\n", "sys/fs/cgroup/job/step/memory.current": "100\n",
			"sys/fs/cgroup/job/memory.max": "1000000\n", "sys/fs/cgroup/job/memory.current": "250000\n",
		}, 750000, "/sys/fs/cgroup/job/memory.max"},
		{"cgroup v1 limit", map[string]string{
			"proc/meminfo": meminfo, "proc/self/cgroup": "5:devices:/\n4:memory:/api/abc\n0::/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":         "9223372036854771712\n",
			"sys/fs/cgroup/memory/api/abc/memory.limit_in_bytes": "2000000\n",
			"sys/fs/cgroup/memory/api/abc/memory.usage_in_bytes": "500000\n",
		}, 1500000, "/sys/fs/cgroup/memory/api/abc/memory.limit_in_bytes"},
		{"limit above MemAvailable", map[string]string{
			"proc/meminfo": meminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "64000000000\n", "sys/fs/cgroup/memory.current": "0\n",
		}, 16000000 * 1024, "MemAvailable"},
	} {
		got, source, ok := linuxAvailable(fakeSystem(t, c.files))
		if !ok || got != c.want || !strings.Contains(source, c.source) {
			t.Errorf("%s: got %d from %q (%t), want %d from %s", c.name, got, source, ok, c.want, c.source)
		}
	}
	if _, _, ok := linuxAvailable(fakeSystem(t, map[string]string{"proc/meminfo": "MemTotal: 5 kB\n"})); ok {
		t.Error("a meminfo without MemAvailable was measured")
	}
}

func TestCheckMemory(t *testing.T) {
	defer SetAvailableMemory(1 << 20)()
	if err := CheckMemory("model M", 1<<20); err != nil {
		t.Errorf("a plan of exactly the available memory: %v", err)
	}
	err := CheckMemory("model M", 3<<30)
	if err == nil || !strings.Contains(err.Error(), "model M needs 3221225472 bytes (3.0 GiB)") || !strings.Contains(err.Error(), "1048576 bytes (1.0 MiB)") || !strings.Contains(err.Error(), MemoryLimitEnv) {
		t.Errorf("got %v, want an error stating both sizes", err)
	}
}

func TestMemoryLimitEnv(t *testing.T) {
	t.Setenv(MemoryLimitEnv, "4096")
	if n, source, err := AvailableMemory(); err != nil || n != 4096 || source != MemoryLimitEnv {
		t.Errorf("got %d, %q, %v", n, source, err)
	}
	t.Setenv(MemoryLimitEnv, "lots")
	if err := CheckMemory("model M", 1); err == nil || !strings.Contains(err.Error(), `RFC_MEMORY_LIMIT="lots" is not a number of bytes`) {
		t.Errorf("got %v", err)
	}
}

// TestAvailableMemoryMeasured: this machine's own figure is positive, whatever it is.
func TestAvailableMemoryMeasured(t *testing.T) {
	n, source, err := AvailableMemory()
	if err != nil || n <= 0 || source == "" {
		t.Errorf("got %d, %q, %v", n, source, err)
	}
	t.Logf("available: %d bytes (%s)", n, source)
}
