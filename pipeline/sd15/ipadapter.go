package sd15

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/imaging"
	fullimageencoder "github.com/rfc-project/rfc/pipeline/sd15/internal/full/imageencoder"
	fullipproj "github.com/rfc-project/rfc/pipeline/sd15/internal/full/ipproj"
	fullipresampler "github.com/rfc-project/rfc/pipeline/sd15/internal/full/ipresampler"
	fullunetip "github.com/rfc-project/rfc/pipeline/sd15/internal/full/unetip"
	fullunetipref "github.com/rfc-project/rfc/pipeline/sd15/internal/full/unetipref"
	fullunetref "github.com/rfc-project/rfc/pipeline/sd15/internal/full/unetref"
	tinyimageencoder "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/imageencoder"
	tinyipproj "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/ipproj"
	tinyipresampler "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/ipresampler"
	tinyunetip "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/unetip"
	tinyunetipref "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/unetipref"
	tinyunetref "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/unetref"
	"github.com/rfc-project/rfc/runtime"
	"github.com/rfc-project/rfc/solvers"
)

// ImagePrompt is an image to prompt with through the IP-Adapter (Options.IPAdapter).
type ImagePrompt struct {
	Image *imaging.Image
	// Scale weighs the image's attention against the text's: 1 as trained, 0 as if there
	// were no image. It is taken as given (0 is 0).
	Scale float64
}

// Reference is an image whose style reference-only control carries over
// (Options.ReferenceOnly).
type Reference struct {
	Image *imaging.Image
	// Fidelity is Refiners' style_cfg, in [0, 1]: how much the guidance's negative half
	// attends to the reference too (0.5 is Refiners' default; sd-webui's style_fidelity is
	// its complement). It is taken as given.
	Fidelity float64
}

// DefaultReferenceFidelity is Refiners' default style_cfg.
const DefaultReferenceFidelity = 0.5

// The adapted UNets of models/ip_adapter.rfn, as the generated packages' Model types
// satisfy them.
type (
	// imageEncoder maps preprocessed pixels [batch, 3, S, S] to the image embedding
	// [batch, D] and the penultimate hidden states [batch, L, W].
	imageEncoder interface {
		Forward(x []float32, xShape []int) ([]float32, []int, []float32, []int, error)
	}
	// ipUNet is the UNet with the IP-Adapter: the image tokens [batch, T, dim] and the scale.
	ipUNet interface {
		Forward(x []float32, xShape []int, timestep, textEmbedding []float32, textEmbeddingShape []int,
			imageTokens []float32, imageTokensShape []int, scale []float32) ([]float32, []int, error)
	}
	// refUNet is the UNet with reference-only control, a batch of four: the generation's
	// negative and positive rows, then the noised reference's.
	refUNet interface {
		Forward(x []float32, xShape []int, timestep, textEmbedding, fidelity []float32) ([]float32, []int, error)
	}
	// ipRefUNet is the UNet with both, a batch of four.
	ipRefUNet interface {
		Forward(x []float32, xShape []int, timestep, textEmbedding []float32,
			imageTokens []float32, imageTokensShape []int, scale, fidelity []float32) ([]float32, []int, error)
	}
)

// adapterSet is the compiled IP-Adapter and reference-only models of one modelSet.
type adapterSet struct {
	imageSize      int // the image encoder's input size
	encoderSpecs   []runtime.WeightSpec
	projSpecs      []runtime.WeightSpec // base
	resamplerSpecs []runtime.WeightSpec // plus
	unetIPSpecs    []runtime.WeightSpec
	unetRefSpecs   []runtime.WeightSpec
	unetIPRefSpecs []runtime.WeightSpec
	loadEncoder    loader[imageEncoder]
	loadProj       loader[autoencoderHalf] // same signature: x, shape → y, shape
	loadResampler  loader[autoencoderHalf]
	loadUNetIP     loader[ipUNet]
	loadUNetRef    loader[refUNet]
	loadUNetIPRef  loader[ipRefUNet]
}

// adapterSets are keyed by the modelSet's name.
var adapterSets = map[string]*adapterSet{
	"Stable Diffusion 1.5": {
		imageSize:    224,
		encoderSpecs: fullimageencoder.WeightSpecs(), projSpecs: fullipproj.WeightSpecs(), resamplerSpecs: fullipresampler.WeightSpecs(),
		unetIPSpecs: fullunetip.WeightSpecs(), unetRefSpecs: fullunetref.WeightSpecs(), unetIPRefSpecs: fullunetipref.WeightSpecs(),
		loadEncoder:   adapt(fullimageencoder.LoadFilesWith, func(m *fullimageencoder.Model) imageEncoder { return m }),
		loadProj:      adapt(fullipproj.LoadFilesWith, func(m *fullipproj.Model) autoencoderHalf { return m }),
		loadResampler: adapt(fullipresampler.LoadFilesWith, func(m *fullipresampler.Model) autoencoderHalf { return m }),
		loadUNetIP:    adapt(fullunetip.LoadFilesWith, func(m *fullunetip.Model) ipUNet { return m }),
		loadUNetRef:   adapt(fullunetref.LoadFilesWith, func(m *fullunetref.Model) refUNet { return m }),
		loadUNetIPRef: adapt(fullunetipref.LoadFilesWith, func(m *fullunetipref.Model) ipRefUNet { return m }),
	},
	"the reduced Stable Diffusion 1.5 of the tests": {
		imageSize:    20,
		encoderSpecs: tinyimageencoder.WeightSpecs(), projSpecs: tinyipproj.WeightSpecs(), resamplerSpecs: tinyipresampler.WeightSpecs(),
		unetIPSpecs: tinyunetip.WeightSpecs(), unetRefSpecs: tinyunetref.WeightSpecs(), unetIPRefSpecs: tinyunetipref.WeightSpecs(),
		loadEncoder:   adapt(tinyimageencoder.LoadFilesWith, func(m *tinyimageencoder.Model) imageEncoder { return m }),
		loadProj:      adapt(tinyipproj.LoadFilesWith, func(m *tinyipproj.Model) autoencoderHalf { return m }),
		loadResampler: adapt(tinyipresampler.LoadFilesWith, func(m *tinyipresampler.Model) autoencoderHalf { return m }),
		loadUNetIP:    adapt(tinyunetip.LoadFilesWith, func(m *tinyunetip.Model) ipUNet { return m }),
		loadUNetRef:   adapt(tinyunetref.LoadFilesWith, func(m *tinyunetref.Model) refUNet { return m }),
		loadUNetIPRef: adapt(tinyunetipref.LoadFilesWith, func(m *tinyunetipref.Model) ipRefUNet { return m }),
	},
}

// adapted is a pipeline's IP-Adapter and reference-only state: what Load opened and loaded.
type adapted struct {
	set       *adapterSet
	kind      string // "base", "plus", or "" without an IP-Adapter
	ipName    string // the IP-Adapter file's name, for the parameters
	reference bool
	ipFiles   []*runtime.SafetensorsFile // the IP-Adapter file: the UNet reads its ip_adapter.N
	encFiles  []*runtime.SafetensorsFile
	encoder   imageEncoder
	proj      autoencoderHalf // the projection (base) or the resampler (plus)
	numTokens int             // image tokens per image: 4 (base) or 16 (plus)
	ip        ipUNet
	ref       refUNet
	ipRef     ipRefUNet
}

// ipAdapterModel names the IP-Adapter files in errors.
const ipAdapterModel = "Stable Diffusion 1.5 IP-Adapter"

// openAdapters opens and checks the IP-Adapter and image encoder files of opts (every key
// and shape, before any weight is read), loads the image encoder and the projection, and
// chooses the UNet Load builds: plain, with the IP-Adapter, with reference-only control,
// or both.
func (p *Pipeline) openAdapters(opts Options) error {
	if opts.IPAdapter == "" && opts.ImageEncoder == "" && !opts.ReferenceOnly {
		return nil
	}
	set := adapterSets[p.set.name]
	if set == nil {
		return fmt.Errorf("sd15: no IP-Adapter models compiled for %s", p.set.name)
	}
	a := &adapted{set: set, reference: opts.ReferenceOnly}
	p.adapted = a
	switch {
	case opts.IPAdapter == "" && opts.ImageEncoder == "":
		return nil
	case opts.IPAdapter == "":
		return errors.New("an image encoder without an IP-Adapter: give Options.IPAdapter too")
	case opts.ImageEncoder == "":
		return fmt.Errorf("%s: the IP-Adapter needs CLIP's image encoder (ViT-H/14, IP-Adapter's image_encoder folder): give Options.ImageEncoder", opts.IPAdapter)
	}
	var err error
	if a.ipFiles, err = runtime.OpenWeights(opts.IPAdapter); err != nil {
		return err
	}
	if len(a.ipFiles) == 0 {
		return fmt.Errorf("%s: no .safetensors file in the folder", opts.IPAdapter)
	}
	if err := ipAdapterKind(opts.IPAdapter, a); err != nil {
		return err
	}
	a.ipName = modelName(opts.IPAdapter)
	loadProj := set.loadProj
	if a.kind == "plus" {
		loadProj = set.loadResampler
	}
	ipSpecs, what := set.ipFileSpecs(a.kind, p.set.unetSpecs)
	if _, err := runtime.LocateWeights("IP-Adapter", ipSpecs, a.ipFiles...); err != nil {
		return &CheckpointError{Path: opts.IPAdapter, Model: ipAdapterModel, Component: what, Err: err}
	}
	if a.encFiles, err = runtime.OpenWeights(opts.ImageEncoder); err != nil {
		return err
	}
	if len(a.encFiles) == 0 {
		return fmt.Errorf("%s: no .safetensors file in the folder or its subfolders", opts.ImageEncoder)
	}
	if _, err := runtime.LocateWeights("CLIPImageEncoderH", set.encoderSpecs, a.encFiles...); err != nil {
		return &CheckpointError{Path: opts.ImageEncoder, Model: "CLIP ViT-H/14 image encoder", Component: "CLIPImageEncoderH", Err: err}
	}
	if a.encoder, err = set.loadEncoder(runtime.LoadOptions{}, a.encFiles...); err != nil {
		return fmt.Errorf("%s: image encoder: %w", opts.ImageEncoder, err)
	}
	if a.proj, err = loadProj(runtime.LoadOptions{}, a.ipFiles...); err != nil {
		return fmt.Errorf("%s: image projection: %w", opts.IPAdapter, err)
	}
	// The encoder's weights are in memory now.
	runtime.CloseAll(a.encFiles)
	a.encFiles = nil
	return nil
}

// ipFileSpecs are the weights an IP-Adapter file of kind holds, and what they are: the
// projection and the image cross-attentions' ip_adapter.N (the UNet's own tensors come
// from the checkpoint, checked by matchSet), all of them and nothing else.
func (set *adapterSet) ipFileSpecs(kind string, plainUNet []runtime.WeightSpec) ([]runtime.WeightSpec, string) {
	specs, what := slices.Clone(set.projSpecs), "image projection (base) and image cross-attentions"
	if kind == "plus" {
		specs, what = slices.Clone(set.resamplerSpecs), "perceiver resampler (plus) and image cross-attentions"
	}
	plain := map[string]bool{}
	for _, s := range plainUNet {
		plain[s.Key] = true
	}
	for _, s := range set.unetIPSpecs {
		if !plain[s.Key] {
			specs = append(specs, s)
		}
	}
	return specs, what
}

// ipAdapterKind tells base from plus by the file's tensors, and refuses what is neither
// (an SDXL IP-Adapter first: its ip_adapter.N go past SD1.5's 31).
func ipAdapterKind(path string, a *adapted) error {
	has := func(key string) bool {
		for _, f := range a.ipFiles {
			if _, ok := f.Info(key); ok {
				return true
			}
		}
		return false
	}
	for _, f := range a.ipFiles {
		for _, name := range f.Names() {
			rest, ok := strings.CutPrefix(name, "ip_adapter.")
			if !ok {
				continue
			}
			num, _, _ := strings.Cut(rest, ".")
			if n, err := strconv.Atoi(num); err == nil && n > 31 {
				return fmt.Errorf("%s: an SDXL IP-Adapter (it has %s; SD1.5's stop at ip_adapter.31): sd15 needs an SD1.5 one, such as ip-adapter_sd15 or ip-adapter-plus_sd15", path, name)
			}
		}
	}
	switch {
	case has("image_proj.latents"):
		a.kind, a.numTokens = "plus", 16
	case has("image_proj.proj.weight"):
		a.kind, a.numTokens = "base", 4
	default:
		return fmt.Errorf("%s: not an SD1.5 IP-Adapter: neither image_proj.proj.weight (base) nor image_proj.latents (plus)", path)
	}
	return nil
}

// unetSpecs are the weights of the UNet Load builds, for the LoRA plan.
func (p *Pipeline) unetSpecs() []runtime.WeightSpec {
	a := p.adapted
	switch {
	case a == nil:
		return p.set.unetSpecs
	case a.kind != "" && a.reference:
		return a.set.unetIPRefSpecs
	case a.kind != "":
		return a.set.unetIPSpecs
	case a.reference:
		return a.set.unetRefSpecs
	}
	return p.set.unetSpecs
}

// loadUNet loads the UNet Load chose (openAdapters), from the checkpoint and the
// IP-Adapter file, with the LoRA patch.
func (p *Pipeline) loadUNet(opts runtime.LoadOptions, files ...*runtime.SafetensorsFile) error {
	a := p.adapted
	var err error
	switch {
	case a == nil || (a.kind == "" && !a.reference):
		p.unet, err = p.set.loadUNet(opts, files...)
	case a.kind != "" && a.reference:
		a.ipRef, err = a.set.loadUNetIPRef(opts, append(slices.Clone(files), a.ipFiles...)...)
	case a.kind != "":
		a.ip, err = a.set.loadUNetIP(opts, append(slices.Clone(files), a.ipFiles...)...)
	default:
		a.ref, err = a.set.loadUNetRef(opts, files...)
	}
	if err == nil && a != nil {
		// The image cross-attentions' weights are loaded: the file can go.
		runtime.CloseAll(a.ipFiles)
		a.ipFiles = nil
	}
	return err
}

// closeAdapters releases the adapters' files and models.
func (p *Pipeline) closeAdapters() {
	if a := p.adapted; a != nil {
		runtime.CloseAll(a.ipFiles)
		runtime.CloseAll(a.encFiles)
		p.adapted = nil
	}
}

// checkAdapters checks a request's image prompt and reference against what the pipeline
// was loaded with.
func (p *Pipeline) checkAdapters(r Request) error {
	a := p.adapted
	if ip := r.ImagePrompt; ip != nil {
		switch {
		case a == nil || a.kind == "":
			return errors.New("an image prompt needs a pipeline loaded with an IP-Adapter (Options.IPAdapter)")
		case ip.Image == nil:
			return errors.New("the image prompt has no image")
		case math.IsNaN(ip.Scale) || math.IsInf(ip.Scale, 0):
			return fmt.Errorf("IP-Adapter scale %g: must be a finite number", ip.Scale)
		}
	}
	ref := r.Reference
	switch {
	case ref == nil && a != nil && a.reference:
		return errors.New("this pipeline was loaded for reference-only control (Options.ReferenceOnly): give Request.Reference")
	case ref == nil:
		if r.ReferenceNoise != nil {
			return errors.New("reference noise without a reference image")
		}
		return nil
	case a == nil || !a.reference:
		return errors.New("a reference image needs a pipeline loaded with Options.ReferenceOnly")
	case ref.Image == nil:
		return errors.New("the reference has no image")
	case !(ref.Fidelity >= 0 && ref.Fidelity <= 1):
		return fmt.Errorf("reference fidelity %g: must be in [0, 1]", ref.Fidelity)
	case r.Solver == "euler":
		return errors.New("the euler solver cannot noise the reference image (Refiners' Euler has no add_noise); use dpm, ddim or lcm")
	}
	n := 2 * latentLen(r)
	for i, s := range r.ReferenceNoise {
		if len(s) != n {
			return fmt.Errorf("reference noise %d has %d values, want %d ([2, 4, %d, %d])", i, len(s), n, r.Height/8, r.Width/8)
		}
	}
	return nil
}

// adaptedStep is the UNet call of one generation with its image tokens and reference:
// it has the plain UNet's signature, so that the denoising loop is the same for all.
type adaptedStep struct {
	p              *Pipeline
	tokens         []float32 // [2, T, dim]: the negative half's, then the positive's
	tokensT        int
	scale          []float32
	fidelity       []float32
	solver         solvers.Solver
	step           int       // the step of the next call
	refLatents     []float32 // [1, 4, h, w]
	refNoise       [][]float32
	src            *solvers.NoiseSource // the seed's stream when refNoise is used up
	n              int
	guide, x4, t4  []float32
	noise, tokens4 []float32
}

// stepUNet returns the UNet call of the request's steps: the plain UNet, or the adapted
// one with the request's image tokens (computed once) and reference (encoded once,
// noised at each step: from ReferenceNoise, else drawn from src before the step's other
// noise).
func (p *Pipeline) stepUNet(r Request, s solvers.Solver, src *solvers.NoiseSource) (unet, error) {
	a := p.adapted
	if a == nil || (a.kind == "" && !a.reference) {
		return p.unet, nil
	}
	if steps := s.NumSteps() - s.FirstStep(); a.reference && src == nil && len(r.ReferenceNoise) < steps {
		return nil, fmt.Errorf("reference-only control noises the reference at each of the %d steps: give that many ReferenceNoise slices with Noise (%d given), or a Seed", steps, len(r.ReferenceNoise))
	}
	st := &adaptedStep{p: p, solver: s, step: s.FirstStep(), n: latentLen(r), refNoise: r.ReferenceNoise, src: src}
	if a.kind != "" {
		st.tokensT = a.numTokens
		st.scale = []float32{0}
		if ip := r.ImagePrompt; ip != nil {
			var err error
			if st.tokens, err = p.imageTokens(ip.Image); err != nil {
				return nil, err
			}
			st.scale[0] = float32(ip.Scale)
		} else { // at scale 0 the adapted UNet computes exactly the plain one's result
			st.tokens = make([]float32, 2*a.numTokens*p.set.embeddingDim)
		}
	}
	if a.reference {
		var err error
		if st.refLatents, err = p.encode(r.Reference.Image, r.Width, r.Height); err != nil {
			return nil, err
		}
		st.fidelity = []float32{float32(r.Reference.Fidelity)}
	}
	return st, nil
}

// imageTokens are the IP-Adapter's tokens [2, T, dim] for an image, the guidance's
// negative half first, as Refiners' compute_clip_image_embedding makes them: base projects
// [a zero embedding, the image's]; plus resamples the encoder's penultimate states of
// [zero pixels, the image] (zeros after CLIP's normalization, not a black image).
func (p *Pipeline) imageTokens(m *imaging.Image) ([]float32, error) {
	a := p.adapted
	if m.Channels != 3 {
		var err error
		if m, err = imaging.ControlImage(m); err != nil {
			return nil, err
		}
	}
	pix, err := imaging.CLIPInput(m, a.set.imageSize)
	if err != nil {
		return nil, err
	}
	size := a.set.imageSize
	if a.kind == "base" {
		emb, embShape, _, _, err := a.encoder.Forward(pix.F32, []int{1, 3, size, size})
		if err != nil {
			return nil, err
		}
		in := make([]float32, 2*len(emb))
		copy(in[len(emb):], emb)
		y, _, err := a.proj.Forward(in, []int{2, embShape[1]})
		if err != nil {
			return nil, err
		}
		return slices.Clone(y), nil
	}
	in := make([]float32, 2*len(pix.F32))
	copy(in[len(pix.F32):], pix.F32)
	_, _, states, statesShape, err := a.encoder.Forward(in, []int{2, 3, size, size})
	if err != nil {
		return nil, err
	}
	y, _, err := a.proj.Forward(states, statesShape)
	if err != nil {
		return nil, err
	}
	return slices.Clone(y), nil
}

// Forward runs one step's UNet call: x [b, 4, h, w] (b = 2 with guidance, the negative
// half first; 1 without), text [b, 77, dim].
func (st *adaptedStep) Forward(x []float32, xShape []int, timestep, text []float32, textShape []int) ([]float32, []int, error) {
	a := st.p.adapted
	step := st.step
	st.step++
	batch, n := xShape[0], st.n
	tokLen := st.tokensT * st.p.set.embeddingDim
	if !a.reference {
		tokens, shape := st.tokens, []int{2, st.tokensT, st.p.set.embeddingDim}
		if batch == 1 { // without guidance: the conditional tokens alone
			tokens, shape = st.tokens[tokLen:], []int{1, st.tokensT, st.p.set.embeddingDim}
		}
		return a.ip.Forward(x, xShape, timestep, text, textShape, tokens, shape, st.scale)
	}
	// The reference latents noised to the step, two rows (negative, positive).
	if st.guide == nil {
		st.guide = make([]float32, 2*n)
		st.x4 = make([]float32, 4*n)
		st.noise = make([]float32, 2*n)
	}
	noise := st.noise
	if len(st.refNoise) > 0 {
		noise = st.refNoise[0]
		st.refNoise = st.refNoise[1:]
	} else {
		st.src.Fill(noise)
	}
	for h := range 2 {
		if err := st.solver.AddNoise(st.guide[h*n:(h+1)*n], st.refLatents, noise[h*n:(h+1)*n], step); err != nil {
			return nil, nil, err
		}
	}
	// [generation's negative, positive, reference's negative, positive]: without guidance
	// the prompt's row stands in both halves and only its row comes back (nothing blends it).
	dim := len(text) / batch
	if st.t4 == nil {
		st.t4 = make([]float32, 4*dim)
	}
	for row := range 4 {
		src := row % 2
		if batch == 1 {
			src = 0
		}
		copy(st.t4[row*dim:(row+1)*dim], text[src*dim:(src+1)*dim])
		if row < 2 {
			copy(st.x4[row*n:(row+1)*n], x[src*n:(src+1)*n])
		}
	}
	copy(st.x4[2*n:], st.guide)
	shape := []int{4, xShape[1], xShape[2], xShape[3]}
	var out []float32
	var err error
	if a.kind == "" {
		out, _, err = a.ref.Forward(st.x4, shape, timestep, st.t4, st.fidelity)
	} else {
		if st.tokens4 == nil {
			st.tokens4 = make([]float32, 4*tokLen)
			for row := range 4 {
				src := row % 2
				if batch == 1 {
					src = 1
				}
				copy(st.tokens4[row*tokLen:(row+1)*tokLen], st.tokens[src*tokLen:(src+1)*tokLen])
			}
		}
		out, _, err = a.ipRef.Forward(st.x4, shape, timestep, st.t4, st.tokens4, []int{4, st.tokensT, st.p.set.embeddingDim}, st.scale, st.fidelity)
	}
	if err != nil {
		return nil, nil, err
	}
	if batch == 1 {
		return out[n : 2*n], xShape, nil
	}
	return out[:2*n], xShape, nil
}

// adapterParameters are the PNG parameters of the image prompt and the reference.
func (p *Pipeline) adapterParameters(r Request) []string {
	var pairs []string
	if ip := r.ImagePrompt; ip != nil && p.adapted != nil {
		pairs = append(pairs, "IP-Adapter: "+quote(p.adapted.ipName+":"+pyFloat(ip.Scale)))
	}
	if ref := r.Reference; ref != nil {
		pairs = append(pairs, "Reference fidelity: "+pyFloat(ref.Fidelity))
	}
	return pairs
}
