// Package fuzzgen generates random valid models in the .rfn language and checks the
// compiler on them differentially, as Csmith and YARPGen do for C compilers and NNSmith
// for deep-learning compilers: the reference interpreter runs the elaborated module, and
// every other way of running it — the module after the passes (each optional pass
// disabled in turn, pack_qkv and lora_merge enabled), the generated Go package, the CUDA
// kernels under the CPU emulator — must compute the same outputs within a tolerance.
//
// The generator writes source text, not IR, so that the parser and the elaborator are
// exercised too. It draws layers from the whole builtin catalogue and the prelude,
// containers, context, lists, conditionals, repeats, models used as layers and models that
// specialize a layer, key clauses with named layouts, and adapters (LoRA and adapters
// declared in the file) injected after elaboration. It tracks every tensor's shape as it
// writes, so the models are valid by construction; a model the compiler rejects is a
// failure too. Everything is drawn from one seed, so every failure is reproducible.
package fuzzgen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/ir"
)

// Config bounds what Generate draws.
type Config struct {
	// Layers is the budget of layer statements the entry point's body gets (helper models
	// and branches included); the generator stops adding layers when it is spent.
	Layers int
	// MaxElems bounds the elements of one sample (one batch item) of every tensor.
	MaxElems int
	// MaxDim bounds every dim drawn (channels, tokens, features, heights, widths).
	MaxDim int
	// Depth bounds the nesting of containers.
	Depth int
}

// DefaultConfig gives models of a dozen to a few dozen layers on tensors of a few hundred
// elements: small enough that a hundred of them compile and run in seconds, large enough
// to hold every container and most op combinations.
func DefaultConfig() Config { return Config{Layers: 24, MaxElems: 384, MaxDim: 12, Depth: 3} }

// Model is one generated program and how to build it.
type Model struct {
	Seed   uint64
	Source string            // the .rfn file
	Entry  string            // the entry point's name
	Set    map[string]string // the elaboration's --set (sizes named in the input lines)
	// Adapters lists the injections to make after elaboration, in order.
	Adapters []Injection
	// Merge runs lora_merge (rfc --merge) in every pass configuration.
	Merge bool
	// Other, when not nil, makes the model also compiled with the sizes it names chosen
	// at run time (a sized package: the batch, and the height and width of some models),
	// run at Set's values and at Other's.
	Other map[string]string
}

// Injection is one adapter to inject: an adapter declaration around the layers found by
// class, picked among them by Pick (indices into the list of candidates in tree order,
// taken modulo its length).
type Injection struct {
	Name    string
	Adapter string // LinearLora, Conv2dLora, or an adapter of the file
	Class   string // the class of the targets
	Pick    []int
	Params  map[string]string
	Scale   float64
}

// Generate draws a model from seed.
func Generate(seed uint64, cfg Config) *Model {
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), cfg: cfg, budget: cfg.Layers}
	return g.model(seed)
}

// tensor is the type of one value flowing between layers. shape[0] is the batch dim,
// which no layer the generator writes moves or merges, so that every model is valid for
// any batch size.
type tensor struct {
	shape []int
	index bool // integer indices (for an Embedding), values in [0, vocab)
	vocab int
}

func (t tensor) rank() int { return len(t.shape) }
func (t tensor) last() int { return t.shape[len(t.shape)-1] }

// elems is the number of elements of one sample.
func (t tensor) elems() int { return ir.Prod(t.shape[1:]) }

func sameShape(a, b []int) bool { return slices.Equal(a, b) }

// binding is a name the expressions of the current block may use.
type binding struct {
	name string
	val  any // int, bool, []int
}

type gen struct {
	r      *rand.Rand
	cfg    Config
	budget int
	batch  int

	decls   []string  // helper declarations (models, adapters), in order
	env     []binding // names in scope for expressions
	loopVar []string  // repeat variables in scope, outermost first (for unique keys)
	inLoop  int       // repeat nesting (explicit keys must then use the loop variables)
	seq     int       // a counter for unique names and keys
	depth   int       // container nesting

	ctxSet   []ctxValue // context values set so far, usable by UseContext
	ctxIns   []ctxValue // context keys that are inputs of the entry point
	scalars  int        // MultiplyInput inputs
	layouts  bool       // the program names layouts (ldm=…)
	adapters []adapterDecl
	inputs   []string // the entry point's input lines
	helper   bool     // writing a helper model: no context inputs, no scalar inputs
}

type ctxValue struct {
	ctx, key string
	t        tensor
}

type adapterDecl struct{ name, class string }

func (g *gen) next() int { g.seq++; return g.seq }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// between draws an int in [lo, hi].
func (g *gen) between(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + g.r.IntN(hi-lo+1)
}

func pick[T any](g *gen, xs ...T) T { return xs[g.r.IntN(len(xs))] }

// w is the text of one block being written.
type w struct {
	lines []string
	ind   int
}

func (b *w) line(format string, args ...any) {
	b.lines = append(b.lines, strings.Repeat("    ", b.ind)+fmt.Sprintf(format, args...))
}

func (b *w) open(format string, args ...any) {
	b.line(format+" {", args...)
	b.ind++
}

func (b *w) close() {
	b.ind--
	b.line("}")
}

// sub writes a nested block's lines at the current indentation.
func (b *w) sub() *w { return &w{ind: b.ind} }

func (b *w) append(o *w) { b.lines = append(b.lines, o.lines...) }

// ---- expressions ----

// num writes an int expression of value n, sometimes through the names in scope.
func (g *gen) num(n int) string {
	if g.chance(0.6) {
		return strconv.Itoa(n)
	}
	var cands []string
	for _, b := range g.env {
		switch v := b.val.(type) {
		case int:
			switch {
			case v == n:
				cands = append(cands, b.name)
			case v != 0 && n == 2*v:
				cands = append(cands, b.name+" * 2")
			case v > 1 && n == v/2:
				cands = append(cands, b.name+" // 2")
			case n > v && n-v < 8:
				cands = append(cands, fmt.Sprintf("%s + %d", b.name, n-v))
			case v > n && v-n < 8:
				cands = append(cands, fmt.Sprintf("%s - %d", b.name, v-n))
			}
		case []int:
			for i, x := range v {
				if x == n {
					cands = append(cands, fmt.Sprintf("%s[%d]", b.name, i), fmt.Sprintf("%s[%d]", b.name, i-len(v)))
				}
			}
			if len(v) == n {
				cands = append(cands, "len("+b.name+")")
			}
			if len(v) > 0 && n == sum(v) {
				cands = append(cands, "sum("+b.name+")")
			}
		case bool:
			other := g.between(1, 9)
			if v {
				cands = append(cands, fmt.Sprintf("%d if %s else %d", n, b.name, other))
			} else {
				cands = append(cands, fmt.Sprintf("%d if not %s else %d", n, b.name, other))
			}
		}
	}
	if len(cands) == 0 {
		switch g.r.IntN(5) {
		case 0:
			return fmt.Sprintf("(%d + %d)", n-1, 1)
		case 1:
			if n%2 == 0 {
				return fmt.Sprintf("%d // 2", 2*n)
			}
		case 2:
			if n >= 0 {
				return fmt.Sprintf("max(%d, %d)", n, n/2)
			}
		case 3:
			return fmt.Sprintf("int(%d.0)", n)
		}
		return strconv.Itoa(n)
	}
	return pick(g, cands...)
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// flt writes a float literal.
func flt(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

func boolean(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (g *gen) bool(b bool) string {
	for _, e := range g.env {
		if v, ok := e.val.(bool); ok && g.chance(0.3) {
			if v == b {
				return e.name
			}
			return "not " + e.name
		}
	}
	return boolean(b)
}

// ints writes a list of int expressions.
func (g *gen) ints(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = g.num(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// intArgs writes ints as positional arguments.
func (g *gen) intArgs(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = g.num(x)
	}
	return strings.Join(parts, ", ")
}

// pairArg writes a kernel_size/stride/padding argument: an int when both are equal
// (sometimes a list anyway).
func (g *gen) pairArg(a, b int) string {
	if a == b && g.chance(0.8) {
		return g.num(a)
	}
	return g.ints([]int{a, b})
}

// ---- keys ----

// key writes a key clause for a layer, or nothing. Inside repeats, explicit keys carry the
// loop variables, so that every copy has its own.
func (g *gen) key() string {
	if !g.chance(0.25) {
		return ""
	}
	n := g.next()
	seg := func(prefix string) string {
		if g.inLoop > 0 {
			if len(g.loopVar) < g.inLoop {
				return "" // a repeat without a variable: no unique key possible
			}
			parts := []string{strconv.Quote(fmt.Sprintf("%s%d", prefix, n))}
			for _, v := range g.loopVar {
				parts = append(parts, `"_"`, "str("+v+")")
			}
			return strings.Join(parts, " + ")
		}
		if prefix == "k" && g.chance(0.3) {
			return strconv.Itoa(1000 + n) // PyTorch Sequential style
		}
		return strconv.Quote(fmt.Sprintf("%s%d", prefix, n))
	}
	unnamed := seg("k")
	if unnamed == "" {
		return ""
	}
	switch g.r.IntN(4) {
	case 0:
		g.layouts = true
		return " key ldm=" + seg("l")
	case 1:
		g.layouts = true
		return " key " + unnamed + ", ldm=" + seg("l") + ", diffusers=" + seg("d")
	}
	return " key " + unnamed
}

// ---- the model ----

func (g *gen) model(seed uint64) *Model {
	if g.chance(0.12) {
		// Now and then larger sizes, which take the kernels' other paths (packed GEMM
		// tiles, several blocks of a reduction, longer attention rows).
		g.cfg.MaxDim *= 4
		g.cfg.MaxElems *= 8
	}
	g.batch = g.between(1, 3)
	name := pick(g, "Net", "Model", "Fuzz", "Top")
	m := &Model{Seed: seed, Entry: name, Set: map[string]string{"batch": strconv.Itoa(g.batch)}}

	// The entry point's parameters, for expressions.
	var params []string
	d := g.between(2, 8)
	params = append(params, fmt.Sprintf("d: int = %d", d))
	g.env = append(g.env, binding{"d", d})
	if g.chance(0.5) {
		ws := []int{g.between(1, 8), g.between(1, 8), g.between(1, 8)}
		params = append(params, "ws: [int] = "+strings.ReplaceAll(fmt.Sprint(ws), " ", ", "))
		g.env = append(g.env, binding{"ws", ws})
	}
	if g.chance(0.5) {
		f := g.chance(0.5)
		params = append(params, "flag: bool = "+boolean(f))
		g.env = append(g.env, binding{"flag", f})
	}
	if g.chance(0.3) {
		params = append(params, `tag: string = "t"`)
	}

	body := &w{ind: 1}
	if g.chance(0.3) {
		m.Other = map[string]string{"batch": strconv.Itoa(g.batch%3 + 1)}
	}
	if m.Other != nil && g.chance(0.25) {
		// The sequence length chosen at run time too.
		g.sizedSeqChain(body, g.sizedTokens(body, m), g.between(2, 6), false)
	} else if m.Other != nil && g.chance(0.5) {
		// Height and width chosen at run time too.
		s := g.sizedChain(body, g.sizedInput(m), g.between(2, 6), false)
		if s.static {
			out := g.chain(body, s.tensor(), g.between(1, 5))
			if g.chance(0.25) {
				g.outputs(body, out)
			}
		}
	} else {
		in := g.entryInput()
		var outs []tensor
		switch {
		case len(in) > 1:
			// Several inputs reach the first child as a tuple.
			outs = []tensor{g.reduceTuple(body, in)}
		default:
			outs = in
		}
		out := g.chain(body, outs[0], g.between(3, 8))
		if g.chance(0.25) {
			g.outputs(body, out)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# seed %d\n", seed)
	for _, d := range g.decls {
		b.WriteString(d)
		b.WriteString("\n")
	}
	header := "model " + name
	if len(params) > 0 || g.chance(0.5) {
		header += "(" + strings.Join(params, ", ") + ")"
	}
	if g.layouts && g.chance(0.5) {
		header += ` key ldm="model.net"`
	}
	b.WriteString(header + " {\n")
	for _, l := range g.inputs {
		b.WriteString("    " + l + "\n")
	}
	for _, c := range g.ctxIns {
		b.WriteString(fmt.Sprintf("    input %s: f32[batch, %s]\n", c.key, joinInts(c.t.shape[1:])))
	}
	if g.chance(0.3) {
		b.WriteString("    let unused = d * 2  # a binding nothing reads\n")
	}
	for _, l := range g.semicolons(body.lines) {
		b.WriteString(l + "\n")
	}
	b.WriteString("}\n")
	m.Source = b.String()
	m.Adapters, m.Merge = g.injections()
	return m
}

// outputs ends the entry point with a Parallel, so that it has several outputs: the value
// itself (twice, perhaps: one value, two outputs), a computed one, a constant (an i64
// Arange, which the Go target computes at load time), a parameter.
func (g *gen) outputs(b *w, x tensor) {
	b.open("Parallel")
	for range g.between(2, 3) {
		switch g.r.IntN(5) {
		case 0, 1:
			b.line("Identity()")
		case 2:
			b.open("Chain")
			g.chain(b, x, g.between(1, 2))
			b.close()
		case 3:
			g.arange(b, g.between(1, 6), pick(g, "i64", "f32"))
		default:
			b.line("Parameter(%s)%s", g.intArgs([]int{g.between(1, 4), g.between(1, 3)}), g.key())
		}
	}
	b.close()
}

// semicolons puts, now and then, two statements of a block on one line, separated by `;`.
func (g *gen) semicolons(lines []string) []string {
	simple := func(l string) bool {
		t := strings.TrimSpace(l)
		return t != "" && !strings.HasSuffix(t, "{") && !strings.HasPrefix(t, "}") && !strings.Contains(t, "#")
	}
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	var out []string
	for _, l := range lines {
		if n := len(out); n > 0 && simple(out[n-1]) && simple(l) && indent(out[n-1]) == indent(l) && g.chance(0.05) {
			out[n-1] += "; " + strings.TrimSpace(l)
			continue
		}
		out = append(out, l)
	}
	return out
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}

// entryInput writes the entry point's input lines and returns the values its body gets.
func (g *gen) entryInput() []tensor {
	n := 1
	if g.chance(0.12) {
		n = 2
	}
	var out []tensor
	for i := range n {
		name := []string{"x", "y"}[i]
		var t tensor
		dtype := "f32"
		switch k := g.r.IntN(10); {
		case k < 3:
			t = tensor{shape: []int{g.batch, g.between(1, 10)}}
		case k < 6:
			t = tensor{shape: []int{g.batch, g.between(1, 8), g.between(2, g.cfg.MaxDim)}}
		case k < 9 || n > 1:
			c, h, ww := g.between(1, 6), g.between(1, 8), g.between(1, 8)
			for c*h*ww > g.cfg.MaxElems {
				h, ww = max(1, h/2), max(1, ww/2)
			}
			t = tensor{shape: []int{g.batch, c, h, ww}}
		default:
			t = tensor{shape: []int{g.batch, g.between(1, 8)}, index: true, vocab: g.between(2, 20)}
			dtype = pick(g, "i64", "i32")
		}
		if !t.index && g.chance(0.1) {
			dtype = pick(g, "f16", "bf16") // widened to f32 on entry
		}
		dims := []string{"batch"}
		for _, d := range t.shape[1:] {
			dims = append(dims, g.num(d))
		}
		g.inputs = append(g.inputs, fmt.Sprintf("input %s: %s[%s]", name, dtype, strings.Join(dims, ", ")))
		out = append(out, t)
	}
	return out
}

// injections draws the adapters to inject after elaboration. Their targets are picked
// among the layers of the class in the elaborated module, so a class with no layers there
// makes the injection a no-op (the harness skips it).
func (g *gen) injections() ([]Injection, bool) {
	var out []Injection
	for _, a := range g.adapters {
		out = append(out, Injection{Name: "a" + strconv.Itoa(len(out)+1), Adapter: a.name, Class: a.class, Pick: []int{g.r.IntN(64)}, Scale: 1})
	}
	if g.chance(0.45) {
		for range g.between(1, 2) {
			adapter, class := "LinearLora", "Linear"
			if g.chance(0.4) {
				adapter, class = "Conv2dLora", "Conv2d"
			}
			var targets []int
			for range g.between(1, 3) {
				targets = append(targets, g.r.IntN(64))
			}
			rank := g.between(1, 4)
			params := map[string]string{"rank": strconv.Itoa(rank)}
			if g.chance(0.5) {
				params["alpha"] = flt(float64(g.between(1, 8)))
			}
			out = append(out, Injection{Name: "lora" + strconv.Itoa(len(out)+1), Adapter: adapter, Class: class, Pick: targets, Params: params, Scale: pick(g, 1.0, 0.5, 0.8, -1.25)})
		}
	}
	return out, len(out) > 0 && g.chance(0.5)
}
