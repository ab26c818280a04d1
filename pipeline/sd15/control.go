package sd15

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/control/checkpoint"
	"github.com/rfc-project/rfc/imaging"
	fullcontrolnet "github.com/rfc-project/rfc/pipeline/sd15/internal/full/controlnet"
	fullt2i "github.com/rfc-project/rfc/pipeline/sd15/internal/full/t2i"
	fullt2igrey "github.com/rfc-project/rfc/pipeline/sd15/internal/full/t2igrey"
	fullt2ilight "github.com/rfc-project/rfc/pipeline/sd15/internal/full/t2ilight"
	fullunetcontrol "github.com/rfc-project/rfc/pipeline/sd15/internal/full/unetcontrol"
	tinycontrolnet "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/controlnet"
	tinyt2i "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/t2i"
	tinyt2igrey "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/t2igrey"
	tinyt2ilight "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/t2ilight"
	tinyunetcontrol "github.com/rfc-project/rfc/pipeline/sd15/internal/tiny/unetcontrol"
	"github.com/rfc-project/rfc/runtime"
)

// ControlNet is a ControlNet to apply to a request: its weights, the condition image and
// the scale of its residuals.
type ControlNet struct {
	// Path is the ControlNet: lllyasviel's single file (control_v11p_sd15_canny.safetensors),
	// a diffusers folder (or its diffusion_pytorch_model.safetensors) or a Refiners file.
	Path string
	// Condition is the condition image (an edge map, a depth map, a pose…), resized to the
	// output size (PIL's bicubic) and given to the ControlNet in [0, 1] as Refiners'
	// image_to_tensor makes it. A one-channel image is repeated on three channels.
	Condition *imaging.Image
	// Scale multiplies the ControlNet's residuals (Refiners' scale; 1 as trained).
	Scale float64
}

// T2IAdapter is a T2I-Adapter to apply to a request: its weights, the condition image and
// the scale of its features.
type T2IAdapter struct {
	// Path is the T2I-Adapter: TencentARC's file (as safetensors), a diffusers folder or a
	// Refiners file: the full adapters on RGB conditions (depth, openpose, seg, …) or on
	// one-channel ones (the sd15v2 canny and sketch adapters), the light one (color).
	Path string
	// Condition is as ControlNet.Condition; for a one-channel adapter an RGB image is made
	// gray first as PIL's convert("L") does (an edge map stays as it is).
	Condition *imaging.Image
	Scale     float64 // multiplies the features (1 as trained)
}

// The compiled models that ControlNets and T2I-Adapters need, seen as functions: the
// packages of a set differ in type, not in signature.
type (
	// controlledUNet is the UNet with the summed, scaled residuals of the ControlNets (13)
	// and features of the T2I-Adapters (4) as inputs; zeros give the plain UNet's output.
	controlledUNet func(x []float32, xShape []int, timestep, emb []float32, embShape []int, residuals *[13][]float32, residualShapes *[13][]int, features *[4][]float32, featureShapes *[4][]int) ([]float32, []int, error)
	// controlNetModel maps the UNet's inputs and the condition image [batch, 3, 8h, 8w] to
	// the 13 residuals, unscaled. They are the model's memory until its next call.
	controlNetModel func(x []float32, xShape []int, timestep, emb []float32, embShape []int, condition []float32, conditionShape []int) ([13][]float32, [13][]int, error)
	// t2iEncoder maps a condition image [1, C, H, W] to the 4 feature maps.
	t2iEncoder func(x []float32, xShape []int) ([4][]float32, [4][]int, error)
)

// controlModels are the control packages of one set of models.
type controlModels struct {
	unetSpecs         []runtime.WeightSpec // the controlled UNet's: the plain UNet's, in its order
	controlNetSpecs   []runtime.WeightSpec
	conditionChannels []int // the ControlNet's condition encoder widths, as compiled
	t2iChannels       []int // the T2I-Adapters' feature widths, as compiled
	t2iBlocks         map[string]int
	loadUNet          loader[controlledUNet]
	loadControlNet    loader[controlNetModel]
	loadT2I           map[string]loader[t2iEncoder] // by t2iKind
}

// controlSets are the control packages of each set of models, by the set's name.
var controlSets = map[string]*controlModels{
	"Stable Diffusion 1.5": {
		unetSpecs: fullunetcontrol.WeightSpecs(), controlNetSpecs: fullcontrolnet.WeightSpecs(),
		conditionChannels: []int{16, 32, 96, 256}, t2iChannels: []int{320, 640, 1280, 1280},
		t2iBlocks:      map[string]int{"ConditionEncoder": 2, "ConditionEncoderLight": 4},
		loadUNet:       adapt(fullunetcontrol.LoadFilesWith, func(m *fullunetcontrol.Model) controlledUNet { return controlledForward(m) }),
		loadControlNet: adapt(fullcontrolnet.LoadFilesWith, func(m *fullcontrolnet.Model) controlNetModel { return controlNetForward(m) }),
		loadT2I: map[string]loader[t2iEncoder]{
			"ConditionEncoder/3":      adapt(fullt2i.LoadFilesWith, func(m *fullt2i.Model) t2iEncoder { return t2iForward(m) }),
			"ConditionEncoder/1":      adapt(fullt2igrey.LoadFilesWith, func(m *fullt2igrey.Model) t2iEncoder { return t2iForward(m) }),
			"ConditionEncoderLight/3": adapt(fullt2ilight.LoadFilesWith, func(m *fullt2ilight.Model) t2iEncoder { return t2iForward(m) }),
		},
	},
	"the reduced Stable Diffusion 1.5 of the tests": {
		unetSpecs: tinyunetcontrol.WeightSpecs(), controlNetSpecs: tinycontrolnet.WeightSpecs(),
		conditionChannels: []int{4, 6, 10, 12}, t2iChannels: []int{8, 16, 24, 24},
		t2iBlocks:      map[string]int{"ConditionEncoder": 2, "ConditionEncoderLight": 4},
		loadUNet:       adapt(tinyunetcontrol.LoadFilesWith, func(m *tinyunetcontrol.Model) controlledUNet { return controlledForward(m) }),
		loadControlNet: adapt(tinycontrolnet.LoadFilesWith, func(m *tinycontrolnet.Model) controlNetModel { return controlNetForward(m) }),
		loadT2I: map[string]loader[t2iEncoder]{
			"ConditionEncoder/3":      adapt(tinyt2i.LoadFilesWith, func(m *tinyt2i.Model) t2iEncoder { return t2iForward(m) }),
			"ConditionEncoder/1":      adapt(tinyt2igrey.LoadFilesWith, func(m *tinyt2igrey.Model) t2iEncoder { return t2iForward(m) }),
			"ConditionEncoderLight/3": adapt(tinyt2ilight.LoadFilesWith, func(m *tinyt2ilight.Model) t2iEncoder { return t2iForward(m) }),
		},
	},
}

// controlledUNetPackage is the generated controlled UNet's Forward.
type controlledUNetPackage interface {
	Forward(x []float32, xShape []int, timestep []float32, clipTextEmbedding []float32, clipTextEmbeddingShape []int, r0 []float32, s0 []int, r1 []float32, s1 []int, r2 []float32, s2 []int, r3 []float32, s3 []int, r4 []float32, s4 []int, r5 []float32, s5 []int, r6 []float32, s6 []int, r7 []float32, s7 []int, r8 []float32, s8 []int, r9 []float32, s9 []int, r10 []float32, s10 []int, r11 []float32, s11 []int, r12 []float32, s12 []int, f0 []float32, t0 []int, f1 []float32, t1 []int, f2 []float32, t2 []int, f3 []float32, t3 []int) ([]float32, []int, error)
}

func controlledForward(m controlledUNetPackage) controlledUNet {
	return func(x []float32, xShape []int, timestep, emb []float32, embShape []int, r *[13][]float32, s *[13][]int, f *[4][]float32, t *[4][]int) ([]float32, []int, error) {
		return m.Forward(x, xShape, timestep, emb, embShape,
			r[0], s[0], r[1], s[1], r[2], s[2], r[3], s[3], r[4], s[4], r[5], s[5], r[6], s[6],
			r[7], s[7], r[8], s[8], r[9], s[9], r[10], s[10], r[11], s[11], r[12], s[12],
			f[0], t[0], f[1], t[1], f[2], t[2], f[3], t[3])
	}
}

// controlNetPackage is the generated SD1Controlnet's Forward.
type controlNetPackage interface {
	Forward(x []float32, xShape []int, timestep []float32, clipTextEmbedding []float32, clipTextEmbeddingShape []int, condition []float32, conditionShape []int) ([]float32, []int, []float32, []int, []float32, []int, []float32, []int, []float32, []int, []float32, []int, []float32, []int, []float32, []int, []float32, []int, []float32, []int, []float32, []int, []float32, []int, []float32, []int, error)
}

func controlNetForward(m controlNetPackage) controlNetModel {
	return func(x []float32, xShape []int, timestep, emb []float32, embShape []int, cond []float32, condShape []int) (r [13][]float32, s [13][]int, err error) {
		r[0], s[0], r[1], s[1], r[2], s[2], r[3], s[3], r[4], s[4], r[5], s[5], r[6], s[6],
			r[7], s[7], r[8], s[8], r[9], s[9], r[10], s[10], r[11], s[11], r[12], s[12], err = m.Forward(x, xShape, timestep, emb, embShape, cond, condShape)
		return
	}
}

// t2iPackage is a generated T2I-Adapter encoder's Forward.
type t2iPackage interface {
	Forward(x []float32, xShape []int) ([]float32, []int, []float32, []int, []float32, []int, []float32, []int, error)
}

func t2iForward(m t2iPackage) t2iEncoder {
	return func(x []float32, xShape []int) (f [4][]float32, s [4][]int, err error) {
		f[0], s[0], f[1], s[1], f[2], s[2], f[3], s[3], err = m.Forward(x, xShape)
		return
	}
}

// controlState is what a Pipeline keeps for ControlNets and T2I-Adapters: the controlled
// UNet (loaded on the first request with control, after which it serves every request,
// with zero inputs when there is no control: the plain UNet's output exactly) and the
// ControlNets loaded, by path.
type controlState struct {
	unet        controlledUNet
	loras       []LoRA // re-read to merge into the controlled UNet
	controlNets map[string]controlNetModel
}

// errControlWithImageAdapters: no compiled UNet takes both control inputs and an
// IP-Adapter's or reference-only control's (each combination is a package of its own).
var errControlWithImageAdapters = errors.New("ControlNets and T2I-Adapters do not combine with an IP-Adapter or reference-only control yet: no compiled UNet takes both")

// checkControl checks the control fields of a normalized request.
func checkControl(r Request) error {
	for i, c := range r.ControlNets {
		if c.Path == "" {
			return fmt.Errorf("ControlNet %d: no path", i+1)
		}
		if c.Condition == nil {
			return fmt.Errorf("ControlNet %s: no condition image", c.Path)
		}
		if math.IsNaN(c.Scale) || math.IsInf(c.Scale, 0) {
			return fmt.Errorf("ControlNet %s: scale %g: must be a finite number", c.Path, c.Scale)
		}
	}
	for i, a := range r.T2IAdapters {
		if a.Path == "" {
			return fmt.Errorf("T2I-Adapter %d: no path", i+1)
		}
		if a.Condition == nil {
			return fmt.Errorf("T2I-Adapter %s: no condition image", a.Path)
		}
		if math.IsNaN(a.Scale) || math.IsInf(a.Scale, 0) {
			return fmt.Errorf("T2I-Adapter %s: scale %g: must be a finite number", a.Path, a.Scale)
		}
	}
	return nil
}

// conditionTensor brings a condition image to the output size as a [1, C, height, width]
// tensor in [0, 1] (Refiners' image_to_tensor); a gray image stays gray when asked.
func conditionTensor(m *imaging.Image, width, height int, gray bool) (*runtime.Tensor, error) {
	return imageTensor(m, width, height, gray, imaging.Unit)
}

// imageTensor brings an image to width×height (PIL's bicubic) as a [1, C, height, width]
// tensor with values in r, C the image's channels; a gray image is made RGB (ControlNet's
// HWC3) unless keepGray.
func imageTensor(m *imaging.Image, width, height int, keepGray bool, r imaging.Range) (*runtime.Tensor, error) {
	if m.Channels != 3 && !keepGray {
		var err error
		if m, err = imaging.ControlImage(m); err != nil {
			return nil, err
		}
	}
	resized, err := imaging.Resize(m, width, height)
	if err != nil {
		return nil, err
	}
	return imaging.ToTensor(resized, r)
}

// controlStep is the control of one request, ready for the steps: the ControlNets with
// their conditions (batched) and the T2I-Adapters' summed, scaled features (batched).
type controlStep struct {
	unet           controlledUNet
	nets           []controlNetModel
	scales         []float32
	conditions     [][]float32
	conditionShape []int
	residuals      [13][]float32 // the sum of the scaled residuals, the UNet's inputs
	residualShapes [13][]int
	features       [4][]float32
	featureShapes  [4][]int
}

// prepareControl loads what the request's ControlNets and T2I-Adapters need and computes
// the T2I-Adapters' features; nil when the request has no control and the plain UNet
// serves it.
func (p *Pipeline) prepareControl(r Request, batch int) (*controlStep, error) {
	if len(r.ControlNets) == 0 && len(r.T2IAdapters) == 0 && p.control.unet == nil {
		return nil, nil
	}
	cs := controlSets[p.set.name]
	if p.control.unet == nil {
		u, err := p.loadControlledUNet(cs)
		if err != nil {
			return nil, err
		}
		p.control.unet, p.unet = u, nil // the plain UNet's memory goes: the controlled one serves all
	}
	st := &controlStep{unet: p.control.unet}
	h, w := r.Height/8, r.Width/8
	// The sizes of the UNet's levels: stride-2 convolutions with padding 1 round up.
	sides := [4][2]int{{h, w}, {(h + 1) / 2, (w + 1) / 2}}
	sides[2] = [2]int{(sides[1][0] + 1) / 2, (sides[1][1] + 1) / 2}
	sides[3] = [2]int{(sides[2][0] + 1) / 2, (sides[2][1] + 1) / 2}
	ch := cs.t2iChannels
	residualLevel := [13]int{0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3}
	residualWidth := [13]int{ch[0], ch[0], ch[0], ch[0], ch[1], ch[1], ch[1], ch[2], ch[2], ch[2], ch[3], ch[3], ch[3]}
	for n := range 13 {
		l := residualLevel[n]
		st.residualShapes[n] = []int{batch, residualWidth[n], sides[l][0], sides[l][1]}
		st.residuals[n] = make([]float32, shapeLen(st.residualShapes[n]))
	}
	for i := range 4 {
		st.featureShapes[i] = []int{batch, ch[i], sides[i][0], sides[i][1]}
		st.features[i] = make([]float32, shapeLen(st.featureShapes[i]))
	}
	st.conditionShape = []int{batch, 3, r.Height, r.Width}
	for _, c := range r.ControlNets {
		net, err := p.loadControlNet(cs, c.Path)
		if err != nil {
			return nil, err
		}
		t, err := conditionTensor(c.Condition, r.Width, r.Height, false)
		if err != nil {
			return nil, fmt.Errorf("ControlNet %s: condition image: %w", c.Path, err)
		}
		cond := make([]float32, 0, batch*len(t.F32))
		for range batch { // one condition for both halves of the guided batch
			cond = append(cond, t.F32...)
		}
		st.nets = append(st.nets, net)
		st.scales = append(st.scales, float32(c.Scale))
		st.conditions = append(st.conditions, cond)
	}
	for _, a := range r.T2IAdapters {
		if err := p.addT2IFeatures(cs, st, a, r.Width, r.Height, batch); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func shapeLen(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// loadUNet is Load's: the plain UNet, or with opts.Control the controlled one, which then
// serves every request.
func (p *Pipeline) loadUNet(opts Options) error {
	var err error
	if opts.Control && (opts.IPAdapter != "" || opts.ReferenceOnly) {
		return errControlWithImageAdapters
	}
	if !opts.Control {
		// The plain UNet, or the one an IP-Adapter or reference-only control adapts (ipadapter.go).
		if err = p.loadAdaptedUNet(p.patch(p.unetPatch), p.files...); err != nil {
			return fmt.Errorf("%s: UNet: %w", p.path, err)
		}
		return nil
	}
	if err := checkControlledSpecs(controlSets[p.set.name], p.set); err != nil {
		return err
	}
	if p.control.unet, err = controlSets[p.set.name].loadUNet(p.patch(p.unetPatch), p.files...); err != nil {
		return fmt.Errorf("%s: UNet: %w", p.path, err)
	}
	return nil
}

// checkControlledSpecs: a LoRA patch indexes weights by their place in the specs, so the
// controlled UNet must read the plain UNet's weights in the plain UNet's order (control
// inputs add none).
func checkControlledSpecs(cs *controlModels, set *modelSet) error {
	if len(cs.unetSpecs) != len(set.unetSpecs) {
		return fmt.Errorf("internal error: the controlled UNet reads %d weights, the UNet %d", len(cs.unetSpecs), len(set.unetSpecs))
	}
	for i, s := range cs.unetSpecs {
		if s.Key != set.unetSpecs[i].Key || !slices.Equal(s.Shape, set.unetSpecs[i].Shape) {
			return fmt.Errorf("internal error: the controlled UNet's weight %d is %s, the UNet's %s", i, s.Key, set.unetSpecs[i].Key)
		}
	}
	return nil
}

// loadControlledUNet loads the UNet with control inputs from the checkpoint after Load, the
// LoRAs merged again as Load merged them into the plain UNet.
func (p *Pipeline) loadControlledUNet(cs *controlModels) (controlledUNet, error) {
	if err := checkControlledSpecs(cs, p.set); err != nil {
		return nil, err
	}
	files, unetPatch, _, err := p.planLoRAs(p.control.loras, p.set.unetSpecs)
	if err != nil {
		return nil, err
	}
	defer closeLoRAs(files)
	u, err := cs.loadUNet(p.patch(unetPatch), p.files...)
	if err != nil {
		return nil, fmt.Errorf("%s: UNet: %w", p.path, err)
	}
	return u, nil
}

// loadControlNet loads a ControlNet once per path.
func (p *Pipeline) loadControlNet(cs *controlModels, path string) (controlNetModel, error) {
	if net, ok := p.control.controlNets[path]; ok {
		return net, nil
	}
	c, err := checkpoint.OpenControlNet(path) // refuses SDXL and configs rfc cannot run
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if !slices.Equal(c.ConditionChannels, cs.conditionChannels) {
		return nil, fmt.Errorf("%s: a ControlNet whose condition encoder has widths %v: the ControlNets of %s have %v", path, c.ConditionChannels, p.set.name, cs.conditionChannels)
	}
	files, closeRenamed, err := refinersControlNetFiles(c.Files(), cs.controlNetSpecs)
	if err != nil {
		return nil, err
	}
	defer closeRenamed()
	net, err := cs.loadControlNet(runtime.LoadOptions{}, files...)
	if err != nil {
		return nil, fmt.Errorf("ControlNet %s (for %s): %w", path, p.set.name, err)
	}
	if p.control.controlNets == nil {
		p.control.controlNets = map[string]controlNetModel{}
	}
	p.control.controlNets[path] = net
	return net, nil
}

// addT2IFeatures runs a T2I-Adapter's encoder on its condition and adds its scaled features
// to the step's, for both halves of the batch.
func (p *Pipeline) addT2IFeatures(cs *controlModels, st *controlStep, a T2IAdapter, width, height, batch int) error {
	info, err := checkpoint.ReadT2IAdapter(a.Path)
	if err != nil {
		return err
	}
	load, ok := cs.loadT2I[fmt.Sprintf("%s/%d", info.Model, info.InChannels)]
	if !ok || !slices.Equal(info.Channels, cs.t2iChannels) || info.NumResidualBlocks != cs.t2iBlocks[info.Model] {
		return fmt.Errorf("%s: a %s T2I-Adapter with %d input channels, widths %v and %d residual blocks per level: rfc's sd15 runs %s's (widths %v; %d blocks on 3 or 1 channels, the light one %d on 3)",
			a.Path, info.Model, info.InChannels, info.Channels, info.NumResidualBlocks, p.set.name, cs.t2iChannels, cs.t2iBlocks["ConditionEncoder"], cs.t2iBlocks["ConditionEncoderLight"])
	}
	if width%64 != 0 || height%64 != 0 {
		return fmt.Errorf("T2I-Adapter %s: the size %dx%d: a T2I-Adapter needs a width and height that are multiples of 64 (its encoder reduces the condition 64 times)", a.Path, width, height)
	}
	files, err := runtime.OpenWeights(a.Path)
	if err != nil {
		return err
	}
	defer runtime.CloseAll(files)
	enc, err := load(runtime.LoadOptions{}, files...)
	if err != nil {
		return fmt.Errorf("T2I-Adapter %s: %w", a.Path, err)
	}
	cond := a.Condition
	if info.InChannels == 1 {
		cond = grayImage(cond)
	}
	t, err := conditionTensor(cond, width, height, info.InChannels == 1)
	if err != nil {
		return fmt.Errorf("T2I-Adapter %s: condition image: %w", a.Path, err)
	}
	feats, shapes, err := enc(t.F32, t.Shape)
	if err != nil {
		return fmt.Errorf("T2I-Adapter %s: %w", a.Path, err)
	}
	s := float32(a.Scale)
	for i := range 4 {
		n := len(feats[i])
		if want := st.featureShapes[i][1:]; !slices.Equal(shapes[i][1:], want) {
			return fmt.Errorf("internal error: T2I-Adapter %s: features %d are %v, the UNet wants %v", a.Path, i, shapes[i], want)
		}
		for b := range batch {
			dst := st.features[i][b*n : (b+1)*n]
			for j, v := range feats[i] {
				dst[j] += float32(s * v) // Refiners' scale · features, then added
			}
		}
	}
	return nil
}

// predict runs the controlled UNet on one step's inputs: each ControlNet's residuals,
// scaled, summed as Refiners sums them (the ControlNet given last runs first, each adding
// to what the earlier ones stored, from 0), then the UNet.
func (st *controlStep) predict(x []float32, xShape []int, timestep, emb []float32, embShape []int) ([]float32, []int, error) {
	for n := range st.residuals {
		clear(st.residuals[n])
	}
	for k := len(st.nets) - 1; k >= 0; k-- {
		res, shapes, err := st.nets[k](x, xShape, timestep, emb, embShape, st.conditions[k], st.conditionShape)
		if err != nil {
			return nil, nil, err
		}
		s := st.scales[k]
		for n := range res {
			if !slices.Equal(shapes[n], st.residualShapes[n]) {
				return nil, nil, fmt.Errorf("internal error: ControlNet residual %d is %v, the UNet wants %v", n, shapes[n], st.residualShapes[n])
			}
			acc := st.residuals[n]
			for i, v := range res[n] {
				acc[i] = acc[i] + float32(v*s) // the product rounded first, as PyTorch does
			}
		}
	}
	return st.unet(x, xShape, timestep, emb, embShape, &st.residuals, &st.residualShapes, &st.features, &st.featureShapes)
}

// refinersControlNetFiles gives the files of a ControlNet in Refiners' layout (tensors named
// below the Controlnet: "DownBlocks.Chain_1.Conv2d.weight") under the compiled model's
// names ("Controlnet.DownBlocks…"), by a view of each such file with a renamed header; the
// other files are returned as they are. The tensor data is read from the original file.
func refinersControlNetFiles(files []*runtime.SafetensorsFile, specs []runtime.WeightSpec) ([]*runtime.SafetensorsFile, func(), error) {
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	if len(specs) == 0 {
		return files, closeAll, nil
	}
	probe, ok := strings.CutPrefix(specs[0].Param, "Controlnet.")
	if !ok {
		return files, closeAll, nil
	}
	out := slices.Clone(files)
	for i, f := range files {
		if _, ok := f.Info(probe); !ok {
			continue
		}
		r, err := renamedView(f.Path(), "Controlnet.")
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, r)
		v, err := runtime.ReadSafetensors(r, r.size, f.Path())
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		out[i] = v
	}
	return out, closeAll, nil
}

// renamedSafetensors is a safetensors file seen with every tensor name prefixed: a new
// header, then the original file's data.
type renamedSafetensors struct {
	f        *os.File
	header   []byte // length and JSON of the new header
	dataFrom int64  // where the data starts in the original file
	size     int64
}

func renamedView(path, prefix string) (*renamedSafetensors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*renamedSafetensors, error) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	info, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	var lenBuf [8]byte
	if _, err := f.ReadAt(lenBuf[:], 0); err != nil {
		return fail(err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > uint64(info.Size()-8) {
		return fail(errors.New("safetensors header longer than the file"))
	}
	raw := make([]byte, n)
	if _, err := f.ReadAt(raw, 8); err != nil {
		return fail(err)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return fail(err)
	}
	renamed := make(map[string]json.RawMessage, len(entries))
	for k, v := range entries {
		if k != "__metadata__" {
			k = prefix + k
		}
		renamed[k] = v
	}
	js, err := json.Marshal(renamed)
	if err != nil {
		return fail(err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	header := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	header = append(header, js...)
	dataFrom := 8 + int64(n)
	return &renamedSafetensors{f: f, header: header, dataFrom: dataFrom, size: int64(len(header)) + info.Size() - dataFrom}, nil
}

func (r *renamedSafetensors) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	if off < int64(len(r.header)) {
		done = copy(p, r.header[off:])
		if done == len(p) {
			return done, nil
		}
		off += int64(done)
	}
	n, err := r.f.ReadAt(p[done:], off-int64(len(r.header))+r.dataFrom)
	return done + n, err
}

func (r *renamedSafetensors) Close() error { return r.f.Close() }

// controlUnits describes the request's ControlNets, then its T2I-Adapters, for the PNG
// parameters: "Model: NAME, Weight: SCALE" (NAME the file's or folder's base name).
func controlUnits(r Request) []string {
	var out []string
	for _, c := range r.ControlNets {
		out = append(out, "Model: "+modelName(c.Path)+", Weight: "+pyFloat(c.Scale))
	}
	for _, a := range r.T2IAdapters {
		out = append(out, "Model: "+modelName(a.Path)+", Weight: "+pyFloat(a.Scale))
	}
	return out
}

// grayImage is PIL's convert("L") of an RGB image: ITU-R 601-2 luma in PIL's fixed point,
// (19595·R + 38470·G + 7471·B + 2¹⁵) >> 16, so that a gray image loaded as RGB comes back
// exactly. A one-channel image is returned as it is.
func grayImage(m *imaging.Image) *imaging.Image {
	if m.Channels != 3 {
		return m
	}
	out := &imaging.Image{Width: m.Width, Height: m.Height, Channels: 1, Pix: make([]uint8, m.Width*m.Height)}
	for i := range out.Pix {
		r, g, b := uint32(m.Pix[3*i]), uint32(m.Pix[3*i+1]), uint32(m.Pix[3*i+2])
		out.Pix[i] = uint8((19595*r + 38470*g + 7471*b + 0x8000) >> 16)
	}
	return out
}
