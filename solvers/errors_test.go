package solvers

import (
	"math"
	"strings"
	"testing"
)

// TestBadArguments: every misuse is an error that says what is wrong, never a panic.
func TestBadArguments(t *testing.T) {
	for _, c := range []struct {
		name   string
		solver string
		steps  int
		p      Params
		want   string
	}{
		{"unknown solver", "heun", 10, Params{}, `unknown solver "heun" (valid: dpm, ddim, euler, lcm)`},
		{"empty name", "", 10, Params{}, `unknown solver ""`},
		{"zero steps", "dpm", 0, Params{}, "steps must be at least 1, got 0"},
		{"negative steps", "euler", -3, Params{}, "steps must be at least 1, got -3"},
		{"more steps than training timesteps", "ddim", 1001, Params{}, "1001 steps exceed the 1000 training timesteps"},
		{"first step negative", "dpm", 10, Params{FirstStep: -1}, "FirstStep must be in [0, 9]"},
		{"first step past the end", "lcm", 4, Params{FirstStep: 4}, "FirstStep must be in [0, 3]"},
		{"one training timestep", "dpm", 1, Params{NumTrainTimesteps: 1}, "NumTrainTimesteps must be in [2,"},
		{"negative training timesteps", "dpm", 1, Params{NumTrainTimesteps: -5}, "NumTrainTimesteps must be in [2,"},
		{"rate above 1", "ddim", 10, Params{FinalDiffusionRate: 1.5}, "FinalDiffusionRate must be in (0, 1)"},
		{"negative rate", "ddim", 10, Params{InitialDiffusionRate: -1e-3}, "InitialDiffusionRate must be in (0, 1)"},
		{"NaN rate", "euler", 10, Params{InitialDiffusionRate: math.NaN()}, "InitialDiffusionRate must be in (0, 1)"},
		{"last step first order on euler", "euler", 10, Params{LastStepFirstOrder: true}, "LastStepFirstOrder applies to dpm only"},
		{"orig steps on dpm", "dpm", 10, Params{NumOrigSteps: 50}, "NumOrigSteps applies to lcm only"},
		{"lcm steps above orig", "lcm", 51, Params{}, "51 steps exceed NumOrigSteps (50)"},
		{"lcm orig above training", "lcm", 4, Params{NumOrigSteps: 2000}, "NumOrigSteps must be in [1, 1000]"},
		{"lcm orig too fine for trailing", "lcm", 4, Params{NumOrigSteps: 1000}, "leaves only 999 trailing timesteps"},
		{"dpm repeated timesteps", "dpm", 1000, Params{}, "repeat timestep"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.solver, c.steps, c.p)
			if err == nil {
				t.Fatalf("no error (got a %s solver)", s.Name())
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestFirstStepForStrengthErrors(t *testing.T) {
	for _, c := range []struct {
		strength float64
		steps    int
		want     string
	}{
		{-0.1, 10, "strength must be in [0, 1], got -0.1"},
		{1.5, 10, "strength must be in [0, 1], got 1.5"},
		{math.NaN(), 10, "strength must be in [0, 1], got NaN"},
		{math.Inf(1), 10, "strength must be in [0, 1]"},
		{0.5, 0, "steps must be at least 1, got 0"},
	} {
		if _, err := FirstStepForStrength(c.strength, c.steps); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FirstStepForStrength(%v, %d): error %v, want %q", c.strength, c.steps, err, c.want)
		}
	}
	for _, c := range []struct {
		strength    float64
		steps, want int
	}{{1, 30, 0}, {0, 30, 29}, {0.5, 10, 4}, {0.5, 1, 0}} {
		if got, err := FirstStepForStrength(c.strength, c.steps); err != nil || got != c.want {
			t.Errorf("FirstStepForStrength(%v, %d) = %d, %v; want %d", c.strength, c.steps, got, err, c.want)
		}
	}
}

// TestBadCalls: wrong steps and buffers are errors for every solver.
func TestBadCalls(t *testing.T) {
	const n = 16
	x, eps, noise := make([]float32, n), make([]float32, n), make([]float32, n)
	short := make([]float32, n-1)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s, err := New(name, 4, Params{FirstStep: 1})
			if err != nil {
				t.Fatal(err)
			}
			expect := func(what, want string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %v, want %q", what, err, want)
				}
			}
			expect("step before FirstStep", "step 0 outside [1, 3]", s.Step(x, eps, 0, noise))
			expect("step past the end", "step 4 outside [1, 3]", s.Step(x, eps, 4, noise))
			expect("short prediction", "buffers of 16 and 15 values", s.Step(x, short, 1, noise))
			expect("empty latents", "empty latents", s.Step(nil, nil, 1, noise))
			expect("model input step", "step -1 outside [0, 3]", s.ScaleModelInput(x, x, -1))
			expect("model input short dst", "buffers of 16 and 15 values", s.ScaleModelInput(short, x, 1))
			if name == "euler" {
				expect("euler AddNoise", "AddNoise is not supported", s.AddNoise(x, x, noise, 1))
			} else {
				expect("AddNoise step", "step 9 outside [0, 3]", s.AddNoise(x, x, noise, 9))
				expect("AddNoise short noise", "buffers of 16 and 15 values", s.AddNoise(x, x, short, 1))
			}
		})
	}
}

func TestDPMStepOrder(t *testing.T) {
	x, eps := make([]float32, 8), make([]float32, 8)
	s, err := NewDPM(5, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Step(x, eps, 2, nil); err == nil || !strings.Contains(err.Error(), "starts at FirstStep") {
		t.Fatalf("step 2 first: %v", err)
	}
	if err := s.Step(x, eps, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Step(x, eps, 2, nil); err == nil || !strings.Contains(err.Error(), "step 2 where step 1 was due") {
		t.Fatalf("skipped step: %v", err)
	}
	if err := s.Step(x[:4], eps[:4], 1, nil); err == nil || !strings.Contains(err.Error(), "has 4 values, the previous step had 8") {
		t.Fatalf("resized buffers: %v", err)
	}
	if err := s.Step(x, eps, 0, nil); err != nil { // starting over is allowed
		t.Fatal(err)
	}
}

func TestLCMNeedsNoise(t *testing.T) {
	x, eps := make([]float32, 8), make([]float32, 8)
	s, err := NewLCM(4, Params{})
	if err != nil {
		t.Fatal(err)
	}
	for step := 0; step < 4; step++ {
		if got, want := s.NeedsNoise(step), step < 3; got != want {
			t.Errorf("NeedsNoise(%d) = %v", step, got)
		}
	}
	if err := s.Step(x, eps, 0, nil); err == nil || !strings.Contains(err.Error(), "step 0 needs fresh noise") {
		t.Fatalf("missing noise: %v", err)
	}
	if err := s.Step(x, eps, 0, make([]float32, 3)); err == nil || !strings.Contains(err.Error(), "buffers of 8 and 3 values") {
		t.Fatalf("short noise: %v", err)
	}
	if err := s.Step(x, eps, 3, nil); err != nil { // the last step takes none
		t.Fatal(err)
	}
	for _, name := range []string{"dpm", "ddim", "euler"} {
		o, _ := New(name, 4, Params{})
		for step := 0; step < 4; step++ {
			if o.NeedsNoise(step) {
				t.Errorf("%s needs noise at step %d", name, step)
			}
		}
	}
}

// FuzzSolvers: any name, step count, parameters and call sequence give an error or a result,
// never a panic.
func FuzzSolvers(f *testing.F) {
	f.Add("dpm", 4, 0, 0, 0.0, 0.0, false, 0, 3, 16)
	f.Add("lcm", 4, 1, 0, 0.0, 0.0, false, 50, 2, 8)
	f.Add("euler", 1, 0, 10, 0.1, 0.2, false, 0, 0, 1)
	f.Add("ddim", 1000, 999, 0, 0.0, 0.0, false, 0, 999, 4)
	f.Add("dpm", 3, 0, 3, 0.5, 0.9, true, 0, -1, 0)
	f.Fuzz(func(t *testing.T, name string, steps, first, numTrain int, initial, final float64, lsfo bool, orig, step, n int) {
		if steps > 5000 || numTrain > 5000 || orig > 5000 || n > 1024 || n < 0 {
			return // the tables stay small
		}
		s, err := New(name, steps, Params{NumTrainTimesteps: numTrain, InitialDiffusionRate: initial, FinalDiffusionRate: final,
			FirstStep: first, LastStepFirstOrder: lsfo, NumOrigSteps: orig})
		if err != nil {
			return
		}
		x, eps, noise := make([]float32, n), make([]float32, n), make([]float32, n)
		FillNoise(x, uint64(step))
		_ = s.ScaleModelInput(x, x, step)
		_ = s.AddNoise(x, x, noise, step)
		_ = s.Step(x, eps, s.FirstStep(), noise)
		_ = s.Step(x, eps, step, noise)
		s.ScaleInitialLatents(x)
		_ = s.Timesteps()
	})
}
