// Package solvers implements Refiners' diffusion solvers (its name for schedulers) for
// latent diffusion models, on flat float32 buffers:
//
//   - "dpm": DPMSolver, DPM-Solver++ (2M), Refiners' default (4 steps: 999, 749, 500, 250);
//   - "ddim": DDIM, leading spacing with offset 1 (3 steps: 667, 334, 1);
//   - "euler": Euler, in σ space with its input and initial-noise scaling (3 steps: 999, 499.5, 0);
//   - "lcm": LCMSolver, for LCM-distilled weights (4 steps: 999, 759, 499, 259).
//
// All use Refiners' defaults: 1000 training timesteps, β from 8.5e-4 to 1.2e-2 on the
// "scaled linear" (Refiners: QUADRATIC) schedule, each solver's own timestep spacing, and
// noise prediction (epsilon) models.
//
// # Source
//
// Transcribed (maths, not code) from finegrain-ai/refiners,
// src/refiners/foundationals/latent_diffusion/, the newest versions the project's search
// index holds: solvers/dpm.py as of "fix precision of DPM solver in bfloat16" (PR #449,
// after #448 of 2024-09-25: constants computed in float64 from σ, the final σ being σ at
// timestep 0, Diffusers' final_sigmas_type="sigma_min"), solvers/euler.py and
// solvers/ddim.py at commit 09a9dfd494f06d0cb0af8b0c78ea3460b9180cd1 (Euler's
// scale_model_input multiplies by init_noise_sigma at step -1), solvers/lcm.py with
// SolverParams and a TRAILING-spaced inner DPMSolver, solvers/solver.py with SolverParams,
// TimestepSpacing and ModelPredictionType (the index lacks the latest solver.py, which adds
// sigma_schedule: its default, None, is what dpm.py's interpolation path implements here),
// and LatentDiffusionModel.init_latents and set_inference_steps in model.py. Refiners'
// other options (Karras or uniform schedules, other spacings, SDE variance, sample
// prediction) are not implemented.
//
// The PyTorch transcription scripts/golden/solvers.py writes the goldens the tests hold
// every trajectory to (1e-5; in practice bit-identical): run it with /usr/bin/python3.
//
// # Numerics
//
// Refiners computes the schedule in float32 (PyTorch's default dtype), DPM's constants in
// float64 rounded to float32, and every step in float32; this package does the same
// operations in the same order, including PyTorch's float32 linspace (see torchLinspace32)
// and float64-accumulated cumprod, so that its numbers are PyTorch's.
//
// # Text to image
//
//	s, err := solvers.New("dpm", 30, solvers.Params{})
//	x := make([]float32, 4*h/8*w/8)
//	solvers.FillNoise(x, seed)       // or any standard-normal noise
//	s.ScaleInitialLatents(x)         // Euler: ×σ_max
//	ts := s.Timesteps()
//	for step := s.FirstStep(); step < s.NumSteps(); step++ {
//		s.ScaleModelInput(in, x, step) // Euler: ÷sqrt(σ²+1); duplicate in for classifier-free guidance
//		eps := unet(in, ts[step], ...) // guided prediction of the noise
//		if s.NeedsNoise(step) {       // LCM: fresh noise for every step but the last
//			src.Fill(noise)
//		}
//		s.Step(x, eps, step, noise)   // x advances in place
//	}
//	// x holds the latents to decode
//
// # Image to image
//
// Refiners' init_latents does, with first = round((1 - strength)·(steps - 1))
// (FirstStepForStrength; Refiners' set_inference_steps):
//
//	first, err := solvers.FirstStepForStrength(strength, steps)
//	s, err := solvers.New(name, steps, solvers.Params{FirstStep: first})
//	s.AddNoise(x, encodedImage, noise, first) // the encoded image noised to the first step
//	s.ScaleInitialLatents(x)
//	// then the loop above, from s.FirstStep()
//
// Euler cannot do this: Refiners' Euler indexes its noise table with float timesteps, which
// PyTorch rejects, so its AddNoise returns an error rather than invent a behaviour.
//
// # Seeds
//
// NoiseSource and FillNoise give a documented, reproducible standard-normal stream
// (SplitMix64 and Box–Muller) for a seed. It is not torch.randn's stream.
package solvers
