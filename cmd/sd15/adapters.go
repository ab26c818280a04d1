package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/rfc-project/rfc/pipeline/sd15"
	"github.com/rfc-project/rfc/runtime"
)

// adapterOptions are the IP-Adapter and reference-only flags of sd15 generate.
type adapterOptions struct {
	ipAdapter, imageEncoder string
	ipImage, reference      imageValue
}

// imageValue is IMAGE[:VALUE]: a path and a number after its last colon, when that parses.
type imageValue struct {
	path  string
	value float64
	set   bool // a value was given
}

func (v *imageValue) String() string { return v.path }

func (v *imageValue) Set(s string) error {
	v.path, v.value, v.set = splitValue(s)
	if v.path == "" {
		return errors.New("empty path")
	}
	return nil
}

func (a *adapterOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&a.ipAdapter, "ip-adapter", "", "an SD1.5 IP-Adapter `FILE` (ip-adapter_sd15 or ip-adapter-plus_sd15); with --image-encoder and --ip-image")
	fs.StringVar(&a.imageEncoder, "image-encoder", "", "CLIP ViT-H/14's image encoder for the IP-Adapter: a `FILE|DIR` (IP-Adapter's image_encoder folder)")
	fs.Var(&a.ipImage, "ip-image", "prompt with this `IMAGE[:SCALE]` through the IP-Adapter, at SCALE (default 1)")
	fs.Var(&a.reference, "reference", "reference-only control: carry this `IMAGE[:FIDELITY]`'s style over (resized to the output size);\nFIDELITY, Refiners' style_cfg in [0, 1], default 0.5")
}

// apply checks the flags and sets the request's and the options' fields.
func (a *adapterOptions) apply(req *sd15.Request, opts *sd15.Options) error {
	ip := a.ipAdapter != "" || a.imageEncoder != "" || a.ipImage.path != ""
	if ip && (a.ipAdapter == "" || a.imageEncoder == "" || a.ipImage.path == "") {
		return errors.New("the IP-Adapter takes three flags together: --ip-adapter FILE --image-encoder FILE|DIR --ip-image IMAGE[:SCALE]")
	}
	if ip {
		img, err := sd15.OpenImage(a.ipImage.path)
		if err != nil {
			return err
		}
		scale := 1.0
		if a.ipImage.set {
			scale = a.ipImage.value
		}
		req.ImagePrompt = &sd15.ImagePrompt{Image: img, Scale: scale}
		opts.IPAdapter, opts.ImageEncoder = a.ipAdapter, a.imageEncoder
	}
	if a.reference.path != "" {
		img, err := sd15.OpenImage(a.reference.path)
		if err != nil {
			return err
		}
		fidelity := sd15.DefaultReferenceFidelity
		if a.reference.set {
			fidelity = a.reference.value
		}
		if !(fidelity >= 0 && fidelity <= 1) {
			return fmt.Errorf("--reference %s:%g: the fidelity must be in [0, 1]", a.reference.path, fidelity)
		}
		req.Reference = &sd15.Reference{Image: img, Fidelity: fidelity}
		opts.ReferenceOnly = true
	}
	return nil
}

// readReferenceNoise reads --noise's reference_noise [steps, 2, 4, h, w], if the file has
// it: one slice of both halves per step. The sizes are checked by the pipeline.
func readReferenceNoise(path string) ([][]float32, error) {
	f, err := runtime.OpenSafetensors(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, ok := f.Info("reference_noise")
	if !ok {
		return nil, nil
	}
	if len(info.Shape) != 5 || info.Shape[1] != 2 || info.Shape[2] != sd15.LatentChannels {
		return nil, fmt.Errorf("%s: tensor reference_noise has shape %v, want [steps, 2, 4, H/8, W/8]", path, info.Shape)
	}
	t, err := f.Tensor("reference_noise")
	if err != nil {
		return nil, err
	}
	var out [][]float32
	n := len(t.F32) / max(info.Shape[0], 1)
	for k := range info.Shape[0] {
		out = append(out, t.F32[k*n:(k+1)*n])
	}
	return out, nil
}
