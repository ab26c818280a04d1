package solvers_test

import (
	"fmt"
	"math"

	"github.com/rfc-project/rfc/solvers"
)

// A text-to-image loop. The "model" is a stand-in that predicts the noise of a latent whose
// clean value is 0.5 everywhere; a UNet with classifier-free guidance goes in its place.
func Example() {
	s, err := solvers.New("dpm", 4, solvers.Params{})
	if err != nil {
		panic(err)
	}
	fmt.Println("timesteps:", s.Timesteps())

	x := make([]float32, 4*8*8) // [1, 4, 64/8, 64/8]
	solvers.FillNoise(x, 42)
	s.ScaleInitialLatents(x)
	in := make([]float32, len(x))
	eps := make([]float32, len(x))
	for step := s.FirstStep(); step < s.NumSteps(); step++ {
		if err := s.ScaleModelInput(in, x, step); err != nil {
			panic(err)
		}
		model(eps, in, s.Timesteps()[step])
		if err := s.Step(x, eps, step, nil); err != nil {
			panic(err)
		}
	}
	mean := 0.0
	for _, v := range x {
		mean += float64(v) / float64(len(x))
	}
	fmt.Printf("mean of x: %.1f\n", mean) // the stand-in's clean latent
	// Output:
	// timesteps: [999 749 500 250]
	// mean of x: 0.5
}

// model predicts ε = (x - sqrt(ᾱ_t)·0.5) / sqrt(1-ᾱ_t) on the scaled-linear schedule.
func model(eps, in []float32, t float64) {
	alphaBar := 1.0
	for i := 0; i <= int(t); i++ {
		b := math.Sqrt(8.5e-4) + (math.Sqrt(1.2e-2)-math.Sqrt(8.5e-4))*float64(i)/999
		alphaBar *= 1 - b*b
	}
	for i := range eps {
		eps[i] = float32((float64(in[i]) - math.Sqrt(alphaBar)*0.5) / math.Sqrt(1-alphaBar))
	}
}

func ExampleNew_unknown() {
	_, err := solvers.New("heun", 30, solvers.Params{})
	fmt.Println(err)
	// Output: solvers: unknown solver "heun" (valid: dpm, ddim, euler, lcm)
}

// Image to image at strength 0.6: the encoded image is noised to the first step.
func ExampleFirstStepForStrength() {
	first, err := solvers.FirstStepForStrength(0.6, 30)
	if err != nil {
		panic(err)
	}
	s, err := solvers.New("ddim", 30, solvers.Params{FirstStep: first})
	if err != nil {
		panic(err)
	}
	image := make([]float32, 4*8*8) // the VAE's latents of the init image
	noise := make([]float32, len(image))
	solvers.FillNoise(noise, 7)
	x := make([]float32, len(image))
	if err := s.AddNoise(x, image, noise, first); err != nil {
		panic(err)
	}
	s.ScaleInitialLatents(x)
	fmt.Println("first step", first, "timestep", s.Timesteps()[first])
	// Output: first step 12 timestep 562
}

func ExampleNoiseSource() {
	src := solvers.NewNoiseSource(1)
	initial := make([]float32, 4)
	src.Fill(initial) // the initial latents
	perStep := make([]float32, 4)
	src.Fill(perStep) // then, e.g., LCM's noise for its first step
	fmt.Printf("%.4f\n%.4f\n", initial, perStep)
	// Output:
	// [-0.0282 -1.0656 -0.2279 0.0831]
	// [0.1031 -1.2697 -0.5062 -0.0739]
}
