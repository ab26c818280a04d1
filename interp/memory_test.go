package interp

import (
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// TestPlanTooLargeIsRefused: Upsample(scale_factor=100000) of an 8×8 image plans 7.68 TB of
// activations. The interpreter refuses it before allocating, stating the size (it used to
// die in the Go runtime with "fatal error: out of memory"). The available memory is set, so
// that the test means the same on every machine.
func TestPlanTooLargeIsRefused(t *testing.T) {
	defer runtime.SetAvailableMemory(16 << 30)()
	m := testutil.Elaborate(t, `model Up {
    input x: f32[1, 3, 8, 8]
    Upsample(scale_factor=100000)
}
`, nil)
	x := runtime.NewTensor(1, 3, 8, 8)
	_, err := Run(m, Weights{}, map[string]*runtime.Tensor{"x": x})
	// 3·800000² float32 values: 7.68e12 bytes.
	for _, want := range []string{"module Up", "needs 7680000000000 bytes (7.0 TiB)", "17179869184 bytes (16.0 GiB) are available", runtime.MemoryLimitEnv} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want an error containing %q", err, want)
		}
	}
}

// TestPlanWithinLimitRuns: the check counts the peak of live intermediates, not their sum: a
// chain of element-wise ops over one buffer runs under a limit of a few buffers.
func TestPlanWithinLimitRuns(t *testing.T) {
	m := testutil.Elaborate(t, `model Pointwise {
    input x: f32[1, 1024]
    ReLU()
    Exp()
    Sigmoid()
    Multiply(scale=2.0)
    Linear(1024, 1024)
}
`, nil)
	w := Weights{}
	for _, p := range m.Params {
		w[p] = runtime.NewTensor(p.Type.Shape.Ints()...)
	}
	in := map[string]*runtime.Tensor{"x": runtime.NewTensor(1, 1024)}
	// Two 4 KiB buffers are alive at once at most (the element-wise ops overwrite theirs).
	restore := runtime.SetAvailableMemory(2 * 4096)
	if _, err := Run(m, w, in); err != nil {
		t.Errorf("a plan of two 4 KiB buffers under 8 KiB: %v", err)
	}
	restore()
	defer runtime.SetAvailableMemory(4096 + 4095)()
	if _, err := Run(m, w, in); err == nil || !strings.Contains(err.Error(), "needs 8192 bytes") {
		t.Errorf("under 8191 bytes: got %v, want a refusal of 8192 bytes", err)
	}
}

// TestSizeOverflowRefused: an input of 2^64 elements is refused naming it, before any check
// of the data (whose length could not be computed).
func TestSizeOverflowRefused(t *testing.T) {
	m, err := ir.Parse("module Big\nscope \"\" Big key \"\"\ninput %x: f32[1, 4294967296, 4294967296]\ninput %y: f32[2]\n%0: f32[2] = relu(%y) in \"\"\noutput %0\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(m, Weights{}, map[string]*runtime.Tensor{"y": runtime.NewTensor(2)})
	if want := "input %x: shape [1, 4294967296, 4294967296] has more elements than an int holds"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error containing %q", err, want)
	}
}
