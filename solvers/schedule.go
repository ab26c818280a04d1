package solvers

import "math"

// schedule holds the base noise schedule of Refiners' Solver: per training timestep t,
// scaleFactors[t] = 1 - β_t, cumulative[t] = sqrt(ᾱ_t) and noiseStd[t] = sqrt(1 - ᾱ_t),
// all float32 as PyTorch computes them in Refiners' default dtype.
type schedule struct {
	scaleFactors []float32
	cumulative   []float32
	noiseStd     []float32
}

// newSchedule is Refiners' QUADRATIC noise schedule ("scaled linear"): β is the square of a
// float32 linspace between sqrt(initial) and sqrt(final). The cumulative product runs in a
// float64 accumulator with float32 results, as PyTorch's CPU cumprod does.
func newSchedule(numTrain int, initial, final float64) schedule {
	root := torchLinspace32(float32(math.Sqrt(initial)), float32(math.Sqrt(final)), numTrain)
	s := schedule{
		scaleFactors: make([]float32, numTrain),
		cumulative:   make([]float32, numTrain),
		noiseStd:     make([]float32, numTrain),
	}
	acc := 1.0
	for i, r := range root {
		s.scaleFactors[i] = 1 - float32(r*r)
		acc *= float64(s.scaleFactors[i])
		prod := float32(acc)
		s.cumulative[i] = float32(math.Sqrt(float64(prod)))
		s.noiseStd[i] = float32(math.Sqrt(float64(1 - prod)))
	}
	return s
}

// sigma is the noise level σ_t = noiseStd[t] / cumulative[t] of a training timestep, the
// float32 division Refiners' Euler performs.
func (s schedule) sigma(t int) float32 { return s.noiseStd[t] / s.cumulative[t] }

// torchLinspace32 reproduces torch.linspace(start, end, steps) in float32 bit for bit as
// PyTorch 1.13's CPU kernel computes it (the build that wrote the goldens): the step is
// (end-start)/(steps-1) in float32; the first half counts up from start and the second half
// down from end with a fused multiply-add; within 16-element blocks the kernel computes one
// base per 8 elements and adds k·step (k = 0..7) unfused. The schedule only differs from an
// exactly rounded linspace by an ulp here and there, but an ulp of β moves σ_max by ~5e-6,
// which the 1e-5 trajectory tolerance cannot absorb.
func torchLinspace32(start, end float32, steps int) []float32 {
	out := make([]float32, steps)
	if steps == 1 {
		out[0] = start
		return out
	}
	step := (end - start) / float32(steps-1)
	half := steps / 2
	at := func(i int) float32 {
		if i < half {
			return fma32(step, float32(i), start)
		}
		return fma32(-step, float32(steps-i-1), end)
	}
	const width = 8
	i := 0
	for ; i+2*width <= steps; i += 2 * width {
		for _, b := range [2]int{i, i + width} {
			base := at(b)
			for k := 0; k < width; k++ {
				out[b+k] = base + float32(float32(k)*step)
			}
		}
	}
	for ; i < steps; i++ {
		out[i] = at(i)
	}
	return out
}

// fma32 is a·b + c rounded once to float32: the float64 product of two float32 values is
// exact, so only the float64 sum and the final conversion round.
func fma32(a, b, c float32) float32 {
	return float32(float64(a)*float64(b) + float64(c))
}

// numpyLinspace is numpy.linspace(start, stop, num) in float64: i·step + start with
// step = (stop-start)/(num-1), the last value set to stop.
func numpyLinspace(start, stop float64, num int) []float64 {
	out := make([]float64, num)
	if num == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(num-1)
	for i := range out {
		out[i] = float64(float64(i)*step) + start
	}
	out[num-1] = stop
	return out
}

// interpTable is numpy.interp(x, arange(len(fp)), fp) for 0 <= x <= len(fp)-1: exact table
// values at integers, numpy's slope·(x - j) + fp[j] in between.
func interpTable(fp []float64, x float64) float64 {
	last := len(fp) - 1
	if x >= float64(last) {
		return fp[last]
	}
	if x <= 0 {
		return fp[0]
	}
	j := int(math.Floor(x))
	if float64(j) == x {
		return fp[j]
	}
	slope := fp[j+1] - fp[j] // divided by xp[j+1]-xp[j] = 1
	return float64(slope*(x-float64(j))) + fp[j]
}
