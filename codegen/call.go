package codegen

import (
	"fmt"
	"strconv"
)

// Call is the Go source of a call to a generated package's Forward, for a program that
// drives the package with tensors (rfc run, the tests' and the fuzzer's drivers). Its
// expressions name the rfc runtime package runtime.
type Call struct {
	// Args are Forward's arguments: each input's data (.F32 or .I64) and, when its shape
	// holds sizes chosen at run time, the shape.
	Args []string
	// Results are the variables Forward's results (its error left out) are assigned to:
	// y0, y1, … and, after an output whose shape is chosen at run time, its shape y0Shape.
	Results []string
	// Outputs are the outputs as *runtime.Tensor expressions over Results.
	Outputs []string
}

// ForwardCall is the call of r's Forward in a program that imports the package as pkg and
// holds the inputs in a map[string]*runtime.Tensor named in.
func (r *Result) ForwardCall(pkg, in string) Call {
	var c Call
	for _, p := range r.Inputs {
		field := "F32"
		if !p.Type.DType.IsFloat() {
			field = "I64"
		}
		c.Args = append(c.Args, fmt.Sprintf("%s[%q].%s", in, p.Name, field))
		if p.Sized {
			c.Args = append(c.Args, fmt.Sprintf("%s[%q].Shape", in, p.Name))
		}
	}
	for i, p := range r.Outputs {
		y := "y" + strconv.Itoa(i)
		c.Results = append(c.Results, y)
		shape := fmt.Sprintf("%s.%sShape[:]", pkg, p.Export)
		if p.Sized {
			shape = y + "Shape"
			c.Results = append(c.Results, shape)
		}
		ctor := "FromF32"
		if !p.Type.DType.IsFloat() {
			ctor = "FromI64"
		}
		c.Outputs = append(c.Outputs, fmt.Sprintf("runtime.%s(%s, %s...)", ctor, y, shape))
	}
	return c
}
