package solvers

import (
	"fmt"
	"math"
)

// LCM is Refiners' LCMSolver, for latent-consistency-distilled weights (LCM, LCM-LoRA). Its
// timesteps are picked among those of a NumOrigSteps-step DPM-Solver with "trailing" spacing
// (999, 979, …, 19 for 50), as the models were distilled; each step maps the prediction to
// the consistency boundary condition (c_skip, c_out) and, except the last, noises the result
// again to the next timestep with fresh noise.
type LCM struct {
	base
	sched schedule
	ts    []int
	// indices of the steps among the inner DPM's; dpm gives the re-noising tables.
	indices []int
	dpm     *DPM
}

// NewLCM returns Refiners' LCMSolver for steps inference steps (at most NumOrigSteps).
func NewLCM(steps int, p Params) (*LCM, error) {
	p, err := p.resolve("lcm", steps)
	if err != nil {
		return nil, err
	}
	orig := p.NumOrigSteps
	if orig == 0 {
		orig = DefaultNumOrigSteps
	}
	if orig < 1 || orig > p.NumTrainTimesteps {
		return nil, fmt.Errorf("solvers: lcm: NumOrigSteps must be in [1, %d], got %d", p.NumTrainTimesteps, orig)
	}
	if steps > orig {
		return nil, fmt.Errorf("solvers: lcm: %d steps exceed NumOrigSteps (%d)", steps, orig)
	}
	// The inner DPM's "trailing" timesteps: arange(T-1, 0, -(T // orig)).
	ratio := p.NumTrainTimesteps / orig
	var trailing []int
	for t := p.NumTrainTimesteps - 1; t > 0; t -= ratio {
		trailing = append(trailing, t)
	}
	if len(trailing) < orig {
		return nil, fmt.Errorf("solvers: lcm: NumOrigSteps %d leaves only %d trailing timesteps of %d", orig, len(trailing), p.NumTrainTimesteps)
	}
	s := newSchedule(p.NumTrainTimesteps, p.InitialDiffusionRate, p.FinalDiffusionRate)
	l := &LCM{
		base:    base{name: "lcm", steps: steps, first: p.FirstStep, timesteps: make([]float64, steps)},
		sched:   s,
		ts:      make([]int, steps),
		indices: make([]int, steps),
		dpm:     newDPM(s, trailing),
	}
	// floor(torch.linspace(0, orig, steps+1)[:-1]) in float32, as Refiners computes it.
	picks := torchLinspace32(0, float32(orig), steps+1)
	for i := range l.ts {
		l.indices[i] = int(math.Floor(float64(picks[i])))
		l.ts[i] = trailing[l.indices[i]]
		l.timesteps[i] = float64(l.ts[i])
	}
	return l, nil
}

// InitNoiseSigma is 1: LCM starts from unit noise.
func (l *LCM) InitNoiseSigma() float64 { return 1 }

// ScaleInitialLatents does nothing for LCM.
func (l *LCM) ScaleInitialLatents(x []float32) {}

// ScaleModelInput copies x: LCM does not scale the model input.
func (l *LCM) ScaleModelInput(dst, x []float32, step int) error {
	return copyInput(&l.base, dst, x, step)
}

// NeedsNoise is true for every step but the last: LCM noises each result again.
func (l *LCM) NeedsNoise(step int) bool { return step >= l.first && step < l.steps-1 }

// AddNoise writes sqrt(ᾱ_t)·x + sqrt(1-ᾱ_t)·noise at the step's timestep t.
func (l *LCM) AddNoise(dst, x, noise []float32, step int) error {
	if err := l.checkIndex(step); err != nil {
		return err
	}
	if err := l.checkLens("AddNoise", x, dst, noise); err != nil {
		return err
	}
	t := l.ts[step]
	noiseLinear(dst, x, noise, l.sched.cumulative[t], l.sched.noiseStd[t])
	return nil
}

// Step advances x by one LCM step; noise (standard normal, len(x) values) is required except
// at the last step.
func (l *LCM) Step(x, predictedNoise []float32, step int, noise []float32) error {
	if err := l.checkStep(step); err != nil {
		return err
	}
	if err := l.checkLens("Step", x, predictedNoise); err != nil {
		return err
	}
	last := step == l.steps-1
	if !last {
		if noise == nil {
			return fmt.Errorf("solvers: lcm: step %d needs fresh noise (NeedsNoise)", step)
		}
		if err := l.checkLens("Step noise", x, noise); err != nil {
			return err
		}
	}
	t := l.ts[step]
	alpha, std := l.sched.cumulative[t], l.sched.noiseStd[t]
	// c_skip = σ_d²/(t'² + σ_d²), c_out = t'/sqrt(σ_d² + t'²) with σ_d = 0.5 and t' = 10t,
	// t'² an integer rounded to float32; PyTorch divides 0.25 by a tensor as reciprocal·0.25.
	t10 := int64(t) * 10
	den := float32(t10*t10) + 0.25
	cSkip := float32(1/den) * 0.25
	cOut := float32(t10) / sqrt32(den)
	var na, ns float32
	if !last {
		k := l.indices[step+1]
		na, ns = l.dpm.alpha[k], l.dpm.std[k]
	}
	for i := range x {
		est := (x[i] - float32(std*predictedNoise[i])) / alpha
		denoised := float32(cSkip*x[i]) + float32(cOut*est)
		if last {
			x[i] = denoised
		} else {
			x[i] = float32(na*denoised) + float32(ns*noise[i])
		}
	}
	return nil
}
