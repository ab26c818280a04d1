package imaging

import (
	"fmt"
	"slices"
	"testing"

	"github.com/rfc-project/rfc/runtime"
)

// CLIPInput gives, bit for bit, the tensors of Refiners' IPAdapter.preprocess_image that
// scripts/golden/sd15_ip.py wrote (PIL 9.4 and PyTorch): both photos at the reduced
// encoder's 20×20 and the 400×600 coffee photo at ViT-H's 224×224.
func TestCLIPInputMatchesRefiners(t *testing.T) {
	want, err := runtime.OpenSafetensors("../testdata/sd15/ip/preprocess.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	for _, tc := range []struct {
		photo string
		size  int
	}{{"astronaut", 20}, {"coffee", 20}, {"coffee", 224}} {
		m, err := Load("../testdata/images/" + tc.photo + ".png")
		if err != nil {
			t.Fatal(err)
		}
		got, err := CLIPInput(m, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		w, err := want.Tensor(fmt.Sprintf("%s_%d", tc.photo, tc.size))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Shape, w.Shape) {
			t.Fatalf("%s at %d: shape %v, want %v", tc.photo, tc.size, got.Shape, w.Shape)
		}
		for i := range w.F32 {
			if got.F32[i] != w.F32[i] {
				t.Fatalf("%s at %d: value %d is %g, want %g", tc.photo, tc.size, i, got.F32[i], w.F32[i])
			}
		}
	}
	gray, _ := New(4, 4, 1)
	if _, err := CLIPInput(gray, 4); err == nil {
		t.Error("a one-channel image was accepted")
	}
}
