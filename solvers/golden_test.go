package solvers

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/runtime"
)

// The goldens come from scripts/golden/solvers.py, Refiners' solvers transcribed in PyTorch.
const (
	goldenFile    = "testdata/solvers.safetensors"
	timestepsFile = "testdata/timesteps.json"
	tolerance     = 1e-5
)

type goldenCase struct {
	Key                string    `json:"key"`
	Solver             string    `json:"solver"`
	Steps              int       `json:"steps"`
	Strength           *float64  `json:"strength"`
	FirstStep          int       `json:"first_step"`
	LastStepFirstOrder bool      `json:"last_step_first_order"`
	Timesteps          []float64 `json:"timesteps"`
	InitNoiseSigma     float64   `json:"init_noise_sigma"`
}

type goldens struct {
	f     *runtime.SafetensorsFile
	cases []goldenCase
}

func openGoldens(t *testing.T) *goldens {
	t.Helper()
	f, err := runtime.OpenSafetensors(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	g := &goldens{f: f}
	if err := json.Unmarshal([]byte(f.Metadata()["cases"]), &g.cases); err != nil {
		t.Fatalf("%s: metadata cases: %v", goldenFile, err)
	}
	if len(g.cases) == 0 {
		t.Fatalf("%s: no cases", goldenFile)
	}
	return g
}

// read returns the tensor called name, split into its leading dimension.
func (g *goldens) read(t *testing.T, name string) [][]float32 {
	t.Helper()
	info, ok := g.f.Info(name)
	if !ok {
		t.Fatalf("%s: no tensor %q", goldenFile, name)
	}
	all := make([]float32, info.Len())
	if err := g.f.ReadF32Into(name, all); err != nil {
		t.Fatal(err)
	}
	if len(info.Shape) != 5 { // a single tensor, not a stack of [1,4,8,8]
		return [][]float32{all}
	}
	n := info.Shape[0]
	out := make([][]float32, n)
	for i := range out {
		out[i] = all[i*len(all)/n : (i+1)*len(all)/n]
	}
	return out
}

func (g *goldens) has(name string) bool {
	_, ok := g.f.Info(name)
	return ok
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// TestSchedule holds the base schedule bit-exact to PyTorch's float32 tables: the float32
// linspace emulation and the float64-accumulated cumprod.
func TestSchedule(t *testing.T) {
	g := openGoldens(t)
	s := newSchedule(DefaultNumTrainTimesteps, DefaultInitialDiffusionRate, DefaultFinalDiffusionRate)
	for _, c := range []struct {
		name string
		got  []float32
	}{
		{"schedule/scale_factors", s.scaleFactors},
		{"schedule/cumulative_scale_factors", s.cumulative},
		{"schedule/noise_std", s.noiseStd},
	} {
		want := g.read(t, c.name)[0]
		if len(want) != len(c.got) {
			t.Fatalf("%s: %d values, want %d", c.name, len(c.got), len(want))
		}
		for i := range want {
			if math.Float32bits(want[i]) != math.Float32bits(c.got[i]) {
				t.Errorf("%s[%d] = %v, PyTorch has %v", c.name, i, c.got[i], want[i])
				break
			}
		}
	}
}

// TestTrajectories runs every golden case through the Go solver, from the initial latents
// to the end, feeding the recorded model outputs (and LCM's per-step noise), and compares
// the initial latents, every model input, every intermediate x and every add_noise result.
func TestTrajectories(t *testing.T) {
	g := openGoldens(t)
	initNoise := g.read(t, "init_noise")[0]
	image := g.read(t, "image")[0]
	addNoise := g.read(t, "add_noise_noise")[0]
	worst := map[string]float64{}
	count := map[string]int{}
	for _, c := range g.cases {
		t.Run(c.Key, func(t *testing.T) {
			s, err := New(c.Solver, c.Steps, Params{FirstStep: c.FirstStep, LastStepFirstOrder: c.LastStepFirstOrder})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Timesteps(), c.Timesteps) {
				t.Fatalf("timesteps %v, PyTorch %v", s.Timesteps(), c.Timesteps)
			}
			if got := s.InitNoiseSigma(); float32(got) != float32(c.InitNoiseSigma) {
				t.Errorf("InitNoiseSigma %v, PyTorch %v", got, c.InitNoiseSigma)
			}
			worstHere := 0.0
			check := func(what string, got, want []float32) {
				t.Helper()
				d := maxAbsDiff(got, want)
				worstHere = max(worstHere, d)
				if d > tolerance {
					t.Fatalf("%s: max |Δ| %.3g > %g", what, d, tolerance)
				}
			}
			xs := g.read(t, c.Key+"/x")
			eps := g.read(t, c.Key+"/eps")
			var scaled, noise [][]float32
			if g.has(c.Key + "/scaled") {
				scaled = g.read(t, c.Key+"/scaled")
			}
			if g.has(c.Key + "/noise") {
				noise = g.read(t, c.Key+"/noise")
			}

			x := slices.Clone(initNoise)
			if c.Strength != nil {
				if err := s.AddNoise(x, image, initNoise, s.FirstStep()); err != nil {
					t.Fatal(err)
				}
			}
			s.ScaleInitialLatents(x)
			check("initial latents", x, xs[0])

			in := make([]float32, len(x))
			for k, step := 0, s.FirstStep(); step < s.NumSteps(); k, step = k+1, step+1 {
				if err := s.ScaleModelInput(in, x, step); err != nil {
					t.Fatal(err)
				}
				if scaled != nil {
					check(fmt.Sprintf("model input at step %d", step), in, scaled[k])
				} else if !slices.Equal(in, x) {
					t.Fatalf("step %d: ScaleModelInput changed x", step)
				}
				var n []float32
				if s.NeedsNoise(step) {
					if k >= len(noise) {
						t.Fatalf("step %d needs noise the golden lacks", step)
					}
					n = noise[k]
				}
				if err := s.Step(x, eps[k], step, n); err != nil {
					t.Fatal(err)
				}
				check(fmt.Sprintf("x after step %d", step), x, xs[k+1])
			}
			if len(xs) != s.NumSteps()-s.FirstStep()+1 {
				t.Fatalf("golden has %d latents for %d steps", len(xs), s.NumSteps()-s.FirstStep())
			}

			if g.has(c.Key + "/added") {
				added := g.read(t, c.Key+"/added")
				fresh, err := New(c.Solver, c.Steps, Params{})
				if err != nil {
					t.Fatal(err)
				}
				dst := make([]float32, len(image))
				for step := range added {
					if err := fresh.AddNoise(dst, image, addNoise, step); err != nil {
						t.Fatal(err)
					}
					check(fmt.Sprintf("add_noise at step %d", step), dst, added[step])
				}
			}
			worst[c.Solver] = max(worst[c.Solver], worstHere)
			count[c.Solver]++
		})
	}
	for _, name := range names {
		t.Logf("%s: %d cases, max |Δ| against PyTorch %.3g (tolerance %g)", name, count[name], worst[name], tolerance)
		if count[name] == 0 {
			t.Errorf("no golden case for %s", name)
		}
	}
}

type timestepGoldens struct {
	Timesteps struct {
		DPM            map[string][]float64 `json:"dpm"`
		DDIM           map[string][]float64 `json:"ddim"`
		Euler          map[string][]float64 `json:"euler"`
		EulerInitSigma map[string]float64   `json:"euler_init_noise_sigma"`
		LCM            map[string][]float64 `json:"lcm"`
		LCMOrig        map[string][]float64 `json:"lcm_orig"`
		FirstStep      map[string]int       `json:"first_step"`
	} `json:"timesteps"`
	Noise map[string][]float32 `json:"noise"`
}

func readTimestepGoldens(t *testing.T) *timestepGoldens {
	t.Helper()
	raw, err := os.ReadFile(timestepsFile)
	if err != nil {
		t.Fatal(err)
	}
	var g timestepGoldens
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("%s: %v", timestepsFile, err)
	}
	return &g
}

// TestTimestepSweep compares the timesteps of 1 to 60 steps (LCM: 1 to 50, and other
// NumOrigSteps) with PyTorch's, and Euler's σ_max.
func TestTimestepSweep(t *testing.T) {
	g := readTimestepGoldens(t)
	checked := 0
	for name, table := range map[string]map[string][]float64{
		"dpm": g.Timesteps.DPM, "ddim": g.Timesteps.DDIM, "euler": g.Timesteps.Euler, "lcm": g.Timesteps.LCM,
	} {
		if len(table) < 50 {
			t.Fatalf("%s: only %d step counts in %s", name, len(table), timestepsFile)
		}
		for key, want := range table {
			var steps int
			fmt.Sscan(key, &steps)
			s, err := New(name, steps, Params{})
			if err != nil {
				t.Fatalf("%s %d steps: %v", name, steps, err)
			}
			if got := s.Timesteps(); !slices.Equal(got, want) {
				t.Errorf("%s %d steps: timesteps %v, PyTorch %v", name, steps, got, want)
			}
			if name == "euler" {
				if got, want := float32(s.InitNoiseSigma()), float32(g.Timesteps.EulerInitSigma[key]); got != want {
					t.Errorf("euler %d steps: InitNoiseSigma %v, PyTorch %v", steps, got, want)
				}
			}
			checked++
		}
	}
	for key, want := range g.Timesteps.LCMOrig {
		var orig, steps int
		fmt.Sscanf(key, "%d/%d", &orig, &steps)
		s, err := NewLCM(steps, Params{NumOrigSteps: orig})
		if err != nil {
			t.Fatalf("lcm %d of %d: %v", steps, orig, err)
		}
		if got := s.Timesteps(); !slices.Equal(got, want) {
			t.Errorf("lcm %d steps of %d: timesteps %v, PyTorch %v", steps, orig, got, want)
		}
		checked++
	}
	for key, want := range g.Timesteps.FirstStep {
		var strength float64
		var steps int
		fmt.Sscanf(key, "%g/%d", &strength, &steps)
		got, err := FirstStepForStrength(strength, steps)
		if err != nil || got != want {
			t.Errorf("FirstStepForStrength(%v, %d) = %d, %v; Python %d", strength, steps, got, err, want)
		}
		checked++
	}
	t.Logf("%d timestep lists and first steps match PyTorch", checked)
}

// TestIssueFacts checks the timesteps the issue states, read from the goldens and typed.
// The issue gives Euler's 3 steps as 999, 499, 0: Refiners' Euler keeps float timesteps,
// and the middle one is 499.5 (PyTorch says so, see timesteps.json).
func TestIssueFacts(t *testing.T) {
	g := readTimestepGoldens(t)
	for _, c := range []struct {
		name  string
		steps int
		want  []float64
	}{
		{"dpm", 4, []float64{999, 749, 500, 250}},
		{"ddim", 3, []float64{667, 334, 1}},
		{"euler", 3, []float64{999, 499.5, 0}},
	} {
		s, err := New(c.name, c.steps, Params{})
		if err != nil {
			t.Fatal(err)
		}
		golden := map[string]map[string][]float64{"dpm": g.Timesteps.DPM, "ddim": g.Timesteps.DDIM, "euler": g.Timesteps.Euler}[c.name][fmt.Sprint(c.steps)]
		if got := s.Timesteps(); !slices.Equal(got, c.want) || !slices.Equal(golden, c.want) {
			t.Errorf("%s %d steps: %v (PyTorch %v), issue %v", c.name, c.steps, got, golden, c.want)
		}
	}
}

// TestStepAllocations: a step allocates nothing once the solver has seen the buffer size.
func TestStepAllocations(t *testing.T) {
	x := make([]float32, 4*64*64)
	eps := make([]float32, len(x))
	noise := make([]float32, len(x))
	FillNoise(x, 1)
	FillNoise(eps, 2)
	FillNoise(noise, 3)
	for _, name := range names {
		s, err := New(name, 8, Params{})
		if err != nil {
			t.Fatal(err)
		}
		in := make([]float32, len(x))
		step := 0
		run := func() {
			if step == s.NumSteps() {
				step = 0
			}
			if err := s.ScaleModelInput(in, x, step); err != nil {
				t.Fatal(err)
			}
			if err := s.Step(x, eps, step, noise); err != nil {
				t.Fatal(err)
			}
			step++
		}
		run() // DPM sizes its buffers at its first step
		if a := testing.AllocsPerRun(20, run); a != 0 {
			t.Errorf("%s: %v allocations per step", name, a)
		}
	}
}

func TestNames(t *testing.T) {
	if got := strings.Join(Names(), ","); got != "dpm,ddim,euler,lcm" {
		t.Fatalf("Names() = %s", got)
	}
}

// TestExp32 holds exp32 bit-exact to PyTorch's float32 exp.
func TestExp32(t *testing.T) {
	g := openGoldens(t)
	xs, ys := g.read(t, "exp/x")[0], g.read(t, "exp/y")[0]
	if len(xs) != len(ys) || len(xs) < 1000 {
		t.Fatalf("exp goldens: %d and %d values", len(xs), len(ys))
	}
	for i, x := range xs {
		if got := exp32(x); math.Float32bits(got) != math.Float32bits(ys[i]) {
			t.Errorf("exp32(%v) = %v, PyTorch %v", x, got, ys[i])
		}
	}
}
