package ir

import (
	"fmt"
	"math"
	"math/bits"
)

// Checked size arithmetic. Shapes come from users (`input x: f32[4294967296, …]`), so
// element counts and byte sizes are computed with overflow checks: a size that does not
// fit is an error naming the shape, never a wrapped (zero or negative) number in generated
// code or an allocation that crashes the Go runtime.

// MulChecked is a·b, or false when it overflows an int (either operand negative is an
// overflow too: sizes are never negative).
func MulChecked(a, b int) (int, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt {
		return 0, false
	}
	return int(lo), true
}

// AddChecked is a+b for sizes, or false when it overflows an int or either is negative.
func AddChecked(a, b int) (int, bool) {
	if a < 0 || b < 0 || a > math.MaxInt-b {
		return 0, false
	}
	return a + b, true
}

// Prod is the product of dims (1 for none): the element count of a static shape given as
// ints. It does not check for overflow: use it on shapes that verified (Verify and Infer
// check every size), and NumElementsChecked elsewhere.
func Prod(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// NumElementsChecked is the product of the static dims of s (symbolic dims, not known yet,
// count as 1), or an error when a dim is negative or the product overflows an int.
func (s Shape) NumElementsChecked() (int, error) {
	n := 1
	for _, d := range s {
		if !d.Static() {
			continue
		}
		if d.N < 0 {
			return 0, fmt.Errorf("shape %s has a negative dim", s)
		}
		var ok bool
		if n, ok = MulChecked(n, d.N); !ok {
			return 0, fmt.Errorf("shape %s has more elements than an int holds (%d)", s, math.MaxInt)
		}
	}
	return n, nil
}

// Size is the size in bytes of one element as the IR declares it.
func (d DType) Size() int {
	switch d {
	case F16, BF16:
		return 2
	case I64:
		return 8
	}
	return 4
}

// StorageSize is the size in bytes of one element as rfc's engines hold it: floats as
// float32, integers as int64 (inputs and indices are widened on the way in).
func (d DType) StorageSize() int {
	if d.IsFloat() {
		return 4
	}
	return 8
}

// Bytes is the size of a tensor of type t in the engines' memory (StorageSize per
// element), or an error naming the type when it does not fit an int. Symbolic dims count
// as 1.
func (t Type) Bytes() (int, error) {
	n, err := t.Shape.NumElementsChecked()
	if err != nil {
		return 0, err
	}
	b, ok := MulChecked(n, t.DType.StorageSize())
	if !ok {
		return 0, fmt.Errorf("%s takes %d×%d bytes, more than an int holds (%d)", t, n, t.DType.StorageSize(), math.MaxInt)
	}
	return b, nil
}

// CheckSize refuses a type whose element count or byte size overflows; what names the
// tensor in the error (an input, a parameter, an op).
func CheckSize(what string, t Type) error {
	if _, err := t.Bytes(); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	return nil
}

// MulDimChecked is MulDim with an error when a static product overflows.
func MulDimChecked(a, b Dim) (Dim, error) {
	if a.Static() && b.Static() {
		n, ok := MulChecked(a.N, b.N)
		if !ok {
			return Dim{}, fmt.Errorf("the dim %s×%s overflows an int", a, b)
		}
		return D(n), nil
	}
	d, err := dimOp(dimMul, a, b)
	if err != nil {
		return Dim{}, fmt.Errorf("the dim %s×%s: %v", a, b, err)
	}
	return d, nil
}

// AddDimChecked is AddDim with an error when a static sum overflows.
func AddDimChecked(a, b Dim) (Dim, error) {
	if a.Static() && b.Static() {
		n, ok := AddChecked(a.N, b.N)
		if !ok {
			return Dim{}, fmt.Errorf("the dim %s+%s overflows an int", a, b)
		}
		return D(n), nil
	}
	d, err := dimOp(dimAdd, a, b)
	if err != nil {
		return Dim{}, fmt.Errorf("the dim %s+%s: %v", a, b, err)
	}
	return d, nil
}
