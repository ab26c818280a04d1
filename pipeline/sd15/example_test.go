package sd15_test

import (
	"fmt"
	"log"

	"github.com/rfc-project/rfc/pipeline/sd15"
)

// Load a checkpoint once, then generate as many images as needed. This example runs on
// the reduced SD1.5 of the tests (random weights, 64×64 images); with a real checkpoint,
// give its path (v1-5-pruned-emaonly.safetensors, a diffusers folder, …) and leave Width
// and Height at 512.
func Example() {
	p, err := sd15.Load("../../testdata/sd15/single-file.safetensors", sd15.Options{
		LoRAs: []sd15.LoRA{{Path: "../../testdata/sd15_pipeline/lora_kohya.safetensors", Scale: 0.8}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	for _, prompt := range []string{"a lighthouse at dawn", "a lighthouse at night"} {
		res, err := p.Generate(sd15.Request{
			Prompt:         prompt,
			NegativePrompt: "blurry",
			Steps:          4,
			Solver:         "dpm",
			Guidance:       7.5,
			Seed:           42,
		})
		if err != nil {
			log.Fatal(err)
		}
		// res.WritePNG("lighthouse.png") writes the image with its parameters.
		fmt.Printf("%dx%d, %d steps\n%s\n", res.Image.Width, res.Image.Height, res.Steps, res.Parameters)
	}
	// Output:
	// 64x64, 4 steps
	// a lighthouse at dawn
	// Negative prompt: blurry
	// Steps: 4, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, Size: 64x64, Model: single-file, Lora: "lora_kohya:0.8"
	// 64x64, 4 steps
	// a lighthouse at night
	// Negative prompt: blurry
	// Steps: 4, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, Size: 64x64, Model: single-file, Lora: "lora_kohya:0.8"
}

// Prompt with an image through an IP-Adapter and carry a reference image's style over
// (reference-only control). With the published files: Options.IPAdapter
// "ip-adapter-plus_sd15.safetensors" (or ip-adapter_sd15) and Options.ImageEncoder
// IP-Adapter's "models/image_encoder" folder; this example runs on the reduced ones of the
// tests.
func Example_imagePrompt() {
	p, err := sd15.Load("../../testdata/sd15/single-file.safetensors", sd15.Options{
		IPAdapter:     "../../testdata/sd15/ip/ip-adapter-plus_sd15.safetensors",
		ImageEncoder:  "../../testdata/sd15/ip/image_encoder",
		ReferenceOnly: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	cup, err := sd15.OpenImage("../../testdata/images/coffee.png")
	if err != nil {
		log.Fatal(err)
	}
	photo, err := sd15.OpenImage("../../testdata/images/astronaut.png")
	if err != nil {
		log.Fatal(err)
	}
	res, err := p.Generate(sd15.Request{
		Prompt:      "a lighthouse at dawn",
		Steps:       4,
		Seed:        42,
		ImagePrompt: &sd15.ImagePrompt{Image: cup, Scale: 0.7},
		Reference:   &sd15.Reference{Image: photo, Fidelity: sd15.DefaultReferenceFidelity},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Parameters)
	// Output:
	// a lighthouse at dawn
	// Steps: 4, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, Size: 64x64, Model: single-file, IP-Adapter: "ip-adapter-plus_sd15:0.7", Reference fidelity: 0.5
}
