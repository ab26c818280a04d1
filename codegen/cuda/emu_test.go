package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// The tests run the generated kernels on the CPU: model.cu compiles as C++ against
// testdata/emu.h (CUDA threads as fibers, __syncthreads as a scheduler switch), with a main
// generated from the same launch list as model.go. That checks the kernels, the launch
// geometry and the memory plan wherever g++ is, GPU or not.

// emuCase is one module to run in the emulator.
type emuCase struct {
	name    string
	m       *ir.Module
	f16     bool
	weights map[string]*runtime.Tensor // by checkpoint key
	inputs  map[string]*runtime.Tensor // by input name
	tune    tuned                      // forced kernel variants
	outputs []*runtime.Tensor          // filled by runEmulated
	gen     *generator
}

// needTool is the path of the command name, or skips the test saying what it is for.
func needTool(t *testing.T, name, what string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("skipped: no %s on PATH (%s)", name, what)
	}
	return path
}

// needGXX is needTool for the emulator's compiler.
func needGXX(t *testing.T) string {
	t.Helper()
	return needTool(t, "g++", "it builds the CPU emulation of the kernels")
}

// runEmulated builds one program for all cases, runs it, and stores each case's outputs.
func runEmulated(t *testing.T, cases []*emuCase) {
	t.Helper()
	gxx := needGXX(t)
	dir := t.TempDir()
	lib := wholeLibrary(t)
	var src strings.Builder
	src.WriteString("#include \"emu.h\"\n\n")
	src.WriteString(lib)
	src.WriteString(emuHelpers)
	for i, c := range cases {
		tuning = c.tune
		g, err := newGenerator(c.m, Options{Package: "model", F16Weights: c.f16})
		tuning = tuned{}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		c.gen = g
		prefix := fmt.Sprintf("c%d_", i)
		src.WriteString(g.kernelSource(prefix))
		src.WriteString(emuRunner(g, i, func(k *kernel) string { return prefix + k.name }))
		writeCaseData(t, dir, i, c)
	}
	src.WriteString("\nint main(int argc, char** argv) {\n  (void)argc;\n")
	for i := range cases {
		fmt.Fprintf(&src, "  run_c%d(argv[1]);\n", i)
	}
	src.WriteString("  return 0;\n}\n")
	cpp := filepath.Join(dir, "harness.cpp")
	if err := os.WriteFile(cpp, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	emuH, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "harness")
	build := exec.Command(gxx, "-std=c++17", "-O2", "-Wall", "-Wno-unused-function", "-Wno-unknown-pragmas", "-Werror", "-I", emuH, "-o", bin, cpp)
	if out, err := build.CombinedOutput(); err != nil {
		os.WriteFile("/tmp/rfc-emu-failed.cpp", []byte(src.String()), 0o644)
		t.Fatalf("g++ failed (%v); source kept in /tmp/rfc-emu-failed.cpp:\n%s", err, firstLines(string(out), 40))
	}
	if out, err := exec.Command(bin, dir).CombinedOutput(); err != nil {
		t.Fatalf("the emulated kernels failed (%v):\n%s", err, out)
	}
	for i, c := range cases {
		for j, o := range c.m.Outputs {
			c.outputs = append(c.outputs, readOutput(t, dir, i, j, c.gen, o))
		}
	}
}

// wholeLibrary is every section of kernels.cuh, for a program of the kernels of many
// models.
func wholeLibrary(t *testing.T) string {
	t.Helper()
	sections, err := librarySections()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sections {
		names = append(names, s.name)
	}
	lib, err := withDeps(names)
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}

// emuHelpers read and write the raw files of a case; a and w are the memory of the case
// that runs.
const emuHelpers = `
static unsigned char *a, *w;
static unsigned char* emu_alloc(size_t n) {
  // Poisoned with 0xff (NaN as floats): a kernel that reads what nothing wrote shows.
  unsigned char* p = (unsigned char*)aligned_alloc(256, (n + 256) / 256 * 256);
  memset(p, 0xff, (n + 256) / 256 * 256);
  return p;
}
static void emu_read(const char* dir, const char* name, unsigned char* dst, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "rb");
  if (!f || fread(dst, 1, n, f) != n) { fprintf(stderr, "reading %s failed\n", path); exit(1); }
  fclose(f);
}
static void emu_write(const char* dir, const char* name, const unsigned char* src, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(src, 1, n, f) != n) { fprintf(stderr, "writing %s failed\n", path); exit(1); }
  fclose(f);
}
`

// emuRunner writes run_cI: the case's memory, its inputs, its launches in order, its
// outputs; name gives each kernel's name in the program. Each launch is a captureless
// lambda over the globals a and w: emu::launch's std::function is then instantiated for one
// type (a function pointer) rather than one lambda type per launch, which divides the
// compile time of a batch of models by about seven.
func emuRunner(g *generator, i int, name func(*kernel) string) string {
	var b strings.Builder
	p := g.plan
	fmt.Fprintf(&b, "\nstatic void run_c%d(const char* dir) {\n", i)
	fmt.Fprintf(&b, "  a = emu_alloc(%d);\n  w = emu_alloc(%d);\n", p.arenaBytes, p.weightBytes)
	fmt.Fprintf(&b, "  emu_read(dir, \"c%d.w\", w, %d);\n", i, p.weightBytes)
	for j, in := range g.inputs {
		fmt.Fprintf(&b, "  emu_read(dir, \"c%d.in%d\", a + %d, %d);\n", i, j, p.at[in.v].offset, numel(in.v)*int(elemBytes(in.v.Type)))
	}
	for _, oc := range g.low.code {
		for _, l := range oc.launches {
			args := make([]string, len(l.args))
			for j, a := range l.args {
				base := "a"
				if a.at.space == weights {
					base = "w"
				}
				c := "const "
				if l.k.params[j].out {
					c = ""
				}
				args[j] = fmt.Sprintf("(%s%s*)(%s + %d)", c, l.k.params[j].ctype, base, a.at.offset+a.bytes)
			}
			fmt.Fprintf(&b, "  emu::launch(%d, %d, %d, %d, +[] { %s(%s); });\n", l.grid[0], l.grid[1], l.grid[2], l.k.block, name(l.k), strings.Join(args, ", "))
		}
	}
	for j, o := range g.outputs {
		base := "a"
		if p.at[o.v].space == weights {
			base = "w"
		}
		fmt.Fprintf(&b, "  emu_write(dir, \"c%d.out%d\", %s + %d, %d);\n", i, j, base, p.at[o.v].offset, outputBytes(g, o.v))
	}
	b.WriteString("  free(a);\n  free(w);\n}\n")
	return b.String()
}

func outputBytes(g *generator, v *ir.Value) int {
	return numel(v) * int(g.low.elemSize(v))
}

func writeCaseData(t *testing.T, dir string, i int, c *emuCase) {
	t.Helper()
	p := c.gen.plan
	slab := make([]byte, p.weightBytes)
	for _, w := range c.m.Params {
		data := c.weights[w.Key]
		if data == nil {
			t.Fatalf("%s: no weight %q", c.name, w.Key)
		}
		off := p.at[w].offset
		for k, f := range data.F32 {
			if c.f16 {
				binary.LittleEndian.PutUint16(slab[off+int64(2*k):], runtime.F32ToF16(f))
			} else {
				binary.LittleEndian.PutUint32(slab[off+int64(4*k):], math.Float32bits(f))
			}
		}
	}
	must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("c%d.w", i)), slab, 0o644))
	for j, in := range c.m.Inputs {
		x := c.inputs[in.Name]
		if x == nil {
			t.Fatalf("%s: no input %q", c.name, in.Name)
		}
		var raw []byte
		if in.Type.DType.IsFloat() {
			for _, f := range x.F32 {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
			}
		} else {
			for _, n := range x.I64 {
				raw = binary.LittleEndian.AppendUint64(raw, uint64(n))
			}
		}
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("c%d.in%d", i, j)), raw, 0o644))
	}
}

func readOutput(t *testing.T, dir string, i, j int, g *generator, v *ir.Value) *runtime.Tensor {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d.out%d", i, j)))
	if err != nil {
		t.Fatal(err)
	}
	shape := ints(v.Type)
	n := ir.Prod(shape)
	switch g.low.elemSize(v) {
	case 8:
		data := make([]int64, n)
		for k := range data {
			data[k] = int64(binary.LittleEndian.Uint64(raw[8*k:]))
		}
		return runtime.FromI64(data, shape...)
	case 2:
		data := make([]float32, n)
		for k := range data {
			data[k] = runtime.F16ToF32(binary.LittleEndian.Uint16(raw[2*k:]))
		}
		return runtime.FromF32(data, shape...)
	}
	data := make([]float32, n)
	for k := range data {
		data[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
	}
	return runtime.FromF32(data, shape...)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// interpWeights binds weights by key to the module's parameters, rounded to float16 when
// the case stores them so (the interpreter then computes what the kernels should).
func interpWeights(c *emuCase) interp.Weights {
	w := interp.Weights{}
	for _, p := range c.m.Params {
		t := c.weights[p.Key]
		if c.f16 {
			r := make([]float32, len(t.F32))
			for i, f := range t.F32 {
				r[i] = runtime.F16ToF32(runtime.F32ToF16(f))
			}
			t = runtime.FromF32(r, t.Shape...)
		}
		w[p] = t
	}
	return w
}

func maxDiff(got, want *runtime.Tensor) float64 {
	d := 0.0
	for i := range want.F32 {
		d = math.Max(d, math.Abs(float64(got.F32[i])-float64(want.F32[i])))
	}
	return d
}
