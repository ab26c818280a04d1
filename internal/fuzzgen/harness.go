package fuzzgen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/rfc-project/rfc/adapters"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

// Case is a model built and sampled: the reference module (elaborated, adapters injected,
// no pass run), random weights and inputs, and the interpreter's outputs on them.
type Case struct {
	Model   *Model
	Module  *ir.Module
	Weights map[string]*runtime.Tensor // by checkpoint key, so that they fit every variant
	Inputs  map[string]*runtime.Tensor // by input name
	Want    []*runtime.Tensor
	// Depth is the longest chain of ops from an input to an output: rounding differences
	// grow with it.
	Depth int
	// Noise is, per output, how far the reference moves when every weight and input
	// moves by a relative 1e-6: the model's own sensitivity (a norm of a nearly constant
	// map, a softmax of large logits), which rounding differences excite as much.
	Noise []float64
	// Sized is the model with sizes chosen at run time, when Model.Other is set.
	Sized *Sized
}

// Sized is a model compiled with sizes chosen at run time: its module, and the model at
// the other size point with its inputs and the reference outputs there.
type Sized struct {
	Module *ir.Module
	Other  *Case // the model elaborated at the other batch size
}

// ErrUseless marks a case whose reference outputs are not all finite: comparing them says
// nothing, so the harness counts and skips it.
var ErrUseless = errors.New("the reference outputs are not all finite")

// Failure is one thing the fuzzer found wrong.
type Failure struct {
	Seed    uint64
	Model   *Model // the model that failed
	Stage   string // elaborate, inject, passes, interp, go, cuda
	Variant string // the pass configuration, for the stages after the passes
	Msg     string
}

func (f Failure) Error() string {
	v := ""
	if f.Variant != "" {
		v = " [" + f.Variant + "]"
	}
	return fmt.Sprintf("seed %d: %s%s: %s", f.Seed, f.Stage, v, f.Msg)
}

// Build elaborates m's source, injects its adapters, draws weights and inputs, and runs
// the interpreter. A compile error comes back as a *Failure (the generator writes valid
// models only); non-finite reference outputs as ErrUseless.
func Build(m *Model) (*Case, error) {
	fail := func(stage string, err error) (*Case, error) {
		return nil, &Failure{Seed: m.Seed, Model: m, Stage: stage, Msg: dsl.Detail(err)}
	}
	mod, stage, err := elaborateModel(m, m.Set)
	if err != nil {
		return fail(stage, err)
	}
	c := &Case{Model: m, Module: mod, Depth: depth(mod)}
	c.sample(rand.New(rand.NewPCG(m.Seed, 0x5a3e)))
	want, err := interp.Run(mod, c.weights(mod), c.Inputs)
	if err != nil {
		return fail("interp", err)
	}
	for _, t := range want {
		for _, v := range t.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, ErrUseless
			}
		}
	}
	c.Want = want
	if c.Noise, err = c.noise(mod, m.Seed); err != nil {
		return fail("interp", err)
	}
	if m.Other != nil {
		open, other := map[string]string{}, map[string]string{}
		for k, v := range m.Set {
			if _, chosen := m.Other[k]; !chosen {
				open[k] = v
			}
			other[k] = v
		}
		for k, v := range m.Other {
			other[k] = v
		}
		sized, stage, err := elaborateModel(m, open)
		if err != nil {
			return fail(stage+" ("+sizedNames(m)+" chosen at run time)", err)
		}
		// The other size point: its inputs drawn anew, the weights the same.
		om, stage, err := elaborateModel(m, other)
		if err != nil {
			return fail(stage+fmt.Sprintf(" (at %v)", m.Other), err)
		}
		o := &Case{Model: m, Module: om, Depth: c.Depth, Weights: c.Weights}
		o.sampleInputs(rand.New(rand.NewPCG(m.Seed, 0x5a3f)))
		if o.Want, err = interp.Run(om, o.weights(om), o.Inputs); err != nil {
			return fail(fmt.Sprintf("interp (at %v)", m.Other), err)
		}
		if o.Noise, err = o.noise(om, m.Seed+1); err != nil {
			return fail(fmt.Sprintf("interp (at %v)", m.Other), err)
		}
		for _, t := range o.Want {
			for _, v := range t.F32 {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, ErrUseless
				}
			}
		}
		c.Sized = &Sized{Module: sized, Other: o}
	}
	return c, nil
}

// elaborateModel elaborates m's entry point with set and injects m's adapters, checking
// that each ejects; the error's stage is elaborate, inject or eject.
func elaborateModel(m *Model, set map[string]string) (*ir.Module, string, error) {
	prog, err := dsl.LoadSource("fuzz.rfn", []byte(m.Source))
	if err != nil {
		return nil, "elaborate", err
	}
	mod, err := prog.Elaborate(dsl.Options{Model: m.Entry, Set: set})
	if err != nil {
		return nil, "elaborate", err
	}
	if len(m.Adapters) > 0 {
		if err := adapters.AddLibrary(prog); err != nil {
			return nil, "inject", err
		}
	}
	for _, inj := range m.Adapters {
		cands, err := adapters.Select(mod, inj.Class, "**")
		if err != nil {
			continue // no layer of the class: nothing to inject
		}
		if m.Merge && inj.Adapter == "Conv2dLora" {
			// A LoRA on a grouped convolution cannot be merged (documented; lora_merge
			// says so).
			cands = slices.DeleteFunc(cands, func(s *ir.Scope) bool { return grouped(mod, s) })
			if len(cands) == 0 {
				continue
			}
		}
		var targets []adapters.Target
		seen := map[string]bool{}
		for _, k := range inj.Pick {
			p := cands[k%len(cands)].Path()
			if !seen[p] {
				seen[p] = true
				targets = append(targets, adapters.Target{Path: p})
			}
		}
		next, err := adapters.Inject(mod, prog, adapters.Spec{Name: inj.Name, Adapter: inj.Adapter, Targets: targets, Params: inj.Params, Scale: inj.Scale})
		if err != nil {
			return nil, "inject", fmt.Errorf("%s %s around %v: %w", inj.Name, inj.Adapter, targets, err)
		}
		// Ejecting the adapter just injected gives back the module before it, text-equal.
		back, err := adapters.Eject(next, inj.Name)
		if err != nil {
			return nil, "eject", fmt.Errorf("%s: %w", inj.Name, err)
		}
		if before, after := ir.Print(mod), ir.Print(back); before != after {
			return nil, "eject", fmt.Errorf("ejecting %s does not give back the module before it:\n%s\n--- after ejecting:\n%s", inj.Name, before, after)
		}
		mod = next
	}
	return mod, "", nil
}

// grouped reports whether the layer s holds a grouped convolution.
func grouped(m *ir.Module, s *ir.Scope) bool {
	for _, v := range m.Body {
		if v.Scope == s && v.Op == "conv2d" && v.Conv().Groups > 1 {
			return true
		}
	}
	return false
}

// noiseLevel is the relative perturbation that measures a case's sensitivity; NoiseFactor
// is how many times its effect a back end may differ by, besides the rounding tolerance.
const (
	noiseLevel  = 1e-6
	NoiseFactor = 10
)

// noise measures how sensitive the case is to rounding: it runs m with the result of
// every op, every weight and every float input multiplied element-wise by 1 + δ, δ drawn
// in ±noiseLevel (about sixteen units in the last place of a float32), and returns per
// output the largest change from the reference. A norm of a nearly constant map, a
// softmax of large logits, a difference of close values amplify what every back end
// rounds differently; the tolerance grows with what this run shows.
func (c *Case) noise(m *ir.Module, seed uint64) ([]float64, error) {
	r := rand.New(rand.NewPCG(seed, 0x4015e))
	jitter := func(t *runtime.Tensor) *runtime.Tensor {
		if t.DType != runtime.F32 {
			return t
		}
		data := make([]float32, len(t.F32))
		for i, v := range t.F32 {
			data[i] = v * float32(1+noiseLevel*(2*r.Float64()-1))
		}
		return runtime.FromF32(data, t.Shape...)
	}
	// The module with a mul by a parameter of factors after every float op.
	nm := *m
	nm.Params = slices.Clone(m.Params)
	nm.Body = nil
	sub := map[*ir.Value]*ir.Value{}
	w := interp.Weights{}
	for _, p := range m.Params {
		w[p] = jitter(c.Weights[p.Key])
	}
	for _, v := range m.Body {
		op := *v
		op.Args = slices.Clone(v.Args)
		for i, a := range op.Args {
			if s, ok := sub[a]; ok {
				op.Args[i] = s
			}
		}
		nm.Body = append(nm.Body, &op)
		sub[v] = &op
		if !v.Type.DType.IsFloat() || len(v.Type.Shape) == 0 {
			continue
		}
		p := &ir.Value{Kind: ir.KindParam, Name: fmt.Sprintf("noise%d", len(nm.Params)), Key: fmt.Sprintf("noise.%d", len(nm.Params)), Type: v.Type, Scope: v.Scope}
		nm.Params = append(nm.Params, p)
		ones := make([]float32, ir.Prod(v.Type.Shape.Ints()))
		for i := range ones {
			ones[i] = 1
		}
		w[p] = jitter(runtime.FromF32(ones, v.Type.Shape.Ints()...))
		mul := &ir.Value{Kind: ir.KindOp, Op: "mul", Args: []*ir.Value{&op, p}, Type: v.Type, Scope: v.Scope}
		nm.Body = append(nm.Body, mul)
		sub[v] = mul
	}
	nm.Outputs = make([]*ir.Value, len(m.Outputs))
	for i, o := range m.Outputs {
		nm.Outputs[i] = o
		if s, ok := sub[o]; ok {
			nm.Outputs[i] = s
		}
	}
	in := map[string]*runtime.Tensor{}
	for k, t := range c.Inputs {
		in[k] = jitter(t)
	}
	got, err := interp.Run(&nm, w, in)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(got))
	for i, t := range got {
		for j, v := range t.F32 {
			d := math.Abs(float64(v) - float64(c.Want[i].F32[j]))
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			out[i] = max(out[i], d)
		}
	}
	return out, nil
}

// depth is the longest chain of ops of m.
func depth(m *ir.Module) int {
	d := map[*ir.Value]int{}
	best := 0
	for _, v := range m.Body {
		n := 0
		for _, a := range v.Args {
			n = max(n, d[a])
		}
		d[v] = n + 1
		best = max(best, n+1)
	}
	return best
}

// sample draws the weights (uniform, scaled by 1/√fan-in as Kaiming's initialisation is,
// so that deep models neither vanish nor overflow) and the inputs: floats uniform in
// (-1, 1), indices below the smallest table they look up, adapters' scalars at their
// recorded value.
func (c *Case) sample(r *rand.Rand) {
	m := c.Module
	c.Weights = map[string]*runtime.Tensor{}
	for _, p := range m.Params {
		shape := p.Type.Shape.Ints()
		scale := 1.0
		if len(shape) >= 2 {
			scale = 1 / math.Sqrt(float64(ir.Prod(shape[1:])))
		}
		c.Weights[p.Key] = uniform(r, shape, scale)
	}
	c.sampleInputs(r)
}

// sampleInputs draws the inputs.
func (c *Case) sampleInputs(r *rand.Rand) {
	m := c.Module
	limits := indexLimits(m)
	c.Inputs = map[string]*runtime.Tensor{}
	for _, in := range m.Inputs {
		shape := in.Type.Shape.Ints()
		switch {
		case !in.Type.DType.IsFloat():
			data := make([]int64, ir.Prod(shape))
			for i := range data {
				data[i] = int64(r.IntN(limits[in]))
			}
			c.Inputs[in.Name] = runtime.FromI64(data, shape...)
		case len(shape) == 0:
			v, ok := m.ScalarValue(in.Name)
			if !ok {
				v = 0.5 + r.Float64()
			}
			c.Inputs[in.Name] = runtime.FromF32([]float32{float32(v)})
		default:
			c.Inputs[in.Name] = uniform(r, shape, 1)
		}
	}
}

func uniform(r *rand.Rand, shape []int, scale float64) *runtime.Tensor {
	data := make([]float32, ir.Prod(shape))
	for i := range data {
		data[i] = float32((2*r.Float64() - 1) * scale)
	}
	return runtime.FromF32(data, shape...)
}

// indexLimits gives each integer input the size of the smallest embedding table its
// values reach (through any chain of ops), so that every random index is valid.
func indexLimits(m *ir.Module) map[*ir.Value]int {
	from := map[*ir.Value][]*ir.Value{}
	for _, in := range m.Inputs {
		if !in.Type.DType.IsFloat() {
			from[in] = []*ir.Value{in}
		}
	}
	limits := map[*ir.Value]int{}
	for _, in := range m.Inputs {
		limits[in] = 1 << 20
	}
	for _, v := range m.Body {
		if v.Op == "embedding" {
			for _, in := range from[v.Args[0]] {
				limits[in] = min(limits[in], v.Args[1].Type.Shape[0].N)
			}
		}
		for _, a := range v.Args {
			for _, in := range from[a] {
				if !slices.Contains(from[v], in) {
					from[v] = append(from[v], in)
				}
			}
		}
	}
	return limits
}

// weights binds the case's weights to the parameters of m (the reference or a variant).
func (c *Case) weights(m *ir.Module) interp.Weights {
	w := interp.Weights{}
	for _, p := range m.Params {
		w[p] = c.Weights[p.Key]
	}
	return w
}

// Variant is the module after one pass configuration.
type Variant struct {
	Name   string // "all", "-fold", "+pack_qkv", …
	Module *ir.Module
	Text   string // ir.Print of Module
}

// Configs are the pass configurations the fuzzer tries: every pass as rfc compile runs
// them, each optional pass disabled in turn, and each pass that is off by default
// enabled (lora_merge only when merge is set, and then in every configuration: a merged
// build's reference is the unmerged module run with the recorded scales).
func Configs(ops func(string) bool, merge bool) []passes.Config {
	var base []string
	if merge {
		base = []string{"lora_merge"}
	}
	cfgs := []passes.Config{{Enable: base, Ops: ops}}
	for _, p := range passes.Passes() {
		switch {
		case p.Required:
		case p.Disabled && p.Name != "lora_merge":
			cfgs = append(cfgs, passes.Config{Enable: append(slices.Clone(base), p.Name), Ops: ops})
		case !p.Disabled:
			cfgs = append(cfgs, passes.Config{Enable: base, Disable: []string{p.Name}, Ops: ops})
		}
	}
	return cfgs
}

// ConfigName names a configuration in reports.
func ConfigName(cfg passes.Config) string {
	var parts []string
	for _, n := range cfg.Disable {
		parts = append(parts, "-"+n)
	}
	for _, n := range cfg.Enable {
		parts = append(parts, "+"+n)
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

// Variants runs every configuration of Configs on a copy of the reference module and
// returns the distinct results (by IR text), each named after the first configuration
// that gave it. A pass that fails or leaves invalid IR is a Failure.
func (c *Case) Variants(ops func(string) bool) ([]*Variant, []Failure) {
	return c.variantsOf(c.Module, ops)
}

func (c *Case) variantsOf(ref *ir.Module, ops func(string) bool) ([]*Variant, []Failure) {
	var out []*Variant
	var fails []Failure
	seen := map[string]bool{}
	for _, cfg := range Configs(ops, c.Model.Merge) {
		m := adapters.Clone(ref)
		name := ConfigName(cfg)
		if err := passes.Run(m, cfg); err != nil {
			fails = append(fails, Failure{Seed: c.Model.Seed, Model: c.Model, Stage: "passes", Variant: name, Msg: err.Error()})
			continue
		}
		text := ir.Print(m)
		if seen[text] {
			continue
		}
		seen[text] = true
		out = append(out, &Variant{Name: name, Module: m, Text: text})
	}
	return out, fails
}

// Tolerance is the largest max|got−want| accepted for a back end whose per-op rounding
// error is about base (relative): base grows with the depth of the model, and is
// relative to the largest reference output (at least 1).
func (c *Case) Tolerance(base float64) float64 {
	scale := 1.0
	for _, t := range c.Want {
		for _, v := range t.F32 {
			scale = max(scale, math.Abs(float64(v)))
		}
	}
	return base * (1 + float64(c.Depth)/8) * scale
}

// Compare checks got against the case's reference outputs within tol (absolute) plus
// NoiseFactor times the output's noise; integer outputs must be equal. It returns the
// largest difference as a fraction of its limit.
func (c *Case) Compare(got []*runtime.Tensor, tol float64) (float64, error) {
	if len(got) != len(c.Want) {
		return 0, fmt.Errorf("%d outputs, want %d", len(got), len(c.Want))
	}
	worst := 0.0
	for i, w := range c.Want {
		g := got[i]
		if g == nil {
			return 0, fmt.Errorf("output %d is missing", i)
		}
		if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) {
			return 0, fmt.Errorf("output %d is %s %v, want %s %v", i, g.DType, g.Shape, w.DType, w.Shape)
		}
		for j := range w.I64 {
			if g.I64[j] != w.I64[j] {
				return math.Inf(1), fmt.Errorf("output %d, flat index %d: got %d, want %d", i, j, g.I64[j], w.I64[j])
			}
		}
		limit := tol
		if i < len(c.Noise) {
			limit += NoiseFactor * c.Noise[i]
		}
		for j := range w.F32 {
			d := math.Abs(float64(g.F32[j]) - float64(w.F32[j]))
			if !(d <= limit) {
				return d / limit, fmt.Errorf("output %d %v, flat index %d: got %g, want %g (|Δ| %.3g > tolerance %.3g, of which %.3g for the model's sensitivity)", i, w.Shape, j, g.F32[j], w.F32[j], d, limit, limit-tol)
			}
			worst = max(worst, d/limit)
		}
	}
	return worst, nil
}

// Run runs the module of a variant under the interpreter with the case's weights and
// inputs (an input a merge removed is left out).
func (c *Case) Run(m *ir.Module) ([]*runtime.Tensor, error) {
	return interp.Run(m, c.weights(m), c.InputsOf(m))
}

// rounded is the case with its weights rounded to float16 and its reference outputs those
// of m (a variant) on them.
func (c *Case) rounded(m *ir.Module) (*Case, error) {
	r := *c
	r.Weights = map[string]*runtime.Tensor{}
	for k, t := range c.Weights {
		data := make([]float32, len(t.F32))
		for i, f := range t.F32 {
			data[i] = runtime.F16ToF32(runtime.F32ToF16(f))
		}
		r.Weights[k] = runtime.FromF32(data, t.Shape...)
	}
	want, err := r.Run(m)
	if err != nil {
		return nil, err
	}
	r.Want = want
	return &r, nil
}

// InputsOf selects the inputs m declares.
func (c *Case) InputsOf(m *ir.Module) map[string]*runtime.Tensor {
	in := map[string]*runtime.Tensor{}
	for _, v := range m.Inputs {
		in[v.Name] = c.Inputs[v.Name]
	}
	return in
}
