package passes

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
)

// randomModule builds a small random graph rich in what the passes look for: chains of
// reshapes, permutes, scales and slices (identities among them), duplicated ops, dead ops
// and parameters read by dead ops only.
func randomModule(rng *rand.Rand) *ir.Module {
	root := &ir.Scope{Class: "Random"}
	m := &ir.Module{Name: "Random", Root: root}
	x := &ir.Value{Kind: ir.KindInput, Name: "x", Type: ir.F32Of(ir.StaticShape(2, 3, 4))}
	m.Inputs = []*ir.Value{x}
	pool := []*ir.Value{x}
	pick := func() *ir.Value {
		// Favour recent values, so that chains grow.
		if rng.IntN(3) > 0 {
			return pool[max(0, len(pool)-1-rng.IntN(3))]
		}
		return pool[rng.IntN(len(pool))]
	}
	add := func(op string, args []*ir.Value, declared ir.Type, attrs ...ir.Attr) {
		v := &ir.Value{Kind: ir.KindOp, Op: op, Args: args, Attrs: attrs, Type: declared, Scope: root}
		t, err := ir.Infer(v)
		if err != nil {
			return // an invalid draw (an empty slice, say): skip it
		}
		v.Type = t
		m.Body = append(m.Body, v)
		pool = append(pool, v)
	}
	for steps := 8 + rng.IntN(24); steps > 0; steps-- {
		v := pick()
		shape := v.Type.Shape.Ints()
		switch rng.IntN(11) {
		case 0, 1:
			add("reshape", []*ir.Value{v}, ir.F32Of(randomShape(rng, shape)))
		case 2, 3:
			perm := rng.Perm(len(shape))
			if rng.IntN(4) == 0 {
				slices.Sort(perm)
			}
			add("permute", []*ir.Value{v}, ir.Type{}, ir.Attr{Name: "perm", Value: perm})
		case 4, 5:
			scales, biases := []float64{1, 0.5, 2, -1.5, 3}, []float64{0, 0, 0.25, -1}
			add("scale", []*ir.Value{v}, ir.Type{}, ir.Attr{Name: "scale", Value: scales[rng.IntN(len(scales))]}, ir.Attr{Name: "bias", Value: biases[rng.IntN(len(biases))]})
		case 6:
			d := rng.IntN(len(shape))
			start, step := rng.IntN(2), 1+rng.IntN(2)
			if rng.IntN(2) == 0 {
				start, step = 0, 1
			}
			add("slice", []*ir.Value{v}, ir.Type{}, ir.Attr{Name: "dim", Value: d - rng.IntN(2)*len(shape)}, ir.Attr{Name: "start", Value: start}, ir.Attr{Name: "end", Value: shape[d]}, ir.Attr{Name: "step", Value: step})
		case 7:
			unary := []string{"relu", "tanh", "sigmoid"}
			add(unary[rng.IntN(len(unary))], []*ir.Value{v}, ir.Type{})
		case 8:
			w := v
			for _, c := range pool {
				if c.Type.Equal(v.Type) && rng.IntN(2) == 0 {
					w = c
				}
			}
			binary := []string{"add", "mul", "sub"}
			add(binary[rng.IntN(len(binary))], []*ir.Value{v, w}, ir.Type{})
		case 9:
			if rng.IntN(2) == 0 {
				add("concat", []*ir.Value{v}, ir.Type{}, ir.Attr{Name: "dim", Value: 0})
			} else if len(m.Body) > 0 {
				// A copy of an earlier op, for cse.
				o := m.Body[rng.IntN(len(m.Body))]
				add(o.Op, slices.Clone(o.Args), o.Type, slices.Clone(o.Attrs)...)
			}
		case 10:
			in := shape[len(shape)-1]
			outs := []int{in, 3}
			scope := &ir.Scope{Name: fmt.Sprintf("Linear_%d", len(m.Params)+1), Class: "Linear", Key: fmt.Sprintf("l%d", len(m.Params))}
			root.AddChild(scope)
			p := &ir.Value{Kind: ir.KindParam, Name: scope.Name + ".weight", Key: scope.Key + ".weight", Scope: scope, Type: ir.F32Of(ir.StaticShape(outs[rng.IntN(2)], in))}
			m.Params = append(m.Params, p)
			add("linear", []*ir.Value{v, p}, ir.Type{})
		}
	}
	for n := 1 + rng.IntN(3); n > 0; n-- {
		if o := pick(); !slices.Contains(m.Outputs, o) {
			m.Outputs = append(m.Outputs, o)
		}
	}
	return m
}

// randomShape splits the element count of shape into one to four random dims.
func randomShape(rng *rand.Rand, shape []int) ir.Shape {
	n := 1
	for _, d := range shape {
		n *= d
	}
	var primes []int
	for p := 2; n > 1; {
		if n%p == 0 {
			primes = append(primes, p)
			n /= p
		} else {
			p++
		}
	}
	rng.Shuffle(len(primes), func(i, j int) { primes[i], primes[j] = primes[j], primes[i] })
	dims := make([]int, 1+rng.IntN(4))
	for i := range dims {
		dims[i] = 1
	}
	for _, p := range primes {
		dims[rng.IntN(len(dims))] *= p
	}
	return ir.StaticShape(dims...)
}

// TestRandomGraphs runs the pipeline, whole and with each optional pass off, over random
// graphs: the result must verify, compute the same outputs, and be a fixed point.
func TestRandomGraphs(t *testing.T) {
	var configs []Config
	for _, cfg := range pipelineConfigs() {
		configs = append(configs, cfg)
	}
	slices.SortFunc(configs, func(a, b Config) int {
		return strings.Compare(fmt.Sprint(a.Disable, a.Enable, a.Ops == nil), fmt.Sprint(b.Disable, b.Enable, b.Ops == nil))
	})
	folded, merged, removed, fused, worst := 0, 0, 0, 0, 0.0
	for seed := uint64(1); seed <= 300; seed++ {
		m := randomModule(rand.New(rand.NewPCG(seed, 42)))
		if err := ir.Verify(m); err != nil {
			t.Fatalf("seed %d: the generator built invalid IR: %v\n%s", seed, err, ir.Print(m))
		}
		text := ir.Print(m)
		for _, cfg := range configs {
			before, after := clone(t, m), clone(t, m)
			if err := Run(after, cfg); err != nil {
				t.Fatalf("seed %d, disable %v: %v\n%s", seed, cfg.Disable, err, text)
			}
			once := ir.Print(after)
			if err := Run(after, cfg); err != nil {
				t.Fatal(err)
			}
			if again := ir.Print(after); again != once {
				t.Errorf("seed %d, disable %v: a second run changes the IR:\n%s\n---\n%s", seed, cfg.Disable, once, again)
			}
			e := checkEquivalent(t, before, after, seed)
			if t.Failed() {
				t.Fatalf("seed %d, disable %v: error %.3g\n%s\n--- after\n%s", seed, cfg.Disable, e, text, once)
			}
			worst = max(worst, e)
		}
		// Count what each pass alone does, to show the generator exercises them.
		for _, p := range pipeline {
			c := clone(t, m)
			n := len(c.Body)
			if err := run([]pass{p}, c, Config{Enable: []string{p.name}, Ops: everyOp}); err != nil {
				t.Fatal(err)
			}
			switch d := n - len(c.Body); p.name {
			case "fold":
				if ir.Print(c) != text {
					folded++
				}
			case "cse":
				merged += d
			case "dce":
				removed += d
			case "fuse_epilogue":
				fused += d
			}
		}
	}
	t.Logf("fold changed %d graphs; cse merged %d ops; dce removed %d ops; fuse_epilogue removed %d ops; max relative error %.3g", folded, merged, removed, fused, worst)
	if folded < 50 || merged < 20 || removed < 50 || fused < 10 {
		t.Errorf("the random graphs exercise the passes too little")
	}
}
