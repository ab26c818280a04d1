package main

import "testing"

// The language features a UNet needs (lists, repeat over a list, conditional expressions,
// Product, a timestep embedding from Arange/Exp) run in both engines against the PyTorch
// golden of scripts/golden/language.py.
func TestRunLanguageFeatures(t *testing.T) {
	const dir = "../../testdata/language/"
	for _, engine := range []string{"interp", "compiled"} {
		t.Run(engine, func(t *testing.T) {
			runGolden(t, 1e-4, dir+"features.rfn", []string{"--engine", engine}, []string{dir + "features_weights.safetensors"}, dir+"features_input.safetensors", dir+"features_output.safetensors")
			// The embedding alone, an entry point without weights; t up to 999 makes the
			// sines' arguments large, where f32 rounding of t·frequency shows.
			runGolden(t, 1e-4, dir+"features.rfn", []string{"--engine", engine, "--model", "SinusoidalEmbedding"}, nil, dir+"embedding_input.safetensors", dir+"embedding_output.safetensors")
		})
	}
}
