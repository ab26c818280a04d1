package dsl

import (
	"fmt"
	"math"
	"strconv"

	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/parser"
)

// env is a lexical scope of compile-time values: int, float64, bool, string or []any.
type env struct {
	vars   map[string]any
	parent *env
}

func newEnv(parent *env) *env { return &env{vars: map[string]any{}, parent: parent} }

func (e *env) lookup(name string) (any, bool) {
	for s := e; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

// with returns a child scope holding one more binding.
func (e *env) with(name string, v any) *env {
	c := newEnv(e)
	c.vars[name] = v
	return c
}

func typeName(v any) string {
	switch v.(type) {
	case int:
		return "int"
	case float64:
		return "float"
	case bool:
		return "bool"
	case string:
		return "string"
	case []any:
		return "list"
	case noneType:
		return "none"
	case ir.Dim:
		return "size"
	}
	return fmt.Sprintf("%T", v)
}

func formatConst(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return s
		}
		for _, c := range s {
			if c == '.' || c == 'e' {
				return s
			}
		}
		return s + ".0"
	case []any:
		out := "["
		for i, e := range x {
			if i > 0 {
				out += ", "
			}
			out += formatConst(e)
		}
		return out + "]"
	case []int:
		out := "["
		for i, e := range x {
			if i > 0 {
				out += ", "
			}
			out += strconv.Itoa(e)
		}
		return out + "]"
	case []ir.Dim:
		return ir.Shape(x).String()
	case noneType:
		return "none"
	}
	return fmt.Sprint(v)
}

// eval computes a compile-time expression with Python's arithmetic.
func (el *elab) eval(x parser.Expr, e *env) (any, error) {
	switch x := x.(type) {
	case *parser.IntLit:
		return int(x.Value), nil
	case *parser.FloatLit:
		return x.Value, nil
	case *parser.StringLit:
		return x.Value, nil
	case *parser.BoolLit:
		return x.Value, nil
	case *parser.ParenExpr:
		return el.eval(x.X, e)
	case *parser.Ident:
		if v, ok := e.lookup(x.Name); ok {
			return v, nil
		}
		if x.Name == "none" {
			return none, nil
		}
		return nil, el.errAt(x.Start(), "undefined name %s", x.Name)
	case *parser.ListLit:
		return el.evalAll(x.Elems, e)
	case *parser.UnaryExpr:
		v, err := el.eval(x.X, e)
		if err != nil {
			return nil, err
		}
		switch {
		case x.Op == "not":
			if b, ok := v.(bool); ok {
				return !b, nil
			}
		case x.Op == "-":
			switch n := v.(type) {
			case int:
				return -n, nil
			case float64:
				return -n, nil
			case ir.Dim:
				r, msg := sizeBinary("*", n, ir.D(-1))
				if msg != "" {
					return nil, el.errAt(x.Start(), "%s", msg)
				}
				return r, nil
			}
		}
		return nil, el.errAt(x.Start(), "cannot apply %s to a %s", x.Op, typeName(v))
	case *parser.BinaryExpr:
		return el.evalBinary(x, e)
	case *parser.CallExpr:
		return el.evalCall(x, e)
	case *parser.CondExpr:
		c, err := el.eval(x.Cond, e)
		if err != nil {
			return nil, err
		}
		b, ok := c.(bool)
		if !ok {
			return nil, el.errAt(x.Cond.Start(), "the condition of `if … else` must be a bool, got %s %s", typeName(c), formatConst(c))
		}
		if b {
			return el.eval(x.Then, e)
		}
		return el.eval(x.Else, e)
	case *parser.IndexExpr:
		return el.evalIndex(x, e)
	}
	return nil, el.errAt(x.Start(), "unsupported expression %s", parser.ExprString(x))
}

// evalIndex is Python's indexing and slicing of a list or a string: negative indices
// count from the end, an index out of range is an error, slice bounds are clipped.
func (el *elab) evalIndex(x *parser.IndexExpr, e *env) (any, error) {
	v, err := el.eval(x.X, e)
	if err != nil {
		return nil, err
	}
	n := 0
	switch s := v.(type) {
	case []any:
		n = len(s)
	case string:
		n = len(s)
	default:
		return nil, el.errAt(x.Lbrack, "cannot index a %s (%s): only lists and strings have elements", typeName(v), formatConst(v))
	}
	bound := func(b parser.Expr, dflt int) (int, error) {
		if b == nil {
			return dflt, nil
		}
		bv, err := el.eval(b, e)
		if err != nil {
			return 0, err
		}
		i, ok := bv.(int)
		if !ok {
			return 0, el.errAt(b.Start(), "an index must be an int, got %s %s", typeName(bv), formatConst(bv))
		}
		return i, nil
	}
	if !x.IsSlice {
		i, err := bound(x.Index, 0)
		if err != nil {
			return nil, err
		}
		j := i
		if j < 0 {
			j += n
		}
		if j < 0 || j >= n {
			return nil, el.errAt(x.Index.Start(), "index %d is out of range for %s of length %d", i, formatConst(v), n)
		}
		if s, ok := v.(string); ok {
			return s[j : j+1], nil
		}
		return v.([]any)[j], nil
	}
	lo, err := bound(x.Lo, 0)
	if err != nil {
		return nil, err
	}
	hi, err := bound(x.Hi, n)
	if err != nil {
		return nil, err
	}
	clip := func(i int) int {
		if i < 0 {
			i += n
		}
		return min(max(i, 0), n)
	}
	lo, hi = clip(lo), clip(hi)
	hi = max(hi, lo)
	if s, ok := v.(string); ok {
		return s[lo:hi], nil
	}
	return append([]any(nil), v.([]any)[lo:hi]...), nil
}

// maxListLen bounds lists built by `*` and range, so that a mistaken size stops with an
// error instead of exhausting memory. A variable so that FuzzElaborate can lower it.
var maxListLen = 1 << 20

func (el *elab) evalBinary(x *parser.BinaryExpr, e *env) (any, error) {
	a, err := el.eval(x.X, e)
	if err != nil {
		return nil, err
	}
	if x.Op == "and" || x.Op == "or" {
		ab, ok := a.(bool)
		if !ok {
			return nil, el.errAt(x.X.Start(), "%s needs bools, got a %s", x.Op, typeName(a))
		}
		if (x.Op == "and" && !ab) || (x.Op == "or" && ab) {
			return ab, nil
		}
		b, err := el.eval(x.Y, e)
		if err != nil {
			return nil, err
		}
		bb, ok := b.(bool)
		if !ok {
			return nil, el.errAt(x.Y.Start(), "%s needs bools, got a %s", x.Op, typeName(b))
		}
		return bb, nil
	}
	b, err := el.eval(x.Y, e)
	if err != nil {
		return nil, err
	}
	v, msg := binary(x.Op, a, b)
	if msg != "" {
		return nil, el.errAt(x.Start(), "%s", msg)
	}
	return v, nil
}

func binary(op string, a, b any) (any, string) {
	bad := fmt.Sprintf("cannot compute %s %s %s", typeName(a), op, typeName(b))
	if da, db, ok := sizeOperands(a, b); ok {
		return sizeBinary(op, da, db)
	}
	if la, ok := a.([]any); ok {
		return listBinary(op, la, b, bad)
	}
	if lb, ok := b.([]any); ok {
		if n, ok := a.(int); ok && op == "*" {
			return listBinary(op, lb, n, bad)
		}
		if op == "==" || op == "!=" {
			return op == "!=", ""
		}
		return nil, bad
	}
	if sa, ok := a.(string); ok {
		switch op {
		case "+":
			switch sb := b.(type) {
			case string:
				return sa + sb, ""
			case int:
				return sa + strconv.Itoa(sb), ""
			}
		case "==", "!=":
			sb, ok := b.(string)
			if !ok {
				return nil, bad
			}
			return (sa == sb) == (op == "=="), ""
		}
		return nil, bad
	}
	if sb, ok := b.(string); ok {
		if ia, ok := a.(int); ok && op == "+" {
			return strconv.Itoa(ia) + sb, ""
		}
		return nil, bad
	}
	if ba, ok := a.(bool); ok {
		bb, ok := b.(bool)
		if !ok || (op != "==" && op != "!=") {
			return nil, bad
		}
		return (ba == bb) == (op == "=="), ""
	}
	ia, aInt := a.(int)
	ib, bInt := b.(int)
	if aInt && bInt {
		overflow := fmt.Sprintf("%d %s %d overflows a 64-bit int", ia, op, ib)
		switch op {
		case "+":
			if r := ia + ib; (r > ia) == (ib > 0) {
				return r, ""
			}
			return nil, overflow
		case "-":
			if r := ia - ib; (r < ia) == (ib > 0) {
				return r, ""
			}
			return nil, overflow
		case "*":
			if ia == 0 || ib == 0 {
				return 0, ""
			}
			if r := ia * ib; r/ib == ia && !(ia == -1 && ib == math.MinInt) && !(ib == -1 && ia == math.MinInt) {
				return r, ""
			}
			return nil, overflow
		case "/":
			if ib == 0 {
				return nil, "division by zero"
			}
			return float64(ia) / float64(ib), ""
		case "//", "%":
			if ib == 0 {
				return nil, "division by zero"
			}
			q := ia / ib
			if (ia%ib != 0) && ((ia < 0) != (ib < 0)) {
				q-- // floor, as Python
			}
			if op == "//" {
				return q, ""
			}
			return ia - q*ib, ""
		case "**":
			if ib < 0 {
				return math.Pow(float64(ia), float64(ib)), ""
			}
			// By squaring, checking overflow: a fuzzed 2 ** 10**18 must neither hang nor wrap.
			r, base := 1, ia
			for e := ib; e > 0; e >>= 1 {
				if e&1 == 1 {
					v, msg := binary("*", r, base)
					if msg != "" {
						return nil, overflow
					}
					r = v.(int)
				}
				if e > 1 {
					v, msg := binary("*", base, base)
					if msg != "" {
						return nil, overflow
					}
					base = v.(int)
				}
			}
			return r, ""
		}
		return compare(op, float64(ia), float64(ib))
	}
	fa, fb := toFloat(a), toFloat(b)
	if math.IsNaN(fa) && !isNumber(a) || math.IsNaN(fb) && !isNumber(b) {
		return nil, bad
	}
	switch op {
	case "+":
		return fa + fb, ""
	case "-":
		return fa - fb, ""
	case "*":
		return fa * fb, ""
	case "/":
		if fb == 0 {
			return nil, "division by zero"
		}
		return fa / fb, ""
	case "//":
		if fb == 0 {
			return nil, "division by zero"
		}
		return math.Floor(fa / fb), ""
	case "%":
		if fb == 0 {
			return nil, "division by zero"
		}
		return fa - math.Floor(fa/fb)*fb, ""
	case "**":
		return math.Pow(fa, fb), ""
	}
	return compare(op, fa, fb)
}

// listBinary is Python's list arithmetic: concatenation, repetition and equality.
func listBinary(op string, a []any, b any, bad string) (any, string) {
	switch op {
	case "+":
		lb, ok := b.([]any)
		if !ok {
			return nil, bad
		}
		if len(a)+len(lb) > maxListLen {
			return nil, fmt.Sprintf("a list of %d elements is above the limit of %d", len(a)+len(lb), maxListLen)
		}
		return append(append([]any(nil), a...), lb...), ""
	case "*":
		n, ok := b.(int)
		if !ok {
			return nil, bad
		}
		if n <= 0 || len(a) == 0 {
			return []any{}, ""
		}
		if n > maxListLen/len(a) {
			return nil, fmt.Sprintf("a list of %d × %d elements is above the limit of %d", len(a), n, maxListLen)
		}
		out := make([]any, 0, len(a)*n)
		for range n {
			out = append(out, a...)
		}
		return out, ""
	case "==", "!=":
		return listsEqual(a, b) == (op == "=="), ""
	}
	return nil, bad
}

func listsEqual(a []any, b any) bool {
	lb, ok := b.([]any)
	if !ok || len(a) != len(lb) {
		return false
	}
	for i := range a {
		eq, msg := binary("==", a[i], lb[i])
		if msg != "" || eq != true {
			return false
		}
	}
	return true
}

func isNumber(v any) bool {
	switch v.(type) {
	case int, float64:
		return true
	}
	return false
}

func compare(op string, a, b float64) (any, string) {
	switch op {
	case "==":
		return a == b, ""
	case "!=":
		return a != b, ""
	case "<":
		return a < b, ""
	case "<=":
		return a <= b, ""
	case ">":
		return a > b, ""
	case ">=":
		return a >= b, ""
	}
	return nil, "unknown operator " + op
}

// evalAll evaluates xs in order, stopping at the first error.
func (el *elab) evalAll(xs []parser.Expr, e *env) ([]any, error) {
	vals := make([]any, len(xs))
	for i, x := range xs {
		v, err := el.eval(x, e)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	return vals, nil
}

func (el *elab) evalCall(x *parser.CallExpr, e *env) (any, error) {
	vals, err := el.evalAll(x.Args, e)
	if err != nil {
		return nil, err
	}
	argErr := func(want string) error {
		return el.errAt(x.Start(), "%s takes %s", x.Func, want)
	}
	switch x.Func {
	case "min", "max":
		if l, ok := single[[]any](vals); ok {
			vals = l // max([a, b]) as max(a, b)
		}
		if len(vals) < 1 {
			return nil, argErr("at least one number")
		}
		best := vals[0]
		for _, v := range vals {
			if !isNumber(v) {
				return nil, argErr("numbers")
			}
			if (x.Func == "min" && toFloat(v) < toFloat(best)) || (x.Func == "max" && toFloat(v) > toFloat(best)) {
				best = v
			}
		}
		return best, nil
	case "abs", "int", "float", "str":
		if len(vals) != 1 {
			return nil, argErr("one argument")
		}
		v := vals[0]
		switch x.Func {
		case "abs":
			switch n := v.(type) {
			case int:
				return max(n, -n), nil
			case float64:
				return math.Abs(n), nil
			}
			return nil, argErr("a number")
		case "int":
			switch n := v.(type) {
			case int, ir.Dim:
				return n, nil
			case float64:
				return int(n), nil // truncates toward zero, as Python's int()
			case bool:
				if n {
					return 1, nil
				}
				return 0, nil
			}
			return nil, argErr("a number")
		case "float":
			if !isNumber(v) {
				return nil, argErr("a number")
			}
			return toFloat(v), nil
		case "str":
			if s, ok := v.(string); ok {
				return s, nil
			}
			return formatConst(v), nil
		}
	}
	switch x.Func {
	case "log", "exp", "sqrt":
		if len(vals) != 1 || !isNumber(vals[0]) {
			return nil, argErr("one number")
		}
		f := toFloat(vals[0])
		switch x.Func {
		case "log":
			if f <= 0 {
				return nil, el.errAt(x.Start(), "log of %s: the argument must be positive", formatConst(vals[0]))
			}
			return math.Log(f), nil
		case "exp":
			return math.Exp(f), nil
		}
		if f < 0 {
			return nil, el.errAt(x.Start(), "sqrt of %s: the argument must not be negative", formatConst(vals[0]))
		}
		return math.Sqrt(f), nil
	case "len":
		if len(vals) != 1 {
			return nil, argErr("one list or string")
		}
		switch v := vals[0].(type) {
		case []any:
			return len(v), nil
		case string:
			return len(v), nil
		}
		return nil, argErr("a list or a string")
	case "reversed":
		l, ok := single[[]any](vals)
		if !ok {
			return nil, argErr("one list")
		}
		out := make([]any, len(l))
		for i, v := range l {
			out[len(l)-1-i] = v
		}
		return out, nil
	case "sum":
		l, ok := single[[]any](vals)
		if !ok {
			return nil, argErr("one list of numbers")
		}
		var acc any = 0
		for _, v := range l {
			if !isNumber(v) {
				return nil, argErr("a list of numbers")
			}
			r, msg := binary("+", acc, v)
			if msg != "" {
				return nil, el.errAt(x.Start(), "sum: %s", msg)
			}
			acc = r
		}
		return acc, nil
	case "range":
		// Python's range(stop), range(start, stop[, step]) as a list.
		var b [3]int
		b[2] = 1
		for i, v := range vals {
			n, ok := v.(int)
			if !ok || len(vals) > 3 {
				return nil, argErr("one to three ints: range(stop), range(start, stop[, step])")
			}
			b[i] = n
		}
		switch len(vals) {
		case 0:
			return nil, argErr("one to three ints: range(stop), range(start, stop[, step])")
		case 1:
			b[0], b[1] = 0, b[0]
		}
		start, stop, step := b[0], b[1], b[2]
		if step == 0 {
			return nil, el.errAt(x.Start(), "range step must not be zero")
		}
		var out []any
		for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
			if len(out) >= maxListLen {
				return nil, el.errAt(x.Start(), "range gives more than %d elements", maxListLen)
			}
			out = append(out, i)
			if (step > 0 && i > math.MaxInt-step) || (step < 0 && i < math.MinInt-step) {
				break
			}
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	}
	return nil, el.errAt(x.Start(), "unknown function %s (min, max, abs, int, float, str, len, range, reversed, sum, log, exp, sqrt)", x.Func)
}

// sizeOperands reports whether an operation involves a size known only at run time (a
// symbolic ir.Dim, such as the h of `input x: f32[b, c, h, w]`) with ints or other sizes,
// and returns both operands as dims.
func sizeOperands(a, b any) (ir.Dim, ir.Dim, bool) {
	_, symA := a.(ir.Dim)
	_, symB := b.(ir.Dim)
	if !symA && !symB {
		return ir.Dim{}, ir.Dim{}, false
	}
	dim := func(v any) (ir.Dim, bool) {
		switch x := v.(type) {
		case int:
			return ir.D(x), true
		case ir.Dim:
			return x, true
		}
		return ir.Dim{}, false
	}
	da, okA := dim(a)
	db, okB := dim(b)
	return da, db, okA && okB
}

// sizeBinary computes with sizes known only at run time: + − * give sizes, and so do //
// and % by a positive int and ** by a non-negative one; == and != answer when the answer
// is the same for every size. Anything else needs the value and is an error that says how
// to fix the size. A result that no longer depends on any name is an int.
func sizeBinary(op string, a, b ir.Dim) (any, string) {
	runtimeOnly := func() string {
		names := append(a.Symbols(), b.Symbols()...)
		return fmt.Sprintf("%s %s %s needs the value of %s, a size known only at run time (fix it with --set %s=N)", a, op, b, names[0], names[0])
	}
	var r ir.Dim
	var err error
	switch op {
	case "+":
		r, err = ir.AddDimChecked(a, b)
	case "-":
		r, err = ir.SubDim(a, b)
	case "*":
		r, err = ir.MulDimChecked(a, b)
	case "//", "%":
		if !b.Static() || b.N < 1 {
			return nil, runtimeOnly()
		}
		if r, err = ir.FloorDivDim(a, b.N); err == nil && op == "%" {
			var q ir.Dim
			if q, err = ir.MulDimChecked(r, b); err == nil {
				r, err = ir.SubDim(a, q)
			}
		}
	case "**":
		if !b.Static() || b.N < 0 || b.N > 64 {
			return nil, runtimeOnly()
		}
		r = ir.D(1)
		for range b.N {
			if r, err = ir.MulDimChecked(r, a); err != nil {
				break
			}
		}
	case "==", "!=":
		if decided, holds := ir.Decide(a, b, false); decided {
			return holds == (op == "=="), ""
		}
		return nil, runtimeOnly()
	default:
		return nil, runtimeOnly()
	}
	if err != nil {
		return nil, fmt.Sprintf("%s %s %s: %v", a, op, b, err)
	}
	if r.Static() {
		return r.N, ""
	}
	return r, ""
}

// single returns the only value of vals as a T.
func single[T any](vals []any) (T, bool) {
	var zero T
	if len(vals) != 1 {
		return zero, false
	}
	v, ok := vals[0].(T)
	return v, ok
}

// coerce converts an evaluated argument to what the spec wants.
func coerce(v any, k argKind) (any, bool) {
	if _, ok := v.(noneType); ok {
		return none, true
	}
	switch k {
	case kInt:
		n, ok := v.(int)
		return n, ok
	case kFloat:
		if isNumber(v) {
			return toFloat(v), true
		}
	case kBool:
		b, ok := v.(bool)
		return b, ok
	case kString:
		s, ok := v.(string)
		return s, ok
	case kIntList, kFloatList, kBoolList, kStringList:
		l, ok := v.([]any)
		if !ok {
			return nil, false
		}
		ek, _ := k.elemKind()
		out := make([]any, len(l))
		for i, e := range l {
			c, ok := coerce(e, ek)
			if !ok || c == none {
				return nil, false
			}
			out[i] = c
		}
		return out, true
	case kSize:
		switch x := v.(type) {
		case int:
			return x, x >= 0
		case ir.Dim:
			return x, true
		}
	case kSizes, kVarSizes:
		switch x := v.(type) {
		case int:
			return []ir.Dim{ir.D(x)}, true
		case ir.Dim:
			return []ir.Dim{x}, true
		case []any:
			out := make([]ir.Dim, len(x))
			for i, e := range x {
				switch n := e.(type) {
				case int:
					out[i] = ir.D(n)
				case ir.Dim:
					out[i] = n
				default:
					return nil, false
				}
			}
			return out, true
		}
	case kPair, kInts:
		switch x := v.(type) {
		case int:
			if k == kPair {
				return []int{x, x}, true
			}
			return []int{x}, true
		case []any:
			out := make([]int, len(x))
			for i, e := range x {
				n, ok := e.(int)
				if !ok {
					return nil, false
				}
				out[i] = n
			}
			if k == kPair && len(out) != 2 {
				return nil, false
			}
			return out, true
		}
	}
	return nil, false
}
