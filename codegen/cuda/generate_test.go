package cuda

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rfc-project/rfc/ir"
)

// modelCases are the models the acceptance names: the small ViT of the goldens, ViT at its
// default size, and TAEF2's encoder and decoder at their default sizes, batch 1.
func modelCases(t *testing.T) map[string]*ir.Module {
	return map[string]*ir.Module{
		"vit_small":    loadModule(t, "../../models/vit.rfn", "ViT", vitSmall),
		"vit_default":  loadModule(t, "../../models/vit.rfn", "ViT", map[string]string{"batch": "1"}),
		"taef2_encode": loadModule(t, "../../models/taesd.rfn", "TAEF2Encoder", map[string]string{"batch": "1", "height": "512", "width": "512"}),
		"taef2_decode": loadModule(t, "../../models/taesd.rfn", "TAEF2Decoder", map[string]string{"batch": "1", "height": "64", "width": "64"}),
	}
}

var kernelDef = regexp.MustCompile(`(?m)^extern "C" __global__ void __launch_bounds__\((\d+)\) (\w+)\(`)

// TestGeneratedStructure needs no CUDA tool: for the models and every golden op case, the
// files are all there and tagged as they must be, every op of the body launches at least
// one kernel (a reshape none), every kernel is defined once in model.cu and listed once in
// model.go, and together the cases use every op of the catalogue.
func TestGeneratedStructure(t *testing.T) {
	modules := modelCases(t)
	for _, c := range loadOpCases(t) {
		modules["op_"+c.Name] = c.Module
	}
	seen := map[string]bool{}
	for name, m := range modules {
		for _, f16 := range []bool{false, true} {
			files, err := Generate(m, Options{Package: "model", NVCC: "-", F16Weights: f16})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkFiles(t, name, m, files)
			g, err := newGenerator(m, Options{Package: "model", F16Weights: f16})
			if err != nil {
				t.Fatal(err)
			}
			launches := 0
			for _, oc := range g.low.code {
				seen[oc.v.Op] = true
				if oc.v.Op == "reshape" {
					if len(oc.launches) != 0 {
						t.Errorf("%s: %s: a reshape launched a kernel", name, ir.FormatValue(oc.v))
					}
					continue
				}
				if len(oc.launches) == 0 {
					t.Errorf("%s: %s: no kernel launched", name, ir.FormatValue(oc.v))
				}
				for _, l := range oc.launches {
					if !slices.Contains(g.low.kernels, l.k) {
						t.Errorf("%s: %s launches a kernel that model.cu lacks", name, ir.FormatValue(oc.v))
					}
					if len(l.args) != len(l.k.params) {
						t.Errorf("%s: %s: %d arguments for %d parameters of %s", name, ir.FormatValue(oc.v), len(l.args), len(l.k.params), l.k.name)
					}
					launches++
				}
			}
			if n := strings.Count(string(files["model.go"]), "s.Launch("); n != launches {
				t.Errorf("%s: model.go has %d launches, the plan %d", name, n, launches)
			}
		}
	}
	for _, op := range ir.OpNames() {
		if !seen[op] {
			t.Errorf("no case uses op %s", op)
		}
	}
}

func checkFiles(t *testing.T, name string, m *ir.Module, files map[string][]byte) {
	t.Helper()
	for _, f := range []string{"model.cu", "shapes.go", "model.go", "weights.go"} {
		if len(files[f]) == 0 {
			t.Errorf("%s: no %s", name, f)
		}
	}
	if _, ok := files["model.ptx"]; ok {
		t.Errorf("%s: model.ptx without nvcc", name)
	}
	for _, f := range []string{"model.go", "weights.go"} {
		if !strings.HasPrefix(string(files[f]), "//go:build cuda\n") {
			t.Errorf("%s: %s is not behind the cuda build tag", name, f)
		}
	}
	shapes := string(files["shapes.go"])
	if strings.Contains(shapes, "//go:build") || !strings.Contains(shapes, "\n//go:generate nvcc -ptx ") {
		t.Errorf("%s: shapes.go must be untagged and carry the go:generate nvcc line", name)
	}
	if !strings.Contains(string(files["model.go"]), "//go:embed model.ptx\nvar ptx string") {
		t.Errorf("%s: model.go does not embed model.ptx", name)
	}
	defs := kernelDef.FindAllStringSubmatch(string(files["model.cu"]), -1)
	if len(defs) == 0 && slices.ContainsFunc(m.Body, func(v *ir.Value) bool { return v.Op != "reshape" }) {
		t.Errorf("%s: model.cu defines no kernel", name)
	}
	var names []string
	for _, d := range defs {
		if slices.Contains(names, d[2]) {
			t.Errorf("%s: kernel %s is defined twice", name, d[2])
		}
		names = append(names, d[2])
	}
	// kernelNames in model.go lists the same kernels, in the same order.
	list := regexp.MustCompile(`(?s)var kernelNames = \[\]string\{(.*?)\n\}`).FindStringSubmatch(string(files["model.go"]))
	if list == nil {
		t.Fatalf("%s: model.go has no kernelNames", name)
	}
	var listed []string
	for _, q := range regexp.MustCompile(`"(\w+)"`).FindAllStringSubmatch(list[1], -1) {
		listed = append(listed, q[1])
	}
	if !slices.Equal(listed, names) {
		t.Errorf("%s: model.go lists kernels %v, model.cu defines %v", name, listed, names)
	}
}

// TestNVCCCompiles compiles the generated model.cu of the models, and one file with the
// kernels of every golden op case (f32 and f16 weights), with warnings as errors; where
// ptxas is there too, it assembles the PTX for the H100 (sm_90), which catches resource
// limits (shared memory, registers) that PTX alone does not.
func TestNVCCCompiles(t *testing.T) {
	nvcc := needTool(t, "nvcc", "install nvidia-cuda-toolkit to compile the kernels to PTX")
	ptxas, _ := exec.LookPath("ptxas")
	dir := t.TempDir()
	check := func(name string, ptx []byte) {
		if !strings.Contains(string(ptx), ".entry k0_") {
			t.Errorf("%s: the PTX has no kernel entry", name)
		}
		if ptxas == "" {
			return
		}
		path := filepath.Join(dir, name+".ptx")
		must(t, os.WriteFile(path, ptx, 0o644))
		if out, err := exec.Command(ptxas, "-arch=sm_90", "-o", filepath.Join(dir, name+".cubin"), path).CombinedOutput(); err != nil {
			t.Errorf("%s: ptxas -arch=sm_90 failed (%v):\n%s", name, err, out)
		}
	}
	for name, m := range modelCases(t) {
		// The op cases below cover the f16 variants of every kernel; one model checks the
		// f16 package as a whole.
		modes := []bool{false}
		if name == "vit_small" {
			modes = append(modes, true)
		}
		for _, f16 := range modes {
			files, err := Generate(m, Options{Package: "model", NVCC: nvcc, F16Weights: f16})
			if err != nil {
				t.Fatalf("%s (f16 %t): %v", name, f16, err)
			}
			if f16 {
				name += "_f16"
			}
			check(name, files["model.ptx"])
		}
	}
	src := wholeLibrary(t)
	// Every case in f32 and f16, and the variants TestKernelVariants forces (the largest
	// tiles and head sizes are what could exceed the GPU's limits).
	variants := []tuned{{}, {tile: tile128x128}, {tile: tile64x128}, {tile: tile32x128}, {tile: tile64x64}, {attnD: 64}, {attnD: 128}, {threads: 256, groupChunk: 7}}
	seen := map[string]bool{}
	for _, c := range loadOpCases(t) {
		for _, v := range variants {
			for _, f16 := range []bool{false, true} {
				tuning = v
				g, err := newGenerator(c.Module, Options{Package: "model", F16Weights: f16})
				tuning = tuned{}
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				for _, k := range g.low.kernels {
					if key := kernelText(k, "k"); !seen[key] {
						seen[key] = true
						src += kernelText(k, fmt.Sprintf("c%d_%s", len(seen), k.name))
					}
				}
			}
		}
	}
	t0 := time.Now()
	ptx, err := CompilePTX(nvcc, "", []byte(src))
	t.Logf("op cases: %d kernels, nvcc %v", len(seen), time.Since(t0))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ptx), ".entry c1_k0_") {
		t.Errorf("the op cases' PTX lacks their kernels")
	}
	if ptxas != "" {
		path := filepath.Join(dir, "ops.ptx")
		must(t, os.WriteFile(path, ptx, 0o644))
		if out, err := exec.Command(ptxas, "-arch=sm_90", "-o", filepath.Join(dir, "ops.cubin"), path).CombinedOutput(); err != nil {
			t.Errorf("ptxas -arch=sm_90 on the op cases failed (%v):\n%s", err, out)
		}
	}
}

// TestGenerateErrors: what the target refuses gets an error naming it.
func TestGenerateErrors(t *testing.T) {
	parse := func(text string) *ir.Module {
		m, err := ir.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	cases := []struct {
		name string
		m    *ir.Module
		opts Options
		want string
	}{
		{"symbolic", loadModule(t, "../../models/vit.rfn", "ViT", map[string]string{"embedding_dim": "64", "patch_size": "8", "image_size": "32", "num_layers": "1", "num_heads": "4"}), Options{}, "--set batch="},
		{"package", parse("module M\nscope \"\" M key \"\"\ninput %x: f32[2]\n%0: f32[2] = relu(%x) in \"\"\noutput %0\n"), Options{Package: "no-go"}, `"no-go" is not a valid Go package name`},
		{"head size", parse("module M\nscope \"\" M key \"\"\ninput %q: f32[1, 2, 300]\n%0: f32[1, 2, 300] = sdpa(%q, %q, %q) {heads=1, causal=false} in \"\"\noutput %0\n"), Options{}, "head size 300"},
		{"too large", parse("module M\nscope \"\" M key \"\"\ninput %x: f32[65536, 65536]\n%0: f32[65536, 65536] = relu(%x) in \"\"\noutput %0\n"), Options{}, "32-bit ints"},
		{"overflow", parse("module M\nscope \"\" M key \"\"\ninput %x: f32[1, 4294967296, 4294967296]\ninput %y: f32[2]\n%0: f32[2] = relu(%y) in \"\"\noutput %0\n"), Options{}, "input %x: shape [1, 4294967296, 4294967296] has more elements than an int holds"},
		{"arange indices", parse("module M\nscope \"\" M key \"\"\nparam @w: f32[4, 2] key \"w\" in \"\"\n%0: i64[3] = arange() {start=2, end=5, step=1, dtype=\"i64\"} in \"\"\n%1: f32[3, 2] = embedding(%0, @w) in \"\"\noutput %1\n"), Options{}, "range over [2, 4], outside the table's 4 rows"},
	}
	for _, c := range cases {
		c.opts.NVCC = "-"
		_, err := Generate(c.m, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// cudaHeader finds cuda.h where cgo would, or "".
func cudaHeader() string {
	for _, dir := range []string{"/usr/local/cuda/include", "/usr/include", "/opt/cuda/include"} {
		if _, err := os.Stat(filepath.Join(dir, "cuda.h")); err == nil {
			return dir
		}
	}
	return ""
}

// TestGeneratedGoBuilds vets the generated Go with -tags cuda (cgo and the CUDA headers
// needed) for the golden op cases whose host code differs most: several inputs and
// outputs, outputs that are inputs or views, integer inputs with embedding checks, looped
// matmuls, float16 weights. The packages live in a temporary module that replaces rfc with
// this tree.
func TestGeneratedGoBuilds(t *testing.T) {
	goCmd := needTool(t, "go", "it builds the generated packages")
	inc := cudaHeader()
	if inc == "" {
		t.Skip("skipped: no CUDA headers (cuda.h) for cgo; install nvidia-cuda-dev")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mod := "module gencheck\n\ngo 1.26\n\nrequire github.com/rfc-project/rfc v0.0.0\n\nreplace github.com/rfc-project/rfc => " + root + "\n"
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	want := []string{"aliasing", "reshape_input_out", "reshape_i64", "embedding", "sdpa_0", "batch_param", "concat", "matmul_3", "group_norm"}
	for _, c := range loadOpCases(t) {
		if !slices.Contains(want, c.Name) {
			continue
		}
		for _, f16 := range []bool{false, true} {
			pkg := strings.ReplaceAll(c.Name, "_", "")
			if f16 {
				pkg += "h"
			}
			files, err := Generate(c.Module, Options{Package: pkg, NVCC: "-", F16Weights: f16})
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			files["model.ptx"] = []byte("// not compiled: the build only embeds it\n")
			for name, data := range files {
				must(t, os.MkdirAll(filepath.Join(dir, pkg), 0o755))
				must(t, os.WriteFile(filepath.Join(dir, pkg, name), data, 0o644))
			}
		}
	}
	cmd := exec.Command(goCmd, "vet", "-tags", "cuda", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off", "CGO_ENABLED=1", "CGO_CFLAGS=-I"+inc)
	if out, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "GOPROXY=off") {
			t.Skipf("skipped: gorgonia.org/cu is not in the module cache (go mod download fetches it):\n%s", out)
		}
		t.Fatalf("go vet -tags cuda of the generated packages failed (%v):\n%s", err, out)
	}
}
