package runtime

import (
	"fmt"
	"strconv"
	"strings"
)

// Tensor is a compute tensor: floating-point data is always f32 in memory (DType F32, data
// in F32), integer and boolean data int64 (DType I64, data in I64). Data is contiguous and
// row-major; Shape may be empty for a scalar.
type Tensor struct {
	DType DType // F32 or I64
	Shape []int
	F32   []float32
	I64   []int64
}

// shapeLen is the element count of shape; it panics on a negative dimension or an
// overflowing product, which only a programming error produces here. A zero dimension
// makes the count 0 whatever the other dimensions are.
func shapeLen(shape []int) int {
	n, err := checkedLen(shape)
	if err != nil {
		panic("runtime: " + err.Error())
	}
	return n
}

func checkedLen(shape []int) (int, error) {
	hasZero := false
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %s has a negative dimension", formatShape(shape))
		}
		hasZero = hasZero || d == 0
	}
	if hasZero {
		return 0, nil
	}
	n := 1
	for _, d := range shape {
		if n > maxInt/d {
			return 0, fmt.Errorf("shape %s has too many elements", formatShape(shape))
		}
		n *= d
	}
	return n, nil
}

const maxInt = int(^uint(0) >> 1)

// NewTensor allocates a zeroed F32 tensor.
func NewTensor(shape ...int) *Tensor {
	return &Tensor{DType: F32, Shape: append([]int(nil), shape...), F32: make([]float32, shapeLen(shape))}
}

// FromF32 wraps data (not copied) as an F32 tensor; it panics if len(data) does not match
// the shape, a programming error.
func FromF32(data []float32, shape ...int) *Tensor {
	if n := shapeLen(shape); n != len(data) {
		panic(fmt.Sprintf("runtime: FromF32: shape %s needs %d elements, data has %d", formatShape(shape), n, len(data)))
	}
	return &Tensor{DType: F32, Shape: append([]int(nil), shape...), F32: data}
}

// FromI64 wraps data (not copied) as an I64 tensor; it panics if len(data) does not match
// the shape, a programming error.
func FromI64(data []int64, shape ...int) *Tensor {
	if n := shapeLen(shape); n != len(data) {
		panic(fmt.Sprintf("runtime: FromI64: shape %s needs %d elements, data has %d", formatShape(shape), n, len(data)))
	}
	return &Tensor{DType: I64, Shape: append([]int(nil), shape...), I64: data}
}

// Len is the number of elements the shape describes.
func (t *Tensor) Len() int { return shapeLen(t.Shape) }

// ShapeString formats the shape as "[2, 3, 4]" ("[]" for a scalar).
func (t *Tensor) ShapeString() string { return formatShape(t.Shape) }

// check reports whether the tensor's dtype, shape and data agree.
func (t *Tensor) check() error {
	n, err := checkedLen(t.Shape)
	if err != nil {
		return err
	}
	switch t.DType {
	case F32:
		if len(t.F32) != n {
			return fmt.Errorf("shape %s needs %d elements, F32 data has %d", formatShape(t.Shape), n, len(t.F32))
		}
	case I64:
		if len(t.I64) != n {
			return fmt.Errorf("shape %s needs %d elements, I64 data has %d", formatShape(t.Shape), n, len(t.I64))
		}
	default:
		return fmt.Errorf("tensor dtype %v is not F32 or I64", t.DType)
	}
	return nil
}

// FormatInts formats a shape or a list of sizes as "[2, 3, 4]" ("[]" when empty), as
// errors and the language's list literals write them.
func FormatInts(xs []int) string { return formatShape(xs) }

func formatShape[T int | int64](shape []T) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(int64(d), 10))
	}
	b.WriteByte(']')
	return b.String()
}
