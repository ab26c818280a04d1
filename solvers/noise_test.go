package solvers

import (
	"math"
	"slices"
	"strconv"
	"testing"
)

// TestNoiseReference: the Python transcription of the documented algorithm (glibc's math)
// gives the same float32 values.
func TestNoiseReference(t *testing.T) {
	g := readTimestepGoldens(t)
	if len(g.Noise) == 0 {
		t.Fatal("no noise reference in " + timestepsFile)
	}
	for key, want := range g.Noise {
		seed, err := strconv.ParseUint(key, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(want))
		FillNoise(got, seed)
		diff := 0
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				diff++
				if diff <= 3 {
					t.Errorf("seed %d [%d]: %v, Python %v", seed, i, got[i], want[i])
				}
			}
		}
		if diff > 0 {
			t.Errorf("seed %d: %d of %d values differ", seed, diff, len(want))
		}
	}
}

func TestNoiseDeterministic(t *testing.T) {
	a, b, c := make([]float32, 1001), make([]float32, 1001), make([]float32, 1001)
	FillNoise(a, 7)
	FillNoise(b, 7)
	FillNoise(c, 8)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave different noise")
	}
	if slices.Equal(a, c) {
		t.Fatal("seeds 7 and 8 gave the same noise")
	}
	// A stream continues on a fresh pair after an odd fill.
	src := NewNoiseSource(7)
	first, second := make([]float32, 3), make([]float32, 2)
	src.Fill(first)
	src.Fill(second)
	four := make([]float32, 6)
	FillNoise(four, 7)
	if !slices.Equal(first, four[:3]) || !slices.Equal(second, four[4:6]) {
		t.Fatalf("odd fills: %v %v, one fill %v", first, second, four)
	}
}

// TestNoiseStatistics: mean 0, variance 1, and the normal's tail weights, on 2²⁰ values of a
// fixed seed (the bounds are 5 standard errors wide).
func TestNoiseStatistics(t *testing.T) {
	const n = 1 << 20
	x := make([]float32, n)
	FillNoise(x, 12345)
	var sum, sq, quart float64
	beyond2 := 0
	for _, v := range x {
		f := float64(v)
		sum += f
		sq += f * f
		quart += f * f * f * f
		if math.Abs(f) > 2 {
			beyond2++
		}
	}
	mean := sum / n
	variance := sq/n - mean*mean
	kurtosis := quart / n / (variance * variance)
	tail := float64(beyond2) / n
	t.Logf("mean %.5f variance %.5f kurtosis %.4f P(|x|>2) %.5f", mean, variance, kurtosis, tail)
	if math.Abs(mean) > 5/math.Sqrt(n) {
		t.Errorf("mean %v", mean)
	}
	if math.Abs(variance-1) > 5*math.Sqrt(2.0/n) {
		t.Errorf("variance %v", variance)
	}
	if math.Abs(kurtosis-3) > 5*math.Sqrt(96.0/n) {
		t.Errorf("kurtosis %v", kurtosis)
	}
	const p2 = 0.04550026389635842 // P(|N(0,1)| > 2)
	if math.Abs(tail-p2) > 5*math.Sqrt(p2*(1-p2)/n) {
		t.Errorf("P(|x|>2) = %v, want %v", tail, p2)
	}
}
