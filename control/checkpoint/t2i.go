package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/rfc-project/rfc/runtime"
)

// T2IAdapter is what a T2I-Adapter checkpoint holds: which encoder of
// models/t2i_adapter.rfn and its sizes, read from a diffusers config or from the tensors'
// names and shapes (TencentARC's files, Refiners' files, a diffusers file alone).
type T2IAdapter struct {
	Path              string
	Model             string // "ConditionEncoder" (full) or "ConditionEncoderLight"
	InChannels        int    // 3, or 1 for the grey canny and sketch adapters
	Channels          []int  // the four levels' widths
	NumResidualBlocks int
}

// Settings are the --set values of the encoder's entry point.
func (a *T2IAdapter) Settings() map[string]string {
	return map[string]string{
		"in_channels":         strconv.Itoa(a.InChannels),
		"channels":            runtime.FormatInts(a.Channels),
		"num_residual_blocks": strconv.Itoa(a.NumResidualBlocks),
	}
}

// The tensors that tell a T2I-Adapter's structure, in TencentARC's, diffusers' (adapter.
// before) and Refiners' names.
var (
	fullLevelBlock = []*regexp.Regexp{
		regexp.MustCompile(`^(?:.*\.)?body\.(\d+)\.resnets\.(\d+)\.block1\.weight$`), // diffusers: level, block
		regexp.MustCompile(`^StatefulResidualBlocks_(\d+)\.ResidualBlocks\.Chain\.ResidualBlock(?:_(\d+))?\.Conv2d_1\.weight$`),
	}
	tencentBlock    = regexp.MustCompile(`^(?:.*\.)?body\.(\d+)\.block1\.weight$`) // block index over all levels
	lightOut        = regexp.MustCompile(`^(?:.*\.)?body\.(\d+)\.out_conv\.weight$`)
	lightOutRef     = regexp.MustCompile(`^StatefulLightResidualBlocks_(\d+)\.LightResidualBlocks\.Conv2d_2\.weight$`)
	lightBlock      = regexp.MustCompile(`^(?:.*\.)?body\.0\.(?:body|resnets)\.(\d+)\.block1\.weight$`)
	lightBlockRef   = regexp.MustCompile(`^StatefulLightResidualBlocks_1\.LightResidualBlocks\.Chain\.LightResidualBlock(?:_(\d+))?\.Conv2d_1\.weight$`)
	lightFirst      = regexp.MustCompile(`^(?:.*\.)?body\.0\.in_conv\.weight$`)
	lightFirstRef   = regexp.MustCompile(`^StatefulLightResidualBlocks_1\.LightResidualBlocks\.Conv2d_1\.weight$`)
	fullFirst       = regexp.MustCompile(`^(?:.*\.)?conv_in\.weight$`)
	downscaleFactor = 8
)

// ReadT2IAdapter reads what kind of T2I-Adapter the checkpoint at path is (a file, or a
// diffusers folder), and refuses with one message naming the file what rfc's SD1.5
// encoders cannot run: an SDXL adapter, another downscale factor, a file that is not a
// T2I-Adapter. The weights themselves are checked when the encoder loads them.
func ReadT2IAdapter(path string) (*T2IAdapter, error) {
	cfg, cfgPath, err := t2iConfig(path)
	if err != nil {
		return nil, err
	}
	files, err := runtime.OpenWeights(path)
	if err != nil {
		return nil, err
	}
	defer runtime.CloseAll(files)
	shapes := map[string][]int{}
	for _, f := range files {
		for _, n := range f.Names() {
			info, _ := f.Info(n)
			shapes[n] = info.Shape
		}
	}
	a, err := inferT2I(shapes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a.Path = path
	if cfg != nil {
		// The config and the tensors must tell the same adapter.
		if t, _ := cfg["adapter_type"].(string); t != "" && (t == "light_adapter") != (a.Model == "ConditionEncoderLight") {
			return nil, fmt.Errorf("%s: adapter_type is %q, but the tensors are those of a %s", cfgPath, t, a.Model)
		}
	}
	return a, nil
}

// t2iConfig reads and checks a diffusers T2IAdapter config.json when there is one.
func t2iConfig(path string) (map[string]any, string, error) {
	cfgPath := filepath.Join(path, "config.json")
	if info, err := os.Stat(path); err == nil && !info.IsDir() {
		cfgPath = filepath.Join(filepath.Dir(path), "config.json")
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, "", nil
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, "", fmt.Errorf("%s: %v", cfgPath, err)
	}
	if class, _ := cfg["_class_name"].(string); class != "" && class != "T2IAdapter" {
		return nil, "", nil // another component's config beside the file
	}
	switch t, _ := cfg["adapter_type"].(string); t {
	case "", "full_adapter", "light_adapter":
	case "full_adapter_xl":
		return nil, "", fmt.Errorf("%s: adapter_type is %q: an SDXL T2I-Adapter; rfc's encoders are Stable Diffusion 1.5's", cfgPath, t)
	default:
		return nil, "", fmt.Errorf("%s: adapter_type is %q: rfc reads full_adapter and light_adapter T2I-Adapters", cfgPath, t)
	}
	if f, ok := cfg["downscale_factor"].(float64); ok && int(f) != downscaleFactor {
		return nil, "", fmt.Errorf("%s: downscale_factor is %v: rfc's T2I-Adapters for Stable Diffusion 1.5 downscale by %d", cfgPath, f, downscaleFactor)
	}
	return cfg, cfgPath, nil
}

// inferT2I reads the structure from the tensors' names and shapes.
func inferT2I(shapes map[string][]int) (*T2IAdapter, error) {
	first := func(res ...*regexp.Regexp) ([]int, bool) {
		for _, re := range res {
			for n, s := range shapes {
				if re.MatchString(n) && len(s) == 4 {
					return s, true
				}
			}
		}
		return nil, false
	}
	inFromConv := func(s []int) (int, error) {
		if s[1]%(downscaleFactor*downscaleFactor) != 0 {
			return 0, fmt.Errorf("the first convolution reads %d channels, not a multiple of %d (a condition image unshuffled by %d)", s[1], downscaleFactor*downscaleFactor, downscaleFactor)
		}
		return s[1] / (downscaleFactor * downscaleFactor), nil
	}
	// Light: four levels ending with an out_conv; full: one conv_in first.
	if s, ok := first(lightFirst, lightFirstRef); ok && anyMatch(shapes, lightOut, lightOutRef) {
		a := &T2IAdapter{Model: "ConditionEncoderLight"}
		var err error
		if a.InChannels, err = inFromConv(s); err != nil {
			return nil, err
		}
		widths := map[int]int{}
		for n, s := range shapes {
			if m := lightOut.FindStringSubmatch(n); m != nil && len(s) == 4 {
				i, _ := strconv.Atoi(m[1])
				widths[i] = s[0]
			} else if m := lightOutRef.FindStringSubmatch(n); m != nil && len(s) == 4 {
				i, _ := strconv.Atoi(m[1])
				widths[i-1] = s[0]
			}
		}
		if a.Channels = levels(widths); a.Channels == nil {
			return nil, fmt.Errorf("a light T2I-Adapter with levels %v: rfc's has four", keysOf(widths))
		}
		a.NumResidualBlocks = countMatches(shapes, lightBlock, lightBlockRef)
		return a, nil
	}
	s, ok := first(fullFirst)
	if !ok {
		s, ok = shapes["Conv2d.weight"] // Refiners' full encoder
		ok = ok && len(s) == 4
	}
	if !ok {
		return nil, fmt.Errorf("no T2I-Adapter input convolution (conv_in, adapter.conv_in, body.0.in_conv or Refiners' Conv2d): is it a T2I-Adapter?")
	}
	a := &T2IAdapter{Model: "ConditionEncoder"}
	var err error
	if a.InChannels, err = inFromConv(s); err != nil {
		return nil, err
	}
	// Each level's blocks, by level: diffusers and Refiners name the level, TencentARC
	// numbers the blocks of all levels in one list.
	widths, blocks := map[int]int{}, map[int]int{}
	for n, s := range shapes {
		for k, re := range fullLevelBlock {
			if m := re.FindStringSubmatch(n); m != nil && len(s) == 4 {
				i, _ := strconv.Atoi(m[1])
				if k == 1 {
					i-- // Refiners counts from 1
				}
				widths[i] = s[0]
				blocks[i]++
			}
		}
	}
	if len(widths) == 0 {
		var order []int
		byIndex := map[int]int{}
		for n, s := range shapes {
			if m := tencentBlock.FindStringSubmatch(n); m != nil && len(s) == 4 {
				k, _ := strconv.Atoi(m[1])
				order = append(order, k)
				byIndex[k] = s[0]
			}
		}
		if len(order) == 0 {
			return nil, fmt.Errorf("no T2I-Adapter residual blocks (body.N.block1, body.N.resnets.M.block1 or Refiners' ResidualBlocks): is it a T2I-Adapter?")
		}
		if len(order)%4 != 0 {
			return nil, fmt.Errorf("a T2I-Adapter with %d residual blocks: rfc's has the same number at each of four levels", len(order))
		}
		per := len(order) / 4
		for k, w := range byIndex {
			widths[k/per] = w
			blocks[k/per]++
		}
	}
	if a.Channels = levels(widths); a.Channels == nil {
		return nil, fmt.Errorf("a T2I-Adapter with levels %v: rfc's has four", keysOf(widths))
	}
	a.NumResidualBlocks = blocks[0]
	for i := range 4 {
		if blocks[i] != a.NumResidualBlocks {
			return nil, fmt.Errorf("a T2I-Adapter with %v residual blocks at its levels: rfc's has the same number at each", []int{blocks[0], blocks[1], blocks[2], blocks[3]})
		}
	}
	return a, nil
}

// levels gives widths[0 … 3], or nil unless the levels are exactly 0 … 3.
func levels(widths map[int]int) []int {
	if len(widths) != 4 {
		return nil
	}
	out := make([]int, 4)
	for i := range 4 {
		w, ok := widths[i]
		if !ok {
			return nil
		}
		out[i] = w
	}
	return out
}

func keysOf(m map[int]int) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func anyMatch(shapes map[string][]int, res ...*regexp.Regexp) bool {
	return countMatches(shapes, res...) > 0
}

func countMatches(shapes map[string][]int, res ...*regexp.Regexp) int {
	n := 0
	for name := range shapes {
		for _, re := range res {
			if re.MatchString(name) {
				n++
				break
			}
		}
	}
	return n
}
