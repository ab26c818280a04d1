package codegen

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/ir"
)

var update = flag.Bool("update", false, "rewrite golden files")

// txtar is a minimal reader and writer of the txtar format: a comment, then files, each
// introduced by a line "-- name --".
type txtar struct {
	comment string
	files   []File
}

func parseTxtar(data []byte) txtar {
	var a txtar
	lines := strings.SplitAfter(string(data), "\n")
	cur := -1
	var b strings.Builder
	flush := func() {
		if cur < 0 {
			a.comment = b.String()
		} else {
			a.files[cur].Data = []byte(b.String())
		}
		b.Reset()
	}
	for _, l := range lines {
		trimmed := strings.TrimRight(l, "\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			flush()
			a.files = append(a.files, File{Name: strings.TrimSuffix(strings.TrimPrefix(trimmed, "-- "), " --")})
			cur = len(a.files) - 1
			continue
		}
		b.WriteString(l)
	}
	flush()
	return a
}

func (a txtar) format() []byte {
	var b bytes.Buffer
	b.WriteString(a.comment)
	for _, f := range a.files {
		b.WriteString("-- " + f.Name + " --\n")
		b.Write(f.Data)
		if len(f.Data) > 0 && f.Data[len(f.Data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func (a txtar) file(name string) []byte {
	for _, f := range a.files {
		if f.Name == name {
			return f.Data
		}
	}
	return nil
}

// TestGolden compares the generated source of each testdata/*.txtar model (section in.rfn,
// command-line arguments in section args) with its model.go and weights.go sections;
// -update rewrites them.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txtar")
	if len(files) == 0 {
		t.Fatal("no golden files in testdata")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := parseTxtar(data)
			prog, err := dsl.LoadSource("in.rfn", a.file("in.rfn"))
			if err != nil {
				t.Fatal(dsl.Detail(err))
			}
			opts := dsl.Options{Set: map[string]string{}}
			args := strings.Fields(string(a.file("args")))
			for i := 0; i+1 < len(args); i += 2 {
				switch args[i] {
				case "--set":
					k, v, _ := strings.Cut(args[i+1], "=")
					opts.Set[k] = v
				case "--model":
					opts.Model = args[i+1]
				}
			}
			m, err := prog.Elaborate(opts)
			if err != nil {
				t.Fatal(dsl.Detail(err))
			}
			res, err := Generate(m, Options{Command: "rfc compile in.rfn " + strings.Join(args, " ") + " -o ."})
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				out := txtar{comment: a.comment, files: []File{{Name: "args", Data: a.file("args")}, {Name: "in.rfn", Data: a.file("in.rfn")}}}
				out.files = append(out.files, res.Files...)
				if err := os.WriteFile(path, out.format(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, f := range res.Files {
				want := a.file(f.Name)
				if want == nil {
					t.Errorf("%s has no section %s (run go test ./codegen -run TestGolden -update)", path, f.Name)
					continue
				}
				if !bytes.Equal(f.Data, want) {
					t.Errorf("%s differs from %s section %s (go test ./codegen -run TestGolden -update rewrites it):\n%s", f.Name, path, f.Name, firstDifference(f.Data, want))
				}
			}
		})
	}
}

func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}

const ffSource = `model FeedForward(dim: int = 8) {
    input x: f32[batch, 3, dim]
    LayerNorm(dim)
    Residual {
        Linear(dim, dim * 2)
        GeLU()
        Linear(dim * 2, dim)
    }
}
`

// TestSizesItCannotRead: generated code reads sizes chosen at run time from input dims
// that are a name alone, and needs static weights and static batch broadcasting.
func TestSizesItCannotRead(t *testing.T) {
	cases := map[string]struct{ src, want string }{
		"compound input dim": {`module M
scope "" M key "" -> f32[n*2, 4] {
}
input %x: f32[n*2, 4]
%0: f32[n*2, 4] = relu(%x) in ""
output %0
`, "dim 0 of input %x is n*2; generated code reads sizes chosen at run time from dims that are a name alone"},
		"broadcast over run-time batch dims": {`module M
scope "" M key "" -> f32[n, 3, 4, 4] {
}
input %a: f32[n, 3, 4, 5]
input %b: f32[3, 5, 4]
%0: f32[n, 3, 4, 4] = matmul(%a, %b) in ""
output %0
`, "broadcasts batch dims of sizes chosen at run time: fix them with --set"},
	}
	for name, c := range cases {
		m, err := ir.Parse(c.src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err = Generate(m, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

// coverage is what the Go code generator implements of the catalogue.
func coverage() ir.Coverage {
	return ir.Coverage{
		Op:       Supported,
		OpTable:  "emitters (codegen/emit.go)",
		FusedOps: true,
		Activation: func(a ir.Activation) bool {
			_, plain := elementwiseKernels[a]
			approx, isGeLU := a.GeLU()
			_, mode := geluModes[approx]
			return plain || isGeLU && mode
		},
		ActivationTable:      "elementwiseKernels or geluModes (codegen/emit.go)",
		FusedActivation:      func(a ir.Activation) bool { _, ok := fusedActs[a]; return ok },
		FusedActivationTable: "fusedActs (codegen/emit.go)",
		PadMode:              func(m ir.PadMode) bool { _, ok := padModes[m]; return ok },
		PadModeTable:         "padModes (codegen/emit.go)",
	}
}

// TestEveryOpSupported: the Go target implements every op, the fused ones too (rfc compile
// gives Supported to the passes as the ops it has), with every activation and mode.
func TestEveryOpSupported(t *testing.T) {
	if missing := coverage().Missing(); len(missing) > 0 {
		t.Errorf("the Go code generator lacks:\n%s", strings.Join(missing, "\n"))
	}
	for op := range emitters {
		if _, ok := ir.Lookup(op); !ok {
			t.Errorf("emitter for %s, which the IR catalogue does not have", op)
		}
	}
	saved := elementwiseKernels[ir.ActExp]
	delete(elementwiseKernels, ir.ActExp)
	defer func() { elementwiseKernels[ir.ActExp] = saved }()
	if got := strings.Join(coverage().Missing(), "\n"); !strings.Contains(got, "activation exp: no kernel in elementwiseKernels") {
		t.Errorf("a missing activation kernel is not named: %q", got)
	}
}

func TestUnsupportedOpIsNamed(t *testing.T) {
	m := testutil.Elaborate(t, ffSource, map[string]string{"batch": "2"})
	saved := emitters["gelu"]
	delete(emitters, "gelu")
	defer func() { emitters["gelu"] = saved }()
	_, err := Generate(m, Options{})
	if err == nil || !strings.Contains(err.Error(), "gelu") || !strings.Contains(err.Error(), "not support") {
		t.Fatalf("got %v, want an error naming gelu as unsupported", err)
	}
}

func TestBadPackageName(t *testing.T) {
	m := testutil.Elaborate(t, ffSource, map[string]string{"batch": "2"})
	for _, name := range []string{"my-model", "1st", "héllo", "_"} {
		if _, err := Generate(m, Options{Package: name}); err == nil || !strings.Contains(err.Error(), "package name") {
			t.Errorf("package %q: got %v, want an error about the package name", name, err)
		}
	}
	if res, err := Generate(m, Options{}); err != nil || res.Package != "feedforward" {
		t.Errorf("default package: got %v, %v; want feedforward", res, err)
	}
}

// TestWriteLeavesIdenticalFiles checks that rewriting unchanged output touches nothing.
func TestWriteLeavesIdenticalFiles(t *testing.T) {
	m := testutil.Elaborate(t, ffSource, map[string]string{"batch": "2"})
	res, err := Generate(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ff")
	written, err := Write(dir, res.Files)
	if err != nil || len(written) != 2 {
		t.Fatalf("first write: %v, %v", written, err)
	}
	old := time.Now().Add(-time.Hour)
	for _, f := range res.Files {
		if err := os.Chtimes(filepath.Join(dir, f.Name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	written, err = Write(dir, res.Files)
	if err != nil || len(written) != 0 {
		t.Fatalf("second write: wrote %v, %v; want nothing", written, err)
	}
	for _, f := range res.Files {
		info, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil || !info.ModTime().Equal(old) {
			t.Errorf("%s was touched", f.Name)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the directory holds %d entries, want 2 (no temporary files left)", len(entries))
	}
}

// TestPlanSharesMemory checks the memory plan on the feed-forward block: the reshape-free
// chain reuses buffers (the arena is smaller than the sum of intermediates), element-wise
// ops run in place, and the output's buffer is not reused.
func TestPlanSharesMemory(t *testing.T) {
	m := testutil.Elaborate(t, ffSource, map[string]string{"batch": "2", "dim": "8"})
	p, err := planMemory(m, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, v := range m.Body {
		total += numElements(v.Type.Shape)
	}
	if p.ArenaLen >= total {
		t.Errorf("arena of %d elements, the intermediates sum to %d: nothing shared", p.ArenaLen, total)
	}
	inPlace := map[string]bool{}
	for v := range p.InPlace {
		inPlace[v.Op] = true
	}
	if !inPlace["gelu"] || !inPlace["add"] {
		t.Errorf("in-place ops: %v, want gelu and add", inPlace)
	}
	out := p.BufferOf[m.Outputs[0]]
	if out == nil || !out.Pinned || out.Last != len(m.Body) {
		t.Errorf("output buffer %+v is not kept to the end", out)
	}
	checkPlan(t, "FeedForward", m)
}

// TestPlanViewsAndCopies checks that Forward returns copies of outputs that are inputs or
// views of inputs, and that the Go target's plan of them holds (the plan's own checks are
// in codegen/memplan).
func TestPlanViewsAndCopies(t *testing.T) {
	m, err := ir.Parse(`module views
scope "" Test key ""
input %x: f32[2, 6]
%0: f32[3, 4] = reshape(%x) in ""
%1: f32[3, 4] = relu(%0) in ""
%2: f32[12] = reshape(%1) in ""
output %2, %0, %x
`)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := planMemory(m, nil, false); err != nil || len(p.Copies) != 2 {
		t.Fatalf("%d output copies, want 2 (%%0 and %%x)", len(p.Copies))
	}
	checkPlan(t, "views", m)
	res, err := Generate(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	src := string(res.Files[0].Data)
	for _, want := range []string{"copy(m.out0, x)", "copy(m.out1, x)", "kernels.ReLU(m.v1, x)", "return m.v2, m.out0, m.out1, nil"} {
		if !strings.Contains(src, want) {
			t.Errorf("generated Forward lacks %q", want)
		}
	}
}

// TestFloatLiterals checks that constants without a Go literal are built exactly.
func TestFloatLiterals(t *testing.T) {
	cases := []struct {
		in   float64
		want string
	}{
		{1e-5, "float32(1e-05)"},
		{-2, "float32(-2)"},
		{math.Inf(1), "float32(math.Inf(1))"},
		{math.Inf(-1), "float32(math.Inf(-1))"},
		{math.NaN(), "math.Float32frombits(2143289344)"},
		{math.Copysign(0, -1), "math.Float32frombits(2147483648)"},
		{1e300, "float32(math.Inf(1))"}, // overflows float32, as float32(1e300) does in the interpreter
	}
	for _, c := range cases {
		if got := fmt.Sprintf("%#v", f32(c.in)); got != c.want {
			t.Errorf("f32(%g) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestSizesOverflowRefused: sizes that do not fit an int are errors naming the tensor, never
// a wrapped constant (`const XLen = 0`) in the generated package: an input of 2^64
// elements, and an arena of two live 2^60-element buffers whose 2^63 bytes overflow.
func TestSizesOverflowRefused(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"input", "input %x: f32[1, 4294967296, 4294967296]\ninput %y: f32[2]\n%0: f32[2] = relu(%y) in \"\"\n", "input %x: shape [1, 4294967296, 4294967296] has more elements than an int holds"},
		{"arena", "input %x: f32[1152921504606846976]\n%0: f32[1152921504606846976] = relu(%x) in \"\"\n%1: f32[1152921504606846976] = sigmoid(%x) in \"\"\n%2: f32[1152921504606846976] = add(%0, %1) in \"\"\n", "overflows an int"},
	} {
		m, err := ir.Parse("module Big\nscope \"\" Big key \"\"\n" + c.text + "output %" + map[string]string{"input": "0", "arena": "2"}[c.name] + "\n")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		res, err := Generate(m, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v (result %v), want an error containing %q", c.name, err, res != nil, c.want)
		}
	}
}
