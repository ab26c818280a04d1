package codegen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
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

// TestSizedRegressions compiles each sized regression model after its passes, runs the
// package at each size and compares it with the interpreter on the model elaborated there.
func TestSizedRegressions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds generated code with the go command")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	var cases []*sizedCase
	for i, r := range sizedRegressions {
		prog, err := dsl.LoadSource(r.name+".rfn", []byte(r.src))
		if err != nil {
			t.Fatal(dsl.Detail(err))
		}
		elaborate := func(dims map[string]int) *ir.Module {
			m, err := prog.Elaborate(dsl.Options{Dims: dims})
			if err != nil {
				t.Fatalf("%s at %v: %v", r.name, dims, dsl.Detail(err))
			}
			if err := passes.Run(m, passes.Config{Enable: r.enable, Ops: Supported}); err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			return m
		}
		c := &sizedCase{pkg: "sizedregress" + strconv.Itoa(i), what: r.name, module: elaborate(nil), sizes: r.runs, weights: map[string]*runtime.Tensor{}}
		rng := seeded(r.name)
		for _, p := range c.module.Params {
			c.weights[p.Key] = randomTensor(rng, p.Type, 0.5, 0)
		}
		for _, dims := range r.runs {
			m := elaborate(dims)
			c.fixed = append(c.fixed, m)
			in := map[string]*runtime.Tensor{}
			for _, v := range m.Inputs {
				in[v.Name] = randomTensor(rng, v.Type, 1, indexLimit(m, v))
			}
			c.inputs = append(c.inputs, in)
		}
		cases = append(cases, c)
	}
	mod := tempModule(t)
	data := filepath.Join(mod, "data")
	results := map[string]*Result{}
	for _, c := range cases {
		res, err := Generate(c.module, Options{Package: c.pkg})
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		results[c.pkg] = res
		if _, err := Write(filepath.Join(mod, c.pkg), res.Files); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(data, c.pkg)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := runtime.WriteSafetensors(filepath.Join(dir, "weights.safetensors"), c.weights, nil); err != nil {
			t.Fatal(err)
		}
		for k, in := range c.inputs {
			if err := runtime.WriteSafetensors(filepath.Join(dir, fmt.Sprintf("in%d.safetensors", k)), in, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(mod, "driver"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "driver", "main.go"), sizedDriver(t, cases, results), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(mod, "driver.bin")
	goCommand(t, mod, "build", "-o", bin, "./driver")
	if out, err := exec.Command(bin, data).CombinedOutput(); err != nil {
		t.Fatalf("driver: %v\n%s", err, out)
	}
	for _, c := range cases {
		for k, fixed := range c.fixed {
			w := interp.Weights{}
			for _, p := range fixed.Params {
				w[p] = c.weights[p.Key]
			}
			want, err := interp.Run(fixed, w, c.inputs[k])
			if err != nil {
				t.Fatalf("%s at %v: %v", c.what, c.sizes[k], err)
			}
			f, err := runtime.OpenSafetensors(filepath.Join(data, c.pkg, fmt.Sprintf("out%d.safetensors", k)))
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				got, err := f.Tensor("y" + strconv.Itoa(i))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := compare(got, want[i]); err != nil {
					t.Errorf("%s at %v, output %d: %v", c.what, c.sizes[k], i, err)
				}
			}
			f.Close()
		}
	}
}
