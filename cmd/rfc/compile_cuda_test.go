package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
)

// compileCUDA writes the CUDA package; without nvcc it says so and removes a model.ptx that
// an earlier run left, which no longer matches model.cu.
func TestCompileCUDA(t *testing.T) {
	prog, err := dsl.Load("../../models/vit.rfn")
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	set := map[string]string{"embedding_dim": "64", "patch_size": "8", "image_size": "32", "num_layers": "2", "num_heads": "4", "batch": "2"}
	m, err := prog.Elaborate(dsl.Options{Model: "ViT", Set: set})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	dir := t.TempDir()
	stale := filepath.Join(dir, "model.ptx")
	if err := os.WriteFile(stale, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("without nvcc", func(t *testing.T) {
		t.Setenv("PATH", "")
		var stderr bytes.Buffer
		if err := compileCUDA(m, dir, "vit", &stderr); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stderr.String(), "nvcc is not on PATH") {
			t.Errorf("stderr does not say nvcc is missing: %q", stderr.String())
		}
		if _, err := os.Stat(stale); err == nil {
			t.Errorf("the stale model.ptx is still there")
		}
		for _, f := range []string{"model.cu", "shapes.go", "model.go", "weights.go"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s was not written: %v", f, err)
			}
		}
		shapes, _ := os.ReadFile(filepath.Join(dir, "shapes.go"))
		if !strings.Contains(string(shapes), "package vit") || !strings.Contains(string(shapes), "vit.rfn") {
			t.Errorf("shapes.go does not name the package and the source:\n%s", shapes)
		}
	})
	t.Run("with nvcc", func(t *testing.T) {
		if _, err := exec.LookPath("nvcc"); err != nil {
			t.Skip("skipped: nvcc is not on PATH")
		}
		var stderr bytes.Buffer
		if err := compileCUDA(m, dir, "vit", &stderr); err != nil {
			t.Fatal(err)
		}
		ptx, err := os.ReadFile(stale)
		if err != nil || !bytes.Contains(ptx, []byte(".entry k0_conv2d")) {
			t.Errorf("model.ptx was not compiled (%v)", err)
		}
		if stderr.Len() != 0 {
			t.Errorf("unexpected messages: %s", stderr.String())
		}
	})
}
