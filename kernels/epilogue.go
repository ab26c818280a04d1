package kernels

import (
	"fmt"
)

// Activation is the element-wise function a fused kernel applies last (ActNone: none).
type Activation uint8

const (
	ActNone        Activation = iota
	ActReLU                   // max(x, 0)
	ActSiLU                   // x·σ(x)
	ActSigmoid                // σ(x)
	ActTanh                   // tanh(x)
	ActGeLU                   // exact GeLU, x·Φ(x)
	ActGeLUTanh               // GeLU, tanh approximation
	ActGeLUSigmoid            // GeLU, x·σ(1.702x)
)

var activationNames = [...]string{"none", "relu", "silu", "sigmoid", "tanh", "gelu", "gelu_tanh", "gelu_sigmoid"}

// String gives the name the IR uses for the activation (the act attribute of fused ops).
func (a Activation) String() string {
	if int(a) < len(activationNames) {
		return activationNames[a]
	}
	return fmt.Sprintf("Activation(%d)", uint8(a))
}

// ParseActivation reads a name String gives.
func ParseActivation(name string) (Activation, bool) {
	for i, n := range activationNames {
		if n == name {
			return Activation(i), true
		}
	}
	return 0, false
}

// Apply computes y = act(x) over a span, serially (y may alias x). It is the element-wise
// kernel of the same name (ReLU, SiLU, …) on one span: fused kernels call it on each tile.
func (a Activation) Apply(y, x []float32) {
	switch a {
	case ActNone:
		copy(y, x) // a no-op when y is x
	case ActReLU:
		reluSpan(y, x)
	case ActSiLU:
		sigmoidGate(y, x, 1, 0, true)
	case ActSigmoid:
		sigmoidGate(y, x, 1, 0, false)
	case ActTanh:
		tanh32(y, x)
	case ActGeLU:
		geluErf(y, x)
	case ActGeLUTanh:
		sigmoidGate(y, x, 2*0.7978845608028654, 0.044715, true)
	case ActGeLUSigmoid:
		sigmoidGate(y, x, 1.702, 0, true)
	default:
		panic(fmt.Sprintf("kernels: unknown activation %d", a))
	}
}

// Epilogue is what a fused convolution or linear layer does to its result (bias included)
// while each tile is still in cache, in this order:
//
//	y = Act(y·Scale + Shift + Residual)
//
// the affine step only when Affine is set, the residual only when it is not nil. Each step
// rounds as the separate op would (scale, then add, then the activation), so a fused op
// computes what the chain of unfused ops computes. Residual is laid out as y.
type Epilogue struct {
	Affine       bool
	Scale, Shift float32
	Residual     []float32
	Act          Activation
}

// empty reports whether the epilogue leaves y as it is.
func (e *Epilogue) empty() bool { return !e.Affine && e.Residual == nil && e.Act == ActNone }

// apply runs the epilogue on y, a span of the result starting at element off.
func (e *Epilogue) apply(y []float32, off int) {
	if e.Affine {
		scaleBiasSpan(y, y, e.Scale, e.Shift)
	}
	if e.Residual != nil {
		binaryRow(OpAdd, y, y, 1, e.Residual[off:off+len(y)], 1)
	}
	if e.Act != ActNone && len(y) > 0 {
		e.Act.Apply(y, y)
	}
}

// check panics unless the residual covers n elements, as y does.
func (e *Epilogue) check(n int) {
	if e.Residual != nil && len(e.Residual) < n {
		panic(fmt.Sprintf("kernels: residual has %d elements, the result %d", len(e.Residual), n))
	}
	if int(e.Act) >= len(activationNames) {
		panic(fmt.Sprintf("kernels: unknown activation %d", e.Act))
	}
}

// EpilogueSpan applies ep to y, the whole result of a fused op (element-wise, in parallel
// spans): the path for results that are not produced tile by tile.
func EpilogueSpan(y []float32, ep Epilogue) {
	ep.check(len(y))
	if ep.empty() {
		return
	}
	if serial(len(y)) {
		ep.apply(y, 0)
		return
	}
	runPooled(&epilogueJobs, (len(y)+elemGrain-1)/elemGrain, epilogueJob{y, ep})
}

var epilogueJobs pool

type epilogueJob struct {
	y  []float32
	ep Epilogue
}

func (j *epilogueJob) run(lo, hi int) {
	lo, hi = lo*elemGrain, min(hi*elemGrain, len(j.y))
	j.ep.apply(j.y[lo:hi], lo)
}
