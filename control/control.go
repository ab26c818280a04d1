// Package control injects ControlNets and T2I-Adapters into Stable Diffusion 1.5's UNet
// (models/sd15.rfn's SD1UNet) as adapters, the way Refiners' SD1ControlnetAdapter and
// SD1T2IAdapter do: it builds the adapters.Spec of each (the declarations are
// models/controlnet.rfn's), checks and reads published ControlNet weights (the original
// single file, a diffusers folder, Refiners' files) and gives them under the injected
// module's keys.
//
// A ControlNet runs on the UNet's input beside its first convolution and adds
// scale · residual_n to each of the 12 skip connections and to the middle block's output;
// the injection adds the inputs NAME_condition (the condition image, [1 or batch, 3, 8h,
// 8w] in [0, 1]) and NAME_scale. A T2I-Adapter's four feature maps (computed once by
// models/t2i_adapter.rfn's encoders) are added, times its scale, to the UNet's down path at
// the end of its chains 2, 5, 8 and 11; its injection adds the inputs NAME_features_0 … 3
// and NAME_scale. Any number of both stack, each with its own name; ejecting one
// (adapters.Eject) gives back the module without it exactly.
package control

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/adapters"
	"github.com/rfc-project/rfc/control/checkpoint"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// UNet is what the adapters need to know of the SD1UNet they are injected into.
type UNet struct {
	Channels         []int // the four levels' widths: [320, 640, 1280, 1280]
	ClipEmbeddingDim int
	NumHeads         int
	NumGroups        int
	Batch            int // x's batch, height and width (static: adapters need fixed sizes)
	Height, Width    int
}

// The layers the adapters wrap, by class and checkpoint key (keys survive the renaming
// that injections cause).
const (
	firstConvKey = "DownBlocks.Chain_1.Conv2d"
	middleKey    = "Sum.MiddleBlock"
)

func concatenatorKey(chain int) string {
	return fmt.Sprintf("UpBlocks.Chain_%d.ResidualConcatenator", chain)
}

// t2iTargets are the last layers of DownBlocks chains 2, 5, 8 and 11 before their
// accumulators (Refiners' SD1T2IAdapter.residual_indices), by class and key.
var t2iTargets = [4][2]string{
	{"CLIPLCrossAttention", "DownBlocks.Chain_3.CLIPLCrossAttention"},
	{"CLIPLCrossAttention", "DownBlocks.Chain_6.CLIPLCrossAttention"},
	{"CLIPLCrossAttention", "DownBlocks.Chain_9.CLIPLCrossAttention"},
	{"ResidualBlock", "DownBlocks.Chain_12.ResidualBlock"},
}

// ReadUNet reads the settings of an elaborated SD1UNet and checks that it has the layers
// the adapters wrap and fixed sizes.
func ReadUNet(m *ir.Module) (UNet, error) {
	u, err := readUNetSettings(m)
	if err != nil {
		return UNet{}, err
	}
	bad := func(format string, args ...any) (UNet, error) {
		return UNet{}, fmt.Errorf("module %s: %s", m.Name, fmt.Sprintf(format, args...))
	}
	x := m.Input("x")
	if !x.Type.Shape.Static() {
		return bad("ControlNets and T2I-Adapters need the UNet's sizes: its input x is %s (give --set batch=… --set height=… --set width=…, or inputs)", x.Type)
	}
	d := x.Type.Shape.Ints()
	u.Batch, u.Height, u.Width = d[0], d[2], d[3]
	return u, nil
}

// readUNetSettings reads what ReadUNet does but the sizes, which may be chosen at run time.
func readUNetSettings(m *ir.Module) (UNet, error) {
	var u UNet
	settings := map[string]string{}
	for _, s := range m.Settings {
		settings[s.Name] = s.Value
	}
	bad := func(format string, args ...any) (UNet, error) {
		return UNet{}, fmt.Errorf("module %s: %s", m.Name, fmt.Sprintf(format, args...))
	}
	var err error
	if u.Channels, err = intList(settings["channels"]); err != nil || len(u.Channels) != 4 {
		return bad("not a Stable Diffusion 1.5 UNet (SD1UNet): it has no setting channels of four levels")
	}
	for name, dst := range map[string]*int{"clip_embedding_dim": &u.ClipEmbeddingDim, "num_heads": &u.NumHeads, "num_groups": &u.NumGroups} {
		if *dst, err = strconv.Atoi(settings[name]); err != nil {
			return bad("not a Stable Diffusion 1.5 UNet (SD1UNet): it has no setting %s", name)
		}
	}
	for _, k := range []string{firstConvKey, middleKey, concatenatorKey(1)} {
		if findLayer(m, k) == nil {
			return bad("not a Stable Diffusion 1.5 UNet (SD1UNet): it has no layer with the key %q", k)
		}
	}
	x := m.Input("x")
	if x == nil || len(x.Type.Shape) != 4 {
		return bad("not a Stable Diffusion 1.5 UNet (SD1UNet): it has no input x [batch, channels, height, width]")
	}
	return u, nil
}

func findLayer(m *ir.Module, key string) *ir.Scope {
	var found *ir.Scope
	m.Root.Walk(func(s *ir.Scope) {
		if found == nil && s.Parent != nil && s.Key == key && !adapters.Internal(s) {
			found = s
		}
	})
	return found
}

func intList(s string) ([]int, error) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(s), "[")
	if inner, ok2 := strings.CutSuffix(inner, "]"); ok && ok2 {
		var out []int
		for _, p := range strings.Split(inner, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%q is not a list of ints", s)
}

// ControlNetSpec is the injection of one ControlNet called name into the UNet u:
// ControlnetAdapter around its first convolution, ControlnetResidual around each of the 12
// skip concatenations, ControlnetMiddle around its middle block. conditionChannels are the
// condition encoder's widths ([16, 32, 96, 256] as published); condition is the condition
// image's shape, [1 or u.Batch, 3, 8·u.Height, 8·u.Width].
func ControlNetSpec(u UNet, name string, scale float64, conditionChannels []int, condition []int) (adapters.Spec, error) {
	if !ir.IsIdent(name) {
		return adapters.Spec{}, fmt.Errorf("ControlNet name %q is not an identifier", name)
	}
	if len(condition) != 4 || (condition[0] != 1 && condition[0] != u.Batch) || condition[1] != 3 || condition[2] != 8*u.Height || condition[3] != 8*u.Width {
		return adapters.Spec{}, fmt.Errorf("ControlNet %s: the condition image is %v; the UNet's latent [%d, 4, %d, %d] wants [1 or %d, 3, %d, %d] (RGB in [0, 1], 8 times the latent's size)",
			name, condition, u.Batch, u.Height, u.Width, u.Batch, 8*u.Height, 8*u.Width)
	}
	if len(conditionChannels) == 0 {
		return adapters.Spec{}, fmt.Errorf("ControlNet %s: no condition encoder widths", name)
	}
	spec := adapters.Spec{Name: name, Scale: scale}
	spec.Targets = append(spec.Targets, adapters.Target{Class: "Conv2d", Key: firstConvKey, Adapter: "ControlnetAdapter", Params: map[string]string{
		"channels":           runtime.FormatInts(u.Channels),
		"clip_embedding_dim": strconv.Itoa(u.ClipEmbeddingDim),
		"num_heads":          strconv.Itoa(u.NumHeads),
		"num_groups":         strconv.Itoa(u.NumGroups),
		"condition_channels": runtime.FormatInts(conditionChannels),
		"condition_batch":    strconv.Itoa(condition[0]),
		"condition_height":   strconv.Itoa(condition[2]),
		"condition_width":    strconv.Itoa(condition[3]),
	}})
	spec.Targets = append(spec.Targets, adapters.Target{Class: "MiddleBlock", Key: middleKey, Adapter: "ControlnetMiddle"})
	for chain := 1; chain <= 12; chain++ {
		spec.Targets = append(spec.Targets, adapters.Target{Class: "ResidualConcatenator", Key: concatenatorKey(chain), Adapter: "ControlnetResidual"})
	}
	return spec, nil
}

// T2ISpec is the injection of one T2I-Adapter called name into the UNet u: T2IFeatures
// around the last layer of DownBlocks chains 2, 5, 8 and 11. channels are the adapter's
// four feature widths (the UNet's: [320, 640, 1280, 1280]); featureBatch is the features'
// batch, 1 (one condition for the whole batch) or u.Batch.
func T2ISpec(u UNet, name string, scale float64, featureBatch int) (adapters.Spec, error) {
	if !ir.IsIdent(name) {
		return adapters.Spec{}, fmt.Errorf("T2I-Adapter name %q is not an identifier", name)
	}
	if featureBatch != 1 && featureBatch != u.Batch {
		return adapters.Spec{}, fmt.Errorf("T2I-Adapter %s: its features have batch %d; the UNet's batch is %d (give 1 or %d)", name, featureBatch, u.Batch, u.Batch)
	}
	spec := adapters.Spec{Name: name, Scale: scale, Adapter: "T2IFeatures", Params: map[string]string{
		"channels":      runtime.FormatInts(u.Channels),
		"feature_batch": strconv.Itoa(featureBatch),
		"height":        strconv.Itoa(u.Height),
		"width":         strconv.Itoa(u.Width),
	}}
	for i, t := range t2iTargets {
		spec.Targets = append(spec.Targets, adapters.Target{Class: t[0], Key: t[1], Params: map[string]string{"index": strconv.Itoa(i)}})
	}
	return spec, nil
}

// T2IFeatureShapes are the shapes of the four feature inputs T2ISpec adds.
func T2IFeatureShapes(u UNet, featureBatch int) [4][]int {
	var out [4][]int
	for i := range out {
		f := 1 << i
		out[i] = []int{featureBatch, u.Channels[i], (u.Height + f - 1) / f, (u.Width + f - 1) / f}
	}
	return out
}

// InputsName is the name of the injection InputsSpec makes: its inputs are
// control_residual_0 … 12 and control_features_0 … 3.
const InputsName = "control"

// InputsSpec gives the UNet u the inputs of a program that runs its ControlNets and
// T2I-Adapters apart (models/controlnet.rfn's ControlInputs): the sum of the ControlNets'
// scaled residuals, control_residual_0 … 12, added to the skip connections and the middle
// block; the sum of the T2I-Adapters' scaled features, control_features_0 … 3, added to the
// down path. All are of the UNet's batch; zeros give the UNet's output exactly.
func InputsSpec(u UNet) adapters.Spec {
	spec := adapters.Spec{Name: InputsName, Adapter: "ControlInputs", Params: map[string]string{
		"channels": runtime.FormatInts(u.Channels),
		"batch":    strconv.Itoa(u.Batch),
		"height":   strconv.Itoa(u.Height),
		"width":    strconv.Itoa(u.Width),
	}}
	for i, t := range t2iTargets {
		spec.Targets = append(spec.Targets, adapters.Target{Class: t[0], Key: t[1], Params: map[string]string{"role": "features", "n": strconv.Itoa(i)}})
	}
	spec.Targets = append(spec.Targets, adapters.Target{Class: "MiddleBlock", Key: middleKey, Params: map[string]string{"role": "middle"}})
	for chain := 1; chain <= 12; chain++ {
		spec.Targets = append(spec.Targets, adapters.Target{Class: "ResidualConcatenator", Key: concatenatorKey(chain), Params: map[string]string{"role": "skip", "n": strconv.Itoa(12 - chain)}})
	}
	return spec
}

// InjectInputs injects InputsSpec into m, an SD1UNet. A UNet whose sizes are chosen at run
// time gets ControlInputsAnySize instead: inputs whose sizes are names, checked by the
// compiled package against the UNet's maps (one package for every batch and image size,
// as package sd15 compiles its UNets).
func InjectInputs(m *ir.Module, prog *dsl.Program) (*ir.Module, error) {
	if err := checkProgram(prog, "ControlInputs"); err != nil {
		return nil, err
	}
	if x := m.Input("x"); x != nil && len(x.Type.Shape) == 4 && !x.Type.Shape.Static() {
		if err := checkProgram(prog, "ControlInputsAnySize"); err != nil {
			return nil, err
		}
		u, err := readUNetSettings(m)
		if err != nil {
			return nil, err
		}
		spec := InputsSpec(u)
		spec.Adapter = "ControlInputsAnySize"
		spec.Params = map[string]string{"channels": runtime.FormatInts(u.Channels)}
		return adapters.Inject(m, prog, spec)
	}
	u, err := ReadUNet(m)
	if err != nil {
		return nil, err
	}
	return adapters.Inject(m, prog, InputsSpec(u))
}

// checkProgram tells the user where the declarations are when prog lacks them.
func checkProgram(prog *dsl.Program, decls ...string) error {
	for _, d := range decls {
		if _, err := prog.Adapter(d); err != nil {
			return fmt.Errorf("no adapter %s: ControlNets and T2I-Adapters are declared in models/controlnet.rfn, which imports sd15.rfn: give that file (with --model SD1UNet)", d)
		}
	}
	return nil
}

// InjectT2IAdapter injects a T2I-Adapter called name into m (an SD1UNet with fixed sizes).
// Its features are the module's inputs NAME_features_0 … 3, of batch featureBatch.
func InjectT2IAdapter(m *ir.Module, prog *dsl.Program, name string, scale float64, featureBatch int) (*ir.Module, error) {
	if err := checkProgram(prog, "T2IFeatures"); err != nil {
		return nil, err
	}
	u, err := ReadUNet(m)
	if err != nil {
		return nil, err
	}
	spec, err := T2ISpec(u, name, scale, featureBatch)
	if err != nil {
		return nil, err
	}
	return adapters.Inject(m, prog, spec)
}

// ControlNet is a ControlNet checkpoint, opened and checked (package checkpoint, which
// the sd15 program uses without the compiler).
type ControlNet = checkpoint.ControlNet

// OpenControlNet opens a ControlNet checkpoint: see checkpoint.OpenControlNet.
func OpenControlNet(path string) (*ControlNet, error) { return checkpoint.OpenControlNet(path) }

// T2IAdapter is what a T2I-Adapter checkpoint holds: see checkpoint.T2IAdapter.
type T2IAdapter = checkpoint.T2IAdapter

// ReadT2IAdapter reads what kind of T2I-Adapter the checkpoint at path is: see
// checkpoint.ReadT2IAdapter.
func ReadT2IAdapter(path string) (*T2IAdapter, error) { return checkpoint.ReadT2IAdapter(path) }

// InjectControlNet injects the ControlNet c, called name, into m (an SD1UNet with fixed
// sizes from a program that holds models/controlnet.rfn), for a condition image of shape
// condition, and returns the module and the ControlNet's weights under the module's keys
// (for adapters.Weights, or a weights file of the compiled engine). A file that does not
// fit (missing keys, other shapes) is refused with every problem listed, before anything
// is injected.
func InjectControlNet(m *ir.Module, prog *dsl.Program, c *ControlNet, name string, scale float64, condition []int) (*ir.Module, map[string]*runtime.Tensor, error) {
	if err := checkProgram(prog, "ControlnetAdapter", "ControlnetResidual", "ControlnetMiddle"); err != nil {
		return nil, nil, err
	}
	u, err := ReadUNet(m)
	if err != nil {
		return nil, nil, err
	}
	spec, err := ControlNetSpec(u, name, scale, c.ConditionChannels, condition)
	if err != nil {
		return nil, nil, err
	}
	weights, err := readControlNet(c, prog, u)
	if err != nil {
		return nil, nil, err
	}
	out, err := adapters.Inject(m, prog, spec)
	if err != nil {
		return nil, nil, err
	}
	// The Controlnet's parameters in the injected module, by their path below it.
	var cn *ir.Scope
	out.Root.Walk(func(s *ir.Scope) {
		if cn == nil && s.Class == "Controlnet" && s.Parent != nil && s.Parent.Adapter == name && s.Parent.Class == "ControlnetAdapter" {
			cn = s
		}
	})
	if cn == nil {
		return nil, nil, fmt.Errorf("internal error: ControlNet %s: no Controlnet layer after injection", name)
	}
	prefix := cn.Path() + "."
	tensors := map[string]*runtime.Tensor{}
	for _, p := range out.Params {
		rel, ok := strings.CutPrefix(p.Name, prefix)
		if !ok {
			continue
		}
		t, ok := weights[rel]
		if !ok || !slices.Equal(t.Shape, p.Type.Shape.Ints()) {
			return nil, nil, fmt.Errorf("internal error: ControlNet %s: no weight for %s %s", name, rel, p.Type)
		}
		tensors[p.Key] = t
	}
	if len(tensors) != len(weights) {
		return nil, nil, fmt.Errorf("internal error: ControlNet %s: %d weights read, %d parameters injected", name, len(weights), len(tensors))
	}
	return out, tensors, nil
}

// readControlNet reads the ControlNet's weights by their paths below Controlnet, located by the
// stand-alone SD1Controlnet of the same sizes in whichever layout the file uses.
func readControlNet(c *ControlNet, prog *dsl.Program, u UNet) (map[string]*runtime.Tensor, error) {
	alone, err := prog.Elaborate(dsl.Options{Model: "SD1Controlnet", Set: map[string]string{
		"channels":           runtime.FormatInts(u.Channels),
		"clip_embedding_dim": strconv.Itoa(u.ClipEmbeddingDim),
		"num_heads":          strconv.Itoa(u.NumHeads),
		"num_groups":         strconv.Itoa(u.NumGroups),
		"condition_channels": runtime.FormatInts(c.ConditionChannels),
		"height":             "8", "width": "8", "batch": "1", "tokens": "1", "condition_height": "64", "condition_width": "64",
	}})
	if err != nil {
		return nil, fmt.Errorf("%s: %v", c.Path, dsl.Detail(err))
	}
	specs := make([]runtime.WeightSpec, len(alone.Params))
	for i, p := range alone.Params {
		// Refiners' files name the tensors below the Controlnet itself.
		rel := strings.TrimPrefix(p.Name, "Controlnet.")
		specs[i] = runtime.WeightSpec{Key: rel, Param: rel, Shape: p.Type.Shape.Ints(), Layouts: p.LayoutKeys}
	}
	set, err := runtime.LocateWeights("Controlnet", specs, c.Files()...)
	if err != nil {
		return nil, fmt.Errorf("ControlNet %s: %w", c.Path, err)
	}
	out := make(map[string]*runtime.Tensor, len(specs))
	for i, s := range specs {
		t, err := set.ReadTensor(i)
		if err != nil {
			return nil, fmt.Errorf("ControlNet %s: %w", c.Path, err)
		}
		out[s.Param] = t
	}
	return out, nil
}
