package passes

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/internal/testutil"
)

// modelConfigs are the zoo's entry points at sizes the interpreter runs in a moment.
var modelConfigs = []struct {
	file, model string
	set         map[string]string
}{
	{"vit.rfn", "ViT", map[string]string{"embedding_dim": "64", "patch_size": "8", "image_size": "32", "num_layers": "2", "num_heads": "4", "batch": "2"}},
	{"vit.rfn", "ViTCross", map[string]string{"embedding_dim": "64", "patch_size": "8", "image_size": "32", "num_layers": "2", "num_heads": "4", "batch": "2", "context_dim": "48", "context_len": "5"}},
	{"taesd.rfn", "TAEF2Encoder", map[string]string{"height": "32", "width": "32", "batch": "1"}},
	{"taesd.rfn", "TAEF2Decoder", map[string]string{"height": "4", "width": "4", "batch": "1"}},
	{"taesd.rfn", "TAEF2Decoder", map[string]string{"height": "32", "width": "32", "batch": "1"}},
}

// TestModels runs the pipeline over every model of the zoo, whole and with each optional
// pass off, and checks the outputs against the unoptimized module's, with random weights.
func TestModels(t *testing.T) {
	var configs []Config
	for _, cfg := range pipelineConfigs() {
		configs = append(configs, cfg)
	}
	slices.SortFunc(configs, func(a, b Config) int {
		return strings.Compare(fmt.Sprint(a.Disable, a.Enable, a.Ops == nil), fmt.Sprint(b.Disable, b.Enable, b.Ops == nil))
	})
	for i, c := range modelConfigs {
		t.Run(fmt.Sprintf("%s/%d", c.model, i), func(t *testing.T) {
			m := testutil.ElaborateFile(t, "../models/"+c.file, c.model, c.set)
			s := newSample(m, uint64(1000+i))
			want, err := s.run(m)
			if err != nil {
				t.Fatal(err)
			}
			for _, cfg := range configs {
				after := clone(t, m)
				if err := Run(after, cfg); err != nil {
					t.Fatalf("disable %v: %v", cfg.Disable, err)
				}
				got, err := s.run(after)
				if err != nil {
					t.Fatalf("disable %v: %v", cfg.Disable, err)
				}
				e, err := maxRelErr(want, got)
				if err != nil || e > relTol {
					t.Errorf("disable %v: outputs differ: %v, max relative error %.3g", cfg.Disable, err, e)
				}
				t.Logf("disable %v: %d ops → %d, %d params → %d; max relative error %.3g", cfg.Disable, len(m.Body), len(after.Body), len(m.Params), len(after.Params), e)
			}
		})
	}
}

// TestModelsAtDefaultSizes runs the pipeline over every entry point of the zoo as written,
// symbolic batch included: the passes must handle symbolic shapes.
func TestModelsAtDefaultSizes(t *testing.T) {
	files, _ := filepath.Glob("../models/*.rfn")
	if len(files) == 0 {
		t.Fatal("no models found")
	}
	for _, f := range files {
		prog, err := dsl.Load(f)
		if err != nil {
			t.Fatal(dsl.Detail(err))
		}
		for _, name := range prog.ModelNames() {
			if !prog.HasInputs(name) {
				continue
			}
			m, err := prog.Elaborate(dsl.Options{Model: name})
			if err != nil {
				t.Fatal(dsl.Detail(err))
			}
			if err := Run(m, Config{Ops: everyOp}); err != nil {
				t.Errorf("%s %s: %v", f, name, err)
			}
		}
	}
}
