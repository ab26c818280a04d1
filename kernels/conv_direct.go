package kernels

// directMaxK is the most output channels a convolution computes directly (conv2dDirect):
// with fewer channels than the GEMM micro-kernel has rows or columns, most of its work would
// be padding, and im2col's column matrix would cost more than the product.
const directMaxK = 8

// conv2dDirect computes a one-group convolution with few output channels by row updates:
// each output row starts at the bias and accumulates, for every (input channel, kh, kw),
// the weight times the input row it reads (a vectorized axpy). A task is one output row of
// one image, all output channels: the input row is then read from L1 for every channel.
func conv2dDirect(y, x, w, b []float32, p Conv2dParams, ep *Epilogue) {
	tasks := p.N * p.OutH()
	runConvTasks(directRows, y, x, w, b, p, ep, 1, tasks)
}

// directRows computes output rows [lo, hi) (task t is row t%OutH of image t/OutH).
func directRows(y, x, w, b []float32, p Conv2dParams, ep Epilogue, _, lo, hi int, _ bool) {
	oh, ow := p.OutH(), p.OutW()
	plane := p.H * p.W
	taps := p.KH * p.KW
	for t := lo; t < hi; t++ {
		n, oy := t/oh, t%oh
		for k := range p.K {
			yr := y[((n*p.K+k)*oh+oy)*ow : ((n*p.K+k)*oh+oy+1)*ow]
			bias := float32(0)
			if b != nil {
				bias = b[k]
			}
			for i := range yr {
				yr[i] = bias
			}
		}
		for c := range p.C {
			xc := x[(n*p.C+c)*plane : (n*p.C+c+1)*plane]
			for kh := range p.KH {
				iy := oy*p.StrideH - p.PadH + kh*p.DilH
				if iy < 0 || iy >= p.H {
					continue
				}
				xr := xc[iy*p.W : (iy+1)*p.W]
				for kw := range p.KW {
					off := kw*p.DilW - p.PadW
					lo, hi := validRange(0, ow, p.StrideW, off, p.W)
					if lo == hi {
						continue
					}
					for k := range p.K {
						wv := w[(k*p.C+c)*taps+kh*p.KW+kw]
						yr := y[((n*p.K+k)*oh+oy)*ow : ((n*p.K+k)*oh+oy+1)*ow]
						if p.StrideW == 1 {
							axpy(yr[lo:hi], xr[lo+off:hi+off], wv)
							continue
						}
						ix := lo*p.StrideW + off
						for ox := lo; ox < hi; ox++ {
							yr[ox] += wv * xr[ix]
							ix += p.StrideW
						}
					}
				}
			}
		}
		if !ep.empty() {
			for k := range p.K {
				o := ((n*p.K+k)*oh + oy) * ow
				ep.apply(y[o:o+ow], o)
			}
		}
	}
}
