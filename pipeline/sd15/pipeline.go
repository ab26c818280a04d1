package sd15

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/imaging"
	"github.com/rfc-project/rfc/lora"
	"github.com/rfc-project/rfc/runtime"
	"github.com/rfc-project/rfc/solvers"
	"github.com/rfc-project/rfc/tokenizer"
)

// LatentChannels is the number of channels of SD1.5's latents.
const LatentChannels = 4

// LoRA is a LoRA file to merge into the weights, at a scale (1: as trained).
type LoRA struct {
	Path  string // a .safetensors file, or a PEFT folder
	Scale float64
}

// Options configure Load.
type Options struct {
	// LoRAs are merged into the UNet's and the text encoder's weights as they load, in
	// order (they stack).
	LoRAs []LoRA
	// IPAdapter, an SD1.5 IP-Adapter file (ip-adapter_sd15 or ip-adapter-plus_sd15, told
	// apart by their tensors), with ImageEncoder, CLIP's ViT-H/14 image encoder (a file or
	// IP-Adapter's image_encoder folder), lets requests prompt with an image
	// (Request.ImagePrompt; ipadapter.go).
	IPAdapter, ImageEncoder string
	// ReferenceOnly builds the UNet for reference-only control: every request then gives a
	// Request.Reference.
	ReferenceOnly bool
	// Control loads the UNet that takes ControlNets and T2I-Adapters in place of the plain
	// one, for a Pipeline whose requests will have them: without it, the first such request
	// loads it then (control.go).
	Control bool
}

// Pipeline is a loaded Stable Diffusion 1.5: tokenizer, text encoder, UNet and
// autoencoder, with any LoRAs merged. Load it once and call Generate for each image. A
// Pipeline is not safe for concurrent use.
type Pipeline struct {
	// Name is the checkpoint's name as the PNG parameters show it (the file's or folder's
	// base name, without extension).
	Name string
	// Width and Height are the image size a Request gets when it gives none (512×512;
	// 64×64 for the reduced model of the tests).
	Width, Height int

	set       *modelSet
	path      string
	files     []*runtime.SafetensorsFile // kept open: the encoder loads on demand
	loras     []*lora.File               // open while the weights load
	loraNames []string                   // "NAME:SCALE", for the parameters
	textPatch *lora.Patch
	unetPatch *lora.Patch
	tok       *tokenizer.Tokenizer
	text      textEncoder
	unet      unet
	decoder   autoencoderHalf
	encoder   autoencoderHalf // loaded on the first image-to-image request
	adapted   *adapted        // IP-Adapter and reference-only control (ipadapter.go, reference.go)
	control   controlState    // ControlNets and T2I-Adapters (control.go)
}

// Load opens a Stable Diffusion 1.5 checkpoint — the single file
// (v1-5-pruned-emaonly.safetensors and the community fine-tunes), a diffusers folder
// (stable-diffusion-v1-5/ with unet/, text_encoder/, vae/), or a folder of Refiners'
// converted files — checks that it holds every weight of every model with the right
// shapes before reading any, merges opts' LoRAs into the text encoder and the UNet as
// they load, and loads the decoder. The encoder loads on the first image-to-image request:
// the checkpoint stays open until Close (its pages are not kept in memory).
func Load(checkpoint string, opts Options) (p *Pipeline, err error) {
	files, err := runtime.OpenWeights(checkpoint)
	if err != nil {
		return nil, err
	}
	pipe := &Pipeline{path: checkpoint, files: files, Name: modelName(checkpoint)}
	defer func() {
		if err != nil {
			pipe.Close()
		}
	}()
	p = pipe
	p.control.loras = slices.Clone(opts.LoRAs)
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .safetensors file in the folder or its subfolders", checkpoint)
	}
	if p.set, err = matchSet(checkpoint, files); err != nil {
		return nil, err
	}
	p.Width, p.Height = p.set.width, p.set.height
	if err := p.openAdapters(opts); err != nil {
		return nil, err
	}
	if err := p.openLoRAs(opts.LoRAs); err != nil {
		return nil, err
	}
	if p.tok, err = tokenizer.Default(); err != nil {
		return nil, err
	}
	if p.text, err = p.set.loadText(p.patch(p.textPatch), files...); err != nil {
		return nil, fmt.Errorf("%s: text encoder: %w", checkpoint, err)
	}
	if err := p.loadUNet(opts); err != nil { // control.go: the plain UNet or the controlled one
		return nil, err
	}
	if p.decoder, err = p.set.loadDecoder(runtime.LoadOptions{}, files...); err != nil {
		return nil, fmt.Errorf("%s: autoencoder decoder: %w", checkpoint, err)
	}
	// The LoRAs are in the weights now: their files (mapped) can go.
	closeLoRAs(p.loras)
	p.loras, p.textPatch, p.unetPatch = nil, nil, nil
	return p, nil
}

// modelName is the checkpoint's name without folders and extension.
func modelName(path string) string {
	base := filepath.Base(filepath.Clean(path))
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// matchSet finds the set of models whose weights the checkpoint holds, every component
// checked (keys and shapes, nothing read). When none fits, the error is that of the set
// the checkpoint came closest to: the one whose text encoder matched, else SD1.5.
func matchSet(checkpoint string, files []*runtime.SafetensorsFile) (*modelSet, error) {
	var firstErr error
	for _, set := range modelSets {
		var err error
		for _, c := range []struct {
			what, model string
			specs       []runtime.WeightSpec
		}{
			{"text encoder", "CLIPTextEncoderL", set.textSpecs},
			{"UNet", "SD1UNet", set.unetSpecs},
			{"autoencoder encoder", "SD1Encoder", set.encoderSpecs},
			{"autoencoder decoder", "SD1Decoder", set.decoderSpecs},
		} {
			if _, e := runtime.LocateWeights(c.model, c.specs, files...); e != nil {
				err = &CheckpointError{Path: checkpoint, Model: set.name, Component: c.what, Err: e}
				if c.what != "text encoder" {
					return nil, err // the text encoder fits: this is the set, broken
				}
				break
			}
		}
		if err == nil {
			return set, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// CheckpointError is a checkpoint that does not hold a model's weights.
type CheckpointError struct {
	Path      string
	Model     string // "Stable Diffusion 1.5"
	Component string // "UNet", "text encoder", …
	Err       error  // the runtime's report, one line per problem
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("%s: not a %s checkpoint: %s: %v", e.Path, e.Model, e.Component, e.Err)
}

func (e *CheckpointError) Unwrap() error { return e.Err }

// Summary is the error in one line: its first problem and how many more there are.
func (e *CheckpointError) Summary() string {
	var we *runtime.WeightsError
	if errors.As(e.Err, &we) && len(we.Problems) > 0 {
		more := ""
		if n := len(we.Problems) - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more problems)", n)
		}
		return fmt.Sprintf("%s: not a %s checkpoint: %s: %s%s", e.Path, e.Model, e.Component, we.Problems[0], more)
	}
	first, _, _ := strings.Cut(e.Error(), "\n")
	return first
}

// openLoRAs opens the LoRA files and plans their merge into the UNet and text encoder.
func (p *Pipeline) openLoRAs(loras []LoRA) error {
	for _, l := range loras {
		p.loraNames = append(p.loraNames, modelName(l.Path)+":"+pyFloat(l.Scale))
	}
	var err error
	p.loras, p.unetPatch, p.textPatch, err = p.planLoRAs(loras, p.unetSpecs())
	return err
}

// planLoRAs opens the LoRA files and matches them to the UNet (whose weights unetSpecs
// lists) and the text encoder; the patches are nil without LoRAs. The caller closes the
// files once the patches are merged.
func (p *Pipeline) planLoRAs(loras []LoRA, unetSpecs []runtime.WeightSpec) (files []*lora.File, unet, text *lora.Patch, err error) {
	if len(loras) == 0 {
		return nil, nil, nil, nil
	}
	uses := make([]lora.Use, 0, len(loras))
	for _, l := range loras {
		f, err := lora.Open(l.Path)
		if err != nil {
			closeLoRAs(files)
			return nil, nil, nil, err
		}
		files = append(files, f)
		uses = append(uses, lora.Use{File: f, Scale: l.Scale})
	}
	patches, err := lora.Plan([]lora.Target{
		{Name: "UNet", Words: []string{"unet"}, Specs: unetSpecs},
		{Name: "text encoder", Words: []string{"te", "te1", "text_encoder"}, Specs: p.set.textSpecs},
	}, uses)
	if err != nil {
		closeLoRAs(files)
		return nil, nil, nil, err
	}
	return files, patches[0], patches[1], nil
}

func closeLoRAs(files []*lora.File) {
	for _, f := range files {
		f.Close()
	}
}

// patch is the load option that merges a LoRA patch, if any.
func (p *Pipeline) patch(lp *lora.Patch) runtime.LoadOptions {
	if lp == nil || lp.Modules() == 0 {
		return runtime.LoadOptions{}
	}
	return runtime.LoadOptions{Patch: lp.Apply}
}

// Close releases the checkpoint and LoRA files and the models.
func (p *Pipeline) Close() error {
	runtime.CloseAll(p.files)
	p.closeAdapters()
	closeLoRAs(p.loras)
	p.files, p.loras = nil, nil
	p.text, p.decoder, p.encoder, p.unet = nil, nil, nil, nil
	p.control = controlState{}
	return nil
}

// Request is one image to generate. The zero values of Width, Height, Steps, Solver and
// Guidance take the defaults (the pipeline's Width and Height, 30, "dpm", 7.5).
type Request struct {
	Prompt, NegativePrompt string
	Width, Height          int
	Steps                  int
	Solver                 string  // "dpm", "ddim", "euler" or "lcm" (package solvers)
	Guidance               float64 // classifier-free guidance scale; 1 runs the UNet on the prompt only
	// Seed picks the initial noise from solvers.NoiseSource, and the fresh noise LCM
	// draws at its steps from the same stream after it.
	Seed uint64
	// Noise, when not nil, is the initial noise instead: [1, 4, Height/8, Width/8],
	// standard normal, before the solver's scaling. StepNoise then gives LCM's noise, one
	// [1, 4, Height/8, Width/8] slice per step that draws some, in order.
	Noise     []float32
	StepNoise [][]float32
	// InitImage, when set, makes it image-to-image as Refiners does it: the image,
	// resized to the output size (PIL's bicubic), encoded, noised to the first step
	// round((1 − Strength)·(Steps − 1)); Strength in (0, 1].
	InitImage *imaging.Image
	Strength  float64
	// ImagePrompt prompts with an image too, through the IP-Adapter the pipeline was
	// loaded with; Reference carries a reference image's style over (reference-only
	// control, a pipeline loaded with Options.ReferenceOnly). ReferenceNoise, one
	// [2, 4, Height/8, Width/8] slice per step run (the negative half's, then the
	// positive's), noises the reference; without it the seed's stream gives it, drawn at
	// each step before the step's LCM noise. See ipadapter.go and reference.go.
	ImagePrompt    *ImagePrompt
	Reference      *Reference
	ReferenceNoise [][]float32
	// ControlNets and T2IAdapters guide the image by condition images, as Refiners'
	// SD1ControlnetAdapter and SD1T2IAdapter do; any number of both stack (control.go).
	ControlNets []ControlNet
	T2IAdapters []T2IAdapter
	// Progress, when set, is called when the steps start (done 0) and after each step,
	// with the steps done and the steps to run in all.
	Progress func(done, total int)
}

// Result is a generated image.
type Result struct {
	Image   *imaging.Image
	Latents []float32 // the final latents [1, 4, Height/8, Width/8]
	// LatentShape is the shape of Latents.
	LatentShape []int
	// Parameters are the generation parameters in sd-webui's text format (its
	// create_infotext: prompt, negative prompt, then "Steps: …, Sampler: …"), as the PNG
	// carries them.
	Parameters string
	// Steps is the number of UNet steps run (fewer than Request.Steps for image-to-image).
	Steps int
}

// Defaults of a Request's zero fields.
const (
	DefaultSteps    = 30
	DefaultSolver   = "dpm"
	DefaultGuidance = 7.5
)

// normalize fills a request's defaults and checks it, naming the field at fault.
func (p *Pipeline) normalize(r Request) (Request, error) {
	if r.Width == 0 {
		r.Width = p.Width
	}
	if r.Height == 0 {
		r.Height = p.Height
	}
	if r.Steps == 0 {
		r.Steps = DefaultSteps
	}
	if r.Solver == "" {
		r.Solver = DefaultSolver
	}
	if r.Guidance == 0 {
		r.Guidance = DefaultGuidance
	}
	switch {
	case r.Width <= 0 || r.Height <= 0 || r.Width%8 != 0 || r.Height%8 != 0:
		return r, fmt.Errorf("size %dx%d: width and height must be positive multiples of 8", r.Width, r.Height)
	case r.Steps < 1:
		return r, fmt.Errorf("steps %d: must be at least 1", r.Steps)
	case !slices.Contains(solvers.Names(), r.Solver):
		return r, fmt.Errorf("unknown solver %q (known: %s)", r.Solver, strings.Join(solvers.Names(), ", "))
	case math.IsNaN(r.Guidance) || math.IsInf(r.Guidance, 0):
		return r, fmt.Errorf("guidance %g: must be a finite number", r.Guidance)
	}
	n := latentLen(r)
	if r.Noise != nil && len(r.Noise) != n {
		return r, fmt.Errorf("noise has %d values, want %d ([1, 4, %d, %d])", len(r.Noise), n, r.Height/8, r.Width/8)
	}
	for i, s := range r.StepNoise {
		if len(s) != n {
			return r, fmt.Errorf("step noise %d has %d values, want %d ([1, 4, %d, %d])", i, len(s), n, r.Height/8, r.Width/8)
		}
	}
	if r.InitImage != nil {
		if !(r.Strength > 0 && r.Strength <= 1) {
			return r, fmt.Errorf("strength %g: must be in (0, 1]", r.Strength)
		}
		if r.Solver == "euler" {
			return r, errors.New("the euler solver cannot start from an image (Refiners' Euler has no add_noise); use dpm, ddim or lcm")
		}
	}
	if err := checkControl(r); err != nil {
		return r, err
	}
	if a := p.adapted; a != nil && (a.kind != "" || a.reference) && len(r.ControlNets)+len(r.T2IAdapters) > 0 {
		return r, errControlWithImageAdapters
	}
	return r, p.checkAdapters(r)
}

func latentLen(r Request) int { return LatentChannels * (r.Height / 8) * (r.Width / 8) }

// Generate makes one image: the prompts encoded, the noise denoised by the solver with
// classifier-free guidance (one UNet call per step on the negative prompt and the prompt
// as a batch of two; none when Guidance is 1), decoded, and converted to 8-bit RGB as
// Refiners' tensor_to_image does ((x+1)/2 clamped to [0, 1], times 255, truncated).
func (p *Pipeline) Generate(r Request) (*Result, error) {
	r, err := p.normalize(r)
	if err != nil {
		return nil, err
	}
	if p.files == nil {
		return nil, errors.New("sd15: the pipeline is closed")
	}
	guided := r.Guidance != 1
	batch := 1
	if guided {
		batch = 2
	}
	// Text: the negative prompt's embedding first, then the prompt's (Refiners' order).
	dim := 77 * p.set.embeddingDim
	emb := make([]float32, batch*dim)
	prompts := []string{r.Prompt}
	if guided {
		prompts = []string{r.NegativePrompt, r.Prompt}
	}
	for i, text := range prompts {
		ids32 := p.tok.Tokenize(text)
		ids := make([]int64, len(ids32))
		for j, id := range ids32 {
			ids[j] = int64(id)
		}
		y, err := p.text.Forward(ids)
		if err != nil {
			return nil, err
		}
		copy(emb[i*dim:], y)
	}

	first := 0
	if r.InitImage != nil {
		if first, err = solvers.FirstStepForStrength(r.Strength, r.Steps); err != nil {
			return nil, err
		}
	}
	s, err := solvers.New(r.Solver, r.Steps, solvers.Params{FirstStep: first})
	if err != nil {
		return nil, err
	}
	if r.Noise != nil {
		needed := 0
		for step := s.FirstStep(); step < s.NumSteps(); step++ {
			if s.NeedsNoise(step) {
				needed++
			}
		}
		if len(r.StepNoise) < needed {
			return nil, fmt.Errorf("the %s solver draws fresh noise at %d of its steps: give that many StepNoise slices with Noise (%d given), or a Seed", r.Solver, needed, len(r.StepNoise))
		}
	}
	n := latentLen(r)
	x := make([]float32, n)
	var src *solvers.NoiseSource
	if r.Noise != nil {
		copy(x, r.Noise)
	} else {
		src = solvers.NewNoiseSource(r.Seed)
		src.Fill(x)
	}
	if r.InitImage != nil {
		encoded, err := p.encode(r.InitImage, r.Width, r.Height)
		if err != nil {
			return nil, err
		}
		if err := s.AddNoise(x, encoded, x, first); err != nil {
			return nil, err
		}
	}
	s.ScaleInitialLatents(x)
	model, err := p.stepUNet(r, s, src)
	if err != nil {
		return nil, err
	}

	ctl, err := p.prepareControl(r, batch)
	if err != nil {
		return nil, err
	}
	in := make([]float32, batch*n)
	inShape := []int{batch, LatentChannels, r.Height / 8, r.Width / 8}
	embShape := []int{batch, 77, p.set.embeddingDim}
	eps := make([]float32, n)
	noise := make([]float32, n)
	timesteps := s.Timesteps()
	stepNoise := r.StepNoise
	total := s.NumSteps() - s.FirstStep()
	if r.Progress != nil {
		r.Progress(0, total)
	}
	for step := s.FirstStep(); step < s.NumSteps(); step++ {
		if err := s.ScaleModelInput(in[:n], x, step); err != nil {
			return nil, err
		}
		if guided {
			copy(in[n:], in[:n])
		}
		var out []float32
		if ctl != nil {
			out, _, err = ctl.predict(in, inShape, []float32{float32(timesteps[step])}, emb, embShape)
		} else {
			out, _, err = model.Forward(in, inShape, []float32{float32(timesteps[step])}, emb, embShape)
		}
		if err != nil {
			return nil, err
		}
		if guided {
			// uncond + scale·(cond − uncond), in float32 as Refiners computes it.
			g := float32(r.Guidance)
			for i := range eps {
				uncond, cond := out[i], out[n+i]
				eps[i] = uncond + float32(g*float32(cond-uncond))
			}
		} else {
			copy(eps, out)
		}
		if s.NeedsNoise(step) {
			switch {
			case src != nil:
				src.Fill(noise)
			default: // counted above
				copy(noise, stepNoise[0])
				stepNoise = stepNoise[1:]
			}
		}
		if err := s.Step(x, eps, step, noise); err != nil {
			return nil, err
		}
		if r.Progress != nil {
			r.Progress(step-s.FirstStep()+1, total)
		}
	}

	img, err := p.decode(x, r.Width, r.Height)
	if err != nil {
		return nil, err
	}
	return &Result{
		Image:       img,
		Latents:     x,
		LatentShape: []int{1, LatentChannels, r.Height / 8, r.Width / 8},
		Parameters:  p.parameters(r),
		Steps:       total,
	}, nil
}

// encode brings an image to the output size (PIL's bicubic), maps it to [-1, 1] and
// encodes it into scaled latents, as Refiners' init_latents does.
func (p *Pipeline) encode(m *imaging.Image, width, height int) ([]float32, error) {
	if p.encoder == nil {
		e, err := p.set.loadEncoder(runtime.LoadOptions{}, p.files...)
		if err != nil {
			return nil, fmt.Errorf("%s: autoencoder encoder: %w", p.path, err)
		}
		p.encoder = e
	}
	t, err := imageTensor(m, width, height, false, imaging.Signed)
	if err != nil {
		return nil, err
	}
	y, _, err := p.encoder.Forward(t.F32, t.Shape)
	if err != nil {
		return nil, err
	}
	return slices.Clone(y), nil
}

// decode turns latents into an 8-bit image as Refiners' latents_to_image does.
func (p *Pipeline) decode(x []float32, width, height int) (*imaging.Image, error) {
	y, _, err := p.decoder.Forward(x, []int{1, LatentChannels, height / 8, width / 8})
	if err != nil {
		return nil, err
	}
	img, err := imaging.New(width, height, 3)
	if err != nil {
		return nil, err
	}
	plane := width * height
	for c := range 3 {
		for i, v := range y[c*plane : (c+1)*plane] {
			v = float32(v+1) / 2
			switch {
			case v > 1:
				v = 1
			case !(v > 0): // NaN too
				v = 0
			}
			img.Pix[i*3+c] = uint8(float32(v * 255)) // truncated, as NumPy's astype("uint8")
		}
	}
	return img, nil
}

// OpenImage reads an image for Request.InitImage (PNG or JPEG, as RGB).
func OpenImage(path string) (*imaging.Image, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return imaging.Load(path)
}
