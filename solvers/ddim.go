package solvers

import "math"

// DDIM is Refiners' DDIM solver (deterministic, η = 0) with its "leading" timestep spacing
// and offset 1: 667, 334, 1 for 3 steps.
type DDIM struct {
	base
	sched schedule
	ts    []int
}

// NewDDIM returns Refiners' DDIM solver for steps inference steps.
func NewDDIM(steps int, p Params) (*DDIM, error) {
	p, err := p.resolve("ddim", steps)
	if err != nil {
		return nil, err
	}
	d := &DDIM{
		base:  base{name: "ddim", steps: steps, first: p.FirstStep, timesteps: make([]float64, steps)},
		sched: newSchedule(p.NumTrainTimesteps, p.InitialDiffusionRate, p.FinalDiffusionRate),
		ts:    make([]int, steps),
	}
	ratio := p.NumTrainTimesteps / steps
	for i := range d.ts {
		d.ts[i] = (steps-1-i)*ratio + 1
		d.timesteps[i] = float64(d.ts[i])
	}
	return d, nil
}

// InitNoiseSigma is 1: DDIM starts from unit noise.
func (d *DDIM) InitNoiseSigma() float64 { return 1 }

// ScaleInitialLatents does nothing for DDIM.
func (d *DDIM) ScaleInitialLatents(x []float32) {}

// ScaleModelInput copies x: DDIM does not scale the model input.
func (d *DDIM) ScaleModelInput(dst, x []float32, step int) error {
	return copyInput(&d.base, dst, x, step)
}

// NeedsNoise is false: DDIM with η = 0 is deterministic.
func (d *DDIM) NeedsNoise(step int) bool { return false }

// AddNoise writes sqrt(ᾱ_t)·x + sqrt(1-ᾱ_t)·noise at the step's timestep t.
func (d *DDIM) AddNoise(dst, x, noise []float32, step int) error {
	if err := d.checkIndex(step); err != nil {
		return err
	}
	if err := d.checkLens("AddNoise", x, dst, noise); err != nil {
		return err
	}
	t := d.ts[step]
	noiseLinear(dst, x, noise, d.sched.cumulative[t], d.sched.noiseStd[t])
	return nil
}

// Step advances x by one DDIM step. The step after the last is timestep 0, where Refiners
// takes sqrt(ᾱ_0) (not 1) and adds no noise back.
func (d *DDIM) Step(x, predictedNoise []float32, step int, noise []float32) error {
	if err := d.checkStep(step); err != nil {
		return err
	}
	if err := d.checkLens("Step", x, predictedNoise); err != nil {
		return err
	}
	cur := d.sched.cumulative[d.ts[step]]
	prev := d.sched.cumulative[0]
	if step < d.steps-1 {
		prev = d.sched.cumulative[d.ts[step+1]]
	}
	curStd := sqrt32(1 - float32(cur*cur))
	var noiseFactor float32
	if step < d.steps-1 {
		noiseFactor = sqrt32(1 - float32(prev*prev))
	}
	for i := range x {
		predicted := (x[i] - float32(curStd*predictedNoise[i])) / cur
		x[i] = float32(prev*predicted) + float32(noiseFactor*predictedNoise[i])
	}
	return nil
}

// sqrt32 is the correctly rounded float32 square root.
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
