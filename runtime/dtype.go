package runtime

import "fmt"

// DType is an element type as safetensors names it.
type DType uint8

// The element types a safetensors file may hold. The first ten keep their values: other
// packages and generated code compare against them.
const (
	F32 DType = iota + 1
	F16
	BF16
	I32
	I64
	U8
	F64
	BOOL
	I8
	I16
	U16
	U32
	U64
	F8E4M3 // "F8_E4M3": the e4m3fn variant (no infinities, one NaN pattern per sign)
	F8E5M2 // "F8_E5M2": the top byte of an f16
)

var dtypeInfo = [...]struct {
	name string
	size int
}{
	F32:    {"F32", 4},
	F16:    {"F16", 2},
	BF16:   {"BF16", 2},
	I32:    {"I32", 4},
	I64:    {"I64", 8},
	U8:     {"U8", 1},
	F64:    {"F64", 8},
	BOOL:   {"BOOL", 1},
	I8:     {"I8", 1},
	I16:    {"I16", 2},
	U16:    {"U16", 2},
	U32:    {"U32", 4},
	U64:    {"U64", 8},
	F8E4M3: {"F8_E4M3", 1},
	F8E5M2: {"F8_E5M2", 1},
}

func (d DType) valid() bool { return d >= F32 && int(d) < len(dtypeInfo) }

// String gives the safetensors name ("F32", "BF16", …), or "DType(n)" for an invalid value.
func (d DType) String() string {
	if !d.valid() {
		return fmt.Sprintf("DType(%d)", uint8(d))
	}
	return dtypeInfo[d].name
}

// Size is the width of one element in bytes; 0 for an invalid DType.
func (d DType) Size() int {
	if !d.valid() {
		return 0
	}
	return dtypeInfo[d].size
}

// IsFloat reports whether d holds floating-point values, which Tensor reads as F32.
func (d DType) IsFloat() bool {
	switch d {
	case F32, F16, BF16, F64, F8E4M3, F8E5M2:
		return true
	}
	return false
}

// ParseDType maps a safetensors dtype name to a DType.
func ParseDType(s string) (DType, error) {
	for d := F32; d.valid(); d++ {
		if dtypeInfo[d].name == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q", s)
}
