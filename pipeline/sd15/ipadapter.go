package sd15

import (
	"errors"
	"fmt"
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
)

// ImagePrompt is an image to prompt with through the IP-Adapter (Options.IPAdapter).
type ImagePrompt struct {
	Image *imaging.Image
	// Scale weighs the image's attention against the text's: 1 as trained, 0 as if there
	// were no image. It is taken as given (0 is 0).
	Scale float64
}

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
func (p *Pipeline) loadAdaptedUNet(opts runtime.LoadOptions, files ...*runtime.SafetensorsFile) error {
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
