package control

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheckpoints feeds OpenControlNet and ReadT2IAdapter a diffusers folder of arbitrary
// config.json and weights bytes: they return a checkpoint or an error naming the folder's
// file, never panic. Seeds (testdata/fuzz/FuzzCheckpoints): the diffusers configs of
// testdata/sd15/control, edited (bgr, SDXL, cut), with headers of a few small tensors.
func FuzzCheckpoints(f *testing.F) {
	f.Fuzz(func(t *testing.T, config, weights []byte) {
		dir := t.TempDir()
		if len(config) > 0 {
			if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "diffusion_pytorch_model.safetensors"), weights, 0o644); err != nil {
			t.Fatal(err)
		}
		if c, err := OpenControlNet(dir); err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("OpenControlNet: the error does not name the file: %v", err)
			}
		} else {
			if len(c.ConditionChannels) != 4 {
				t.Fatalf("condition channels %v", c.ConditionChannels)
			}
			c.Close()
		}
		if a, err := ReadT2IAdapter(dir); err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("ReadT2IAdapter: the error does not name the file: %v", err)
			}
		} else if len(a.Channels) != 4 || a.InChannels < 0 {
			t.Fatalf("T2I-Adapter %+v", a)
		}
	})
}
