package kernels_test

import (
	"fmt"
	"testing"

	"github.com/rfc-project/rfc/kernels"
)

func TestAttentionGolden(t *testing.T) {
	g := openGolden(t, "attention")
	// The default tiles, and small odd ones so short cases cross query and key tiles too.
	tiles := [][2]int{{0, 0}, {7, 13}}
	for _, tile := range tiles {
		restore := func() {}
		if tile[0] > 0 {
			restore = kernels.SetAttentionTiles(tile[0], tile[1])
		}
		withWorkersAndKernels(t, func(label string) {
			for _, c := range g.cases(t, "attention") {
				q, k, v, want := c.tensor("q"), c.tensor("k"), c.tensor("v"), c.tensor("y")
				heads := c.int("heads")
				batch, lq, lk := q.Shape[0], q.Shape[1], k.Shape[1]
				dk, dv := q.Shape[2]/heads, v.Shape[2]/heads
				if tile[0] > 0 && lq*lk > 100000 {
					continue // long cases already cross the default tiles; small tiles are slow there
				}
				y := nanSlice(len(want.F32))
				causal := c.bool("causal")
				kernels.Attention(y, q.F32, k.F32, v.F32, batch, heads, lq, lk, dk, dv, causal)
				check(t, "attention", fmt.Sprintf("%s B=%d H=%d Lq=%d Lk=%d Dk=%d Dv=%d causal=%v tiles=%v %s",
					c.name, batch, heads, lq, lk, dk, dv, causal, tile, label), y, want)
			}
		})
		restore()
	}
	logWorst(t, "attention")
}

// withWorkersAndKernels is withWorkers under each GEMM micro-kernel this CPU runs: the
// unmasked attention lays its operands out in the micro-kernel's panels.
func withWorkersAndKernels(t *testing.T, fn func(label string)) {
	t.Helper()
	for _, name := range kernels.GemmKernelNames() {
		restore := kernels.UseGemmKernel(name)
		withWorkers(t, func(label string) { fn(name + " " + label) })
		restore()
	}
}
