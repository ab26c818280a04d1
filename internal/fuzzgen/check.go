package fuzzgen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rfc-project/rfc/runtime"
)

// Backend compiles and runs modules in batches: the Go code generator (GoBackend), the
// CUDA kernels under the CPU emulator (in codegen/cuda's tests, which reach its
// internals).
type Backend interface {
	Name() string
	// Ops says which ops the back end implements, for the passes (passes.Config.Ops).
	Ops(op string) bool
	// Tolerance is the back end's rounding error per op, relative to the outputs' scale.
	Tolerance() float64
	// Run compiles and runs every job; per-job problems go into the results.
	Run(jobs []*Job) ([]Result, error)
}

// PassTolerance is the interpreter's error per op on a module after the passes against
// the module before them: the passes keep the arithmetic (fusions round step by step),
// except where they reassociate (scale∘scale, a merged LoRA's W + s·U·D).
const PassTolerance = 1e-5

// limitations are the documented refusals of a back end the generator may run into: the
// error says what to do (fix sizes with --set), and the model is counted as refused.
var limitations = []string{
	// codegen.emitMatmulSized: a broadcast over batch dims of sizes chosen at run time
	// that differ in shape needs them static.
	"broadcasts batch dims of sizes chosen at run time: fix them with --set",
}

func limitation(msg string) bool {
	for _, l := range limitations {
		if strings.Contains(msg, l) {
			return true
		}
	}
	return false
}

// everyOp is the interpreter, which implements every op of the catalogue.
func everyOp(string) bool { return true }

// Report sums up a run.
type Report struct {
	Models   int // generated
	Useless  int // reference outputs not finite
	Refused  int // jobs a back end refused as documented (limitations)
	Variants int // distinct modules after the passes, run by the interpreter
	Jobs     map[string]int
	Failures []Failure
	// Worst is, per back end (and "passes"), the largest error seen as a fraction of its
	// tolerance: how close the fuzzer came to reporting a mismatch.
	Worst   map[string]float64
	WorstAt map[string]string // the seed and variant of Worst
	Time    map[string]time.Duration
}

// worst records a comparison's error as a fraction of its tolerance.
func (r *Report) worst(backend string, frac float64, seed uint64, variant string) {
	if frac > r.Worst[backend] || r.WorstAt[backend] == "" {
		r.Worst[backend] = frac
		r.WorstAt[backend] = fmt.Sprintf("seed %d [%s]", seed, variant)
	}
}

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d models (%d with non-finite reference outputs), %d pass variants", r.Models, r.Useless, r.Variants)
	var names []string
	for n := range r.Jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, ", %d %s jobs", r.Jobs[n], n)
	}
	if r.Refused > 0 {
		fmt.Fprintf(&b, " (%d refused as documented)", r.Refused)
	}
	fmt.Fprintf(&b, "; %d failures", len(r.Failures))
	names = names[:0]
	for n := range r.Worst {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "; worst %s error %.3g of tolerance (%s)", n, r.Worst[n], r.WorstAt[n])
	}
	names = names[:0]
	for n := range r.Time {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "; %s %.1fs", n, r.Time[n].Seconds())
	}
	return b.String()
}

// NewReport is an empty report, for Add.
func NewReport() *Report { return newReport() }

// Add sums o into r.
func (r *Report) Add(o *Report) {
	r.Models += o.Models
	r.Useless += o.Useless
	r.Refused += o.Refused
	r.Variants += o.Variants
	r.Failures = append(r.Failures, o.Failures...)
	for k, v := range o.Jobs {
		r.Jobs[k] += v
	}
	for k, v := range o.Worst {
		if v > r.Worst[k] || r.WorstAt[k] == "" {
			r.Worst[k], r.WorstAt[k] = v, o.WorstAt[k]
		}
	}
	for k, v := range o.Time {
		r.Time[k] += v
	}
}

func newReport() *Report {
	return &Report{Jobs: map[string]int{}, Worst: map[string]float64{}, WorstAt: map[string]string{}, Time: map[string]time.Duration{}}
}

// Check generates the models of seeds and checks each: it must compile, every pass
// configuration must verify and compute the reference outputs under the interpreter, and
// each back end must compute them too (for every distinct module its pass configurations
// give). The back ends run once for the whole batch.
func Check(seeds []uint64, cfg Config, backends ...Backend) *Report {
	models := make([]*Model, len(seeds))
	for i, seed := range seeds {
		models[i] = Generate(seed, cfg)
	}
	return CheckModels(models, backends...)
}

// CheckModels is Check for models already generated (or shrunk, or read from the
// regression corpus).
func CheckModels(models []*Model, backends ...Backend) *Report {
	rep := newReport()
	var cases []*Case
	start := time.Now()
	for _, m := range models {
		rep.Models++
		c, err := Build(m)
		var f *Failure
		switch {
		case errors.Is(err, ErrUseless):
			rep.Useless++
		case errors.As(err, &f):
			rep.Failures = append(rep.Failures, *f)
		case err != nil:
			rep.Failures = append(rep.Failures, Failure{Seed: m.Seed, Model: m, Stage: "build", Msg: err.Error()})
		default:
			cases = append(cases, c)
		}
	}
	rep.Time["build"] = time.Since(start)
	start = time.Now()
	for _, c := range cases {
		vs, fails := c.Variants(everyOp)
		rep.Failures = append(rep.Failures, fails...)
		tol := c.Tolerance(PassTolerance)
		for _, v := range vs {
			rep.Variants++
			got, err := c.Run(v.Module)
			if err != nil {
				rep.Failures = append(rep.Failures, Failure{Seed: c.Model.Seed, Model: c.Model, Stage: "interp", Variant: v.Name, Msg: err.Error()})
				continue
			}
			d, err := c.Compare(got, tol)
			if err != nil {
				rep.Failures = append(rep.Failures, Failure{Seed: c.Model.Seed, Model: c.Model, Stage: "passes", Variant: v.Name, Msg: err.Error()})
				continue
			}
			rep.worst("passes", d, c.Model.Seed, v.Name)
		}
	}
	rep.Time["passes"] = time.Since(start)
	// The back ends run at the same time (their compilers are single-threaded for the
	// most part); the first one in the calling goroutine, for a back end that must (one
	// that reports through a testing.T).
	var wg sync.WaitGroup
	reps := make([]*Report, len(backends))
	for i, b := range backends {
		reps[i] = newReport()
		run := func() { runBackend(b, cases, reps[i]) }
		if i == 0 {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	if len(backends) > 0 {
		runBackend(backends[0], cases, reps[0])
	}
	wg.Wait()
	for _, r := range reps {
		rep.Add(r)
	}
	return rep
}

// runBackend compiles and runs every distinct module of every case on b.
func runBackend(b Backend, cases []*Case, rep *Report) {
	start := time.Now()
	type ref struct {
		c *Case
		v *Variant
	}
	var jobs []*Job
	var refs []ref
	half, sized := false, false
	if h, ok := b.(HalfWeights); ok {
		half = h.HalfWeights()
	}
	if s, ok := b.(SizedPackages); ok {
		sized = s.SizedPackages()
	}
	for _, c := range cases {
		vs, fails := c.Variants(b.Ops)
		rep.Failures = append(rep.Failures, fails...)
		r := rand.New(rand.NewPCG(c.Model.Seed, 0x1a7))
		f16 := half && r.IntN(3) == 0
		for _, v := range vs {
			j := &Job{Module: v.Module, Weights: c.Weights, Inputs: c.InputsOf(v.Module), F16Weights: f16}
			if layouts := layoutsOf(c); len(layouts) > 0 && r.IntN(2) == 0 {
				j.Layout = layouts[r.IntN(len(layouts))]
			}
			jobs = append(jobs, j)
			refs = append(refs, ref{c, v})
		}
		if !sized || c.Sized == nil {
			continue
		}
		// The sized package, at the model's batch, the other, and the first again (a
		// plan made before must serve again).
		svs, fails := c.variantsOf(c.Sized.Module, b.Ops)
		for _, f := range fails {
			f.Variant += " sized"
			rep.Failures = append(rep.Failures, f)
		}
		for _, v := range svs {
			v.Name += " sized"
			o := c.Sized.Other
			jobs = append(jobs, &Job{Module: v.Module, Weights: c.Weights, Inputs: c.InputsOf(c.Module), More: []map[string]*runtime.Tensor{o.InputsOf(o.Module), c.InputsOf(c.Module)}})
			refs = append(refs, ref{c, v})
		}
	}
	rep.Jobs[b.Name()] += len(jobs)
	results, err := b.Run(jobs)
	if err != nil {
		rep.Failures = append(rep.Failures, Failure{Stage: b.Name(), Msg: "the back end's harness failed: " + err.Error()})
		return
	}
	for i, res := range results {
		c, v := refs[i].c, refs[i].v
		if res.Err != nil {
			if limitation(res.Err.Error()) {
				rep.Refused++
				continue
			}
			rep.Failures = append(rep.Failures, Failure{Seed: c.Model.Seed, Model: c.Model, Stage: b.Name() + " " + res.Stage, Variant: v.Name, Msg: res.Err.Error()})
			continue
		}
		ref, name := c, v.Name
		if jobs[i].F16Weights {
			// The reference: the interpreter on the weights rounded to float16.
			var err error
			if ref, err = c.rounded(v.Module); err != nil {
				rep.Failures = append(rep.Failures, Failure{Seed: c.Model.Seed, Model: c.Model, Stage: "interp", Variant: v.Name + " f16", Msg: err.Error()})
				continue
			}
			name += " f16 weights"
		}
		tol := ref.Tolerance(b.Tolerance())
		d, err := ref.Compare(res.Outputs, tol)
		if err != nil {
			rep.Failures = append(rep.Failures, Failure{Seed: c.Model.Seed, Model: c.Model, Stage: b.Name(), Variant: name, Msg: err.Error()})
			continue
		}
		if len(jobs[i].More) > 0 {
			others := []*Case{c.Sized.Other, c}
			if len(res.More) != len(others) {
				rep.Failures = append(rep.Failures, Failure{Seed: c.Model.Seed, Model: c.Model, Stage: b.Name(), Variant: name, Msg: fmt.Sprintf("%d further input sets ran, want %d", len(res.More), len(others))})
				continue
			}
			for k, o := range others {
				if _, err := o.Compare(res.More[k], tol); err != nil {
					rep.Failures = append(rep.Failures, Failure{Seed: c.Model.Seed, Model: c.Model, Stage: b.Name(), Variant: fmt.Sprintf("%s, input set %d (batch %d)", name, k+2, o.Inputs[o.Module.Inputs[0].Name].Shape[0]), Msg: err.Error()})
				}
			}
		}
		rep.worst(b.Name(), d, c.Model.Seed, name)
	}
	rep.Time[b.Name()] = time.Since(start)
}

// layoutsOf lists the named layouts of a case's parameters.
func layoutsOf(c *Case) []string {
	var out []string
	for _, p := range c.Module.Params {
		for l := range p.LayoutKeys {
			if !contains(out, l) {
				out = append(out, l)
			}
		}
	}
	sort.Strings(out)
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
