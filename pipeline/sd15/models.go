package sd15

import (
	fulldecoder "github.com/rfc-project/rfc/pipeline/sd15/internal/full/decoder"
	fullencoder "github.com/rfc-project/rfc/pipeline/sd15/internal/full/encoder"
	fulltextenc "github.com/rfc-project/rfc/pipeline/sd15/internal/full/textenc"
	fullunet "github.com/rfc-project/rfc/pipeline/sd15/internal/full/unet"
	tinydecoder "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/decoder"
	tinyencoder "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/encoder"
	tinytextenc "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/textenc"
	tinyunet "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/unet"
	"github.com/rfc-project/rfc/runtime"
)

// The pipeline sees its models through these interfaces, which the generated packages'
// Model types satisfy. The UNet and the autoencoder take their batch and image sizes at
// run time (with their shapes); the text encoder reads one prompt's 77 ids.
type (
	// textEncoder maps 77 token ids to the text embedding [1, 77, dim].
	textEncoder interface {
		Forward(ids []int64) ([]float32, error)
	}
	// unet predicts the noise of latents [batch, 4, h, w] at one timestep, given the text
	// embeddings [batch, 77, dim].
	unet interface {
		Forward(x []float32, xShape []int, timestep, textEmbedding []float32, textEmbeddingShape []int) ([]float32, []int, error)
	}
	// autoencoderHalf is the encoder (image [1, 3, H, W] in [-1, 1] → scaled latent
	// [1, 4, H/8, W/8]) or the decoder (the reverse, not clamped).
	autoencoderHalf interface {
		Forward(x []float32, xShape []int) ([]float32, []int, error)
	}
)

// loader loads a model's weights from files, with a patch (a LoRA) applied as they load.
type loader[M any] func(opts runtime.LoadOptions, files ...*runtime.SafetensorsFile) (M, error)

// adapt turns a generated package's LoadFilesWith into a loader of the interface M.
func adapt[P any, M any](load func(runtime.LoadOptions, ...*runtime.SafetensorsFile) (P, error), as func(P) M) loader[M] {
	return func(opts runtime.LoadOptions, files ...*runtime.SafetensorsFile) (M, error) {
		m, err := load(opts, files...)
		if err != nil {
			var zero M
			return zero, err
		}
		return as(m), nil
	}
}

// modelSet is one set of compiled models: Stable Diffusion 1.5, or the reduced SD1.5 of
// the tests (random weights, testdata/sd15).
type modelSet struct {
	name          string
	width, height int // the default image size
	embeddingDim  int // the text embedding's width
	textSpecs     []runtime.WeightSpec
	unetSpecs     []runtime.WeightSpec
	encoderSpecs  []runtime.WeightSpec
	decoderSpecs  []runtime.WeightSpec
	loadText      loader[textEncoder]
	loadUNet      loader[unet]
	loadEncoder   loader[autoencoderHalf]
	loadDecoder   loader[autoencoderHalf]
}

// modelSets are the sets a checkpoint is matched against, in order.
var modelSets = []*modelSet{
	{
		name: "Stable Diffusion 1.5", width: 512, height: 512, embeddingDim: 768,
		textSpecs: fulltextenc.WeightSpecs(), unetSpecs: fullunet.WeightSpecs(),
		encoderSpecs: fullencoder.WeightSpecs(), decoderSpecs: fulldecoder.WeightSpecs(),
		loadText:    adapt(fulltextenc.LoadFilesWith, func(m *fulltextenc.Model) textEncoder { return m }),
		loadUNet:    adapt(fullunet.LoadFilesWith, func(m *fullunet.Model) unet { return m }),
		loadEncoder: adapt(fullencoder.LoadFilesWith, func(m *fullencoder.Model) autoencoderHalf { return m }),
		loadDecoder: adapt(fulldecoder.LoadFilesWith, func(m *fulldecoder.Model) autoencoderHalf { return m }),
	},
	{
		name: "the reduced Stable Diffusion 1.5 of the tests", width: 64, height: 64, embeddingDim: 8,
		textSpecs: tinytextenc.WeightSpecs(), unetSpecs: tinyunet.WeightSpecs(),
		encoderSpecs: tinyencoder.WeightSpecs(), decoderSpecs: tinydecoder.WeightSpecs(),
		loadText:    adapt(tinytextenc.LoadFilesWith, func(m *tinytextenc.Model) textEncoder { return m }),
		loadUNet:    adapt(tinyunet.LoadFilesWith, func(m *tinyunet.Model) unet { return m }),
		loadEncoder: adapt(tinyencoder.LoadFilesWith, func(m *tinyencoder.Model) autoencoderHalf { return m }),
		loadDecoder: adapt(tinydecoder.LoadFilesWith, func(m *tinydecoder.Model) autoencoderHalf { return m }),
	},
}
