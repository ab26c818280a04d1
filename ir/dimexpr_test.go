package ir

import (
	"math/rand"
	"testing"
)

// TestDimCanonicalForms checks the canonical text of expressions that shape rules make:
// equal sizes must print equal.
func TestDimCanonicalForms(t *testing.T) {
	cases := map[string]string{
		"batch":             "batch",
		"2*batch":           "batch*2",
		"tokens*8":          "tokens*8",
		"n+1":               "n+1",
		"1+n":               "n+1",
		"b+a":               "a+b",
		"h-1":               "h-1",
		"3-h":               "-h+3",
		"w*h":               "h*w",
		"(h+2*1-3)//1+1":    "h",
		"(h+2-3)//2+1":      "(h+1)//2",
		"(h-1)//2+1":        "(h+1)//2",
		"(h+1-3)//2+1":      "h//2",
		"((h+1)//2+1)//2":   "(h+3)//4",
		"(h//2+1)//2":       "(h+2)//4",
		"h//2//2":           "h//4",
		"(2*h)//4":          "h//2",
		"(4*h+2)//4":        "h",
		"(h*2)//2":          "h",
		"h//2*2":            "(h//2)*2",
		"2*(h//2)":          "(h//2)*2",
		"a*(h//2)":          "a*(h//2)",
		"h*w//4":            "(h*w)//4",
		"(h+1)*(h-1)":       "h*h-1",
		"h//8*8//8":         "h//8",
		"((h+1)//2)*2-h":    "((h+1)//2)*2-h",
		"(h+7)//8*8":        "((h+7)//8)*8",
		"-(h//2)":           "-(h//2)",
		"a-h//2":            "a-h//2",
		"7":                 "7",
		"(5)//2":            "2",
		"(-5)//2":           "-3",
		"h*0+4":             "4",
		"(3*h+1)//2":        "(h+1)//2+h",
		"batch*2+batch*3":   "batch*5",
		"(h//2)*(w//2)*64":  "(h//2)*(w//2)*64",
		"h//2*(w//2)*64":    "(h//2)*(w//2)*64",
		"((h+1)//2+1)//2*2": "((h+3)//4)*2",
	}
	for in, want := range cases {
		d, err := ParseDim(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if d.String() != want {
			t.Errorf("%s = %s, want %s", in, d, want)
		}
		// The canonical text reads back as itself.
		again, err := ParseDim(d.String())
		if err != nil || again != d {
			t.Errorf("%s: %s reads back as %v (%v)", in, d, again, err)
		}
	}
	for _, bad := range []string{"h//w", "h+", "(h", "h)", "h//0", "h//-2", "", "h$"} {
		if d, err := ParseDim(bad); err == nil {
			t.Errorf("%q parsed as %s", bad, d)
		}
	}
}

// TestDimAlgebraAgreesWithIntegers evaluates random expressions both ways: the canonical
// form must compute what Python's integer arithmetic computes, for names ≥ 1.
func TestDimAlgebraAgreesWithIntegers(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		testDimAlgebra(t, seed)
	}
}

func testDimAlgebra(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	names := []string{"a", "b", "h"}
	type pair struct {
		d   Dim
		val func(map[string]int) int
		src string
	}
	var gen func(depth int) pair
	gen = func(depth int) pair {
		if depth == 0 || rng.Intn(3) == 0 {
			if rng.Intn(2) == 0 {
				n := rng.Intn(9) - 3
				return pair{D(n), func(map[string]int) int { return n }, D(n).String()}
			}
			s := names[rng.Intn(len(names))]
			return pair{S(s), func(m map[string]int) int { return m[s] }, s}
		}
		x, y := gen(depth-1), gen(depth-1)
		switch rng.Intn(4) {
		case 0:
			return pair{AddDim(x.d, y.d), func(m map[string]int) int { return x.val(m) + y.val(m) }, "(" + x.src + ")+(" + y.src + ")"}
		case 1:
			d, err := SubDim(x.d, y.d)
			if err != nil {
				t.Fatal(err)
			}
			return pair{d, func(m map[string]int) int { return x.val(m) - y.val(m) }, "(" + x.src + ")-(" + y.src + ")"}
		case 2:
			return pair{MulDim(x.d, y.d), func(m map[string]int) int { return x.val(m) * y.val(m) }, "(" + x.src + ")*(" + y.src + ")"}
		}
		k := rng.Intn(5) + 1
		d, err := FloorDivDim(x.d, k)
		if err != nil {
			t.Fatal(err)
		}
		return pair{d, func(m map[string]int) int { q, _ := floorDivMod(x.val(m), k); return q }, "(" + x.src + ")//" + D(k).String()}
	}
	for i := 0; i < 3000; i++ {
		p := gen(4)
		again, err := ParseDim(p.d.String())
		if err != nil || again != p.d {
			t.Fatalf("%s reads back as %v (%v)", p.d, again, err)
		}
		for j := 0; j < 5; j++ {
			m := map[string]int{"a": rng.Intn(20) + 1, "b": rng.Intn(20) + 1, "h": rng.Intn(20) + 1}
			got, err := p.d.Eval(m)
			if err != nil {
				t.Fatalf("%s: %v", p.d, err)
			}
			if want := p.val(m); got != want {
				t.Fatalf("%s = %s at %v = %d, want %d", p.src, p.d, m, got, want)
			}
		}
	}
}

func TestDecide(t *testing.T) {
	d := func(s string) Dim {
		x, err := ParseDim(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	cases := []struct {
		a, b           string
		atLeast        bool
		decided, holds bool
	}{
		{"h", "h", false, true, true},
		{"(h-1)//2+1", "(h+1)//2", false, true, true},
		{"h+1", "h", false, true, false},
		{"h", "w", false, false, false},
		{"((h+1)//2)*2", "h", false, false, false},
		{"(h+1)//2", "1", true, true, true},
		{"h//2", "1", true, false, false},
		{"h+2", "3", true, true, true},
		{"h", "3", true, false, false},
		{"h*w", "1", true, true, true},
		{"4", "5", true, true, false},
	}
	for _, c := range cases {
		dec, holds := Decide(d(c.a), d(c.b), c.atLeast)
		if dec != c.decided || (dec && holds != c.holds) {
			t.Errorf("Decide(%s, %s, atLeast=%v) = %v, %v; want %v, %v", c.a, c.b, c.atLeast, dec, holds, c.decided, c.holds)
		}
	}
}

func TestDivExact(t *testing.T) {
	cases := []struct{ a, b, want string }{
		{"h*w*8", "w*8", "h"},
		{"h*w*8", "4", "h*w*2"},
		{"h*w+h", "h", "w+1"},
		{"h*w*8", "h*h", ""},
		{"h*w*6", "4", ""},
		{"h+1", "h", ""},
		{"h*4+8", "4", "h+2"},
	}
	for _, c := range cases {
		a, _ := ParseDim(c.a)
		b, _ := ParseDim(c.b)
		q, ok := DivExact(a, b)
		if got := map[bool]string{true: q.String()}[ok]; got != c.want {
			t.Errorf("DivExact(%s, %s) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

// FuzzParseDim: any text either fails to parse, or gives a dim whose canonical text reads
// back as the same dim and evaluates without panicking.
func FuzzParseDim(f *testing.F) {
	for _, s := range []string{"batch", "h*w*8", "(h+1)//2", "((height+1)//2)*2-height", "h//2//2", "-(h//2)+3", "(2*h+3)//4*(w-1)", "7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDim(s)
		if err != nil {
			return
		}
		again, err := ParseDim(d.String())
		if err != nil || again != d {
			t.Fatalf("%q → %s reads back as %v (%v)", s, d, again, err)
		}
		sizes := map[string]int{}
		for i, name := range d.Symbols() {
			sizes[name] = i%5 + 1
		}
		d.Eval(sizes)
		if decided, holds := Decide(d, d, false); !decided || !holds {
			t.Fatalf("%s = %s is not decided", d, d)
		}
	})
}
