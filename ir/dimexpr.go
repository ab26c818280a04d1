package ir

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Symbolic sizes. A symbolic Dim holds an expression over named sizes (batch, height, …)
// that are known only when the model runs: integer polynomials whose atoms are the names
// and floor divisions of such polynomials by a positive constant. That is what shape rules
// need: sums (concatenation), products (flattening h·w tokens), and floor division (a
// stride-2 convolution's (h + 2p − k) // s + 1).
//
// Every expression is kept in one canonical form and Dim.Sym is its text, so equal forms
// compare equal with ==. The canonical form is a sum of terms sorted by their factors,
// constant last; each term is its factors (sorted) times an integer coefficient; inside a
// floor division every coefficient is reduced into [0, k) (multiples of k move out), common
// factors with k cancel, and floor(floor(e/a) + r, k) becomes floor(e + a·r, a·k). So
// (h − 1)//2 + 1 and (h + 1)//2 are the same Dim, and so are (h//2 + 1)//2 and (h + 2)//4.
// Equality of forms is sound (equal forms are equal for every size) but not complete: rules
// that cannot decide an equality at compile time leave it as a Check for run time.
//
// Names stand for sizes of at least 1: run-time binding refuses anything smaller.

// dimExpr is a canonical expression: terms sorted by key, no zero coefficient.
type dimExpr struct {
	terms []dimTerm
	c     int // the constant term
}

// dimTerm is coef times the product of its atoms (sorted by key, repeats allowed).
type dimTerm struct {
	coef  int
	atoms []dimAtom
	key   string // the atoms as printed, joined by *
}

// dimAtom is a name, or floor(num / den) with den ≥ 2.
type dimAtom struct {
	sym string
	num *dimExpr
	den int
	key string // the atom as printed alone
}

var errDimOverflow = errors.New("a size expression overflows an int")

// maxDimTerms bounds the terms of an expression: products of sums expand, and a size
// expression of thousands of terms is a mistake, refused before it exhausts memory.
const maxDimTerms = 1024

var errDimTooLarge = fmt.Errorf("a size expression has more than %d terms", maxDimTerms)

func addInt(a, b int) (int, error) {
	r := a + b
	if (r > a) != (b > 0) {
		return 0, errDimOverflow
	}
	return r, nil
}

func mulInt(a, b int) (int, error) {
	if a == 0 || b == 0 {
		return 0, nil
	}
	r := a * b
	if r/b != a || (a == -1 && b == math.MinInt) || (b == -1 && a == math.MinInt) {
		return 0, errDimOverflow
	}
	return r, nil
}

// floorDivMod is Python's divmod by k > 0: q·k + r = a with 0 ≤ r < k.
func floorDivMod(a, k int) (q, r int) {
	q, r = a/k, a%k
	if r < 0 {
		q--
		r += k
	}
	return q, r
}

func gcd(a, b int) int {
	if a < 0 {
		a = -a
	}
	if b < 0 {
		b = -b
	}
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func constExpr(n int) *dimExpr { return &dimExpr{c: n} }

func symExpr(name string) *dimExpr {
	a := dimAtom{sym: name, key: name}
	return &dimExpr{terms: []dimTerm{{coef: 1, atoms: []dimAtom{a}, key: name}}}
}

func (e *dimExpr) isConst() bool { return len(e.terms) == 0 }

// plainSym is the name when e is exactly one name.
func (e *dimExpr) plainSym() (string, bool) {
	if e.c != 0 || len(e.terms) != 1 || e.terms[0].coef != 1 || len(e.terms[0].atoms) != 1 || e.terms[0].atoms[0].num != nil {
		return "", false
	}
	return e.terms[0].atoms[0].sym, true
}

func atomsKey(atoms []dimAtom) string {
	keys := make([]string, len(atoms))
	for i, a := range atoms {
		keys[i] = a.key
	}
	return strings.Join(keys, "*")
}

// normalize sorts e's terms and merges those with the same factors.
func (e *dimExpr) normalize() (*dimExpr, error) {
	slices.SortStableFunc(e.terms, func(a, b dimTerm) int { return strings.Compare(a.key, b.key) })
	out := e.terms[:0]
	for _, t := range e.terms {
		if n := len(out); n > 0 && out[n-1].key == t.key {
			c, err := addInt(out[n-1].coef, t.coef)
			if err != nil {
				return nil, err
			}
			out[n-1].coef = c
			continue
		}
		out = append(out, t)
	}
	kept := out[:0]
	for _, t := range out {
		if t.coef != 0 {
			kept = append(kept, t)
		}
	}
	e.terms = kept
	if len(e.terms) > maxDimTerms {
		return nil, errDimTooLarge
	}
	return e, nil
}

func (e *dimExpr) clone() *dimExpr {
	return &dimExpr{terms: slices.Clone(e.terms), c: e.c}
}

func dimAdd(a, b *dimExpr) (*dimExpr, error) {
	c, err := addInt(a.c, b.c)
	if err != nil {
		return nil, err
	}
	out := &dimExpr{terms: append(slices.Clone(a.terms), b.terms...), c: c}
	return out.normalize()
}

func dimScale(a *dimExpr, k int) (*dimExpr, error) {
	out := &dimExpr{terms: make([]dimTerm, 0, len(a.terms))}
	var err error
	if out.c, err = mulInt(a.c, k); err != nil {
		return nil, err
	}
	for _, t := range a.terms {
		c, err := mulInt(t.coef, k)
		if err != nil {
			return nil, err
		}
		t.coef = c
		out.terms = append(out.terms, t)
	}
	return out.normalize()
}

func dimMul(a, b *dimExpr) (*dimExpr, error) {
	if b.isConst() {
		return dimScale(a, b.c)
	}
	if a.isConst() {
		return dimScale(b, a.c)
	}
	if len(a.terms)*len(b.terms) > maxDimTerms {
		return nil, errDimTooLarge
	}
	out := &dimExpr{}
	var err error
	if out.c, err = mulInt(a.c, b.c); err != nil {
		return nil, err
	}
	// Each side's constant multiplies the other's terms; terms multiply pairwise.
	for _, pair := range [][2]*dimExpr{{a, b}, {b, a}} {
		for _, t := range pair[0].terms {
			c, err := mulInt(t.coef, pair[1].c)
			if err != nil {
				return nil, err
			}
			if c != 0 {
				t.coef = c
				out.terms = append(out.terms, t)
			}
		}
	}
	for _, s := range a.terms {
		for _, t := range b.terms {
			c, err := mulInt(s.coef, t.coef)
			if err != nil {
				return nil, err
			}
			atoms := append(slices.Clone(s.atoms), t.atoms...)
			slices.SortStableFunc(atoms, func(x, y dimAtom) int { return strings.Compare(x.key, y.key) })
			out.terms = append(out.terms, dimTerm{coef: c, atoms: atoms, key: atomsKey(atoms)})
		}
	}
	return out.normalize()
}

// dimFloorDiv is floor(a / k) in canonical form (k ≥ 1).
func dimFloorDiv(a *dimExpr, k int) (*dimExpr, error) {
	if k < 1 {
		return nil, fmt.Errorf("a size divided by %d", k)
	}
	if k == 1 {
		return a, nil
	}
	if a.isConst() {
		q, _ := floorDivMod(a.c, k)
		return constExpr(q), nil
	}
	// Multiples of k leave the division: floor((q·k·m + r·m)/k) = q·m + floor(r·m/k).
	out, in := &dimExpr{}, &dimExpr{}
	for _, t := range a.terms {
		q, r := floorDivMod(t.coef, k)
		if q != 0 {
			out.terms = append(out.terms, dimTerm{coef: q, atoms: t.atoms, key: t.key})
		}
		if r != 0 {
			in.terms = append(in.terms, dimTerm{coef: r, atoms: t.atoms, key: t.key})
		}
	}
	out.c, in.c = floorDivMod(a.c, k)
	if len(in.terms) == 0 {
		return out, nil // 0 ≤ in.c < k
	}
	// A factor common to every coefficient and k cancels.
	g := gcd(k, in.c)
	for _, t := range in.terms {
		g = gcd(g, t.coef)
	}
	if g > 1 {
		k /= g
		in.c /= g
		for i := range in.terms {
			in.terms[i].coef /= g
		}
	}
	// floor((floor(e/d) + rest)/k) = floor((e + d·rest)/(d·k)), rest being integral.
	for i, t := range in.terms {
		if t.coef != 1 || len(t.atoms) != 1 || t.atoms[0].num == nil {
			continue
		}
		inner := t.atoms[0]
		rest := &dimExpr{terms: append(slices.Clone(in.terms[:i]), in.terms[i+1:]...), c: in.c}
		scaled, err := dimScale(rest, inner.den)
		if err != nil {
			return nil, err
		}
		num, err := dimAdd(inner.num, scaled)
		if err != nil {
			return nil, err
		}
		den, err := mulInt(inner.den, k)
		if err != nil {
			return nil, err
		}
		q, err := dimFloorDiv(num, den)
		if err != nil {
			return nil, err
		}
		return dimAdd(out, q)
	}
	atom := dimAtom{num: in, den: k}
	atom.key = atom.format(false)
	return dimAdd(out, &dimExpr{terms: []dimTerm{{coef: 1, atoms: []dimAtom{atom}, key: atom.key}}})
}

// format prints the atom; wrapped puts a floor division in parentheses (inside a product,
// where `a*h//2` would read as (a*h)//2).
func (a dimAtom) format(wrapped bool) string {
	if a.num == nil {
		return a.sym
	}
	num := a.num.String()
	if _, plain := a.num.plainSym(); !plain {
		num = "(" + num + ")"
	}
	s := num + "//" + strconv.Itoa(a.den)
	if wrapped {
		s = "(" + s + ")"
	}
	return s
}

// monomial prints |coef|·atoms; negated says a unary minus comes before it.
func (t dimTerm) monomial(coef int, negated bool) string {
	factors := len(t.atoms)
	if coef != 1 {
		factors++
	}
	parts := make([]string, 0, factors)
	for _, a := range t.atoms {
		parts = append(parts, a.format(factors > 1 || negated))
	}
	if coef != 1 {
		parts = append(parts, strconv.Itoa(coef))
	}
	return strings.Join(parts, "*")
}

func (e *dimExpr) String() string {
	var b strings.Builder
	for i, t := range e.terms {
		c := t.coef
		switch {
		case c < 0:
			b.WriteByte('-')
			c = -c
		case i > 0:
			b.WriteByte('+')
		}
		// A leading minus would bind tighter than //: -h//2 reads as (-h)//2.
		b.WriteString(t.monomial(c, i == 0 && t.coef < 0))
	}
	switch {
	case len(e.terms) == 0:
		b.WriteString(strconv.Itoa(e.c))
	case e.c > 0:
		b.WriteString("+" + strconv.Itoa(e.c))
	case e.c < 0:
		b.WriteString(strconv.Itoa(e.c))
	}
	return b.String()
}

func (e *dimExpr) dim() Dim {
	if e.isConst() {
		return D(e.c)
	}
	return Dim{Sym: e.String()}
}

// dimCache maps a Dim's text to its parsed form: rules combine the same dims many times.
var dimCache sync.Map

func exprOf(d Dim) (*dimExpr, error) {
	if d.Static() {
		return constExpr(d.N), nil
	}
	if e, ok := dimCache.Load(d.Sym); ok {
		return e.(*dimExpr), nil
	}
	e, err := parseDimExpr(d.Sym)
	if err != nil {
		return nil, err
	}
	dimCache.Store(d.Sym, e)
	return e, nil
}

// ParseDim reads a dim as the text form prints it: an integer, or an expression of names
// with + - * // and parentheses (`batch`, `h*w`, `(h+1)//2`). The result is canonical: its
// text may differ from s (`2*h` gives h*2). Division must be by a positive constant.
func ParseDim(s string) (Dim, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return D(n), nil
	}
	e, err := parseDimExpr(s)
	if err != nil {
		return Dim{}, err
	}
	return e.dim(), nil
}

func parseDimExpr(s string) (*dimExpr, error) {
	p := &dimParser{src: s}
	e, err := p.sum()
	if err == nil && p.pos < len(p.src) {
		err = fmt.Errorf("unexpected %q", p.src[p.pos:])
	}
	if err != nil {
		return nil, fmt.Errorf("bad dim %q: %v", s, err)
	}
	return e, nil
}

type dimParser struct {
	src string
	pos int
}

func (p *dimParser) peek(tok string) bool { return strings.HasPrefix(p.src[p.pos:], tok) }

func (p *dimParser) sum() (*dimExpr, error) {
	e, err := p.product()
	for err == nil && p.pos < len(p.src) && (p.peek("+") || p.peek("-")) {
		neg := p.peek("-")
		p.pos++
		var t *dimExpr
		if t, err = p.product(); err != nil {
			break
		}
		if neg {
			if t, err = dimScale(t, -1); err != nil {
				break
			}
		}
		e, err = dimAdd(e, t)
	}
	return e, err
}

func (p *dimParser) product() (*dimExpr, error) {
	e, err := p.unary()
	for err == nil && p.pos < len(p.src) && (p.peek("*") || p.peek("//")) {
		div := p.peek("//")
		if div {
			p.pos += 2
		} else {
			p.pos++
		}
		var f *dimExpr
		if f, err = p.unary(); err != nil {
			break
		}
		if div {
			if !f.isConst() {
				return nil, fmt.Errorf("division by the size %s: only constants divide", f)
			}
			e, err = dimFloorDiv(e, f.c)
		} else {
			e, err = dimMul(e, f)
		}
	}
	return e, err
}

func (p *dimParser) unary() (*dimExpr, error) {
	if p.peek("-") {
		p.pos++
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return dimScale(e, -1)
	}
	return p.atom()
}

func (p *dimParser) atom() (*dimExpr, error) {
	if p.pos >= len(p.src) {
		return nil, errors.New("unexpected end")
	}
	c := p.src[p.pos]
	switch {
	case c == '(':
		p.pos++
		e, err := p.sum()
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, errors.New("missing )")
		}
		p.pos++
		return e, nil
	case c >= '0' && c <= '9':
		j := p.pos
		for j < len(p.src) && p.src[j] >= '0' && p.src[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(p.src[p.pos:j])
		if err != nil {
			return nil, err
		}
		p.pos = j
		return constExpr(n), nil
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		j := p.pos
		for j < len(p.src) && (p.src[j] == '_' || p.src[j] >= '0' && p.src[j] <= '9' || p.src[j] >= 'a' && p.src[j] <= 'z' || p.src[j] >= 'A' && p.src[j] <= 'Z') {
			j++
		}
		name := p.src[p.pos:j]
		p.pos = j
		return symExpr(name), nil
	}
	return nil, fmt.Errorf("unexpected %q", p.src[p.pos:])
}

// dimOp applies a canonical operation to dims, or reports why it cannot.
func dimOp(f func(a, b *dimExpr) (*dimExpr, error), a, b Dim) (Dim, error) {
	ea, err := exprOf(a)
	if err != nil {
		return Dim{}, err
	}
	eb, err := exprOf(b)
	if err != nil {
		return Dim{}, err
	}
	e, err := f(ea, eb)
	if err != nil {
		return Dim{}, err
	}
	return e.dim(), nil
}

// SubDim is a − b, checked.
func SubDim(a, b Dim) (Dim, error) {
	return dimOp(func(x, y *dimExpr) (*dimExpr, error) {
		ny, err := dimScale(y, -1)
		if err != nil {
			return nil, err
		}
		return dimAdd(x, ny)
	}, a, b)
}

// FloorDivDim is a // k (Python's floor division) for a constant k ≥ 1, checked.
func FloorDivDim(a Dim, k int) (Dim, error) {
	if a.Static() && k >= 1 {
		q, _ := floorDivMod(a.N, k)
		return D(q), nil
	}
	e, err := exprOf(a)
	if err != nil {
		return Dim{}, err
	}
	q, err := dimFloorDiv(e, k)
	if err != nil {
		return Dim{}, err
	}
	return q.dim(), nil
}

// Symbols lists the names a dim depends on, sorted, each once.
func (d Dim) Symbols() []string {
	e, err := exprOf(d)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	e.symbols(seen)
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func (e *dimExpr) symbols(seen map[string]bool) {
	for _, t := range e.terms {
		for _, a := range t.atoms {
			if a.num != nil {
				a.num.symbols(seen)
			} else {
				seen[a.sym] = true
			}
		}
	}
}

// Eval computes the dim for the sizes of its names, with overflow checks; a name without
// a size is an error.
func (d Dim) Eval(sizes map[string]int) (int, error) {
	if d.Static() {
		return d.N, nil
	}
	e, err := exprOf(d)
	if err != nil {
		return 0, err
	}
	return e.eval(sizes)
}

func (e *dimExpr) eval(sizes map[string]int) (int, error) {
	acc := e.c
	for _, t := range e.terms {
		v := t.coef
		for _, a := range t.atoms {
			var x int
			if a.num == nil {
				n, ok := sizes[a.sym]
				if !ok {
					return 0, fmt.Errorf("the size %s is not known", a.sym)
				}
				x = n
			} else {
				n, err := a.num.eval(sizes)
				if err != nil {
					return 0, err
				}
				x, _ = floorDivMod(n, a.den)
			}
			var err error
			if v, err = mulInt(v, x); err != nil {
				return 0, err
			}
		}
		var err error
		if acc, err = addInt(acc, v); err != nil {
			return 0, err
		}
	}
	return acc, nil
}

// lowerBound is the least value of e when every name is at least 1, or false when e has a
// negative coefficient (no bound is derived then).
func (e *dimExpr) lowerBound() (int, bool) {
	acc := e.c
	for _, t := range e.terms {
		if t.coef < 0 {
			return 0, false
		}
		v := t.coef
		for _, a := range t.atoms {
			x := 1
			if a.num != nil {
				n, ok := a.num.lowerBound()
				if !ok {
					return 0, false
				}
				x, _ = floorDivMod(n, a.den)
			}
			var err error
			if v, err = mulInt(v, x); err != nil {
				return 0, false
			}
		}
		var err error
		if acc, err = addInt(acc, v); err != nil {
			return 0, false
		}
	}
	return acc, true
}

// Decide reports what is known at compile time about a == b (atLeast false) or a ≥ b
// (atLeast true): decided is true when the answer holds for every size of the names (names
// are at least 1), and holds is the answer then.
func Decide(a, b Dim, atLeast bool) (decided, holds bool) {
	if a.Static() && b.Static() {
		if atLeast {
			return true, a.N >= b.N
		}
		return true, a.N == b.N
	}
	if a == b {
		return true, true
	}
	diff, err := SubDim(a, b)
	if err != nil {
		return false, false
	}
	if diff.Static() {
		if atLeast {
			return true, diff.N >= 0
		}
		return true, diff.N == 0
	}
	if !atLeast {
		return false, false
	}
	e, err := exprOf(diff)
	if err != nil {
		return false, false
	}
	if lb, ok := e.lowerBound(); ok && lb >= 0 {
		return true, true
	}
	return false, false
}

// DivExact is a / b when b divides a for every size: a constant dividing every
// coefficient, or one term whose factors every term of a has (8·h·w / (8·w) = h). It
// reports false otherwise.
func DivExact(a, b Dim) (Dim, bool) {
	ea, err := exprOf(a)
	if err != nil {
		return Dim{}, false
	}
	eb, err := exprOf(b)
	if err != nil {
		return Dim{}, false
	}
	var coef int
	var atoms []dimAtom
	switch {
	case eb.isConst():
		coef = eb.c
	case eb.c == 0 && len(eb.terms) == 1:
		coef, atoms = eb.terms[0].coef, eb.terms[0].atoms
	default:
		return Dim{}, false
	}
	if coef == 0 || ea.c%coef != 0 || (ea.c != 0 && len(atoms) > 0) {
		return Dim{}, false
	}
	out := &dimExpr{c: ea.c / coef}
	for _, t := range ea.terms {
		if t.coef%coef != 0 {
			return Dim{}, false
		}
		rest := slices.Clone(t.atoms)
		for _, f := range atoms {
			i := slices.IndexFunc(rest, func(x dimAtom) bool { return x.key == f.key })
			if i < 0 {
				return Dim{}, false
			}
			rest = slices.Delete(rest, i, i+1)
		}
		out.terms = append(out.terms, dimTerm{coef: t.coef / coef, atoms: rest, key: atomsKey(rest)})
	}
	// A term left without factors is a constant.
	kept := out.terms[:0]
	for _, t := range out.terms {
		if len(t.atoms) == 0 {
			c, err := addInt(out.c, t.coef)
			if err != nil {
				return Dim{}, false
			}
			out.c = c
			continue
		}
		kept = append(kept, t)
	}
	out.terms = kept
	n, err := out.normalize()
	if err != nil {
		return Dim{}, false
	}
	return n.dim(), true
}

// DimFolder computes a value of type T from a dim's expression, bottom up: code
// generators turn a size into the expression that computes it.
type DimFolder[T any] struct {
	Const    func(n int) T
	Sym      func(name string) T
	Add, Mul func(a, b T) T
	FloorDiv func(a T, k int) T // floor(a / k), k ≥ 2, a never negative
}

// FoldDim folds d's canonical expression with f.
func FoldDim[T any](d Dim, f DimFolder[T]) (T, error) {
	e, err := exprOf(d)
	if err != nil {
		var zero T
		return zero, err
	}
	return foldExpr(e, f), nil
}

func foldExpr[T any](e *dimExpr, f DimFolder[T]) T {
	var acc T
	have := false
	add := func(x T) {
		if have {
			acc = f.Add(acc, x)
		} else {
			acc, have = x, true
		}
	}
	for _, t := range e.terms {
		var prod T
		for i, a := range t.atoms {
			var x T
			if a.num == nil {
				x = f.Sym(a.sym)
			} else {
				x = f.FloorDiv(foldExpr(a.num, f), a.den)
			}
			if i == 0 {
				prod = x
			} else {
				prod = f.Mul(prod, x)
			}
		}
		if t.coef != 1 {
			prod = f.Mul(prod, f.Const(t.coef))
		}
		add(prod)
	}
	if e.c != 0 || !have {
		add(f.Const(e.c))
	}
	return acc
}
