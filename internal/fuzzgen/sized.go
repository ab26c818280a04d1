package fuzzgen

import (
	"fmt"
	"strings"
)

// Models whose height and width are chosen at run time: the entry point's input is
// f32[batch, c, height, width] with height and width bare names (sizes), and its first
// layers work on a map whose spatial dims are expressions of them. The fuzzer elaborates
// the model at one size point (every back end), and compiles it with the sizes left open
// (a sized Go package) to run at that point and another.
//
// The generator writes only layers that take such dims (convolutions, norms, upsampling by
// integer factors, pixel shuffles, attention over the pixels, containers of those), and
// tracks each dim at both points; an Interpolate to a fixed size may end that part, after
// which the model goes on as any other.

// smap is a map [batch, c, h, w] with h and w chosen at run time: their values at the two
// points, and identities that tell which dims are the same expression (0 for none yet).
type smap struct {
	c      int
	h, w   [2]int
	hid    int
	wid    int
	batch  int
	static bool // ended by an Interpolate to a fixed size
}

// sizedInput draws the two size points and writes the input line.
func (g *gen) sizedInput(m *Model) smap {
	s := smap{c: g.between(1, 6), batch: g.batch}
	for k := range 2 {
		s.h[k], s.w[k] = g.between(2, 9), g.between(2, 9)
	}
	for s.c*max(s.h[0], s.h[1])*max(s.w[0], s.w[1]) > g.cfg.MaxElems {
		s.h, s.w = [2]int{max(2, s.h[0]/2), max(2, s.h[1]/2)}, [2]int{max(2, s.w[0]/2), max(2, s.w[1]/2)}
	}
	s.hid, s.wid = g.next(), g.next()
	g.inputs = append(g.inputs, fmt.Sprintf("input x: f32[batch, %s, height, width]", g.num(s.c)))
	m.Set["height"], m.Set["width"] = fmt.Sprint(s.h[0]), fmt.Sprint(s.w[0])
	m.Other["height"], m.Other["width"] = fmt.Sprint(s.h[1]), fmt.Sprint(s.w[1])
	return s
}

func (s smap) fits(g *gen) bool {
	for k := range 2 {
		if s.h[k] < 1 || s.w[k] < 1 || s.c*s.h[k]*s.w[k] > 2*g.cfg.MaxElems || s.h[k] > 64 || s.w[k] > 64 {
			return false
		}
	}
	return s.c >= 1 && s.c <= 4*g.cfg.MaxDim
}

func (s smap) tensor() tensor { return tensor{shape: []int{s.batch, s.c, s.h[0], s.w[0]}} }

// sizedChain writes up to steps layers on s.
func (g *gen) sizedChain(b *w, s smap, steps int, keep bool) smap {
	for i := 0; i < steps && g.budget > 0 && !s.static; i++ {
		for tries := 0; tries < 20; tries++ {
			if t, ok := g.sizedMove(b, s, keep); ok {
				s = t
				g.budget--
				break
			}
		}
	}
	return s
}

// sizedMove writes one layer on s. With keep, only layers that keep its shape (the same
// expressions, the same channels): the body of a Residual.
func (g *gen) sizedMove(b *w, s smap, keep bool) (smap, bool) {
	k := g.r.IntN(14)
	if keep && k > 5 {
		k %= 6
	}
	switch k {
	case 0:
		g.activation(b, s.tensor())
		return s, true
	case 1:
		g.multiply(b, s.tensor())
		return s, true
	case 2:
		// A convolution that keeps the spatial dims: 1×1, or 3×3 with padding 1.
		out := s.c
		if !keep {
			out = g.between(1, g.cfg.MaxDim)
		}
		t := s
		t.c = out
		if !t.fits(g) {
			return s, false
		}
		if g.chance(0.5) {
			b.line("Conv2d(%s, %s, 1)%s", g.num(s.c), g.num(out), g.key())
		} else {
			b.line("Conv2d(%s, %s, 3, padding=1%s)%s", g.num(s.c), g.num(out), pick(g, "", `, padding_mode="replicate"`), g.key())
		}
		return t, true
	case 3:
		var gs []int
		for _, d := range divisors(s.c) {
			if s.c/d*s.h[0]*s.w[0] >= 2 && s.c/d*s.h[1]*s.w[1] >= 2 {
				gs = append(gs, d)
			}
		}
		if len(gs) == 0 {
			return s, false
		}
		b.line("GroupNorm(%s, %s)%s", g.num(s.c), g.num(pick(g, gs...)), g.key())
		return s, true
	case 4:
		if g.chance(0.5) {
			b.line("LayerNorm2d(%s)%s", g.num(s.c), g.key())
			return s, true
		}
		if s.h[0]*s.w[0] < 2 || s.h[1]*s.w[1] < 2 {
			return s, false
		}
		b.line("InstanceNorm2d(%s%s)%s", g.num(s.c), pick(g, "", ", affine=true"), g.key())
		return s, true
	case 5:
		if g.deepEnough() {
			return s, false
		}
		g.block(func() {
			if g.chance(0.5) {
				b.open("Residual%s", g.key())
				g.sizedChain(b, s, g.between(1, 2), true)
				b.close()
				return
			}
			// Attention over the pixels: the prelude flattens the map and restores it
			// with Unflatten(2, [h, w]), h and w the sizes its input line binds.
			b.line("SelfAttention2d(%s%s)%s", g.num(s.c), map[bool]string{true: ", num_heads=" + g.num(g.heads(s.c)), false: ""}[g.chance(0.5)], g.key())
		})
		return s, true
	case 6:
		// Any convolution: the output's dims are new expressions.
		kk, st, p, d := g.between(1, 3), g.between(1, 2), 0, 1
		p = g.between(0, kk-1)
		if g.chance(0.2) {
			d = 2
		}
		t := s
		t.c = g.between(1, g.cfg.MaxDim)
		for i := range 2 {
			t.h[i] = (s.h[i]+2*p-d*(kk-1)-1)/st + 1
			t.w[i] = (s.w[i]+2*p-d*(kk-1)-1)/st + 1
			if s.h[i]+2*p < d*(kk-1)+1 || s.w[i]+2*p < d*(kk-1)+1 {
				return s, false
			}
		}
		if !t.fits(g) {
			return s, false
		}
		t.hid, t.wid = g.next(), g.next()
		b.line("Conv2d(%s, %s, %s, stride=%s, padding=%s, dilation=%s)%s", g.num(s.c), g.num(t.c), g.num(kk), g.num(st), g.num(p), g.num(d), g.key())
		return t, true
	case 7:
		kk, st := g.between(1, 3), g.between(1, 2)
		p := g.between(0, kk-1)
		t := s
		t.c = g.between(1, g.cfg.MaxDim)
		for i := range 2 {
			t.h[i] = (s.h[i]-1)*st - 2*p + kk
			t.w[i] = (s.w[i]-1)*st - 2*p + kk
		}
		if !t.fits(g) {
			return s, false
		}
		t.hid, t.wid = g.next(), g.next()
		b.line("ConvTranspose2d(%s, %s, %s, stride=%s, padding=%s)%s", g.num(s.c), g.num(t.c), g.num(kk), g.num(st), g.num(p), g.key())
		return t, true
	case 8:
		// Upsampling by an integer factor, or its inverse.
		t := s
		t.hid, t.wid = g.next(), g.next()
		mode := pick(g, "nearest", "bilinear")
		if g.chance(0.5) {
			for i := range 2 {
				t.h[i], t.w[i] = 2*s.h[i], 2*s.w[i]
			}
			if !t.fits(g) {
				return s, false
			}
			b.line("%s(scale_factor=2, mode=%q)", pick(g, "Upsample", "Interpolate"), mode)
			return t, true
		}
		for i := range 2 {
			t.h[i], t.w[i] = s.h[i]/2, s.w[i]/2
		}
		if !t.fits(g) {
			return s, false
		}
		b.line("%s(scale_factor=0.5, mode=%q)", pick(g, "Upsample", "Interpolate"), mode)
		return t, true
	case 9:
		f := 2
		if s.h[0]%f == 0 && s.h[1]%f == 0 && s.w[0]%f == 0 && s.w[1]%f == 0 && g.chance(0.5) {
			t := s
			t.c = s.c * f * f
			for i := range 2 {
				t.h[i], t.w[i] = s.h[i]/f, s.w[i]/f
			}
			t.hid, t.wid = g.next(), g.next()
			if !t.fits(g) {
				return s, false
			}
			b.line("PixelUnshuffle(%s)", g.num(f))
			return t, true
		}
		if s.c%(f*f) != 0 {
			return s, false
		}
		t := s
		t.c = s.c / (f * f)
		for i := range 2 {
			t.h[i], t.w[i] = s.h[i]*f, s.w[i]*f
		}
		t.hid, t.wid = g.next(), g.next()
		if !t.fits(g) {
			return s, false
		}
		b.line("PixelShuffle(%s)", g.num(f))
		return t, true
	case 10:
		// Constant padding of the spatial dims.
		l, r, tp, bt := g.between(0, 2), g.between(0, 2), g.between(0, 2), g.between(0, 2)
		t := s
		for i := range 2 {
			t.h[i], t.w[i] = s.h[i]+tp+bt, s.w[i]+l+r
		}
		t.hid, t.wid = g.next(), g.next()
		if !t.fits(g) {
			return s, false
		}
		b.line("Pad(%s)", g.ints([]int{l, r, tp, bt}))
		return t, true
	case 11:
		if g.deepEnough() {
			return s, false
		}
		// Channels concatenated: a map and a convolution of it, the same spatial dims.
		k := g.between(1, 4)
		t := s
		t.c = s.c + k
		if !t.fits(g) {
			return s, false
		}
		g.block(func() {
			b.open("Concatenate(1)")
			b.line("Identity()")
			b.line("Conv2d(%s, %s, 3, padding=1)", g.num(s.c), g.num(k))
			b.close()
		})
		return t, true
	case 12:
		if g.deepEnough() {
			return s, false
		}
		g.block(func() {
			b.open("%s", pick(g, "Sum", "Product"))
			b.line("Identity()")
			b.open("Chain")
			g.sizedChain(b, s, g.between(1, 2), true)
			b.close()
			b.close()
		})
		return s, true
	default:
		// A fixed size from here on.
		h, w := g.between(1, 8), g.between(1, 8)
		for s.c*h*w > g.cfg.MaxElems {
			h, w = max(1, h/2), max(1, w/2)
		}
		b.line("Interpolate(size=%s, mode=%q)", g.ints([]int{h, w}), pick(g, "nearest", "bilinear"))
		t := s
		t.h, t.w, t.static = [2]int{h, h}, [2]int{w, w}, true
		return t, true
	}
}

// sizedNames lists the names a Model's Other sets.
func sizedNames(m *Model) string {
	var names []string
	for k := range m.Other {
		names = append(names, k)
	}
	return strings.Join(names, ", ")
}

// Models whose sequence length is chosen at run time: the entry point's input is
// f32[batch, tokens, d] (or i64[batch, tokens] ids for an Embedding) with tokens a size,
// and every layer works on the features, or attends over the tokens (self-attention,
// causal or not, packed q/k/v, cross-attention to a context of fixed length).

// sseq is a sequence [batch, tokens, d] with tokens chosen at run time.
type sseq struct {
	d     int
	batch int
}

// sizedTokens draws the two lengths and writes the input line and, for ids, the
// embedding.
func (g *gen) sizedTokens(b *w, m *Model) sseq {
	s := sseq{d: g.between(2, g.cfg.MaxDim), batch: g.batch}
	m.Set["tokens"], m.Other["tokens"] = fmt.Sprint(g.between(1, 8)), fmt.Sprint(g.between(1, 8))
	if g.chance(0.3) {
		v := g.between(2, 20)
		g.inputs = append(g.inputs, "input ids: i64[batch, tokens]")
		b.line("Embedding(%s, %s)%s", g.num(v), g.num(s.d), g.key())
		return s
	}
	g.inputs = append(g.inputs, fmt.Sprintf("input x: f32[batch, tokens, %s]", g.num(s.d)))
	return s
}

// sizedSeqChain writes up to steps layers on s; with keep, only layers that keep d.
func (g *gen) sizedSeqChain(b *w, s sseq, steps int, keep bool) sseq {
	for i := 0; i < steps && g.budget > 0; i++ {
		for tries := 0; tries < 20; tries++ {
			if t, ok := g.sizedSeqMove(b, s, keep); ok {
				s = t
				g.budget--
				break
			}
		}
	}
	return s
}

func (g *gen) sizedSeqMove(b *w, s sseq, keep bool) (sseq, bool) {
	x := tensor{shape: []int{s.batch, 4, s.d}} // the tokens' value does not matter here
	k := g.r.IntN(12)
	if keep && k > 6 {
		k %= 7
	}
	switch k {
	case 0:
		g.activation(b, x)
	case 1:
		g.multiply(b, x)
	case 2:
		extra := ""
		if g.chance(0.3) {
			extra = ", eps=" + g.eps()
		}
		b.line("LayerNorm(%s%s)%s", g.num(s.d), extra, g.key())
	case 3:
		b.line("Softmax(%s)", pick(g, "", "dim=-1", "2"))
	case 4:
		inner := s.d
		if g.chance(0.4) {
			inner = g.between(1, 3) * g.between(1, 4)
		}
		args := []string{g.num(s.d)}
		if inner != s.d {
			args = append(args, "inner_dim="+g.num(inner))
		}
		if h := g.heads(inner); h != 1 {
			args = append(args, "num_heads="+g.num(h))
		}
		if g.chance(0.5) {
			args = append(args, "is_causal="+g.bool(true))
		}
		b.line("SelfAttention(%s)%s", strings.Join(args, ", "), g.key())
	case 5:
		if g.deepEnough() {
			return s, false
		}
		g.block(func() {
			b.open("Residual%s", g.key())
			g.sizedSeqChain(b, s, g.between(1, 2), true)
			b.close()
		})
	case 6:
		if g.deepEnough() {
			return s, false
		}
		// A cross-attention to a context of fixed length, as a text encoder's output
		// conditions a UNet.
		var c ctxValue
		for _, v := range g.ctxIns {
			if len(v.t.shape) == 3 {
				c = v
			}
		}
		if c.key == "" {
			c = ctxValue{ctx: "cond", key: "cond" + fmt.Sprint(len(g.ctxIns)+1), t: tensor{shape: []int{g.batch, g.between(1, 6), g.between(1, 8)}}}
			g.ctxIns = append(g.ctxIns, c)
		}
		inner := g.between(1, 3) * g.between(1, 4)
		h := g.heads(inner)
		g.block(func() {
			b.open("Residual")
			b.open("Parallel")
			b.line("Identity()")
			b.line(`UseContext(%q, %q)`, c.ctx, c.key)
			b.line(`UseContext(%q, %q)`, c.ctx, c.key)
			b.close()
			b.line("Attention(%s, num_heads=%s, key_embedding_dim=%s, value_embedding_dim=%s, inner_dim=%s)%s", g.num(s.d), g.num(h), g.num(c.t.last()), g.num(c.t.last()), g.num(inner), g.key())
			b.close()
		})
	case 7:
		out := g.between(1, g.cfg.MaxDim)
		b.line("Linear(%s, %s)%s", g.num(s.d), g.num(out), g.key())
		s.d = out
	case 8:
		if s.d%2 != 0 {
			return s, false
		}
		b.line("GLU(%q)", pick(g, "gelu", "silu", "sigmoid"))
		s.d /= 2
	case 9:
		if g.deepEnough() {
			return s, false
		}
		k := g.between(1, 4)
		g.block(func() {
			b.open("Concatenate(-1)")
			b.line("Identity()")
			b.line("Linear(%s, %s)", g.num(s.d), g.num(k))
			b.close()
		})
		s.d += k
	case 10:
		if s.d%3 != 0 || s.d < 3 {
			return s, false
		}
		// Packed q, k, v.
		b.line("Chunk(3, dim=-1)")
		b.line("ScaledDotProductAttention(num_heads=%s%s)", g.num(g.heads(s.d/3)), pick(g, "", ", is_causal=true"))
		s.d /= 3
	default:
		if g.deepEnough() {
			return s, false
		}
		g.block(func() {
			b.open("%s", pick(g, "Sum", "Product"))
			b.line("Identity()")
			if g.chance(0.5) {
				b.line("Parameter(1, %s)", g.num(s.d))
			} else {
				b.line("Linear(%s, %s)", g.num(s.d), g.num(s.d))
			}
			b.close()
		})
	}
	return s, true
}
