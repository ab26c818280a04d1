package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// rfc runs the command line in-process.
func rfc(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var o, e bytes.Buffer
	status = run(args, &o, &e)
	return o.String(), e.String(), status
}

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/rfc -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestCheckBrokenFiles pins the message of every broken file: each must fail with status 1
// and a file:line:col position. A first line `// args: …` (or `# args: …`) gives extra
// arguments.
func TestCheckBrokenFiles(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/check/*.rfn")
	if len(files) < 10 {
		t.Fatalf("want at least 10 broken files, found %d", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".rfn")
		t.Run(name, func(t *testing.T) {
			src, _ := os.ReadFile(f)
			args := []string{"check"}
			if first, _, _ := strings.Cut(string(src), "\n"); strings.HasPrefix(first, "# args:") {
				args = append(args, strings.Fields(strings.TrimPrefix(first, "# args:"))...)
			}
			args = append(args, f)
			_, stderr, status := rfc(t, args...)
			if status != 1 {
				t.Errorf("status %d, want 1; stderr:\n%s", status, stderr)
			}
			if !strings.Contains(stderr, filepath.ToSlash(f)+":") {
				t.Errorf("message has no file:line:col position:\n%s", stderr)
			}
			golden(t, strings.TrimSuffix(f, ".rfn")+".err", stderr)
		})
	}
}

func TestViTParameterCounts(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "total parameters: 63713792\n"},
		{[]string{"--set", "embedding_dim=768", "--set", "image_size=224", "--set", "num_heads=12"}, "total parameters: 142464768\n"},
	}
	for _, c := range cases {
		out, stderr, status := rfc(t, append([]string{"tree", "../../models/vit.rfn"}, c.args...)...)
		if status != 0 {
			t.Fatalf("status %d: %s", status, stderr)
		}
		if !strings.HasSuffix(out, c.want) {
			t.Errorf("rfc tree %v ends with\n%s\nwant %q", c.args, lastLines(out, 3), c.want)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestCheckModels(t *testing.T) {
	files, _ := filepath.Glob("../../models/*.rfn")
	for _, f := range files {
		out, stderr, status := rfc(t, "check", f)
		if status != 0 || out != "ok\n" {
			t.Errorf("rfc check %s: status %d\n%s", f, status, stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	if _, _, status := rfc(t); status != 2 {
		t.Errorf("no command: status %d", status)
	}
	if _, _, status := rfc(t, "frobnicate"); status != 2 {
		t.Errorf("unknown command: status %d", status)
	}
	if _, _, status := rfc(t, "tree"); status != 2 {
		t.Errorf("tree without file: status %d", status)
	}
}
