package cuda

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfc-project/rfc/internal/fuzzgen"
)

// emuBackend runs fuzzgen's jobs as CUDA kernels under the CPU emulator: the differential
// fuzzer's CUDA back end. It lives in this package's tests because the emulator's harness
// (emu_test.go) uses the generator's internals.
type emuBackend struct {
	t   *testing.T
	gxx string
}

func (b *emuBackend) Name() string { return "cuda" }

// HalfWeights: the target stores weights as float16 with Options.F16Weights.
func (b *emuBackend) HalfWeights() bool { return true }

// Ops: the CUDA target has no fused ops, so the passes make none for it.
func (b *emuBackend) Ops(op string) bool { _, ok := lowerings[op]; return ok }

// Tolerance: the kernels sum in other orders than the CPU's (tiled GEMMs, tree
// reductions, online softmax), and the emulator's libm is not the kernels' Go maths.
func (b *emuBackend) Tolerance() float64 { return 1e-4 }

// Run builds one emulator program for all jobs and runs it. A job whose kernels do not
// compile, or that crashes the program, is that job's failure; the others go on.
func (b *emuBackend) Run(jobs []*fuzzgen.Job) ([]fuzzgen.Result, error) {
	t := b.t
	dir, err := os.MkdirTemp("", "rfc-fuzz-emu")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := make([]fuzzgen.Result, len(jobs))
	cases := make([]*emuCase, len(jobs))
	var live []int
	for i, j := range jobs {
		if err := check(j.Module); err != nil {
			res[i] = fuzzgen.Result{Stage: "generate", Err: err}
			continue
		}
		g, err := newGenerator(j.Module, Options{Package: "model", F16Weights: j.F16Weights})
		if err != nil {
			res[i] = fuzzgen.Result{Stage: "generate", Err: err}
			continue
		}
		c := &emuCase{name: strconv.Itoa(i), m: j.Module, f16: j.F16Weights, weights: j.Weights, inputs: j.Inputs, gen: g}
		cases[i] = c
		writeCaseData(t, dir, i, c)
		live = append(live, i)
	}
	lib := wholeLibrary(t)
	bin := filepath.Join(dir, "harness")
	kernelRef := regexp.MustCompile(`\b(?:u(\d+)|run_c(\d+))\b`)
	live, err = fuzzgen.BuildWithout(res, live, "compile", func(live []int) (map[int]error, error) {
		// Kernels are written once per distinct text: the variants of one model share
		// most of theirs.
		canon := map[string]string{}
		names := map[*kernel]string{}
		users := map[string][]int{}
		var src strings.Builder
		src.WriteString("#include \"emu.h\"\n\n")
		src.WriteString(lib)
		src.WriteString(emuHelpers)
		for _, i := range live {
			for _, k := range cases[i].gen.low.kernels {
				text := kernelText(k, "KERNEL")
				name, ok := canon[text]
				if !ok {
					name = "u" + strconv.Itoa(len(canon))
					canon[text] = name
					src.WriteString("\n" + kernelText(k, name))
				}
				names[k] = name
				users[name] = append(users[name], i)
			}
		}
		for _, i := range live {
			src.WriteString(emuRunner(cases[i].gen, i, func(k *kernel) string { return names[k] }))
		}
		src.WriteString("\nint main(int argc, char** argv) {\n  for (int k = 2; k < argc; k++) {\n    int i = atoi(argv[k]);\n    printf(\"begin %d\\n\", i);\n    fflush(stdout);\n    switch (i) {\n")
		for _, i := range live {
			fmt.Fprintf(&src, "    case %d: run_c%d(argv[1]); break;\n", i, i)
		}
		src.WriteString("    }\n    printf(\"ok %d\\n\", i);\n    fflush(stdout);\n  }\n  return 0;\n}\n")
		cpp := filepath.Join(dir, "harness.cpp")
		if err := os.WriteFile(cpp, []byte(src.String()), 0o644); err != nil {
			return nil, err
		}
		emuH, err := filepath.Abs("testdata")
		if err != nil {
			return nil, err
		}
		// -O0: the harness is compiled once per batch, and compiling takes far longer than
		// running.
		build := exec.Command(b.gxx, "-std=c++17", "-O0", "-Wall", "-Wno-unused-function", "-Wno-unknown-pragmas", "-Werror", "-I", emuH, "-o", bin, cpp)
		out, err := build.CombinedOutput()
		if err == nil {
			return nil, nil
		}
		blame := map[int]error{}
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.Contains(l, "error") && !strings.Contains(l, "warning") {
				continue
			}
			for _, m := range kernelRef.FindAllStringSubmatch(l, -1) {
				who := users["u"+m[1]]
				if m[2] != "" {
					i, _ := strconv.Atoi(m[2])
					who = []int{i}
				}
				for _, i := range who {
					if slices.Contains(live, i) {
						blame[i] = fmt.Errorf("g++ rejects the kernels:\n%s", firstLines(string(out), 20))
					}
				}
			}
		}
		return blame, fmt.Errorf("g++: %v\n%s", err, firstLines(string(out), 40))
	})
	if err != nil {
		return nil, err
	}
	read := func(i int) fuzzgen.Result {
		var r fuzzgen.Result
		for j, o := range cases[i].m.Outputs {
			r.Outputs = append(r.Outputs, readOutput(t, dir, i, j, cases[i].gen, o))
		}
		return r
	}
	if err := fuzzgen.RunDriver(res, live, 5*time.Minute, read, bin, dir); err != nil {
		return nil, err
	}
	return res, nil
}

// TestDifferentialFuzz runs the differential fuzzer (internal/fuzzgen) with every back
// end: the interpreter after each pass configuration, the Go code generator (each pass
// configuration too) and the CUDA kernels under the emulator. As a test it checks the
// regression corpus (internal/fuzzgen/testdata/regress) and a fixed range of seeds. With
// RFC_FUZZ_MINUTES=N it runs fresh seeds for N minutes instead, printing models per minute
// and failures, and writes each failure, shrunk, to RFC_FUZZ_OUT (default
// $TMPDIR/rfc-fuzz) as a corpus file to commit with its fix (docs/FUZZING.md).
func TestDifferentialFuzz(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var backends []fuzzgen.Backend
	if gxx, err := exec.LookPath("g++"); err == nil {
		backends = append(backends, &emuBackend{t: t, gxx: gxx})
	} else {
		t.Log("no g++ on PATH: the CUDA back end is left out")
	}
	if _, err := exec.LookPath("go"); err == nil && !testing.Short() {
		backends = append(backends, &fuzzgen.GoBackend{Root: root, Dir: t.TempDir()})
	} else {
		t.Log("no go command (or -short): the Go back end is left out")
	}
	cfg := fuzzgen.DefaultConfig()
	if seed, err := strconv.ParseUint(os.Getenv("RFC_FUZZ_SEED"), 10, 64); err == nil {
		oneSeed(t, seed, cfg, backends)
		return
	}
	if minutes, err := strconv.ParseFloat(os.Getenv("RFC_FUZZ_MINUTES"), 64); err == nil {
		longRun(t, time.Duration(minutes*float64(time.Minute)), cfg, backends)
		return
	}
	corpus, err := fuzzgen.ReadCorpus("../../internal/fuzzgen/testdata/regress")
	if err != nil {
		t.Fatal(err)
	}
	var models []*fuzzgen.Model
	names := map[*fuzzgen.Model]string{}
	for name, m := range corpus {
		models = append(models, m)
		names[m] = name
	}
	// The smoke run: enough seeds to use every layer and pass (fuzzgen's tests check that
	// the generator's output covers the catalogue), few enough for CI.
	for seed := uint64(1); seed <= smokeSeeds; seed++ {
		models = append(models, fuzzgen.Generate(seed, cfg))
	}
	start := time.Now()
	rep := fuzzgen.CheckModels(models, backends...)
	t.Logf("%s (%.1fs)", rep, time.Since(start).Seconds())
	for _, f := range rep.Failures {
		if name := names[f.Model]; name != "" {
			t.Errorf("regression %s: %v", name, f)
			continue
		}
		t.Errorf("%v\nrerun it alone with RFC_FUZZ_SEED=%d", f, f.Seed)
	}
}

// smokeSeeds is how many generated models the test checks besides the corpus.
const smokeSeeds = 40

// oneSeed checks one seed and shrinks its failures into corpus files.
func oneSeed(t *testing.T, seed uint64, cfg fuzzgen.Config, backends []fuzzgen.Backend) {
	m := fuzzgen.Generate(seed, cfg)
	rep := fuzzgen.CheckModels([]*fuzzgen.Model{m}, backends...)
	t.Logf("%s\n%s", rep, m.Source)
	shrinkAll(t, rep.Failures, backends, map[string]bool{})
}

// shrinkAll shrinks one failure of each signature and writes it to RFC_FUZZ_OUT.
func shrinkAll(t *testing.T, fails []fuzzgen.Failure, backends []fuzzgen.Backend, seen map[string]bool) {
	out := os.Getenv("RFC_FUZZ_OUT")
	if out == "" {
		out = filepath.Join(os.TempDir(), "rfc-fuzz")
	}
	for _, f := range fails {
		t.Errorf("%v", f)
		sig := fuzzgen.Signature(f)
		if f.Model == nil || seen[sig] {
			continue
		}
		seen[sig] = true
		small := fuzzgen.Shrink(f.Model, f, backends, t.Logf)
		path := filepath.Join(out, fmt.Sprintf("seed%d.rfn", f.Seed))
		err := os.MkdirAll(out, 0o755)
		if err == nil {
			err = os.WriteFile(path, fuzzgen.Encode(small, f.Error()), 0o644)
		}
		fmt.Printf("shrunk to %d bytes: %s (%v)\n", len(small.Source), path, err)
	}
}

// longRun checks batches of fresh seeds until the time is up.
func longRun(t *testing.T, d time.Duration, cfg fuzzgen.Config, backends []fuzzgen.Backend) {
	first := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("RFC_FUZZ_FIRST"), 10, 64); err == nil {
		first = v
	}
	const batch = 50
	total := fuzzgen.NewReport()
	start := time.Now()
	cpu0 := cpuTime()
	seen := map[string]bool{}
	for seed := first; time.Since(start) < d; seed += batch {
		var seeds []uint64
		for s := seed; s < seed+batch; s++ {
			seeds = append(seeds, s)
		}
		rep := fuzzgen.Check(seeds, cfg, backends...)
		total.Add(rep)
		elapsed := time.Since(start)
		fmt.Printf("seeds %d…%d: %d failures; %d models in %.0fs: %.0f models/minute, %.2f CPU s/model, load %s\n",
			seed, seed+batch-1, len(rep.Failures), total.Models, elapsed.Seconds(), float64(total.Models)/elapsed.Minutes(),
			(cpuTime()-cpu0).Seconds()/float64(total.Models), loadAverage())
		shrinkAll(t, rep.Failures, backends, seen)
	}
	fmt.Printf("total: %s\n", total)
}
