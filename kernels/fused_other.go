//go:build !amd64

package kernels

func packPanelVec(dst, src []float32, plane int, offs []int32, nc, mr int) bool { return false }

func reluVec(y, x []float32) int { return 0 }

func addReluVec(y, a, b []float32, relu bool) int { return 0 }

func transposeStore8(dst []float32, ldd int, src []float32, lds int, bias *[8]float32, res []float32, n int, relu bool) int {
	return 0
}

func dup2Vec(y, x []float32) int { return 0 }
