// Package checkpoint opens and checks published ControlNet and T2I-Adapter checkpoints for
// Stable Diffusion 1.5 (single files, diffusers folders, Refiners' and TencentARC's files):
// what kind of model they hold and with which sizes, read from their configs and from the
// names and shapes of their tensors. It links the runtime only, not the compiler: package
// control injects the models into a UNet with it, and the sd15 program (pipeline/sd15) loads
// them into its compiled packages with it.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfc-project/rfc/runtime"
)

// ControlNet is a ControlNet checkpoint, opened and checked: the original single file
// (control_model.*, the whole SD model beside it or not), a diffusers folder (or its
// diffusion_pytorch_model.safetensors) or a Refiners file.
type ControlNet struct {
	Path              string
	ConditionChannels []int // the condition encoder's widths, read from the file
	files             []*runtime.SafetensorsFile
}

// Files are the checkpoint's files, open until Close.
func (c *ControlNet) Files() []*runtime.SafetensorsFile { return c.files }

// Close closes the checkpoint's files.
func (c *ControlNet) Close() error {
	runtime.CloseAll(c.files)
	return nil
}

// OpenControlNet opens a ControlNet checkpoint and refuses, with one message naming the
// file, what rfc's SD1.5 ControlNet cannot run: an SDXL ControlNet, a diffusers config
// asking for BGR conditions, pooled residuals or another number of condition channels, a
// file without a condition encoder.
func OpenControlNet(path string) (*ControlNet, error) {
	if err := checkDiffusersConfig(path); err != nil {
		return nil, err
	}
	files, err := runtime.OpenWeights(path)
	if err != nil {
		return nil, err
	}
	c := &ControlNet{Path: path, files: files}
	var names []string
	for _, f := range files {
		names = append(names, f.Names()...)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "add_embedding.") || strings.Contains(n, "control_model.label_emb.") {
			c.Close()
			return nil, fmt.Errorf("%s: an SDXL ControlNet (it has %q): rfc's ControlNet adapters are Stable Diffusion 1.5's", path, n)
		}
	}
	if c.ConditionChannels, err = conditionChannels(files); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// conditionKeys are the condition encoder's first convolution and its three stride-2
// convolutions in the single file, diffusers and Refiners layouts (any prefix before).
var conditionKeys = [][4]string{
	{"control_model.input_hint_block.0.weight", "control_model.input_hint_block.4.weight", "control_model.input_hint_block.8.weight", "control_model.input_hint_block.12.weight"},
	{"controlnet_cond_embedding.conv_in.weight", "controlnet_cond_embedding.blocks.1.weight", "controlnet_cond_embedding.blocks.3.weight", "controlnet_cond_embedding.blocks.5.weight"},
	{"ConditionEncoder.Chain_1.Conv2d.weight", "ConditionEncoder.Chain_2.Conv2d_2.weight", "ConditionEncoder.Chain_3.Conv2d_2.weight", "ConditionEncoder.Chain_4.Conv2d_2.weight"},
}

// conditionChannels reads the condition encoder's widths from the shapes of its
// convolutions, in whichever layout the files hold them.
func conditionChannels(files []*runtime.SafetensorsFile) ([]int, error) {
	for _, keys := range conditionKeys {
		var widths []int
		for _, k := range keys {
			info, ok := findSuffix(files, k)
			if !ok || len(info.Shape) != 4 {
				break
			}
			widths = append(widths, info.Shape[0])
		}
		if len(widths) == len(keys) {
			return widths, nil
		}
	}
	return nil, errors.New("no ControlNet condition encoder (control_model.input_hint_block.*, controlnet_cond_embedding.* or DownBlocks.Chain_1.Residual.ConditionEncoder.*): is it a ControlNet?")
}

func findSuffix(files []*runtime.SafetensorsFile, key string) (runtime.TensorInfo, bool) {
	for _, f := range files {
		if info, ok := f.Info(key); ok {
			return info, true
		}
		for _, n := range f.Names() {
			if strings.HasSuffix(n, "."+key) {
				return f.Info(n)
			}
		}
	}
	return runtime.TensorInfo{}, false
}

// checkDiffusersConfig reads the config.json of a diffusers ControlNet (the folder given,
// or beside the file given), when there is one, and refuses settings whose maths rfc's
// ControlNet does not do.
func checkDiffusersConfig(path string) error {
	cfgPath := filepath.Join(path, "config.json")
	if info, err := os.Stat(path); err == nil && !info.IsDir() {
		cfgPath = filepath.Join(filepath.Dir(path), "config.json")
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil // no config: a single file or a Refiners file
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %v", cfgPath, err)
	}
	if class, ok := cfg["_class_name"].(string); ok && class != "ControlNetModel" {
		if class == "UNet2DConditionModel" || !strings.Contains(class, "ControlNet") {
			return nil // the config of another component beside a single file: not ours
		}
		return fmt.Errorf("%s: _class_name is %q: rfc reads ControlNetModel checkpoints", cfgPath, class)
	}
	if order, ok := cfg["controlnet_conditioning_channel_order"].(string); ok && order != "rgb" {
		return fmt.Errorf("%s: controlnet_conditioning_channel_order is %q: rfc's ControlNet takes RGB conditions as published ControlNets do (this one wants the channels flipped)", cfgPath, order)
	}
	if pool, ok := cfg["global_pool_conditions"].(bool); ok && pool {
		return fmt.Errorf("%s: global_pool_conditions is true (residuals averaged over the image, shuffle models): rfc's ControlNet does not pool", cfgPath)
	}
	if n, ok := cfg["conditioning_channels"].(float64); ok && n != 3 {
		return fmt.Errorf("%s: conditioning_channels is %v: rfc's ControlNet takes 3-channel conditions", cfgPath, n)
	}
	if n, ok := cfg["addition_embed_type"].(string); ok && n != "" {
		return fmt.Errorf("%s: addition_embed_type is %q: an SDXL ControlNet; rfc's ControlNet adapters are Stable Diffusion 1.5's", cfgPath, n)
	}
	return nil
}
