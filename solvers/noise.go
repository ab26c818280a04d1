package solvers

import "math"

// NoiseSource is a deterministic stream of standard-normal float32 values for a seed (the
// command line's --seed): SplitMix64 feeding the Box–Muller transform. The algorithm, so
// that any implementation reproduces it:
//
//	state := seed                          // uint64 arithmetic, wrapping
//	next():  state += 0x9E3779B97F4A7C15
//	         z := state
//	         z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//	         z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//	         return z ^ (z >> 31)
//	pair():  a, b := next(), next()
//	         u1 := float64((a >> 11) + 1) * 2⁻⁵³    // in (0, 1]: log is finite
//	         u2 := float64(b >> 11) * 2⁻⁵³          // in [0, 1)
//	         r := sqrt(-2·ln u1)
//	         return r·cos(2π·u2), r·sin(2π·u2)     // float64, then rounded to float32
//
// Fill writes the pairs in order; when it needs an odd count, the second value of the last
// pair is dropped, so each Fill starts on a fresh pair. A value can differ from another
// implementation's only where its libm and Go's round ln, cos or sin differently in float64
// and that difference survives the rounding to float32: the test finds none in 4096 values
// against Python's (glibc) math.
type NoiseSource struct{ state uint64 }

// NewNoiseSource returns the stream for seed.
func NewNoiseSource(seed uint64) *NoiseSource { return &NoiseSource{state: seed} }

func (s *NoiseSource) next() uint64 {
	s.state += 0x9E3779B97F4A7C15
	z := s.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Fill writes the next len(dst) values of the stream into dst.
func (s *NoiseSource) Fill(dst []float32) {
	const unit = 1.0 / (1 << 53)
	for i := 0; i < len(dst); i += 2 {
		a, b := s.next(), s.next()
		u1 := float64((a>>11)+1) * unit
		u2 := float64(b>>11) * unit
		r := math.Sqrt(-2 * math.Log(u1))
		theta := 2 * math.Pi * u2
		dst[i] = float32(r * math.Cos(theta))
		if i+1 < len(dst) {
			dst[i+1] = float32(r * math.Sin(theta))
		}
	}
}

// FillNoise fills dst with the first len(dst) values of the stream for seed.
func FillNoise(dst []float32, seed uint64) { NewNoiseSource(seed).Fill(dst) }
