package interp

import (
	"fmt"
	"math"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

// sinusoidalSource is Refiners' compute_sinusoidal_embedding (SD1.5's timestep embedding)
// in .rfn: exponent = −ln(10000)·arange(half)/half, emb = t·exp(exponent) as the product
// of [n, 1] and [1, half], then [cos, sin]. −ln(10000) is written out: the language has no
// log.
const sinusoidalSource = `model SinusoidalEmbedding(embedding_dim: int = 320) {
    input timestep: f32[batch, 1]
    let half = embedding_dim // 2
    Parallel {
        Identity()
        Chain {
            Arange(half, dtype="f32")
            Multiply(scale=-9.210340371976184 / half)
            Exp()
            Unsqueeze(0)
        }
    }
    Matmul()
    Concatenate(dim=-1) {
        Cos()
        Sin()
    }
}
`

// TestSinusoidalEmbedding runs the .rfn, as elaborated and after the optimization passes,
// against PyTorch (scripts/golden/sinusoidal.py) for timesteps up to 999.
func TestSinusoidalEmbedding(t *testing.T) {
	f, err := runtime.OpenSafetensors("../testdata/golden/sinusoidal_embedding.safetensors")
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 scripts/golden/sinusoidal.py)", err)
	}
	defer f.Close()
	ts, err := f.Tensor("timestep")
	if err != nil {
		t.Fatal(err)
	}
	for _, dim := range []int{16, 320} {
		want, err := f.Tensor(fmt.Sprintf("embedding_%d", dim))
		if err != nil {
			t.Fatal(err)
		}
		for _, optimized := range []bool{false, true} {
			m := testutil.Elaborate(t, sinusoidalSource, map[string]string{"embedding_dim": fmt.Sprint(dim), "batch": fmt.Sprint(ts.Shape[0])})
			if optimized {
				if err := passes.Run(m, passes.Config{}); err != nil {
					t.Fatal(err)
				}
			}
			outs, err := Run(m, Weights{}, map[string]*runtime.Tensor{"timestep": ts})
			if err != nil {
				t.Fatal(err)
			}
			if err := testutil.WithinTolerance(outs[0], want, 1e-4); err != nil {
				t.Errorf("dim %d (passes %t): %v", dim, optimized, err)
			}
			worst := 0.0
			for i := range want.F32 {
				worst = math.Max(worst, math.Abs(float64(outs[0].F32[i]-want.F32[i])))
			}
			t.Logf("dim %d (passes %t): max|Δ| = %.3g", dim, optimized, worst)
		}
	}
}
