package fuzzgen

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/ir"
)

// move writes one layer (or a container of them) that takes x, and returns its output. It
// returns ok false, having written nothing, when it does not apply to x.
type move func(g *gen, b *w, x tensor) (tensor, bool)

type weighted struct {
	weight int
	m      move
	image  bool // a layer of [n, c, h, w] maps: drawn three times as often for those
}

// moves is the catalogue the chain draws from, with weights.
var moves []weighted

func init() {
	moves = []weighted{
		{10, (*gen).activation, false},
		{3, (*gen).exp, false},
		{4, (*gen).multiply, false},
		{2, (*gen).clamp, false},
		{4, (*gen).foldable, false},
		{3, (*gen).softmax, false},
		{3, (*gen).glu, false},
		{10, (*gen).linear, false},
		{4, (*gen).layerNorm, false},
		{3, (*gen).groupNorm, false},
		{4, (*gen).reshape, false},
		{3, (*gen).flatten, false},
		{3, (*gen).unflatten, false},
		{3, (*gen).transpose, false},
		{2, (*gen).permute, false},
		{2, (*gen).squeeze, false},
		{2, (*gen).unsqueeze, false},
		{4, (*gen).slicing, false},
		{4, (*gen).pad, false},
		{1, (*gen).identity, false},
		{2, (*gen).multiplyInput, false},
		{9, (*gen).conv2d, true},
		{4, (*gen).convTranspose2d, true},
		{3, (*gen).channelNorm, true},
		{4, (*gen).upsample, true},
		{2, (*gen).reflectionPad, true},
		{3, (*gen).pixelShuffle, true},
		{2, (*gen).selfAttention, false},
		{2, (*gen).selfAttention2d, true},
		{6, (*gen).residual, false},
		{5, (*gen).sumProduct, false},
		{3, (*gen).concatenate, false},
		{3, (*gen).chainBlock, false},
		{2, (*gen).passthrough, false},
		{5, (*gen).parallel, false},
		{3, (*gen).chunk, false},
		{3, (*gen).setContext, false},
		{3, (*gen).repeat, false},
		{2, (*gen).ifElse, false},
		{3, (*gen).helperModel, false},
		{2, (*gen).specialized, false},
		{2, (*gen).customAdapter, false},
	}
}

// chain writes up to steps layers from x and returns what they compute.
func (g *gen) chain(b *w, x tensor, steps int) tensor {
	for i := 0; i < steps && g.budget > 0; i++ {
		if x.index {
			x = g.embedding(b, x)
			continue
		}
		weight := func(c weighted) int {
			if c.image && x.rank() == 4 {
				return 3 * c.weight
			}
			return c.weight
		}
		total := 0
		for _, c := range moves {
			total += weight(c)
		}
		for tries := 0; tries < 20; tries++ {
			k := g.r.IntN(total)
			var m move
			for _, c := range moves {
				if k < weight(c) {
					m = c.m
					break
				}
				k -= weight(c)
			}
			if y, ok := m(g, b, x); ok {
				x = y
				g.budget--
				break
			}
		}
	}
	return x
}

// chainTo writes a few layers from x, then those that bring the result to target.
func (g *gen) chainTo(b *w, x tensor, target tensor, steps int) {
	y := g.chain(b, x, steps)
	g.repair(b, y, target)
}

// branchSteps is how many free layers a branch of a container gets.
func (g *gen) branchSteps() int {
	if g.depth >= g.cfg.Depth {
		return g.between(0, 1)
	}
	return g.between(0, 3)
}

// fits reports whether shape respects the size bounds.
func (g *gen) fits(shape []int) bool {
	if ir.Prod(shape[1:]) > g.cfg.MaxElems {
		return false
	}
	for _, d := range shape[1:] {
		if d < 1 || d > 4*g.cfg.MaxDim {
			return false
		}
	}
	return true
}

// repair writes the layers that turn y into target's shape: a Linear on the last dim, a
// 1×1 convolution on the channels, an Interpolate on the pixels, a Linear over the tokens,
// or, failing those, Flatten → Linear → Unflatten.
func (g *gen) repair(b *w, y, target tensor) {
	if y.index {
		y = g.embedding(b, y)
	}
	for {
		switch {
		case sameShape(y.shape, target.shape):
			return
		case y.rank() == target.rank() && sameShape(y.shape[:y.rank()-1], target.shape[:target.rank()-1]):
			b.line("Linear(%s, %s)%s", g.num(y.last()), g.num(target.last()), g.key())
			return
		case y.rank() == 4 && target.rank() == 4 && sameShape(y.shape[2:], target.shape[2:]):
			k := pick(g, 1, 1, 3)
			b.line("Conv2d(%s, %s, %s%s)%s", g.num(y.shape[1]), g.num(target.shape[1]), g.num(k), map[bool]string{true: ", padding=1", false: ""}[k == 3], g.key())
			return
		case y.rank() == 4 && target.rank() == 4 && ir.Prod(y.shape[1:2])*ir.Prod(target.shape[2:]) <= g.cfg.MaxElems*2:
			mode := pick(g, "nearest", "bilinear")
			b.line("Interpolate(size=%s, mode=%q)", g.ints(target.shape[2:]), mode)
			y = tensor{shape: []int{y.shape[0], y.shape[1], target.shape[2], target.shape[3]}}
		case y.rank() == 3 && target.rank() == 3 && y.last() == target.last():
			b.line("Transpose(1, 2)")
			b.line("Linear(%s, %s)%s", g.num(y.shape[1]), g.num(target.shape[1]), g.key())
			b.line("Transpose(%s, %s)", pick(g, "1", "-2"), pick(g, "2", "-1"))
			return
		default:
			if y.rank() > 2 {
				b.line("Flatten(%s)", pick(g, "1", "start_dim=1", "1, -1"))
			}
			b.line("Linear(%s, %s)%s", g.num(y.elems()), g.num(target.elems()), g.key())
			if target.rank() > 2 {
				if g.chance(0.5) {
					b.line("Unflatten(1, %s)", g.ints(target.shape[1:]))
				} else {
					b.line("Reshape(%s)", g.intArgs(target.shape[1:]))
				}
			}
			return
		}
	}
}

// embedding looks up integer indices.
func (g *gen) embedding(b *w, x tensor) tensor {
	d := g.between(2, g.cfg.MaxDim)
	for x.elems()*d > g.cfg.MaxElems && d > 1 {
		d--
	}
	v := x.vocab + g.between(0, 3)
	b.line("Embedding(%s, %s)%s", g.num(v), g.num(d), g.key())
	return tensor{shape: append(slices.Clone(x.shape), d)}
}

// ---- element-wise ----

func (g *gen) activation(b *w, x tensor) (tensor, bool) {
	switch k := g.r.IntN(8); k {
	case 0:
		b.line("GeLU(%s)%s", pick(g, "", `approximation="tanh"`, `approximation="sigmoid"`, `approximation="none"`), g.key())
	default:
		b.line("%s()%s", []string{"", "ReLU", "SiLU", "Sigmoid", "Tanh", "Sin", "Cos", "ReLU"}[k], g.key())
	}
	return x, true
}

// exp follows a layer that bounds its input, so that no value overflows.
func (g *gen) exp(b *w, x tensor) (tensor, bool) {
	switch g.r.IntN(3) {
	case 0:
		b.line("Tanh()")
	case 1:
		b.line("Clamp(min=-3.0, max=%s)", flt(float64(g.between(0, 2))))
	default:
		b.line("Sin()")
	}
	b.line("Exp()%s", g.key())
	return x, true
}

func (g *gen) multiply(b *w, x tensor) (tensor, bool) {
	scale := pick(g, 0.5, 2.0, -1.0, 1.5, 1.0, 0.25)
	switch g.r.IntN(4) {
	case 0:
		b.line("Multiply(%s)", flt(scale))
	case 1:
		b.line("Multiply(%s, %s)", flt(scale), flt(pick(g, 0.5, -0.25, 1.0)))
	case 2:
		b.line("Multiply(bias=%s)", flt(pick(g, 0.5, -0.25, 1.0)))
	default:
		b.line("Multiply(scale=%s, bias=0.0)", flt(scale))
	}
	return x, true
}

// foldable writes what the fold pass rewrites: two scales in a row (one scale), two
// transposes or reshapes in a row, and the identities it drops (a whole slice, a scale by
// one, a permutation that keeps the order, a concatenation of one).
func (g *gen) foldable(b *w, x tensor) (tensor, bool) {
	switch g.r.IntN(6) {
	case 0:
		b.line("Multiply(%s, %s)", flt(pick(g, 0.5, 2.0, -1.5)), flt(pick(g, 0.25, -1.0, 0.5)))
		b.line("Multiply(%s, %s)", flt(pick(g, 3.0, -0.5, 1.25)), flt(pick(g, 0.0, 0.75, -0.25)))
	case 1:
		if x.rank() < 3 {
			return x, false
		}
		y := slices.Clone(x.shape)
		for range 2 {
			d0, d1 := g.between(1, x.rank()-1), g.between(1, x.rank()-1)
			b.line("Transpose(%d, %d)", d0, d1)
			y[d0], y[d1] = y[d1], y[d0]
		}
		return tensor{shape: y}, true
	case 2:
		y, ok := g.reshape(b, x)
		if !ok {
			return x, false
		}
		if z, ok := g.reshape(b, y); ok {
			return z, true
		}
		return y, true // the first is written
	case 3:
		d := g.between(1, x.rank()-1)
		b.line("Slicing(dim=%d, start=0, end=%d)", d, x.shape[d]+g.between(0, 3))
	case 4:
		b.line("Multiply(1.0)")
	default:
		b.open("Concatenate(%d)", g.between(1, x.rank()-1))
		b.line("Identity()")
		b.close()
	}
	return x, true
}

func (g *gen) clamp(b *w, x tensor) (tensor, bool) {
	switch g.r.IntN(3) {
	case 0:
		b.line("Clamp(min=%s)", flt(pick(g, -0.5, 0.0, 0.25)))
	case 1:
		b.line("Clamp(max=%s)", flt(pick(g, 0.5, 0.0, 1.0)))
	default:
		b.line("Clamp(%s, %s)", flt(pick(g, -1.0, -0.5)), flt(pick(g, 0.5, 1)))
	}
	return x, true
}

func (g *gen) softmax(b *w, x tensor) (tensor, bool) {
	d := g.between(1, x.rank()-1)
	switch {
	case d == x.rank()-1 && g.chance(0.5):
		b.line("Softmax()")
	case g.chance(0.5):
		b.line("Softmax(dim=%d)", d-x.rank())
	default:
		b.line("Softmax(%s)", g.num(d))
	}
	return x, true
}

func (g *gen) glu(b *w, x tensor) (tensor, bool) {
	if g.chance(0.6) {
		// A Linear in front, as in GEGLU (fuse_geglu makes them one op).
		out := 2 * g.between(1, g.cfg.MaxDim/2)
		y := slices.Clone(x.shape)
		y[len(y)-1] = out
		if !g.fits(y) {
			return x, false
		}
		b.line("Linear(%s, %s)%s", g.num(x.last()), g.num(out), g.key())
		x = tensor{shape: y}
	}
	if x.last()%2 != 0 {
		return x, false
	}
	act := pick(g, "relu", "silu", "sigmoid", "tanh", "gelu", "sin", "cos", "exp")
	if act == "exp" {
		b.line("Tanh()")
	}
	if g.chance(0.3) {
		act = strings.ToUpper(act[:1]) + act[1:] // the activation's name is not case-sensitive
	}
	b.line("GLU(%q)%s", act, g.key())
	y := slices.Clone(x.shape)
	y[len(y)-1] /= 2
	return tensor{shape: y}, true
}

func (g *gen) identity(b *w, x tensor) (tensor, bool) {
	b.line("Identity()")
	return x, true
}

func (g *gen) multiplyInput(b *w, x tensor) (tensor, bool) {
	g.scalars++
	b.line("MultiplyInput(%q)", "gain"+strconv.Itoa(g.scalars))
	return x, true
}

// ---- layers with weights ----

func (g *gen) linear(b *w, x tensor) (tensor, bool) {
	out := g.between(1, g.cfg.MaxDim)
	y := slices.Clone(x.shape)
	y[len(y)-1] = out
	if !g.fits(y) {
		return x, false
	}
	switch g.r.IntN(4) {
	case 0:
		b.line("Linear(%s, %s, bias=%s)%s", g.num(x.last()), g.num(out), g.bool(g.chance(0.5)), g.key())
	case 1:
		b.line("Linear(in_features=%s, out_features=%s)%s", g.num(x.last()), g.num(out), g.key())
	default:
		b.line("Linear(%s, %s)%s", g.num(x.last()), g.num(out), g.key())
	}
	return tensor{shape: y}, true
}

func (g *gen) eps() string { return flt(pick(g, 1e-5, 1e-6, 1e-3, 0.01)) }

func (g *gen) layerNorm(b *w, x tensor) (tensor, bool) {
	k := 1
	if x.rank() > 2 && g.chance(0.4) {
		k = 2
	}
	dims := x.shape[x.rank()-k:]
	if ir.Prod(dims) < 2 {
		return x, false
	}
	shape := g.num(dims[0])
	if k == 2 || g.chance(0.2) {
		shape = g.ints(dims)
	}
	var extra string
	if g.chance(0.4) {
		extra += ", eps=" + g.eps()
	}
	if g.chance(0.25) {
		extra += ", elementwise_affine=" + g.bool(false)
	}
	b.line("LayerNorm(%s%s)%s", shape, extra, g.key())
	return x, true
}

func (g *gen) groupNorm(b *w, x tensor) (tensor, bool) {
	c := x.shape[1]
	var groups []int
	for d := 1; d <= c; d++ {
		if c%d == 0 && (c/d)*ir.Prod(x.shape[2:]) >= 2 {
			groups = append(groups, d)
		}
	}
	if len(groups) == 0 {
		return x, false
	}
	n := pick(g, groups...)
	var extra string
	if g.chance(0.3) {
		extra += ", eps=" + g.eps()
	}
	if g.chance(0.25) {
		extra += ", affine=false"
	}
	b.line("GroupNorm(%s, %s%s)%s", g.num(c), g.num(n), extra, g.key())
	return x, true
}

func (g *gen) channelNorm(b *w, x tensor) (tensor, bool) {
	if x.rank() != 4 {
		return x, false
	}
	if g.chance(0.5) {
		extra := ""
		if g.chance(0.3) {
			extra = ", eps=" + g.eps()
		}
		if g.chance(0.2) {
			extra += ", affine=false"
		}
		b.line("LayerNorm2d(%s%s)%s", g.num(x.shape[1]), extra, g.key())
		return x, true
	}
	if x.shape[2]*x.shape[3] < 2 {
		return x, false
	}
	extra := ""
	if g.chance(0.5) {
		extra = ", affine=true"
	}
	b.line("InstanceNorm2d(%s%s)%s", g.num(x.shape[1]), extra, g.key())
	return x, true
}

// divisors lists the divisors of n.
func divisors(n int) []int {
	var out []int
	for d := 1; d <= n; d++ {
		if n%d == 0 {
			out = append(out, d)
		}
	}
	return out
}

func (g *gen) conv2d(b *w, x tensor) (tensor, bool) {
	if x.rank() != 4 {
		return x, false
	}
	c, h, wd := x.shape[1], x.shape[2], x.shape[3]
	kh, kw := g.between(1, 3), g.between(1, 3)
	if g.chance(0.6) {
		kw = kh
	}
	sh, sw := g.between(1, 2), g.between(1, 2)
	if g.chance(0.7) {
		sw = sh
	}
	dh, dw := 1, 1
	if g.chance(0.2) {
		dh, dw = 2, pick(g, 1, 2)
	}
	ph, pw := g.between(0, kh), g.between(0, kw)
	if g.chance(0.6) {
		pw = ph
	}
	mode := "zeros"
	if g.chance(0.25) {
		mode = pick(g, "reflect", "replicate")
		if mode == "reflect" && (ph >= h || pw >= wd) {
			mode = "replicate"
		}
	}
	out := g.between(1, g.cfg.MaxDim)
	groups := g.groups(c, out, 0.25)
	oh := (h+2*ph-dh*(kh-1)-1)/sh + 1
	ow := (wd+2*pw-dw*(kw-1)-1)/sw + 1
	if h+2*ph < dh*(kh-1)+1 || wd+2*pw < dw*(kw-1)+1 || oh < 1 || ow < 1 {
		return x, false
	}
	y := []int{x.shape[0], out, oh, ow}
	if !g.fits(y) {
		return x, false
	}
	args := []string{g.num(c), g.num(out), g.pairArg(kh, kw)}
	named := func(name, v string) { args = append(args, name+"="+v) }
	if sh != 1 || sw != 1 || g.chance(0.1) {
		named("stride", g.pairArg(sh, sw))
	}
	if ph != 0 || pw != 0 {
		named("padding", g.pairArg(ph, pw))
	}
	if groups != 1 {
		named("groups", g.num(groups))
	}
	if g.chance(0.2) {
		named("use_bias", g.bool(false))
	}
	if dh != 1 || dw != 1 {
		named("dilation", g.pairArg(dh, dw))
	}
	if mode != "zeros" || g.chance(0.05) {
		named("padding_mode", strconv.Quote(mode))
	}
	b.line("Conv2d(%s)%s", strings.Join(args, ", "), g.key())
	return tensor{shape: y}, true
}

// groups is a convolution's group count: with probability p, a divisor above 1 of both
// its input and output channels when they share one; 1 otherwise.
func (g *gen) groups(in, out int, p float64) int {
	if !g.chance(p) {
		return 1
	}
	var common []int
	for _, d := range divisors(in) {
		if d > 1 && out%d == 0 {
			common = append(common, d)
		}
	}
	if len(common) == 0 {
		return 1
	}
	return pick(g, common...)
}

func (g *gen) convTranspose2d(b *w, x tensor) (tensor, bool) {
	if x.rank() != 4 {
		return x, false
	}
	c, h, wd := x.shape[1], x.shape[2], x.shape[3]
	k := g.between(1, 4)
	s := g.between(1, 2)
	p := g.between(0, k-1)
	d := 1
	if g.chance(0.15) {
		d = 2
	}
	op := 0
	if g.chance(0.3) {
		op = g.between(0, max(s, d)-1)
	}
	out := g.between(1, g.cfg.MaxDim)
	groups := g.groups(c, out, 0.2)
	oh := (h-1)*s - 2*p + d*(k-1) + op + 1
	ow := (wd-1)*s - 2*p + d*(k-1) + op + 1
	if oh < 1 || ow < 1 {
		return x, false
	}
	y := []int{x.shape[0], out, oh, ow}
	if !g.fits(y) {
		return x, false
	}
	args := []string{g.num(c), g.num(out), g.num(k)}
	if s != 1 {
		args = append(args, "stride="+g.num(s))
	}
	if p != 0 {
		args = append(args, "padding="+g.num(p))
	}
	if op != 0 {
		args = append(args, "output_padding="+g.num(op))
	}
	if groups != 1 {
		args = append(args, "groups="+g.num(groups))
	}
	if g.chance(0.2) {
		args = append(args, "use_bias=false")
	}
	if d != 1 {
		args = append(args, "dilation="+g.num(d))
	}
	b.line("ConvTranspose2d(%s)%s", strings.Join(args, ", "), g.key())
	return tensor{shape: y}, true
}

// ---- shape layers ----

// factor splits n into two factors, the first drawn among n's divisors.
func (g *gen) factor(n int) (int, int) {
	a := pick(g, divisors(n)...)
	return a, n / a
}

func (g *gen) reshape(b *w, x tensor) (tensor, bool) {
	n := x.elems()
	var dims []int
	switch g.r.IntN(3) {
	case 0:
		dims = []int{n}
	case 1:
		a, c := g.factor(n)
		dims = []int{a, c}
	default:
		a, c := g.factor(n)
		c1, c2 := g.factor(c)
		dims = []int{a, c1, c2}
	}
	y := append([]int{x.shape[0]}, dims...)
	if !g.fits(y) {
		return x, false
	}
	parts := make([]string, len(dims))
	hole := -1
	if g.chance(0.4) {
		hole = g.r.IntN(len(dims))
	}
	for i, d := range dims {
		if i == hole {
			parts[i] = "-1"
		} else {
			parts[i] = g.num(d)
		}
	}
	b.line("Reshape(%s)", strings.Join(parts, ", "))
	return tensor{shape: y}, true
}

func (g *gen) flatten(b *w, x tensor) (tensor, bool) {
	if x.rank() < 3 {
		return x, false
	}
	s := g.between(1, x.rank()-2)
	e := g.between(s+1, x.rank()-1)
	y := append(slices.Clone(x.shape[:s]), ir.Prod(x.shape[s:e+1]))
	y = append(y, x.shape[e+1:]...)
	end := strconv.Itoa(e)
	if e == x.rank()-1 && g.chance(0.5) {
		end = "-1"
	}
	if e == x.rank()-1 && g.chance(0.3) {
		b.line("Flatten(%d)", s)
	} else if g.chance(0.5) {
		b.line("Flatten(start_dim=%d, end_dim=%s)", s, end)
	} else {
		b.line("Flatten(%d, %s)", s, end)
	}
	return tensor{shape: y}, true
}

func (g *gen) unflatten(b *w, x tensor) (tensor, bool) {
	d := g.between(1, x.rank()-1)
	a, c := g.factor(x.shape[d])
	y := append(slices.Clone(x.shape[:d]), a, c)
	y = append(y, x.shape[d+1:]...)
	if len(y) > 5 {
		return x, false
	}
	sizes := g.ints([]int{a, c})
	if g.chance(0.3) {
		sizes = fmt.Sprintf("[%s, -1]", g.num(a))
	}
	dim := strconv.Itoa(d)
	if g.chance(0.3) {
		dim = strconv.Itoa(d - x.rank())
	}
	b.line("Unflatten(%s, %s)", dim, sizes)
	return tensor{shape: y}, true
}

// axis writes dim d of a rank-r tensor, sometimes counted from the end.
func (g *gen) axis(d, r int) string {
	if g.chance(0.3) {
		return strconv.Itoa(d - r)
	}
	return strconv.Itoa(d)
}

func (g *gen) transpose(b *w, x tensor) (tensor, bool) {
	if x.rank() < 3 {
		return x, false
	}
	d0 := g.between(1, x.rank()-1)
	d1 := g.between(1, x.rank()-1)
	y := slices.Clone(x.shape)
	y[d0], y[d1] = y[d1], y[d0]
	b.line("Transpose(%s, %s)", g.axis(d0, x.rank()), g.axis(d1, x.rank()))
	return tensor{shape: y}, true
}

func (g *gen) permute(b *w, x tensor) (tensor, bool) {
	if x.rank() < 3 {
		return x, false
	}
	perm := append([]int{0}, g.r.Perm(x.rank()-1)...)
	parts := []string{"0"}
	y := []int{x.shape[0]}
	for _, p := range perm[1:] {
		parts = append(parts, g.axis(p+1, x.rank()))
		y = append(y, x.shape[p+1])
	}
	b.line("Permute(%s)", strings.Join(parts, ", "))
	return tensor{shape: y}, true
}

func (g *gen) squeeze(b *w, x tensor) (tensor, bool) {
	var ones []int
	for d := 1; d < x.rank(); d++ {
		if x.shape[d] == 1 {
			ones = append(ones, d)
		}
	}
	if len(ones) == 0 || x.rank() < 3 {
		if x.rank() >= 3 && g.chance(0.2) {
			// A dim of size other than 1 stays, as in torch.
			d := g.between(1, x.rank()-1)
			b.line("Squeeze(%s)", g.axis(d, x.rank()))
			return x, true
		}
		return x, false
	}
	d := pick(g, ones...)
	b.line("Squeeze(%s)", g.axis(d, x.rank()))
	return tensor{shape: slices.Delete(slices.Clone(x.shape), d, d+1)}, true
}

func (g *gen) unsqueeze(b *w, x tensor) (tensor, bool) {
	if x.rank() >= 5 {
		return x, false
	}
	d := g.between(1, x.rank())
	dim := strconv.Itoa(d)
	if g.chance(0.3) {
		dim = strconv.Itoa(d - x.rank() - 1)
	}
	b.line("Unsqueeze(%s)", dim)
	return tensor{shape: slices.Insert(slices.Clone(x.shape), d, 1)}, true
}

func (g *gen) slicing(b *w, x tensor) (tensor, bool) {
	d := g.between(1, x.rank()-1)
	n := x.shape[d]
	start := g.between(0, n-1)
	end := g.between(start+1, n)
	step := 1
	if g.chance(0.3) {
		step = g.between(1, 3)
	}
	y := slices.Clone(x.shape)
	y[d] = (end-start-1)/step + 1
	args := []string{"dim=" + g.axis(d, x.rank())}
	if start != 0 || g.chance(0.2) {
		s := strconv.Itoa(start)
		if g.chance(0.3) {
			s = strconv.Itoa(start - n)
		}
		args = append(args, "start="+s)
	}
	if end != n || g.chance(0.3) {
		e := strconv.Itoa(end)
		switch {
		case end == n && g.chance(0.5):
			e = strconv.Itoa(n + g.between(1, 5)) // clipped, as in Python
		case end < n && g.chance(0.3):
			e = strconv.Itoa(end - n)
		}
		args = append(args, "end="+e)
	}
	if step != 1 {
		args = append(args, "step="+strconv.Itoa(step))
	}
	b.line("Slicing(%s)", strings.Join(args, ", "))
	return tensor{shape: y}, true
}

func (g *gen) pad(b *w, x tensor) (tensor, bool) {
	k := g.between(1, min(2, x.rank()-1))
	mode := pick(g, "constant", "constant", "reflect", "replicate")
	y := slices.Clone(x.shape)
	var pads []int
	for i := range k {
		d := x.rank() - 1 - i
		var lo, hi int
		switch mode {
		case "reflect":
			lo, hi = g.between(0, min(2, x.shape[d]-1)), g.between(0, min(2, x.shape[d]-1))
		case "replicate":
			lo, hi = g.between(0, 2), g.between(0, 2)
		default:
			lo, hi = g.between(-1, 2), g.between(-1, 2)
			if x.shape[d]+lo+hi < 1 {
				lo, hi = 0, 1
			}
		}
		pads = append(pads, lo, hi)
		y[d] += lo + hi
	}
	if !g.fits(y) {
		return x, false
	}
	args := []string{g.ints(pads)}
	if mode != "constant" || g.chance(0.2) {
		args = append(args, "mode="+strconv.Quote(mode))
	}
	if mode == "constant" && g.chance(0.4) {
		args = append(args, "value="+flt(pick(g, 0.5, -1.0, 2.0)))
	}
	b.line("Pad(%s)", strings.Join(args, ", "))
	return tensor{shape: y}, true
}

func (g *gen) reflectionPad(b *w, x tensor) (tensor, bool) {
	if x.rank() != 4 {
		return x, false
	}
	h, wd := x.shape[2], x.shape[3]
	if h < 2 || wd < 2 {
		return x, false
	}
	var l, r, t, bt int
	var arg string
	if g.chance(0.5) {
		p := g.between(1, min(2, h-1, wd-1))
		l, r, t, bt = p, p, p, p
		arg = g.num(p)
	} else {
		l, r, t, bt = g.between(0, min(2, wd-1)), g.between(0, min(2, wd-1)), g.between(0, min(2, h-1)), g.between(0, min(2, h-1))
		arg = g.ints([]int{l, r, t, bt})
	}
	y := []int{x.shape[0], x.shape[1], h + t + bt, wd + l + r}
	if !g.fits(y) {
		return x, false
	}
	b.line("ReflectionPad2d(%s)", arg)
	return tensor{shape: y}, true
}

func (g *gen) pixelShuffle(b *w, x tensor) (tensor, bool) {
	if x.rank() != 4 {
		return x, false
	}
	c, h, wd := x.shape[1], x.shape[2], x.shape[3]
	f := pick(g, 2, 2, 3)
	if h%f == 0 && wd%f == 0 && g.chance(0.5) {
		b.line("PixelUnshuffle(%s)", g.num(f))
		return tensor{shape: []int{x.shape[0], c * f * f, h / f, wd / f}}, true
	}
	conv := c%(f*f) != 0
	if conv {
		// Channels for the shuffle first, as an upsampling block has.
		c = f * f * g.between(1, 2)
	}
	y := []int{x.shape[0], c / (f * f), h * f, wd * f}
	if !g.fits(y) {
		return x, false
	}
	if conv {
		b.line("Conv2d(%s, %s, 1)%s", g.num(x.shape[1]), g.num(c), g.key())
	}
	b.line("PixelShuffle(%s)", g.num(f))
	return tensor{shape: y}, true
}

func (g *gen) upsample(b *w, x tensor) (tensor, bool) {
	if x.rank() != 4 {
		return x, false
	}
	h, wd := x.shape[2], x.shape[3]
	name := pick(g, "Upsample", "Interpolate")
	mode := pick(g, "nearest", "bilinear")
	var args []string
	var oh, ow int
	switch g.r.IntN(3) {
	case 0:
		f := pick(g, 2.0, 1.5, 0.5, 3.0)
		oh, ow = int(float64(h)*f), int(float64(wd)*f)
		args = append(args, "scale_factor="+flt(f))
	case 1:
		oh, ow = g.between(1, 2*h+1), g.between(1, 2*wd+1)
		args = append(args, "size="+g.pairArg(oh, ow))
	default:
		oh = g.between(1, 2*h+1)
		ow = oh
		args = append(args, "size="+g.num(oh))
	}
	if oh < 1 || ow < 1 {
		return x, false
	}
	if mode != "nearest" || g.chance(0.3) {
		args = append(args, "mode="+strconv.Quote(mode))
	}
	if mode == "bilinear" && g.chance(0.4) {
		args = append(args, "align_corners="+g.bool(true))
	}
	y := []int{x.shape[0], x.shape[1], oh, ow}
	if !g.fits(y) {
		return x, false
	}
	b.line("%s(%s)", name, strings.Join(args, ", "))
	return tensor{shape: y}, true
}

// ---- attention ----

func (g *gen) heads(dims ...int) int {
	var hs []int
	for h := 1; h <= 4; h++ {
		ok := true
		for _, d := range dims {
			ok = ok && d%h == 0
		}
		if ok {
			hs = append(hs, h)
		}
	}
	return pick(g, hs...)
}

func (g *gen) selfAttention(b *w, x tensor) (tensor, bool) {
	if x.rank() != 3 {
		return x, false
	}
	e := x.last()
	inner := e
	if g.chance(0.4) {
		inner = g.between(1, 3) * g.between(1, 4)
	}
	h := g.heads(inner)
	args := []string{g.num(e)}
	if inner != e {
		args = append(args, "inner_dim="+g.num(inner))
	}
	if h != 1 {
		args = append(args, "num_heads="+g.num(h))
	}
	if g.chance(0.2) {
		args = append(args, "use_bias="+g.bool(false))
	}
	if g.chance(0.3) {
		args = append(args, "is_causal="+g.bool(true))
	}
	b.line("SelfAttention(%s)%s", strings.Join(args, ", "), g.key())
	return x, true
}

func (g *gen) selfAttention2d(b *w, x tensor) (tensor, bool) {
	if x.rank() != 4 {
		return x, false
	}
	c := x.shape[1]
	args := []string{g.num(c)}
	if h := g.heads(c); h != 1 {
		args = append(args, "num_heads="+g.num(h))
	}
	if g.chance(0.2) {
		args = append(args, "is_causal=true")
	}
	b.line("SelfAttention2d(%s)%s", strings.Join(args, ", "), g.key())
	return x, true
}

// ---- containers ----

// block runs fn one container level deeper.
func (g *gen) block(fn func()) {
	g.depth++
	fn()
	g.depth--
}

func (g *gen) deepEnough() bool { return g.depth >= g.cfg.Depth }

func (g *gen) residual(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() {
		return x, false
	}
	g.block(func() {
		b.open("Residual%s", g.key())
		target := x
		if g.chance(0.2) {
			target = g.broadcastable(x)
		}
		g.chainTo(b, x, target, g.between(1, 3))
		b.close()
	})
	return x, true
}

// broadcastable is x with some dims other than the batch set to 1.
func (g *gen) broadcastable(x tensor) tensor {
	y := slices.Clone(x.shape)
	for d := 1; d < len(y); d++ {
		if g.chance(0.4) {
			y[d] = 1
		}
	}
	return tensor{shape: y}
}

// branch writes one child of a Sum or Product whose output broadcasts to x: a chain, a
// Parameter, an Arange on the last dim, a value from the context.
func (g *gen) branch(b *w, x tensor, full bool) {
	if !full {
		switch g.r.IntN(6) {
		case 0:
			dims := g.broadcastable(x).shape[1:]
			b.line("Parameter(%s)%s", g.intArgs(dims), g.key())
			return
		case 1:
			g.arange(b, x.last(), "f32")
			return
		case 2:
			if x.rank() == 3 && x.shape[1] <= 12 {
				// Position embeddings, as CLIP's: [tokens, dim] broadcast over the batch.
				b.open("Chain")
				g.arange(b, x.shape[1], pick(g, "i64", "i32"))
				b.line("Embedding(%s, %s)%s", g.num(x.shape[1]+g.between(0, 2)), g.num(x.last()), g.key())
				b.close()
				return
			}
		case 3:
			if c, ok := g.useContext(); ok {
				b.open("Chain")
				b.line(`UseContext(%q, %q)`, c.ctx, c.key)
				g.repair(b, c.t, x)
				b.close()
				return
			}
		}
	}
	target := x
	if !full && g.chance(0.4) {
		target = g.broadcastable(x)
	}
	b.open("Chain%s", g.key())
	g.chainTo(b, x, target, g.branchSteps())
	b.close()
}

// arange writes an Arange of n values.
func (g *gen) arange(b *w, n int, dtype string) {
	if dtype != "f32" || g.chance(0.5) {
		switch {
		case dtype == "i64" && g.chance(0.5):
			b.line("Arange(%s)", g.num(n))
		default:
			b.line("Arange(%s, dtype=%q)", g.num(n), dtype)
		}
		return
	}
	start := g.between(-3, 3)
	step := pick(g, 1, 2, -1)
	sign := 1
	if step < 0 {
		sign = -1
	}
	end := start + step*(n-1) + sign
	b.line("Arange(%d, start=%d, step=%d, dtype=%q)", end, start, step, dtype)
}

func (g *gen) sumProduct(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() {
		return x, false
	}
	kind := pick(g, "Sum", "Sum", "Product")
	g.block(func() {
		b.open("%s%s", kind, g.key())
		n := g.between(1, 3)
		full := g.r.IntN(n)
		for i := range n {
			g.branch(b, x, i == full)
		}
		b.close()
	})
	return x, true
}

func (g *gen) concatenate(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() {
		return x, false
	}
	d := g.between(1, x.rank()-1)
	n := g.between(1, 3)
	sizes := make([]int, n)
	total := 0
	for i := range sizes {
		sizes[i] = g.between(1, 4)
		total += sizes[i]
	}
	y := slices.Clone(x.shape)
	y[d] = total
	if !g.fits(y) {
		return x, false
	}
	g.block(func() {
		b.open("Concatenate(%s)%s", pick(g, "dim="+g.axis(d, x.rank()), g.axis(d, x.rank())), g.key())
		for _, s := range sizes {
			t := slices.Clone(x.shape)
			t[d] = s
			b.open("Chain")
			g.chainTo(b, x, tensor{shape: t}, g.branchSteps())
			b.close()
		}
		b.close()
	})
	return tensor{shape: y}, true
}

func (g *gen) chainBlock(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() {
		return x, false
	}
	var y tensor
	g.block(func() {
		if g.chance(0.3) {
			// A transparent key: the children's keys are the parent's; each child gets a
			// key of its own so that none collides with a sibling of the Chain.
			b.open(`Chain key ""`)
			y = x
			for range g.between(1, 3) {
				out := g.between(1, g.cfg.MaxDim)
				t := slices.Clone(y.shape)
				t[len(t)-1] = out
				if !g.fits(t) {
					break
				}
				n := g.next()
				k := strconv.Quote(fmt.Sprintf("t%d", n))
				for _, v := range g.loopVar {
					k += ` + "_" + str(` + v + ")"
				}
				if g.inLoop > len(g.loopVar) {
					k = ""
				}
				if k != "" {
					b.line("Linear(%s, %s) key %s", g.num(y.last()), g.num(out), k)
					y = tensor{shape: t}
				}
				b.line("ReLU()")
			}
			b.close()
			return
		}
		b.open("Chain%s", g.key())
		y = g.chain(b, x, g.between(1, 4))
		b.close()
	})
	return y, true
}

func (g *gen) passthrough(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() || g.helper {
		return x, false
	}
	g.block(func() {
		b.open("Passthrough")
		y := g.chain(b, x, g.between(1, 3))
		g.setContextOf(b, y)
		b.close()
	})
	return x, true
}

func (g *gen) setContext(b *w, x tensor) (tensor, bool) {
	if g.helper {
		return x, false
	}
	g.setContextOf(b, x)
	return x, true
}

func (g *gen) setContextOf(b *w, x tensor) {
	c := ctxValue{ctx: pick(g, "ctx", "cache"), key: "k" + strconv.Itoa(g.next()), t: x}
	b.line("SetContext(%q, %q)", c.ctx, c.key)
	g.ctxSet = append(g.ctxSet, c)
}

// useContext picks a context value for a UseContext: one set earlier, or a new input of
// the entry point that the context provides.
func (g *gen) useContext() (ctxValue, bool) {
	if g.helper {
		return ctxValue{}, false
	}
	if len(g.ctxSet) > 0 && g.chance(0.6) {
		return pick(g, g.ctxSet...), true
	}
	if len(g.ctxIns) < 2 {
		t := tensor{shape: []int{g.batch, g.between(1, 6), g.between(1, 8)}}
		if g.chance(0.4) {
			t = tensor{shape: []int{g.batch, g.between(1, 8)}}
		}
		c := ctxValue{ctx: "cond", key: "cond" + strconv.Itoa(len(g.ctxIns)+1), t: t}
		g.ctxIns = append(g.ctxIns, c)
		return c, true
	}
	return pick(g, g.ctxIns...), true
}

// parallel writes Parallel { … } and a layer that takes the tuple.
func (g *gen) parallel(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() {
		return x, false
	}
	var y tensor
	ok := true
	g.block(func() {
		targets, consume := g.consumer(x)
		if consume == nil {
			ok = false
			return
		}
		b.open("Parallel%s", g.key())
		for _, t := range targets {
			if !g.helper && g.chance(0.15) {
				c, _ := g.useContext()
				b.open("Chain")
				b.line(`UseContext(%q, %q)`, c.ctx, c.key)
				g.repair(b, c.t, t)
				b.close()
				continue
			}
			if sameShape(t.shape, x.shape) && g.chance(0.4) {
				b.line("Identity()")
				continue
			}
			b.open("Chain")
			g.chainTo(b, x, t, g.branchSteps())
			b.close()
		}
		b.close()
		y = consume(b)
	})
	return y, ok
}

// consumer draws a layer that takes a tuple, with the shapes the tuple must have: Matmul,
// attention, Interpolate to a reference size, or a container that merges the tuple.
func (g *gen) consumer(x tensor) ([]tensor, func(b *w) tensor) {
	bt := x.shape[0]
	dim := func() int { return g.between(1, g.cfg.MaxDim) }
	switch g.r.IntN(6) {
	case 0:
		m, k, n := g.between(1, 8), dim(), dim()
		if g.chance(0.3) {
			// Batch broadcasting: [B, h, m, k] @ [B, 1, k, n].
			h := g.between(2, 3)
			return []tensor{{shape: []int{bt, h, m, k}}, {shape: []int{bt, 1, k, n}}}, func(b *w) tensor {
				b.line("Matmul()")
				return tensor{shape: []int{bt, h, m, n}}
			}
		}
		return []tensor{{shape: []int{bt, m, k}}, {shape: []int{bt, k, n}}}, func(b *w) tensor {
			b.line("Matmul()")
			return tensor{shape: []int{bt, m, n}}
		}
	case 1:
		lq, lk := g.between(1, 8), g.between(1, 8)
		h := g.between(1, 3)
		e, ev := h*g.between(1, 4), h*g.between(1, 4)
		return []tensor{{shape: []int{bt, lq, e}}, {shape: []int{bt, lk, e}}, {shape: []int{bt, lk, ev}}}, func(b *w) tensor {
			args := []string{}
			if h != 1 || g.chance(0.3) {
				args = append(args, "num_heads="+g.num(h))
			}
			if g.chance(0.3) {
				args = append(args, "is_causal="+g.bool(true))
			}
			b.line("ScaledDotProductAttention(%s)", strings.Join(args, ", "))
			return tensor{shape: []int{bt, lq, ev}}
		}
	case 2:
		lq, lk := g.between(1, 8), g.between(1, 8)
		e, kd, vd := dim(), dim(), dim()
		inner := g.between(1, 4) * g.between(1, 3)
		h := g.heads(inner)
		return []tensor{{shape: []int{bt, lq, e}}, {shape: []int{bt, lk, kd}}, {shape: []int{bt, lk, vd}}}, func(b *w) tensor {
			args := []string{g.num(e)}
			if h != 1 {
				args = append(args, "num_heads="+g.num(h))
			}
			args = append(args, "key_embedding_dim="+g.num(kd), "value_embedding_dim="+g.num(vd))
			if inner != e || g.chance(0.3) {
				args = append(args, "inner_dim="+g.num(inner))
			}
			if g.chance(0.2) {
				args = append(args, "use_bias=false")
			}
			if g.chance(0.2) {
				args = append(args, "is_causal=true")
			}
			b.line("Attention(%s)%s", strings.Join(args, ", "), g.key())
			return tensor{shape: []int{bt, lq, e}}
		}
	case 3:
		if x.rank() == 4 {
			c := x.shape[1]
			rh, rw := g.between(1, 8), g.between(1, 8)
			if c*rh*rw > g.cfg.MaxElems {
				break
			}
			ref := tensor{shape: []int{bt, g.between(1, 3), rh, rw}}
			return []tensor{x, ref}, func(b *w) tensor {
				args := ""
				if g.chance(0.5) {
					args = `mode="bilinear"`
					if g.chance(0.3) {
						args += ", align_corners=true"
					}
				}
				b.line("%s(%s)", pick(g, "Upsample", "Interpolate"), args)
				return tensor{shape: []int{bt, c, rh, rw}}
			}
		}
	}
	// A container that merges the tuple: Sum { Identity() } adds its parts.
	n := g.between(2, 3)
	ts := make([]tensor, n)
	for i := range ts {
		ts[i] = x
	}
	if g.chance(0.3) {
		d := g.between(1, x.rank()-1)
		total := 0
		for i := range ts {
			s := slices.Clone(x.shape)
			s[d] = g.between(1, 3)
			total += s[d]
			ts[i] = tensor{shape: s}
		}
		y := slices.Clone(x.shape)
		y[d] = total
		if g.fits(y) {
			return ts, func(b *w) tensor {
				b.open("Concatenate(%s)", g.axis(d, x.rank()))
				b.line("Identity()")
				b.close()
				return tensor{shape: y}
			}
		}
		for i := range ts {
			ts[i] = x
		}
	}
	return ts, func(b *w) tensor {
		b.open(pick(g, "Sum", "Product", "Sum"))
		b.line("Identity()")
		b.close()
		return x
	}
}

// reduceTuple writes layers that take a tuple of values and give one.
func (g *gen) reduceTuple(b *w, ts []tensor) tensor {
	x := ts[0]
	b.open("Distribute")
	for _, t := range ts {
		b.open("Chain")
		g.chainTo(b, t, x, g.between(0, 2))
		b.close()
	}
	b.close()
	b.open(pick(g, "Sum", "Product"))
	b.line("Identity()")
	b.close()
	return x
}

// chunk writes Chunk and layers that take its parts.
func (g *gen) chunk(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() {
		return x, false
	}
	d := g.between(1, x.rank()-1)
	n := x.shape[d]
	k := g.between(2, 3)
	if n < 2 {
		return x, false
	}
	step := (n + k - 1) / k
	var parts []tensor
	for lo := 0; lo < n; lo += step {
		s := slices.Clone(x.shape)
		s[d] = min(step, n-lo)
		parts = append(parts, tensor{shape: s})
	}
	b.line("Chunk(%s, dim=%s)", g.num(k), g.axis(d, x.rank()))
	var y tensor
	g.block(func() {
		// Each part to the shape of the first, then merged.
		if len(parts) == 3 && x.rank() == 3 && d == 2 && sameShape(parts[0].shape, parts[2].shape) && g.chance(0.6) {
			// Packed q, k, v.
			h := g.heads(parts[0].last())
			b.line("ScaledDotProductAttention(num_heads=%s)", g.num(h))
			y = parts[0]
			return
		}
		y = g.reduceTuple(b, parts)
	})
	return y, true
}

// ---- statements ----

// repeat writes a shape-keeping block repeated a few times.
func (g *gen) repeat(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() {
		return x, false
	}
	n := g.between(1, 3)
	v := ""
	header := "repeat " + g.num(n)
	switch g.r.IntN(4) {
	case 0:
		v = pick(g, "i", "j", "r")
		if slices.Contains(g.loopVar, v) {
			v += strconv.Itoa(g.next())
		}
		header = "repeat " + v + " in " + g.num(n)
	case 1:
		v = "c" + strconv.Itoa(g.next())
		vals := make([]int, n)
		for i := range vals {
			vals[i] = g.between(1, 5)
		}
		header = "repeat " + v + " in " + g.ints(vals)
	case 2:
		if g.chance(0.2) {
			// Never expanded: its block is not elaborated at all.
			b.open("repeat 0")
			b.line("Linear(%d, %d)", x.last()+7, 3)
			b.close()
			return x, true
		}
	}
	g.block(func() {
		b.open("%s", header)
		g.inLoop++
		// Keys inside the block carry index variables; a list's elements may repeat, so
		// a list variable cannot make keys unique.
		index := v != "" && !strings.HasPrefix(v, "c")
		if index {
			g.loopVar = append(g.loopVar, v)
		}
		if v != "" && strings.HasPrefix(v, "c") {
			// The list variable scales: Multiply(c) keeps shapes.
			b.line("Multiply(1.0 / %s)", v)
		}
		g.chainTo(b, x, x, g.between(1, 3))
		if index {
			g.loopVar = g.loopVar[:len(g.loopVar)-1]
		}
		g.inLoop--
		b.close()
	})
	return x, true
}

// ifElse writes a conditional on the entry point's parameters; the branch not taken is
// never elaborated, and may even be wrong.
func (g *gen) ifElse(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() || g.helper {
		return x, false
	}
	var cond string
	var val bool
	for _, e := range g.env {
		switch v := e.val.(type) {
		case bool:
			cond, val = e.name, v
			if g.chance(0.5) {
				cond, val = "not "+e.name, !v
			}
		case int:
			k := g.between(1, 9)
			cond, val = fmt.Sprintf("%s > %d", e.name, k), v > k
		case []int:
			cond, val = fmt.Sprintf("len(%s) == %d", e.name, len(v)), true
		}
		if g.chance(0.5) {
			break
		}
	}
	if cond == "" {
		return x, false
	}
	var y tensor
	g.block(func() {
		dead := func() {
			b.line("ReLU()")
			if g.chance(0.5) {
				b.line("Linear(%d, 3)  # never elaborated", x.last()+5)
			}
		}
		live := func() { y = g.chain(b, x, g.between(1, 3)) }
		b.open("if %s", cond)
		if val {
			live()
		} else {
			dead()
		}
		if g.chance(0.3) {
			b.ind--
			b.line("} else if false {")
			b.ind++
			dead()
		}
		b.ind--
		b.line("} else {")
		b.ind++
		if val {
			dead()
		} else {
			live()
		}
		b.close()
	})
	return y, true
}

// helperModel declares a model and uses it as a layer.
func (g *gen) helperModel(b *w, x tensor) (tensor, bool) {
	if g.deepEnough() || x.rank() < 2 {
		return x, false
	}
	name := "Block" + strconv.Itoa(g.next())
	c := x.shape[1]
	saved := struct {
		env     []binding
		loopVar []string
		inLoop  int
		helper  bool
	}{g.env, g.loopVar, g.inLoop, g.helper}
	g.env = []binding{{"c", c}}
	g.loopVar, g.inLoop, g.helper = nil, 0, true
	params := fmt.Sprintf("c: int = %d", c)
	if g.chance(0.5) {
		params += ", k: int = 3, scale: float = 0.5"
		g.env = append(g.env, binding{"k", 3})
	}
	hasInput := g.chance(0.8)
	dims := []string{"b", "c"}
	for i := 2; i < x.rank(); i++ {
		n := []string{"h", "w", "t"}[i-2]
		dims = append(dims, n)
		if hasInput {
			g.env = append(g.env, binding{n, x.shape[i]})
		}
	}
	base := ""
	body := &w{ind: 1}
	preserve := g.chance(0.5)
	var y tensor
	g.block(func() {
		switch {
		case preserve && g.chance(0.3):
			base = " : Residual"
			g.chainTo(body, x, x, g.between(1, 3))
			y = x
		case preserve:
			g.chainTo(body, x, x, g.between(1, 4))
			y = x
		default:
			y = g.chain(body, x, g.between(1, 4))
		}
	})
	g.env, g.loopVar, g.inLoop, g.helper = saved.env, saved.loopVar, saved.inLoop, saved.helper
	var d strings.Builder
	fmt.Fprintf(&d, "model %s(%s)%s {\n", name, params, base)
	if hasInput {
		fmt.Fprintf(&d, "    input x: f32[%s]\n", strings.Join(dims, ", "))
	}
	for _, l := range body.lines {
		d.WriteString(l + "\n")
	}
	d.WriteString("}\n")
	g.decls = append(g.decls, d.String())
	call := name + "()"
	if g.chance(0.5) {
		call = name + "(" + g.num(c) + ")"
	}
	if preserve && g.chance(0.5) && !g.deepEnough() {
		b.open("repeat %s", g.num(g.between(1, 2)))
		b.line("%s", call)
		b.close()
		return y, true
	}
	b.line("%s%s", call, g.key())
	return y, true
}

// specialized declares a model that specializes a builtin layer and uses it.
func (g *gen) specialized(b *w, x tensor) (tensor, bool) {
	name := "Layer" + strconv.Itoa(g.next())
	var decl string
	var y tensor
	switch {
	case x.rank() == 4 && g.chance(0.5):
		out := g.between(1, g.cfg.MaxDim)
		y = tensor{shape: []int{x.shape[0], out, x.shape[2], x.shape[3]}}
		if !g.fits(y.shape) {
			return x, false
		}
		decl = fmt.Sprintf("model %s(i: int = %d, o: int = %d) : Conv2d(i, o, 3, padding=1) {}\n", name, x.shape[1], out)
	case g.chance(0.5):
		decl = fmt.Sprintf("model %s(n: int = %d) : LayerNorm(n, eps=1e-5) {\n    let unused = n\n}\n", name, x.last())
		y = x
	default:
		out := g.between(1, g.cfg.MaxDim)
		s := slices.Clone(x.shape)
		s[len(s)-1] = out
		y = tensor{shape: s}
		if !g.fits(y.shape) {
			return x, false
		}
		decl = fmt.Sprintf("model %s(i: int = %d, o: int = %d) : Linear(i, o) {}\n", name, x.last(), out)
	}
	g.decls = append(g.decls, decl)
	b.line("%s()%s", name, g.key())
	return y, true
}

// customAdapter declares an adapter in the file, to be injected after elaboration around
// layers of a class.
func (g *gen) customAdapter(b *w, x tensor) (tensor, bool) {
	if len(g.adapters) >= 2 {
		return x, false
	}
	name := "Adapt" + strconv.Itoa(g.next())
	var decl, class string
	switch g.r.IntN(3) {
	case 0:
		class = "Linear"
		decl = fmt.Sprintf("adapter %s(target: Linear, in_features: int, out_features: int, s: float = 0.25) : Sum {\n    target()\n    Chain {\n        Linear(in_features, out_features, bias=false) key \"side\"\n        Multiply(s)\n    }\n}\n", name)
	case 1:
		class = pick(g, "Linear", "Conv2d", "LayerNorm", "GroupNorm")
		decl = fmt.Sprintf("adapter %s(target: Layer, s: float = 0.5) : Chain {\n    Multiply(s)\n    target()\n}\n", name)
	default:
		class = pick(g, "Linear", "Conv2d")
		decl = fmt.Sprintf("adapter %s(target: Layer) : Chain {\n    target()\n    Tanh()\n}\n", name)
	}
	g.decls = append(g.decls, decl)
	g.adapters = append(g.adapters, adapterDecl{name, class})
	// The layer itself: one the adapter can target.
	if class == "Conv2d" && x.rank() != 4 {
		class = "Linear"
	}
	switch class {
	case "Conv2d":
		return g.conv2d(b, x)
	case "LayerNorm":
		return g.layerNorm(b, x)
	case "GroupNorm":
		return g.groupNorm(b, x)
	}
	return g.linear(b, x)
}
