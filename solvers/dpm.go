package solvers

import (
	"fmt"
	"math"
)

// DPM is Refiners' DPMSolver: DPM-Solver++ (2M), multistep second order, Refiners' default
// solver. Its first step (and, with LastStepFirstOrder, its last) is first order.
type DPM struct {
	base
	lastStepFirstOrder bool
	// Per step s, and one more entry for the end of the last step (σ at timestep 0):
	// alpha = 1/sqrt(σ²+1), std = σ·alpha, lambda = log alpha - log std.
	alpha, std, lambda []float32
	// est holds the data estimates of the previous and the current step.
	est  [2][]float32
	cur  int
	next int // the step Step expects; -1 before the first
}

// NewDPM returns Refiners' DPMSolver for steps inference steps. Its timesteps are
// round(linspace(0, T-1, steps+1))[1:] reversed: 999, 749, 500, 250 for 4 steps.
func NewDPM(steps int, p Params) (*DPM, error) {
	p, err := p.resolve("dpm", steps)
	if err != nil {
		return nil, err
	}
	ts := make([]int, steps)
	space := numpyLinspace(0, float64(p.NumTrainTimesteps-1), steps+1)
	for i := range ts {
		ts[i] = int(math.RoundToEven(space[steps-i]))
	}
	for i := 1; i < steps; i++ {
		if ts[i] >= ts[i-1] {
			return nil, fmt.Errorf("solvers: dpm: %d steps repeat timestep %d of %d training timesteps", steps, ts[i], p.NumTrainTimesteps)
		}
	}
	d := newDPM(newSchedule(p.NumTrainTimesteps, p.InitialDiffusionRate, p.FinalDiffusionRate), ts)
	d.first = p.FirstStep
	d.lastStepFirstOrder = p.LastStepFirstOrder
	return d, nil
}

// newDPM builds the solver tables for the given decreasing timesteps. Refiners computes them
// in float64 from the float32 schedule, then rounds to float32.
func newDPM(s schedule, ts []int) *DPM {
	d := &DPM{base: base{name: "dpm", steps: len(ts)}, next: -1}
	n := len(ts)
	d.timesteps = make([]float64, n)
	d.alpha = make([]float32, n+1)
	d.std = make([]float32, n+1)
	d.lambda = make([]float32, n+1)
	sigma := func(t int) float64 { return float64(s.noiseStd[t]) / float64(s.cumulative[t]) }
	for i := 0; i <= n; i++ {
		t := 0 // the end of the last step: Diffusers' final_sigmas_type="sigma_min"
		if i < n {
			t = ts[i]
			d.timesteps[i] = float64(t)
		}
		sg := sigma(t)
		a := 1 / math.Sqrt(sg*sg+1)
		sd := sg * a
		d.alpha[i] = float32(a)
		d.std[i] = float32(sd)
		d.lambda[i] = float32(safeLog(a) - safeLog(sd))
	}
	return d
}

// safeLog is Refiners' log with a floor of 1e-6 (float32 1e-6, as torch.tensor(1e-6) is).
func safeLog(x float64) float64 { return math.Log(math.Max(x, float64(float32(1e-6)))) }

// InitNoiseSigma is 1: DPM starts from unit noise.
func (d *DPM) InitNoiseSigma() float64 { return 1 }

// ScaleInitialLatents does nothing for DPM.
func (d *DPM) ScaleInitialLatents(x []float32) {}

// ScaleModelInput copies x: DPM does not scale the model input.
func (d *DPM) ScaleModelInput(dst, x []float32, step int) error {
	return copyInput(&d.base, dst, x, step)
}

// NeedsNoise is false: DPM here is the deterministic ODE solver (sde_variance 0).
func (d *DPM) NeedsNoise(step int) bool { return false }

// AddNoise writes alpha·x + std·noise at step.
func (d *DPM) AddNoise(dst, x, noise []float32, step int) error {
	if err := d.checkIndex(step); err != nil {
		return err
	}
	if err := d.checkLens("AddNoise", x, dst, noise); err != nil {
		return err
	}
	noiseLinear(dst, x, noise, d.alpha[step], d.std[step])
	return nil
}

// Step advances x by one DPM-Solver++ step. The first step (FirstStep) is first order; later
// ones use the previous step's estimate and must follow it directly.
func (d *DPM) Step(x, predictedNoise []float32, step int, noise []float32) error {
	if err := d.checkStep(step); err != nil {
		return err
	}
	if err := d.checkLens("Step", x, predictedNoise); err != nil {
		return err
	}
	if step != d.first && step != d.next {
		if d.next < 0 {
			return fmt.Errorf("solvers: dpm: step %d before step %d: the multistep solver starts at FirstStep", step, d.first)
		}
		return fmt.Errorf("solvers: dpm: step %d where step %d was due: the multistep solver runs its steps in order", step, d.next)
	}
	if step != d.first && len(x) != len(d.est[d.cur]) {
		return fmt.Errorf("solvers: dpm: step %d has %d values, the previous step had %d", step, len(x), len(d.est[d.cur]))
	}
	if step == d.first {
		for i := range d.est {
			if cap(d.est[i]) < len(x) {
				d.est[i] = make([]float32, len(x))
			}
			d.est[i] = d.est[i][:len(x)]
		}
	}
	d.cur ^= 1
	est, prev := d.est[d.cur], d.est[d.cur^1]
	alpha, std := d.alpha[step], d.std[step]
	for i := range est {
		est[i] = (x[i] - float32(std*predictedNoise[i])) / alpha
	}
	d.next = step + 1

	ratio := d.std[step+1] / d.std[step]
	nextAlpha := d.alpha[step+1]
	if step == d.first || (d.lastStepFirstOrder && step == d.steps-1) {
		c := float32((1 - exp32(d.lambda[step]-d.lambda[step+1])) * nextAlpha)
		for i := range x {
			x[i] = float32(ratio*x[i]) + float32(c*est[i])
		}
		return nil
	}
	lPrev, lCur, lNext := d.lambda[step-1], d.lambda[step], d.lambda[step+1]
	r := (lCur - lPrev) / (lNext - lCur)
	factor := 1 - exp32(lCur-lNext)
	c0 := float32(nextAlpha * factor)
	c1 := float32(float32(0.5*nextAlpha) * factor)
	for i := range x {
		delta := (est[i] - prev[i]) / r
		x[i] = float32(ratio*x[i]) + float32(c0*est[i]) + float32(c1*delta)
	}
	return nil
}

// exp32 is exp in float32 as PyTorch 1.13 computes it on the CPU, even for a 0-dim tensor:
// SLEEF's expf (1-ulp variant) with fused multiply-adds. A correctly rounded exp differs by an
// ulp now and then, which moved 30-step DPM trajectories by up to 2.3e-6.
func exp32(d float32) float32 {
	const (
		log2e = float32(1.442695040888963407359924681001892137426645954152985934135449406931)
		ln2Hi = float32(0.693145751953125)
		ln2Lo = float32(1.428606765330187045e-06)
	)
	switch {
	case d < -104:
		return 0
	case d > 100:
		return float32(math.Inf(1))
	}
	q := float32(math.RoundToEven(float64(float32(d * log2e))))
	s := fma32(q, -ln2Hi, d)
	s = fma32(q, -ln2Lo, s)
	u := float32(0.000198527617612853646278381)
	u = fma32(u, s, 0.00139304355252534151077271)
	u = fma32(u, s, 0.00833336077630519866943359)
	u = fma32(u, s, 0.0416664853692054748535156)
	u = fma32(u, s, 0.166666671633720397949219)
	u = fma32(u, s, 0.5)
	u = 1 + fma32(float32(s*s), u, s)
	return float32(math.Ldexp(float64(u), int(q)))
}

// copyInput is ScaleModelInput of the solvers that do not scale.
func copyInput(b *base, dst, x []float32, step int) error {
	if err := b.checkIndex(step); err != nil {
		return err
	}
	if err := b.checkLens("ScaleModelInput", x, dst); err != nil {
		return err
	}
	copy(dst, x)
	return nil
}
