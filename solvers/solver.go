package solvers

import (
	"fmt"
	"math"
	"strings"
)

// Solver is one of Refiners' diffusion solvers set up for a number of inference steps.
//
// Buffers are flat float32 tensors (any shape, e.g. [batch, 4, h/8, w/8]); every buffer
// passed to one call must have the same length. Solvers are not safe for concurrent use:
// DPM keeps the previous step's estimate.
type Solver interface {
	// Name is the name New accepts: "dpm", "ddim", "euler" or "lcm".
	Name() string
	// NumSteps is the number of inference steps; steps are numbered 0..NumSteps()-1.
	NumSteps() int
	// FirstStep is the first step to run: 0 for text-to-image, later for image-to-image.
	FirstStep() int
	// Timesteps returns, for every step, the timestep the denoising model is given.
	// They are integers except for Euler (e.g. 999, 499.5, 0 for 3 steps).
	Timesteps() []float64
	// InitNoiseSigma is the standard deviation of the initial noise: σ_max for Euler, 1 otherwise.
	InitNoiseSigma() float64
	// ScaleInitialLatents applies, in place, the scaling Refiners' init_latents ends with
	// (scale_model_input at step -1): x·InitNoiseSigma() for Euler, nothing for the others.
	ScaleInitialLatents(x []float32)
	// ScaleModelInput writes into dst the model input for x at step (Euler divides by
	// sqrt(σ²+1); the others copy). dst may be x.
	ScaleModelInput(dst, x []float32, step int) error
	// NeedsNoise reports whether Step at step reads fresh standard-normal noise (LCM, except
	// at its last step).
	NeedsNoise(step int) bool
	// Step advances x in place by one step given the model's predicted noise for it. noise is
	// read only when NeedsNoise(step). Steps run in order from FirstStep (DPM checks).
	Step(x, predictedNoise []float32, step int, noise []float32) error
	// AddNoise writes into dst the latents x noised to the level of step, as image-to-image
	// needs at FirstStep. dst may be x or noise. Euler returns an error: Refiners' Euler
	// cannot add noise.
	AddNoise(dst, x, noise []float32, step int) error
}

// Params are the parameters common to the solvers. The zero value of a field means
// Refiners' default, so Params{} gives Refiners' solvers as they are.
type Params struct {
	// NumTrainTimesteps is the number of diffusion steps the model was trained with (1000).
	NumTrainTimesteps int
	// InitialDiffusionRate and FinalDiffusionRate are β at the first and last training
	// timestep (8.5e-4 and 1.2e-2); β runs quadratically between them ("scaled linear").
	InitialDiffusionRate float64
	FinalDiffusionRate   float64
	// FirstStep is the first inference step, for image-to-image (0). See FirstStepForStrength.
	FirstStep int
	// LastStepFirstOrder makes DPM take a first-order last step (false; Refiners' option
	// against artifacts of SDXL with few steps). DPM only.
	LastStepFirstOrder bool
	// NumOrigSteps is the number of steps of the DPM-Solver whose timesteps LCM picks from
	// (50). LCM only.
	NumOrigSteps int
}

// Refiners' defaults.
const (
	DefaultNumTrainTimesteps    = 1000
	DefaultInitialDiffusionRate = 8.5e-4
	DefaultFinalDiffusionRate   = 1.2e-2
	DefaultNumOrigSteps         = 50
)

// maxTrainTimesteps bounds the schedule tables a caller can ask for.
const maxTrainTimesteps = 1 << 20

// names lists the solvers New knows, in the order error messages list them.
var names = []string{"dpm", "ddim", "euler", "lcm"}

// Names returns the solver names New accepts.
func Names() []string { return append([]string(nil), names...) }

// New returns the solver called name ("dpm", "ddim", "euler" or "lcm") for steps inference
// steps.
func New(name string, steps int, p Params) (Solver, error) {
	switch name {
	case "dpm":
		return NewDPM(steps, p)
	case "ddim":
		return NewDDIM(steps, p)
	case "euler":
		return NewEuler(steps, p)
	case "lcm":
		return NewLCM(steps, p)
	}
	return nil, fmt.Errorf("solvers: unknown solver %q (valid: %s)", name, strings.Join(names, ", "))
}

// FirstStepForStrength is the first step of an image-to-image run of the given strength, as
// Refiners' set_inference_steps documents it: round((1 - strength)·(steps - 1)), rounding
// halves to even like Python's round. Strength 1 starts from pure noise (step 0), strength 0
// runs only the last step.
func FirstStepForStrength(strength float64, steps int) (int, error) {
	if !(strength >= 0 && strength <= 1) {
		return 0, fmt.Errorf("solvers: strength must be in [0, 1], got %v", strength)
	}
	if steps < 1 {
		return 0, fmt.Errorf("solvers: steps must be at least 1, got %d", steps)
	}
	return int(math.RoundToEven((1 - strength) * float64(steps-1))), nil
}

// resolve fills in Refiners' defaults and checks what every solver needs.
func (p Params) resolve(name string, steps int) (Params, error) {
	if p.NumTrainTimesteps == 0 {
		p.NumTrainTimesteps = DefaultNumTrainTimesteps
	}
	if p.InitialDiffusionRate == 0 {
		p.InitialDiffusionRate = DefaultInitialDiffusionRate
	}
	if p.FinalDiffusionRate == 0 {
		p.FinalDiffusionRate = DefaultFinalDiffusionRate
	}
	if p.NumTrainTimesteps < 2 || p.NumTrainTimesteps > maxTrainTimesteps {
		return p, fmt.Errorf("solvers: %s: NumTrainTimesteps must be in [2, %d], got %d", name, maxTrainTimesteps, p.NumTrainTimesteps)
	}
	for _, r := range []struct {
		what string
		v    float64
	}{{"InitialDiffusionRate", p.InitialDiffusionRate}, {"FinalDiffusionRate", p.FinalDiffusionRate}} {
		if !(r.v > 0 && r.v < 1) {
			return p, fmt.Errorf("solvers: %s: %s must be in (0, 1), got %v", name, r.what, r.v)
		}
	}
	if steps < 1 {
		return p, fmt.Errorf("solvers: %s: steps must be at least 1, got %d", name, steps)
	}
	if steps > p.NumTrainTimesteps {
		return p, fmt.Errorf("solvers: %s: %d steps exceed the %d training timesteps", name, steps, p.NumTrainTimesteps)
	}
	if p.FirstStep < 0 || p.FirstStep >= steps {
		return p, fmt.Errorf("solvers: %s: FirstStep must be in [0, %d] for %d steps, got %d", name, steps-1, steps, p.FirstStep)
	}
	if p.LastStepFirstOrder && name != "dpm" {
		return p, fmt.Errorf("solvers: %s: LastStepFirstOrder applies to dpm only", name)
	}
	if p.NumOrigSteps != 0 && name != "lcm" {
		return p, fmt.Errorf("solvers: %s: NumOrigSteps applies to lcm only", name)
	}
	return p, nil
}

// base holds what every solver shares.
type base struct {
	name      string
	steps     int
	first     int
	timesteps []float64
}

func (b *base) Name() string   { return b.name }
func (b *base) NumSteps() int  { return b.steps }
func (b *base) FirstStep() int { return b.first }
func (b *base) Timesteps() []float64 {
	return append([]float64(nil), b.timesteps...)
}

// checkStep validates a step a solver is asked to run.
func (b *base) checkStep(step int) error {
	if step < b.first || step >= b.steps {
		return fmt.Errorf("solvers: %s: step %d outside [%d, %d]", b.name, step, b.first, b.steps-1)
	}
	return nil
}

// checkIndex validates a step used to look up the schedule (AddNoise, ScaleModelInput).
func (b *base) checkIndex(step int) error {
	if step < 0 || step >= b.steps {
		return fmt.Errorf("solvers: %s: step %d outside [0, %d]", b.name, step, b.steps-1)
	}
	return nil
}

// checkLens validates the lengths of the buffers of one call.
func (b *base) checkLens(what string, x []float32, others ...[]float32) error {
	if len(x) == 0 {
		return fmt.Errorf("solvers: %s: %s: empty latents", b.name, what)
	}
	for _, o := range others {
		if len(o) != len(x) {
			return fmt.Errorf("solvers: %s: %s: buffers of %d and %d values", b.name, what, len(x), len(o))
		}
	}
	return nil
}

// noiseLinear writes dst[i] = a·x[i] + s·noise[i] in float32, the form of every add_noise.
func noiseLinear(dst, x, noise []float32, a, s float32) {
	for i := range dst {
		dst[i] = float32(a*x[i]) + float32(s*noise[i])
	}
}
