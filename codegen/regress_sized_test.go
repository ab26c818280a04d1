package codegen

import (
	"strconv"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/passes"
)

// sizedRegression is a model with sizes chosen at run time that the differential fuzzer
// (internal/fuzzgen) found miscompiled, shrunk: its source, the passes to run, and the
// sizes to run it at.
type sizedRegression struct {
	name   string
	src    string
	enable []string
	runs   []map[string]int
}

var sizedRegressions = []sizedRegression{
	{
		// Fuzzer seed 30089: pack_qkv concatenates the projections' weights in prepare,
		// which read the concatenation's shapes and operands from a plan, made only by
		// Forward: the package did not compile ("undefined: p").
		name: "packed_projections",
		src: `
model M {
    input x: f32[batch, 7, 11]
    SelfAttention(11, inner_dim=4, num_heads=4, is_causal=true)
}
`,
		enable: []string{"pack_qkv"},
		runs:   []map[string]int{{"batch": 1}, {"batch": 2}},
	},
}

// TestSizedRegressions runs checkSized on each sized regression model after its passes.
func TestSizedRegressions(t *testing.T) {
	needGoBuild(t)
	var cases []*sizedCase
	for i, r := range sizedRegressions {
		prog, err := dsl.LoadSource(r.name+".rfn", []byte(r.src))
		if err != nil {
			t.Fatal(dsl.Detail(err))
		}
		cases = append(cases, newSizedCase(t, "sizedregress"+strconv.Itoa(i), r.name, prog, dsl.Options{}, passes.Config{Enable: r.enable, Ops: Supported}, r.runs))
	}
	checkSized(t, cases)
}
