package kernels_test

import (
	"testing"

	"github.com/rfc-project/rfc/kernels"
)

// TestSerialPathsDoNotAllocate: with one worker, kernels run without allocating (scratch
// comes from pools, warmed by the first call); only the parallel path builds closures.
func TestSerialPathsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	defer kernels.SetWorkers(kernels.Workers())
	kernels.SetWorkers(1)
	x := randomSlice(4*6*10*12, 1)
	y := make([]float32, 4*6*20*24*4)
	w := randomSlice(6*6*9, 2)
	s3, s1, s4, perm, pads := []int{4, 6, 120}, []int{120}, []int{4, 6, 10, 12}, []int{0, 2, 3, 1}, []int{1, 1, 1, 1}
	xs, shapes := [][]float32{x, x}, [][]int{s3, s3}
	cases := map[string]func(){
		"ReLU":        func() { kernels.ReLU(y[:len(x)], x) },
		"GeLU":        func() { kernels.GeLU(y[:len(x)], x, kernels.GeLUExact) },
		"Tanh":        func() { kernels.Tanh(y[:len(x)], x) },
		"Binary":      func() { kernels.Binary(kernels.OpAdd, y[:len(x)], s3, x, s3, x[:120], s1) },
		"Softmax":     func() { kernels.Softmax(y[:len(x)], x, 24, 120, 1) },
		"Softmax3":    func() { kernels.Softmax(y[:len(x)], x, 4, 6, 120) },
		"LayerNorm":   func() { kernels.LayerNorm(y[:len(x)], x, 24, 120, nil, nil, 1e-5) },
		"GroupNorm":   func() { kernels.GroupNorm(y[:len(x)], x, 4, 6, 120, 3, nil, nil, 1e-5) },
		"LayerNorm2d": func() { kernels.LayerNorm2d(y[:len(x)], x, 4, 6, 120, nil, nil, 1e-5) },
		"Permute":     func() { kernels.Permute(y[:len(x)], x, s4, perm) },
		"Pad":         func() { kernels.Pad(y, x, s4, pads, kernels.PadReflect, 0) },
		"Upsample":    func() { kernels.UpsampleNearest(y, x, 4, 6, 10, 12, 20, 24) },
		"Bilinear":    func() { kernels.UpsampleBilinear(y, x, 4, 6, 10, 12, 20, 24, false) },
		"Sum":         func() { kernels.Sum(y, x, 4, 6, 120) },
		"Slice":       func() { kernels.Slice(y, x, s3, 1, 1, 5, 2) },
		"Concat":      func() { kernels.Concat(y, xs, shapes, 1) },
		"Conv": func() {
			kernels.Conv2d(y, x, w, nil, kernels.Conv2dParams{N: 4, C: 6, H: 10, W: 12, K: 6, KH: 3, KW: 3, PadH: 1, PadW: 1})
		},
		"ConvDW": func() {
			kernels.Conv2d(y, x, w, nil, kernels.Conv2dParams{N: 4, C: 6, H: 10, W: 12, K: 6, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 6})
		},
		"Conv1x1": func() {
			kernels.Conv2d(y, x, w, nil, kernels.Conv2dParams{N: 4, C: 6, H: 10, W: 12, K: 6, KH: 1, KW: 1})
		},
		"ConvT": func() {
			kernels.ConvTranspose2d(y, x, w, nil, kernels.ConvTranspose2dParams{N: 4, C: 6, H: 10, W: 12, K: 6, KH: 3, KW: 3, StrideH: 2, StrideW: 2})
		},
		"Attention":      func() { kernels.Attention(y, x, x, x, 1, 2, 120, 120, 4, 4, true) },
		"GLU":            func() { kernels.GLU(y, x, 24, 120, 1, kernels.SiLU) },
		"Linear":         func() { kernels.Linear(y, x, 24, 120, 6, x[:720], nil) },
		"BMM":            func() { kernels.BatchedMatMul(y, x, x, 4, 6, 10, 12, 60, 120) },
		"PixelShuffle":   func() { kernels.PixelShuffle(y, x, 4, 24, 5, 6, 2) },
		"PixelUnshuffle": func() { kernels.PixelUnshuffle(y, x, 4, 6, 10, 12, 2) },
	}
	for name, fn := range cases {
		fn()
		// An average below one tolerates a rare pool miss after a garbage collection.
		if a := testing.AllocsPerRun(20, fn); a >= 1 {
			t.Errorf("%s: %v allocs", name, a)
		}
	}
}
