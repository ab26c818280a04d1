package fuzzgen

import (
	"errors"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
)

// coverageSeeds is how many models the coverage test draws; the first passSeeds of them
// also run each pass alone.
const (
	coverageSeeds = 300
	passSeeds     = 100
)

// Every model the generator writes compiles (a model the compiler rejects would be a
// failure of the fuzzer), and together they use every builtin layer, container and
// prelude model, every op of the catalogue the language reaches, adapters merged and not,
// and give every optional pass something to do.
func TestGeneratorCoverage(t *testing.T) {
	layers := map[string]int{}
	ops := map[string]int{}
	changed := map[string]int{}
	merged, unmerged, useless := 0, 0, 0
	call := regexp.MustCompile(`\b([A-Z][A-Za-z0-9]*)\s*[({]`)
	for seed := uint64(1); seed <= coverageSeeds; seed++ {
		m := Generate(seed, DefaultConfig())
		c, err := Build(m)
		if errors.Is(err, ErrUseless) {
			useless++
			continue
		}
		if err != nil {
			t.Fatalf("%v\n%s", err, m.Source)
		}
		for _, s := range call.FindAllStringSubmatch(m.Source, -1) {
			layers[s[1]]++
		}
		for _, syntax := range []string{"; ", "#", " key ", "ldm=", `key ""`, "repeat ", " in [", "if ", "} else {", " if ", "not ", "[-", "len(", "sum(", ") : ", "adapter ", "f16[", "i32[", "height, width]", "tokens"} {
			if strings.Contains(m.Source, syntax) {
				layers["syntax "+syntax]++
			}
		}
		for _, v := range c.Module.Body {
			ops[v.Op]++
		}
		if len(c.Module.Injections) > 0 {
			if m.Merge {
				merged++
			} else {
				unmerged++
			}
		}
		if seed > passSeeds {
			continue
		}
		text := ir.Print(c.Module)
		// Each optional pass alone, and pack_qkv (off by default) alone.
		for _, p := range passes.Passes() {
			if p.Required || p.Name == "lora_merge" {
				continue
			}
			one := passes.Config{Ops: everyOp}
			if p.Disabled {
				one.Enable = []string{p.Name}
			}
			for _, q := range passes.Passes() {
				if q.Name != p.Name && !q.Required && !q.Disabled {
					one.Disable = append(one.Disable, q.Name)
				}
			}
			mm := clone(t, c.Module)
			if err := passes.Run(mm, one); err == nil && ir.Print(mm) != text {
				changed[p.Name]++
			}
		}
	}
	t.Logf("%d useless; layers %v", useless, layers)
	t.Logf("ops %v", ops)
	t.Logf("passes changed %v; %d models with adapters merged, %d unmerged", changed, merged, unmerged)
	// The builtin table of dsl/LANGUAGE.md and the prelude's models.
	for _, l := range strings.Fields(`Identity Linear Conv2d ConvTranspose2d LayerNorm GroupNorm LayerNorm2d InstanceNorm2d
		Embedding Parameter ScaledDotProductAttention GeLU SiLU ReLU Sigmoid Tanh Sin Cos Exp Softmax Multiply
		MultiplyInput Clamp GLU Arange Matmul Reshape Flatten Unflatten Transpose Permute Squeeze Unsqueeze Slicing
		Chunk Upsample Interpolate Pad ReflectionPad2d PixelUnshuffle PixelShuffle SetContext UseContext Chain
		Residual Parallel Distribute Passthrough Sum Product Concatenate Attention SelfAttention SelfAttention2d`) {
		if layers[l] == 0 {
			t.Errorf("no model uses %s", l)
		}
	}
	for _, syntax := range []string{"; ", "#", " key ", "ldm=", `key ""`, "repeat ", " in [", "if ", "} else {", " if ", "not ", "[-", "len(", "sum(", ") : ", "adapter ", "f16[", "i32[", "height, width]", "tokens"} {
		if layers["syntax "+syntax] == 0 {
			t.Errorf("no model has %q", syntax)
		}
	}
	for _, op := range ir.OpNames() {
		if ops[op] == 0 && op != "sub" && op != "div" { // no layer of the language makes these
			t.Errorf("no model has op %s", op)
		}
	}
	for _, p := range passes.Passes() {
		if !p.Required && p.Name != "lora_merge" && changed[p.Name] < 2 {
			t.Errorf("pass %s changes only %d models", p.Name, changed[p.Name])
		}
	}
	if merged < 10 || unmerged < 10 {
		t.Errorf("%d models with merged adapters, %d unmerged: want both", merged, unmerged)
	}
	var rare []string
	for op, n := range ops {
		if n < 5 {
			rare = append(rare, op)
		}
	}
	sort.Strings(rare)
	if len(rare) > 0 && !slices.Equal(rare, []string{"div", "sub"}) {
		t.Logf("rare ops: %v", rare)
	}
}

func clone(t *testing.T, m *ir.Module) *ir.Module {
	c, err := ir.Parse(ir.Print(m))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
