package kernels

// Convolutions with few output channels (an RGB or latent output: Stable Diffusion's last
// convolutions, 320→4 and 128→3) on the padded grid of conv_grid.go, with the roles of the
// GEMM swapped: the output channels are the micro-kernel's rows (four, padded), the grid
// pixels its columns (64 at a time), and each depth step's row of B is a run of the
// laid-out input, read where it lies through a table of offsets, one per (channel, tap):
// nothing is packed but the weights.

// smallKWidth is the grid pixels of one micro-kernel call (its columns), smallKRows its rows.
const (
	smallKWidth = 64
	smallKRows  = 4
)

// smallKFits reports whether the small-K path suits p (normalized) on this CPU.
func smallKFits(p Conv2dParams) bool {
	var g gridGeom
	if !smallKRuns() || p.Groups != 1 || p.KH*p.KW > maxGridTaps || p.StrideH != p.StrideW || p.StrideH > 2 {
		return false
	}
	g.setLayout(p, smallKWidth, true)
	return p.C*g.plane < 1<<31 && p.Groups == 1 && p.K <= 2*smallKRows && p.StrideH == p.StrideW &&
		p.StrideH <= 2 && p.DilH == 1 && p.DilW == 1 && p.KH*p.KW <= maxGridTaps && p.C > 0
}

type smallKJob struct {
	y, x, b, xl, wp []float32
	offs            []int32 // where row c·taps+t of B starts, from the image's first pixel
	p               Conv2dParams
	ep              Epilogue
	g               gridGeom
	layout          bool
}

var smallKJobs pool

func conv2dSmallK(y, x, w, b []float32, p Conv2dParams, ep *Epilogue) {
	var g gridGeom
	g.setLayout(p, smallKWidth, true)
	kTot := p.C * g.taps
	groups := (p.K + smallKRows - 1) / smallKRows
	// Weights as A panels of smallKRows output channels, k-major, zero-padded.
	wbuf := getScratch(groups * kTot * smallKRows)
	defer putScratch(wbuf)
	for q := range groups {
		packRows((*wbuf)[q*kTot*smallKRows:(q+1)*kTot*smallKRows], w[q*smallKRows*kTot:], kTot, min(smallKRows, p.K-q*smallKRows), smallKRows, kTot)
	}
	xbuf := getScratch(p.N * p.C * g.plane)
	defer putScratch(xbuf)
	obuf := getScratch(kTot) // the offsets table
	defer putScratch(obuf)
	j, ok := smallKJobs.Get().(*smallKJob)
	if !ok {
		j = new(smallKJob)
	}
	*j = smallKJob{y: y, x: x, b: b, xl: *xbuf, wp: *wbuf, p: p, ep: *ep, g: g}
	j.offs = asInt32(*obuf)
	for c := range p.C {
		for t := range g.taps {
			j.offs[c*g.taps+t] = int32(c*g.plane) + g.tapOff[t]
		}
	}
	j.layout = true
	layoutPlanes(j, p.N*p.C, g.plane)
	j.layout = false
	tasks := p.N * g.panels
	parallelRun(tasks, j) // on this goroutine when there is one worker or one task
	*j = smallKJob{}
	smallKJobs.Put(j)
}

func (j *smallKJob) run(lo, hi int) {
	p, g, ep := &j.p, &j.g, &j.ep
	if j.layout {
		if g.stride > 1 {
			layoutPhases(j.xl, j.x, p, g, lo, hi)
		} else {
			layoutPadded(j.xl, j.x, p, g, lo, hi)
		}
		return
	}
	kTot := p.C * g.taps
	groups := (p.K + smallKRows - 1) / smallKRows
	var tile [smallKRows * smallKWidth]float32
	for t := lo; t < hi; t++ {
		n, pan := t/g.panels, t%g.panels
		g0 := pan * smallKWidth
		g1 := min(g.grid, g0+smallKWidth)
		xn := j.xl[n*p.C*g.plane+g0:]
		for q := range groups {
			smallKKernel(kTot, j.wp[q*kTot*smallKRows:(q+1)*kTot*smallKRows], xn, j.offs, tile[:])
			for r := range min(smallKRows, p.K-q*smallKRows) {
				k := q*smallKRows + r
				bias := float32(0)
				if j.b != nil {
					bias = j.b[k]
				}
				row := tile[r*smallKWidth:]
				for oy := g0 / g.pitch; oy*g.pitch < g1; oy++ {
					lo, hi := max(g0, oy*g.pitch), min(g1, oy*g.pitch+g.ow)
					if lo >= hi {
						continue
					}
					o := (n*p.K+k)*g.ohw + oy*g.ow + lo - oy*g.pitch
					dst := j.y[o : o+hi-lo]
					for i, v := range row[lo-g0 : hi-g0] {
						dst[i] = v + bias
					}
					if !ep.empty() {
						ep.apply(dst, o)
					}
				}
			}
		}
	}
}
