package kernels

// Winograd F(2×2, 3×3) convolution for the 3×3, stride-1, padding-1 layers that dominate
// Stable Diffusion (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"). Each
// 2×2 block of output pixels (a tile) comes from the 4×4 block of input around it:
//
//	Y = Aᵀ·[Σ_c (G·g_kc·Gᵀ) ⊙ (Bᵀ·d_c·B)]·A
//
// so the products become 16 GEMMs, one per position of the 4×4 transformed tile, each
// U[ξν] (K × C) · V[ξν] (C × tiles): 16 multiply-adds per tile and channel pair where direct
// convolution needs 36, 2.25 times fewer. The transforms are additions (and halvings of the
// weights), vectorized across 16 tiles of a tile row; the GEMMs run on the micro-kernel with
// both operands packed: the transformed weights as A panels (mr output channels), the
// transformed input as B panels (32 tiles). Results differ from direct convolution by
// rounding only (the transforms are exact up to the order of additions).
//
// The input is laid out once per call with its padding, each padded row as its even columns
// then its odd columns, so that the four columns of 16 consecutive tiles (2t, 2t+1, 2t+2,
// 2t+3) are four unaligned vector loads.

// winoBudgetFloats bounds a task's transformed input and output (16·(C + K)·tiles floats);
// winoLargeBudgetFloats when the transformed weights are large (over 4 MiB).
var (
	winoBudgetFloats      = 1 << 17
	winoLargeBudgetFloats = 1 << 22
)

// winoFits reports whether p (normalized) takes the Winograd path.
func winoFits(p Conv2dParams) bool {
	kr := gemmKernel
	return winoRuns() && kr.nr == 32 && p.Groups == 1 && p.KH == 3 && p.KW == 3 &&
		p.StrideH == 1 && p.StrideW == 1 && p.DilH == 1 && p.DilW == 1 && p.PadH == 1 && p.PadW == 1 &&
		p.W%32 == 0 && p.H%2 == 0 && p.H*p.W >= winoMinPixels && p.C >= 16 && implicitFits(p) &&
		16*(p.K+kr.mr)*p.C <= winoMaxWeightFloats
}

// winoMaxWeightFloats bounds the transformed weights (16·K·C floats, in scratch for the call).
const winoMaxWeightFloats = 8 << 20

// winoMinPixels is the smallest image the Winograd path takes: the weights are transformed
// on every call, which smaller images do not repay.
var winoMinPixels = 64 * 64

type winoGeom struct {
	oh, ow, ohw      int
	th, tw           int // tiles per column and row
	half, rowStride  int // the laid-out rows: even columns, then odd ones at half
	plane            int // floats per laid-out channel
	mr               int
	kPad, kPanels    int // output channels padded to whole A panels
	txLen, tyRows    int // a task's tiles: tyRows tile rows of txLen tiles
	tiles            int // txLen·tyRows, a multiple of 32
	txBlocks, tyBlks int // tasks per image: tyBlks·txBlocks
}

func newWinoGeom(p Conv2dParams, kr *microKernel) winoGeom {
	g := winoGeom{oh: p.H, ow: p.W, mr: kr.mr}
	g.ohw = g.oh * g.ow
	g.th, g.tw = g.oh/2, g.ow/2
	g.half = g.tw + 1
	g.rowStride = 2 * g.half
	g.plane = (g.oh + 2) * g.rowStride
	g.kPanels = (p.K + g.mr - 1) / g.mr
	g.kPad = g.kPanels * g.mr
	// Tiles per task: few enough that the transformed input and output of one position
	// (C·tiles, K·tiles) stay in L2 across its GEMM, many enough that the transformed
	// weights, which every task streams, are read once per hundred or so tiles when large.
	budget := winoBudgetFloats
	if 16*g.kPad*p.C > 1<<20 {
		budget = winoLargeBudgetFloats
	}
	tmax := max(32, budget/(16*(p.C+g.kPad))/32*32)
	// Tile columns per task: the row, halved while over the budget, so that blocks are even.
	g.txLen = g.tw
	for g.txLen > tmax && g.txLen%64 == 0 {
		g.txLen /= 2
	}
	g.tyRows = max(1, min(g.th, tmax/g.txLen))
	if g.txLen%32 != 0 {
		g.tyRows = max(2, g.tyRows&^1) // panels of 32 tiles span two tile rows of 16
	}
	// Enough tasks for the workers, when the image allows.
	want := Workers() * minTasksPerWorker
	for p.N*((g.th+g.tyRows-1)/g.tyRows)*((g.tw+g.txLen-1)/g.txLen) < want && g.tyRows > 2 {
		g.tyRows = max(2, g.tyRows/2)
	}
	g.tiles = g.txLen * g.tyRows
	g.txBlocks = (g.tw + g.txLen - 1) / g.txLen
	g.tyBlks = (g.th + g.tyRows - 1) / g.tyRows
	return g
}

type winoJob struct {
	y, x, b, xl, u []float32
	w              []float32      // the weights, row-major [K, C·9]
	wp             *packedWeights // or packed, when w is nil
	p              Conv2dParams
	ep             Epilogue
	g              winoGeom
	phase          int // 0: lay out the input and transform the weights; 1: the tasks
}

var winoJobs pool

func conv2dWinograd(y, x []float32, w Weights, b []float32, p Conv2dParams, ep *Epilogue) {
	kr := gemmKernel
	g := newWinoGeom(p, kr)
	// The weight transform reads packed weights where they lie, others as a row-major
	// float32 matrix.
	var wf []float32
	wp := w.packed
	if wp == nil || wp.out != p.K || wp.in != p.C*9 {
		var wbuf *[]float32
		wf, wbuf = w.matrix(p.K, p.C*9)
		wp = nil
		if wbuf != nil {
			defer putScratch(wbuf)
		}
	}
	xbuf := getScratch(p.N * p.C * g.plane)
	defer putScratch(xbuf)
	ubuf := getScratch(16 * g.kPad * p.C)
	defer putScratch(ubuf)
	zeros := getScratch(p.K) // the bias when there is none
	defer putScratch(zeros)
	if b == nil {
		clear(*zeros)
		b = *zeros
	}
	j, ok := winoJobs.Get().(*winoJob)
	if !ok {
		j = new(winoJob)
	}
	*j = winoJob{y: y, x: x, b: b, xl: *xbuf, u: *ubuf, w: wf, wp: wp, p: p, ep: *ep, g: g}
	prep := p.N*p.C + g.kPanels
	if Workers() == 1 {
		j.run(0, prep)
	} else {
		parallelRun(prep, j)
	}
	j.phase = 1
	tasks := p.N * g.tyBlks * g.txBlocks
	parallelRun(tasks, j) // on this goroutine when there is one worker or one task
	*j = winoJob{}
	winoJobs.Put(j)
}

func (j *winoJob) run(lo, hi int) {
	if j.phase == 0 {
		planes := j.p.N * j.p.C
		for t := lo; t < hi; t++ {
			if t < planes {
				winoLayout(j.xl[t*j.g.plane:(t+1)*j.g.plane], j.x[t*j.p.H*j.p.W:(t+1)*j.p.H*j.p.W], &j.p)
			} else {
				winoWeights(j.u, j.w, j.wp, &j.p, &j.g, t-planes)
			}
		}
		return
	}
	winoTasks(j, lo, hi)
}

// winoLayout lays out one input plane: padded rows 0 … H+1 (input rows −1 … H), each as the
// padded columns 0, 2, …, W (input columns −1, 1, …) then 1, 3, …, W+1.
func winoLayout(dst, x []float32, p *Conv2dParams) {
	half := p.W/2 + 1
	rs := 2 * half
	clear(dst[:rs])
	clear(dst[(p.H+1)*rs : (p.H+2)*rs])
	for r := range p.H {
		row := dst[(r+1)*rs : (r+2)*rs]
		even, odd := row[:half], row[half:]
		xr := x[r*p.W : (r+1)*p.W]
		// Padded column 2t is input column 2t−1, padded column 2t+1 input column 2t.
		even[0] = 0
		odd[half-1] = 0
		for t := range p.W / 2 {
			odd[t] = xr[2*t]
			even[t+1] = xr[2*t+1]
		}
	}
}

// winoWeights transforms the weights of output-channel panel q, U = G·g·Gᵀ for each of its
// channels and every input channel, into A panels: U[ξν] of channel k and input channel c at
// ((ξν·kPanels + k/mr)·C + c)·mr + k%mr (zero for the padding channels). The weights come
// from w (row-major [K, C·9]) or, when w is nil, from the packed wp.
func winoWeights(u, w []float32, wp *packedWeights, p *Conv2dParams, g *winoGeom, q int) {
	mr := g.mr
	var gk [9]float32
	for r := range mr {
		k := q*mr + r
		for c := range p.C {
			var t [4][3]float32
			var v [16]float32
			if k < p.K {
				switch {
				case w != nil:
					gk = [9]float32(w[(k*p.C+c)*9 : (k*p.C+c)*9+9])
				default:
					// Output channel k is column k%nr of panel k/nr, depth c·9+tap.
					base := ((k/wp.nr)*wp.in+c*9)*wp.nr + k%wp.nr
					for tap := range 9 {
						if wp.format == WeightF32 {
							gk[tap] = wp.f32[base+tap*wp.nr]
						} else {
							gk[tap] = widen1(wp.half[base+tap*wp.nr], wp.format)
						}
					}
				}
				for j := range 3 {
					g0, g1, g2 := gk[j], gk[3+j], gk[6+j]
					t[0][j] = g0
					t[1][j] = (g0 + g1 + g2) * 0.5
					t[2][j] = (g0 - g1 + g2) * 0.5
					t[3][j] = g2
				}
				for i := range 4 {
					t0, t1, t2 := t[i][0], t[i][1], t[i][2]
					v[4*i] = t0
					v[4*i+1] = (t0 + t1 + t2) * 0.5
					v[4*i+2] = (t0 - t1 + t2) * 0.5
					v[4*i+3] = t2
				}
			}
			for xi, val := range v {
				u[((xi*g.kPanels+q)*p.C+c)*mr+r] = val
			}
		}
	}
}

// winoTasks computes tasks [lo, hi): task t covers tile rows block (t/txBlocks)%tyBlks and
// tile columns block t%txBlocks of image t/(tyBlks·txBlocks).
func winoTasks(j *winoJob, lo, hi int) {
	p, g, ep := &j.p, &j.g, &j.ep
	kr := gemmKernel
	mr := g.mr
	nv, nm := 16*p.C*g.tiles, 16*g.kPad*g.tiles
	buf := getScratch(nv + nm)
	defer putScratch(buf)
	v, m := (*buf)[:nv], (*buf)[nv:nv+nm]
	xiV, xiM := p.C*g.tiles, g.kPad*g.tiles
	for t := lo; t < hi; t++ {
		bx := t % g.txBlocks
		by := t / g.txBlocks % g.tyBlks
		n := t / (g.txBlocks * g.tyBlks)
		tx0, ty0 := bx*g.txLen, by*g.tyRows
		txn, tyn := min(g.txLen, g.tw-tx0), min(g.tyRows, g.th-ty0)
		xn := j.xl[n*p.C*g.plane:]
		// Tiles of the task are numbered row by row, txLen to a row; the last panel may hold
		// tiles past the image (rows past th), whose values are never stored.
		used := ((tyn*g.txLen + 31) / 32) * 32
		for ty := ty0; ty < ty0+tyn; ty++ {
			for gx := tx0; gx < tx0+txn; gx += 16 {
				ti := (ty-ty0)*g.txLen + gx - tx0
				dst := v[(ti/32)*p.C*32+ti%32:]
				winoInput(dst, xn[2*ty*g.rowStride+gx:], p.C, g.plane, g.rowStride, g.half, xiV)
			}
		}
		if tail := tyn * g.txLen; tail < used {
			// Tiles past the image: zero, so that the products stay finite.
			for xi := range 16 {
				for c := range p.C {
					o := xi*xiV + (tail/32)*p.C*32 + c*32
					clear(v[o+tail%32 : o+32])
				}
			}
		}
		for xi := range 16 {
			for q := range g.kPanels {
				ap := j.u[(xi*g.kPanels+q)*p.C*mr : (xi*g.kPanels+q+1)*p.C*mr]
				for tp := 0; tp < used; tp += 32 {
					bp := v[xi*xiV+tp*p.C : xi*xiV+(tp+32)*p.C]
					kr.fn(p.C, ap, bp, m[xi*xiM+q*mr*g.tiles+tp:], g.tiles, 1, 0)
				}
			}
		}
		yn := j.y[n*p.K*g.ohw:]
		for ty := ty0; ty < ty0+tyn; ty++ {
			for gx := tx0; gx < tx0+txn; gx += 16 {
				ti := (ty-ty0)*g.txLen + gx - tx0
				o0 := 2*ty*g.ow + 2*gx
				winoOutput(yn[o0:], yn[o0+g.ow:], m[ti:], p.K, g.ohw, g.tiles, xiM, j.b)
				if !ep.empty() {
					for k := range p.K {
						for _, o := range [2]int{o0, o0 + g.ow} {
							off := (n*p.K+k)*g.ohw + o
							ep.apply(j.y[off:off+32], off)
						}
					}
				}
			}
		}
	}
}
