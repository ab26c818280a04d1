package solvers

import "fmt"

// Euler is Refiners' Euler solver (Karras et al. 2022, deterministic): it works in σ space,
// so the model input is scaled by 1/sqrt(σ²+1) and the initial noise by σ_max. Its
// timesteps are a float linspace: 999, 499.5, 0 for 3 steps.
type Euler struct {
	base
	// sigmas has one entry per step and a final 0.
	sigmas []float32
}

// NewEuler returns Refiners' Euler solver for steps inference steps.
func NewEuler(steps int, p Params) (*Euler, error) {
	p, err := p.resolve("euler", steps)
	if err != nil {
		return nil, err
	}
	s := newSchedule(p.NumTrainTimesteps, p.InitialDiffusionRate, p.FinalDiffusionRate)
	full := make([]float64, p.NumTrainTimesteps)
	for t := range full {
		full[t] = float64(s.sigma(t))
	}
	e := &Euler{
		base:   base{name: "euler", steps: steps, first: p.FirstStep, timesteps: make([]float64, steps)},
		sigmas: make([]float32, steps+1),
	}
	space := numpyLinspace(0, float64(p.NumTrainTimesteps-1), steps)
	for i := range e.timesteps {
		// Refiners keeps the timesteps in float32, and interpolates σ at those values.
		t := float64(float32(space[steps-1-i]))
		e.timesteps[i] = t
		e.sigmas[i] = float32(interpTable(full, t))
	}
	return e, nil
}

// InitNoiseSigma is σ_max, the σ of the first step.
func (e *Euler) InitNoiseSigma() float64 { return float64(e.maxSigma()) }

func (e *Euler) maxSigma() float32 {
	m := e.sigmas[0]
	for _, s := range e.sigmas {
		m = max(m, s)
	}
	return m
}

// ScaleInitialLatents multiplies x by σ_max in place.
func (e *Euler) ScaleInitialLatents(x []float32) {
	m := e.maxSigma()
	for i := range x {
		x[i] *= m
	}
}

// ScaleModelInput writes x / sqrt(σ²+1) for the step's σ.
func (e *Euler) ScaleModelInput(dst, x []float32, step int) error {
	if err := e.checkIndex(step); err != nil {
		return err
	}
	if err := e.checkLens("ScaleModelInput", x, dst); err != nil {
		return err
	}
	sg := e.sigmas[step]
	div := sqrt32(float32(sg*sg) + 1)
	for i := range dst {
		dst[i] = x[i] / div
	}
	return nil
}

// NeedsNoise is false: this Euler is deterministic.
func (e *Euler) NeedsNoise(step int) bool { return false }

// AddNoise returns an error: Refiners' Euler indexes its noise schedule with its float
// timesteps, which PyTorch refuses, so it has no add_noise and no image-to-image to match.
func (e *Euler) AddNoise(dst, x, noise []float32, step int) error {
	return fmt.Errorf("solvers: euler: AddNoise is not supported: Refiners' Euler cannot add noise (its timesteps are not integers), so image-to-image needs another solver")
}

// Step advances x by one Euler step: x + ε·(σ_next - σ).
func (e *Euler) Step(x, predictedNoise []float32, step int, noise []float32) error {
	if err := e.checkStep(step); err != nil {
		return err
	}
	if err := e.checkLens("Step", x, predictedNoise); err != nil {
		return err
	}
	d := e.sigmas[step+1] - e.sigmas[step]
	for i := range x {
		x[i] += float32(predictedNoise[i] * d)
	}
	return nil
}
