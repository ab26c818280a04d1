package kernels_test

import (
	"testing"

	"github.com/rfc-project/rfc/kernels"
	"github.com/rfc-project/rfc/runtime"
)

// TestSerialPathsDoNotAllocate: with one worker, kernels run without allocating (scratch
// comes from pools, warmed by the first call).
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
		"Attention": func() { kernels.Attention(y, x, x, x, 1, 2, 120, 120, 4, 4, true) },
		"GLU":       func() { kernels.GLU(y, x, 24, 120, 1, kernels.SiLU) },
		"ConvFused": func() {
			kernels.Conv2dFused(y, x, w, nil, kernels.Conv2dParams{N: 4, C: 6, H: 10, W: 12, K: 6, KH: 3, KW: 3, PadH: 1, PadW: 1},
				kernels.Epilogue{Act: kernels.ActReLU, Residual: y[len(y)-4*6*10*12:]})
		},
		"LinearGLU":      func() { kernels.LinearGLU(y, x, 24, 120, 6, x[:720], nil, kernels.Sigmoid) },
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

// TestKernelsDoNotAllocate: with two or more workers, at sizes that take each kernel's
// parallel path, a warm kernel allocates nothing (compiled models' Forward relies on it).
func TestKernelsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	defer kernels.SetWorkers(kernels.Workers())
	kernels.SetWorkers(max(2, kernels.Workers()))
	const n = 1 << 16 // elements: enough for the element-wise kernels to split
	x := randomSlice(n, 1)
	x2 := randomSlice(n, 2)
	w := randomSlice(n, 3)
	y := make([]float32, 4*n)
	idx := make([]int64, 256)
	for i := range idx {
		idx[i] = int64(i * 7 % 256)
	}
	xs, shapes := [][]float32{x[:n/2], x2[:n/2]}, [][]int{{4, 64, 128}, {4, 64, 128}}
	half := make([]uint16, 128*256)
	runtime.F32ToF16Slice(half, w[:len(half)])
	w16 := kernels.F16Weights(half)
	w16p := kernels.PackWeights(w16, 128, 256)
	wc16 := kernels.F16Weights(half[:64*16*9])
	wc16p := kernels.PackWeights(wc16, 64, 16*9)
	wbf := kernels.BF16Weights(half[:16*9])
	conv := kernels.Conv2dParams{N: 2, C: 16, H: 32, W: 32, K: 16, KH: 3, KW: 3, PadH: 1, PadW: 1}
	pointwise := kernels.Conv2dParams{N: 2, C: 16, H: 32, W: 32, K: 16, KH: 1, KW: 1}
	depthwise := kernels.Conv2dParams{N: 2, C: 16, H: 32, W: 32, K: 16, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 16}
	patch := kernels.Conv2dParams{N: 2, C: 3, H: 32, W: 32, K: 64, KH: 8, KW: 8, StrideH: 8, StrideW: 8}
	implicit := kernels.Conv2dParams{N: 1, C: 16, H: 32, W: 32, K: 64, KH: 3, KW: 3, PadH: 1, PadW: 1}
	convT := kernels.ConvTranspose2dParams{N: 2, C: 16, H: 16, W: 16, K: 16, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, OutPadH: 1, OutPadW: 1}
	cases := []struct {
		name string
		fn   func()
	}{
		{"ReLU", func() { kernels.ReLU(y[:n], x) }},
		{"SiLU", func() { kernels.SiLU(y[:n], x) }},
		{"Sigmoid", func() { kernels.Sigmoid(y[:n], x) }},
		{"Tanh", func() { kernels.Tanh(y[:n], x) }},
		{"Sin", func() { kernels.Sin(y[:n], x) }},
		{"Cos", func() { kernels.Cos(y[:n], x) }},
		{"GeLU", func() { kernels.GeLU(y[:n], x, kernels.GeLUExact) }},
		{"GeLUTanh", func() { kernels.GeLU(y[:n], x, kernels.GeLUTanh) }},
		{"Clamp", func() { kernels.Clamp(y[:n], x, -0.5, 0.5) }},
		{"ScaleBias", func() { kernels.ScaleBias(y[:n], x, 2, 1) }},
		{"Add", func() { kernels.Add(y[:n], x, x2) }},
		// Shapes are literals here: a kernel must not let them escape (which would allocate).
		{"Binary", func() {
			kernels.Binary(kernels.OpMul, y[:n], []int{4, 128, 128}, x, []int{4, 128, 128}, w[:128], []int{128})
		}},
		{"Softmax", func() { kernels.Softmax(y[:n], x, 256, 256, 1) }},
		{"SoftmaxStrided", func() { kernels.Softmax(y[:n], x, 4, 64, 256) }},
		{"LayerNorm", func() { kernels.LayerNorm(y[:n], x, 256, 256, w[:256], w[:256], 1e-5) }},
		{"GroupNorm", func() { kernels.GroupNorm(y[:n], x, 2, 32, 1024, 8, w[:32], w[:32], 1e-5) }},
		{"InstanceNorm2d", func() { kernels.InstanceNorm2d(y[:n], x, 2, 32, 1024, nil, nil, 1e-5) }},
		{"LayerNorm2d", func() { kernels.LayerNorm2d(y[:n], x, 2, 16, 2048, w[:16], w[:16], 1e-5) }},
		{"Permute", func() { kernels.Permute(y, x, []int{4, 32, 16, 32}, []int{0, 2, 3, 1}) }},
		{"PermuteRows", func() { kernels.Permute(y, x, []int{4, 32, 16, 32}, []int{1, 0, 2, 3}) }},
		{"Pad", func() { kernels.Pad(y, x, []int{4, 32, 16, 32}, []int{1, 2, 1, 1}, kernels.PadReflect, 0) }},
		{"Slice", func() { kernels.Slice(y, x, []int{4, 128, 128}, 1, 1, 128, 1) }},
		{"SliceStrided", func() { kernels.Slice(y, x, []int{2, 256, 128}, 1, 1, 256, 2) }},
		{"Concat", func() { kernels.Concat(y, xs, shapes, 1) }},
		{"UpsampleNearest", func() { kernels.UpsampleNearest(y, x, 2, 32, 32, 32, 64, 64) }},
		{"UpsampleBilinear", func() { kernels.UpsampleBilinear(y, x, 2, 32, 32, 32, 64, 64, false) }},
		{"PixelShuffle", func() { kernels.PixelShuffle(y, x, 2, 32, 32, 32, 2) }},
		{"PixelUnshuffle", func() { kernels.PixelUnshuffle(y, x, 2, 32, 32, 32, 2) }},
		{"Embedding", func() {
			if err := kernels.Embedding(y, idx, x, 256); err != nil {
				t.Fatal(err)
			}
		}},
		{"GLU", func() { kernels.GLU(y, x, 64, 1024, 1, kernels.SiLU) }},
		{"Sum", func() { kernels.Sum(y, x, 256, 256, 1) }},
		{"Mean", func() { kernels.Mean(y, x, 4, 64, 256) }},
		{"Conv3x3", func() { kernels.Conv2d(y, x, w, w[:16], conv) }},
		{"Conv3x3Implicit", func() { kernels.Conv2d(y, x, w, w[:64], implicit) }},
		{"Conv3x3ImplicitFused", func() {
			kernels.Conv2dFused(y, x, w, w[:64], implicit, kernels.Epilogue{Act: kernels.ActGeLU, Affine: true, Scale: 2, Residual: x2[:64*32*32]})
		}},
		{"ConvPatchFused", func() {
			kernels.Conv2dFused(y, x, w, w[:64], patch, kernels.Epilogue{Act: kernels.ActReLU, Residual: x2[:2*64*4*4]})
		}},
		{"Conv1x1Fused", func() {
			kernels.Conv2dFused(y, x, w, nil, pointwise, kernels.Epilogue{Act: kernels.ActSiLU, Residual: x2[:2*16*32*32]})
		}},
		{"ConvDepthwiseFused", func() {
			kernels.Conv2dFused(y, x, w, w[:16], depthwise, kernels.Epilogue{Act: kernels.ActTanh, Residual: x2[:2*16*32*32]})
		}},
		{"LinearFused", func() {
			kernels.LinearFused(y, x, 256, 256, 128, w[:128*256], w[:128], kernels.Epilogue{Act: kernels.ActGeLU, Residual: x2[:256*128]})
		}},
		{"LinearGLU", func() { kernels.LinearGLU(y, x, 256, 256, 128, w[:128*256], w[:128], kernels.SiLU) }},
		{"GroupNormAct", func() { kernels.GroupNormAct(y[:n], x, 2, 32, 1024, 8, w[:32], w[:32], 1e-5, kernels.ActReLU) }},
		{"LayerNormAct", func() { kernels.LayerNormAct(y[:n], x, 256, 256, w[:256], w[:256], 1e-5, kernels.ActSiLU) }},
		{"EpilogueSpan", func() { kernels.EpilogueSpan(y[:n], kernels.Epilogue{Act: kernels.ActReLU, Residual: x}) }},
		{"Conv1x1", func() { kernels.Conv2d(y, x, w, w[:16], pointwise) }},
		{"ConvDepthwise", func() { kernels.Conv2d(y, x, w, w[:16], depthwise) }},
		{"ConvPatch", func() { kernels.Conv2d(y, x, w, w[:64], patch) }},
		{"ConvTranspose2d", func() { kernels.ConvTranspose2d(y, x, w, w[:16], convT) }},
		{"Attention", func() { kernels.Attention(y, x, x2, w, 2, 4, 128, 128, 16, 16, false) }},
		{"AttentionCausal", func() { kernels.Attention(y, x, x2, w, 2, 4, 128, 128, 16, 16, true) }},
		{"Linear", func() { kernels.Linear(y, x, 256, 256, 128, w[:128*256], w[:128]) }},
		{"LinearF16", func() { kernels.LinearW(y, x, 256, 256, 128, w16, w[:128]) }},
		{"LinearPackedF16", func() { kernels.LinearW(y, x, 256, 256, 128, w16p, w[:128]) }},
		{"LinearGLUF16", func() { kernels.LinearGLUW(y, x, 256, 256, 128, w16, w[:128], kernels.SiLU) }},
		{"ConvImplicitF16", func() { kernels.Conv2dW(y, x, wc16, w[:64], implicit) }},
		{"ConvImplicitPackedF16", func() {
			kernels.Conv2dFusedW(y, x, wc16p, w[:64], implicit, kernels.Epilogue{Act: kernels.ActReLU})
		}},
		{"ConvDepthwiseBF16", func() { kernels.Conv2dW(y, x, wbf, w[:16], depthwise) }},
		{"BatchedMatMul", func() { kernels.BatchedMatMul(y, x, x2, 8, 64, 32, 64, 64*32, 32*64) }},
	}
	for _, c := range cases {
		c.fn()
		if a := testing.AllocsPerRun(20, c.fn); a != 0 {
			t.Errorf("%s: %v allocs per call, want 0", c.name, a)
		}
	}
}

// TestWinogradDoesNotAllocate: the Winograd convolution (here on a small image, which it
// takes only under the test hook) allocates nothing once warm.
func TestWinogradDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	defer kernels.SetWinogradMinPixels(1)()
	defer kernels.SetWorkers(kernels.Workers())
	p := kernels.Conv2dParams{N: 1, C: 16, H: 8, W: 32, K: 32, KH: 3, KW: 3, PadH: 1, PadW: 1}
	x, w := randomSlice(16*8*32, 1), randomSlice(32*16*9, 2)
	y, r := make([]float32, 32*8*32), randomSlice(32*8*32, 3)
	for _, workers := range []int{1, 2} {
		kernels.SetWorkers(workers)
		fn := func() { kernels.Conv2dFused(y, x, w, w[:32], p, kernels.Epilogue{Act: kernels.ActSiLU, Residual: r}) }
		fn()
		if a := testing.AllocsPerRun(20, fn); a != 0 {
			t.Errorf("workers=%d: %v allocs per call, want 0", workers, a)
		}
	}
}
