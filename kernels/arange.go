package kernels

// Arange sets y[i] = start + i·step, computed in float64 and rounded to float32 as
// torch.arange computes a float32 range.
func Arange(y []float32, start, step float64) {
	for i := range y {
		y[i] = float32(start + float64(i)*step)
	}
}

// ArangeInt sets y[i] = start + i·step.
func ArangeInt(y []int64, start, step int64) {
	for i := range y {
		y[i] = start + int64(i)*step
	}
}
