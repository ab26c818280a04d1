package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/runtime"
)

// TestMain keeps the programs that --engine compiled builds in a cache of the tests' own,
// not the user's. The go command's build cache, which also lives under the user's cache
// folder by default, stays where it is (a cold one would rebuild the standard library).
func TestMain(m *testing.M) {
	if os.Getenv("GOCACHE") == "" {
		if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
			os.Setenv("GOCACHE", strings.TrimSpace(string(out)))
		}
	}
	dir, err := os.MkdirTemp("", "rfc-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cachedPrograms lists the programs in the compiled engine's cache.
func cachedPrograms(t *testing.T) []string {
	t.Helper()
	dir, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "rfc", "run"))
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		} else {
			t.Errorf("the cache keeps %s, a leftover of a build", e.Name())
		}
	}
	return out
}

// TestRunCompiledCache: --engine compiled builds a model once per set of settings and
// reuses the program for any input size (ViT at batch 2, then 1 and 3), also when runs
// start at once; each output is the interpreter's.
func TestRunCompiledCache(t *testing.T) {
	needGo(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	x := testutil.Tensor(t, goldenDir+"vit_input.safetensors", "x")
	per := x.Len() / x.Shape[0]
	inputs := map[int]string{}
	for _, batch := range []int{1, 2, 3} {
		data := make([]float32, batch*per)
		for i := range data {
			data[i] = x.F32[i%len(x.F32)]
		}
		path := filepath.Join(dir, fmt.Sprintf("x%d.safetensors", batch))
		if err := runtime.WriteSafetensors(path, map[string]*runtime.Tensor{"x": runtime.FromF32(data, append([]int{batch}, x.Shape[1:]...)...)}, nil); err != nil {
			t.Fatal(err)
		}
		inputs[batch] = path
	}
	run := func(engine string, batch int, out string) string {
		args := append(append([]string{"run", "../../models/vit.rfn"}, vitSmall...), "--weights", goldenDir+"vit_weights.safetensors",
			"--input", inputs[batch], "--output", out, "--engine", engine, "-v")
		_, stderr, status := rfc(t, args...)
		if status != 0 {
			t.Fatalf("--engine %s at batch %d: status %d\n%s", engine, batch, status, stderr)
		}
		return stderr
	}
	check := func(batch int, out string) {
		want := filepath.Join(dir, fmt.Sprintf("interp%d.safetensors", batch))
		run("interp", batch, want)
		got, w := readY(t, out), readY(t, want)
		if !slices.Equal(got.Shape, w.Shape) || !slices.Equal(got.F32, w.F32) {
			d, _ := maxDiff(t, got, w)
			t.Errorf("batch %d: compiled and interpreted outputs differ: max|Δ| = %g", batch, d)
		}
	}
	for i, batch := range []int{2, 1, 3, 2} {
		out := filepath.Join(dir, fmt.Sprintf("compiled%d.safetensors", i))
		stderr := run("compiled", batch, out)
		if built := !strings.Contains(stderr, "build: reused"); built != (i == 0) {
			t.Errorf("run %d (batch %d): built %v, want a build at the first run only:\n%s", i, batch, built, stderr)
		}
		check(batch, out)
	}
	if progs := cachedPrograms(t); len(progs) != 1 {
		t.Errorf("the cache holds %d programs, want 1: %v", len(progs), progs)
	}

	// Runs that start together on an empty cache each get a whole program.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	var wg sync.WaitGroup
	errs := make([]string, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(dir, fmt.Sprintf("concurrent%d.safetensors", i))
			args := append(append([]string{"run", "../../models/vit.rfn"}, vitSmall...), "--weights", goldenDir+"vit_weights.safetensors",
				"--input", inputs[i+1], "--output", out, "--engine", "compiled")
			if _, stderr, status := rfc(t, args...); status != 0 {
				errs[i] = stderr
			}
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Fatalf("concurrent run %d: %s", i, e)
		}
		check(i+1, filepath.Join(dir, fmt.Sprintf("concurrent%d.safetensors", i)))
	}
	if progs := cachedPrograms(t); len(progs) != 1 {
		t.Errorf("after concurrent runs the cache holds %d programs, want 1: %v", len(progs), progs)
	}
}
