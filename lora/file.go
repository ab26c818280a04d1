// Package lora reads community LoRA weight files and merges them into a model's weights
// at load time. It needs only package runtime (and kernels), so that programs built on
// generated packages can apply LoRAs without the compiler; the compiler's adapters
// package reads files through it too.
//
// Two namings are understood, each naming the adapted layer by a checkpoint key K of the
// model (its key in any layout the model declares, without the weight's ".weight"):
//
//   - PEFT / diffusers: PREFIX.K.lora_A.weight (down), PREFIX.K.lora_B.weight (up),
//     where PREFIX is anything (base_model.model, unet, text_encoder, transformer, or
//     nothing); alpha from an optional PREFIX.K.alpha scalar, else from
//     adapter_config.json beside the file (lora_alpha, use_rslora), else alpha = rank;
//   - kohya / sd-webui: lora_WORD_F.lora_down.weight, lora_WORD_F.lora_up.weight and
//     lora_WORD_F.alpha, where F is K with its dots replaced by underscores and WORD is
//     one word without underscores (unet, te, te1, …) or absent.
//
// A LoRA adds scale·(alpha/rank)·up·down to the adapted weight: a Linear's down is
// [rank, in] and up [out, rank]; a Conv2d's down is [rank, in, kh, kw] and up
// [out, rank, 1, 1], taken as matrices [rank, in·kh·kw] and [out, rank].
//
// Merging (Plan, Patch) matches each module of the files to one weight of one of
// several models (Target: the UNet and the text encoder of a pipeline), by the model's
// checkpoint keys in every layout it declares, so a file written against the diffusers
// names, the LDM single-file names or Refiners' paths fits the same model.
package lora

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/runtime"
)

// File is a LoRA weight file, read and checked for its own consistency but not yet
// matched with a model.
type File struct {
	Path    string    // the safetensors file
	Modules []*Module // the adapted layers, by stem
	file    *runtime.SafetensorsFile
	// From adapter_config.json, when there is one.
	configAlpha float64
	hasConfig   bool
	rsLora      bool
}

// Module is one adapted layer of a file: its tensors' keys and shapes.
type Module struct {
	Stem             string // the keys' common part, which names the layer
	Down, Up, Alpha  string // tensor keys (Alpha "" when absent)
	Kohya            bool   // lora_down/lora_up naming
	DownInfo, UpInfo runtime.TensorInfo
}

// Rank is the module's rank, read from its down tensor.
func (m *Module) Rank() int { return m.DownInfo.Shape[0] }

// Open opens a LoRA file: a .safetensors file, or a PEFT directory holding
// adapter_model.safetensors and adapter_config.json. Keys it does not understand, and
// modules missing their down or up tensor, are errors listed together.
func Open(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	file := path
	if st.IsDir() {
		file = filepath.Join(path, "adapter_model.safetensors")
	}
	f, err := runtime.OpenSafetensors(file)
	if err != nil {
		return nil, err
	}
	lf := &File{Path: file, file: f}
	if err := lf.readConfig(filepath.Join(filepath.Dir(file), "adapter_config.json"), st.IsDir() || filepath.Base(file) == "adapter_model.safetensors"); err != nil {
		f.Close()
		return nil, err
	}
	if err := lf.index(); err != nil {
		f.Close()
		return nil, err
	}
	return lf, nil
}

// Read reads a LoRA safetensors file of size bytes through r (no adapter_config.json);
// name identifies it in errors. r must stay readable until the File is no longer used.
func Read(r io.ReaderAt, size int64, name string) (*File, error) {
	f, err := runtime.ReadSafetensors(r, size, name)
	if err != nil {
		return nil, err
	}
	lf := &File{Path: name, file: f}
	if err := lf.index(); err != nil {
		return nil, err
	}
	return lf, nil
}

// Close releases the file.
func (lf *File) Close() error { return lf.file.Close() }

// Tensor reads one tensor of the file as float32.
func (lf *File) Tensor(key string) (*runtime.Tensor, error) { return lf.file.Tensor(key) }

// Alpha is a module's alpha as training set it: its alpha tensor, else the config's
// lora_alpha, else the rank; with use_rslora, the scale alpha/√rank is returned as the
// alpha that gives it over the rank (alpha·√rank).
func (lf *File) Alpha(m *Module) (float64, error) {
	var alpha float64
	switch {
	case m.Alpha != "":
		a, err := lf.file.Tensor(m.Alpha)
		if err != nil {
			return 0, err
		}
		if len(a.F32) != 1 {
			return 0, fmt.Errorf("%s: alpha %q has shape %v; it must hold one value", m.Stem, m.Alpha, a.Shape)
		}
		alpha = float64(a.F32[0])
	case lf.hasConfig:
		alpha = lf.configAlpha
	default:
		alpha = float64(m.Rank())
	}
	if math.IsNaN(alpha) || math.IsInf(alpha, 0) {
		return 0, fmt.Errorf("%s: alpha is %g", m.Stem, alpha)
	}
	if lf.rsLora {
		// rsLoRA scales by alpha/√rank, which is (alpha·√rank)/rank.
		alpha *= math.Sqrt(float64(m.Rank()))
	}
	return alpha, nil
}

// readConfig reads PEFT's adapter_config.json, which belongs to a file called
// adapter_model.safetensors (or a PEFT directory) only.
func (lf *File) readConfig(path string, peftLayout bool) error {
	if !peftLayout {
		return nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var cfg struct {
		LoraAlpha    *float64       `json:"lora_alpha"`
		UseRsLora    bool           `json:"use_rslora"`
		UseDora      bool           `json:"use_dora"`
		AlphaPattern map[string]any `json:"alpha_pattern"`
		PeftType     string         `json:"peft_type"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	switch {
	case cfg.PeftType != "" && cfg.PeftType != "LORA":
		return fmt.Errorf("%s: peft_type %s is not LORA", path, cfg.PeftType)
	case cfg.UseDora:
		return fmt.Errorf("%s: DoRA (use_dora) is not supported", path)
	case len(cfg.AlphaPattern) > 0:
		return fmt.Errorf("%s: alpha_pattern (per-layer alpha) is not supported", path)
	}
	// rank_pattern needs nothing: ranks are read from the tensors.
	if cfg.LoraAlpha != nil {
		lf.configAlpha, lf.hasConfig = *cfg.LoraAlpha, true
	}
	lf.rsLora = cfg.UseRsLora
	return nil
}

// index groups the file's keys by module and checks each module's tensors: floating
// point, down and up both present, ranks that agree.
func (lf *File) index() error {
	var problems []string
	byStem := map[string]*Module{}
	module := func(stem string) *Module {
		if m, ok := byStem[stem]; ok {
			return m
		}
		m := &Module{Stem: stem}
		byStem[stem] = m
		return m
	}
	names := lf.file.Names()
	slices.Sort(names)
	for _, key := range names {
		info, _ := lf.file.Info(key)
		var stem string
		var slot *string
		kohya := false
		switch {
		case cut(key, ".lora_A.weight", &stem):
			slot = &module(stem).Down
		case cut(key, ".lora_B.weight", &stem):
			slot = &module(stem).Up
		case cut(key, ".lora_down.weight", &stem):
			slot, kohya = &module(stem).Down, true
		case cut(key, ".lora_up.weight", &stem):
			slot, kohya = &module(stem).Up, true
		case cut(key, ".alpha", &stem):
			slot = &module(stem).Alpha
		default:
			problems = append(problems, fmt.Sprintf("key %q (%s %v) is not a LoRA tensor of a known naming (lora_A/lora_B, lora_down/lora_up, alpha; DoRA, LoHa, LoKr and LoCon mid tensors are not supported)", key, info.DType, info.Shape))
			continue
		}
		if !info.DType.IsFloat() {
			problems = append(problems, fmt.Sprintf("key %q has dtype %s; LoRA tensors need a floating-point dtype", key, info.DType))
			continue
		}
		*slot = key
		if kohya {
			byStem[stem].Kohya = true
		}
	}
	for _, m := range byStem {
		switch {
		case m.Down == "" && m.Up == "":
			if m.Alpha != "" {
				problems = append(problems, fmt.Sprintf("key %q has no lora down and up weights beside it", m.Alpha))
			}
			continue
		case m.Down == "":
			problems = append(problems, fmt.Sprintf("key %q has no down weight beside it", m.Up))
			continue
		case m.Up == "":
			problems = append(problems, fmt.Sprintf("key %q has no up weight beside it", m.Down))
			continue
		}
		m.DownInfo, _ = lf.file.Info(m.Down)
		m.UpInfo, _ = lf.file.Info(m.Up)
		d, u := m.DownInfo.Shape, m.UpInfo.Shape
		switch {
		case len(d) != 2 && len(d) != 4 || len(u) != 2 && len(u) != 4:
			problems = append(problems, fmt.Sprintf("%s: down %v and up %v must have 2 or 4 dimensions", m.Stem, d, u))
			continue
		case d[0] < 1:
			problems = append(problems, fmt.Sprintf("%s: down %v has rank 0", m.Stem, d))
			continue
		case u[1] != d[0]:
			problems = append(problems, fmt.Sprintf("%s: down %v has rank %d, up %v rank %d", m.Stem, d, d[0], u, u[1]))
			continue
		}
		if m.Alpha != "" {
			if info, _ := lf.file.Info(m.Alpha); info.Len() != 1 {
				problems = append(problems, fmt.Sprintf("%s: alpha %q has shape %v; it must hold one value", m.Stem, m.Alpha, info.Shape))
				continue
			}
		}
		lf.Modules = append(lf.Modules, m)
	}
	slices.SortFunc(lf.Modules, func(a, b *Module) int { return strings.Compare(a.Stem, b.Stem) })
	if len(problems) > 0 {
		slices.Sort(problems)
		lines := runtime.SummarizeLines(problems, runtime.MaxListedProblems, "problems")
		return fmt.Errorf("%s:\n  %s", lf.Path, strings.Join(lines, "\n  "))
	}
	if len(lf.Modules) == 0 {
		return fmt.Errorf("%s: no LoRA tensors", lf.Path)
	}
	return nil
}

func cut(key, suffix string, stem *string) bool {
	s, ok := strings.CutSuffix(key, suffix)
	if ok && s != "" {
		*stem = s
		return true
	}
	return false
}
