package interp

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

const linearIR = `module Small
scope "" Small key "" {
  scope "Linear" Linear key "fc"
}
input %x: f32[2, 3, 4]
param @Linear.weight: f32[5, 4] key "fc.weight" in "Linear"
param @Linear.bias: f32[5] key "fc.bias" in "Linear"
%0: f32[2, 3, 5] = linear(%x, @Linear.weight, @Linear.bias) in "Linear"
%1: f32[2, 3, 5] = relu(%0) in ""
output %1
`

func ramp(shape ...int) *runtime.Tensor {
	t := runtime.NewTensor(shape...)
	for i := range t.F32 {
		t.F32[i] = float32(i%7)*0.25 - 0.5
	}
	return t
}

// writeFile writes tensors to a safetensors file in dir and opens it.
func writeFile(t *testing.T, dir, name string, tensors map[string]*runtime.Tensor) *runtime.SafetensorsFile {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := runtime.WriteSafetensors(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	f, err := runtime.OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func wantError(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one mentioning %q", parts)
	}
	t.Log(err)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func goodWeights(t *testing.T, m *ir.Module) Weights {
	t.Helper()
	f := writeFile(t, t.TempDir(), "w.safetensors", map[string]*runtime.Tensor{
		"fc.weight": ramp(5, 4),
		"fc.bias":   ramp(5),
	})
	w, err := LoadWeights(m, f)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestLoadWeights(t *testing.T) {
	m := testutil.ParseIR(t, linearIR)
	w := goodWeights(t, m)
	if len(w) != 2 || w[m.Param("Linear.weight")] == nil || w[m.Param("Linear.bias")] == nil {
		t.Fatalf("loaded %v", w)
	}
	dir := t.TempDir()

	t.Run("missing", func(t *testing.T) {
		f := writeFile(t, dir, "missing.safetensors", map[string]*runtime.Tensor{"fc.weight": ramp(5, 4)})
		w, err := LoadWeights(m, f)
		wantError(t, err, `"fc.bias"`, "[5]")
		if w != nil {
			t.Error("weights returned with an error")
		}
	})
	t.Run("extra", func(t *testing.T) {
		f := writeFile(t, dir, "extra.safetensors", map[string]*runtime.Tensor{
			"fc.weight": ramp(5, 4), "fc.bias": ramp(5), "fc.scale": ramp(3, 2),
		})
		// Keys no weight uses (other components of a checkpoint) are ignored.
		w, err := LoadWeights(m, f)
		if err != nil || w == nil {
			t.Fatalf("extra keys refused: %v", err)
		}
	})
	t.Run("shape", func(t *testing.T) {
		f := writeFile(t, dir, "shape.safetensors", map[string]*runtime.Tensor{"fc.weight": ramp(4, 5), "fc.bias": ramp(5)})
		_, err := LoadWeights(m, f)
		wantError(t, err, `"fc.weight"`, "[4, 5]", "[5, 4]")
	})
	t.Run("two files", func(t *testing.T) {
		a := writeFile(t, dir, "a.safetensors", map[string]*runtime.Tensor{"fc.weight": ramp(5, 4), "fc.bias": ramp(5)})
		b := writeFile(t, dir, "b.safetensors", map[string]*runtime.Tensor{"fc.bias": ramp(5)})
		_, err := LoadWeights(m, a, b)
		wantError(t, err, `"fc.bias"`, "a.safetensors", "b.safetensors")
	})
	t.Run("split over files", func(t *testing.T) {
		a := writeFile(t, dir, "w1.safetensors", map[string]*runtime.Tensor{"fc.weight": ramp(5, 4)})
		b := writeFile(t, dir, "w2.safetensors", map[string]*runtime.Tensor{"fc.bias": ramp(5)})
		if _, err := LoadWeights(m, a, b); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("integer dtype", func(t *testing.T) {
		f := writeFile(t, dir, "int.safetensors", map[string]*runtime.Tensor{
			"fc.weight": ramp(5, 4), "fc.bias": runtime.FromI64(make([]int64, 5), 5),
		})
		_, err := LoadWeights(m, f)
		wantError(t, err, `"fc.bias"`, "I64")
	})
	t.Run("all problems at once", func(t *testing.T) {
		f := writeFile(t, dir, "all.safetensors", map[string]*runtime.Tensor{"fc.weight": ramp(2, 2), "other": ramp(1)})
		_, err := LoadWeights(m, f)
		wantError(t, err, `"fc.weight"`, `"fc.bias"`, `"other"`)
		// A headline, the shape, the unused key, the missing weight.
		if n := strings.Count(err.Error(), "\n") + 1; n != 4 {
			t.Errorf("want 4 lines, got %d:\n%v", n, err)
		}
	})
}

func TestRun(t *testing.T) {
	m := testutil.ParseIR(t, linearIR)
	w := goodWeights(t, m)
	x := ramp(2, 3, 4)
	outs, err := Run(m, w, map[string]*runtime.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	// Checked against a direct computation, not against PyTorch: the goldens do that.
	wt, b := w[m.Param("Linear.weight")].F32, w[m.Param("Linear.bias")].F32
	for r := 0; r < 6; r++ {
		for o := 0; o < 5; o++ {
			s := b[o]
			for i := 0; i < 4; i++ {
				s += x.F32[r*4+i] * wt[o*4+i]
			}
			s = max(s, 0)
			if d := outs[0].F32[r*5+o] - s; d > 1e-5 || d < -1e-5 {
				t.Fatalf("y[%d, %d] = %g, want %g", r, o, outs[0].F32[r*5+o], s)
			}
		}
	}

	t.Run("missing input", func(t *testing.T) {
		_, err := Run(m, w, map[string]*runtime.Tensor{})
		wantError(t, err, "%x", "f32[2, 3, 4]")
	})
	t.Run("extra input", func(t *testing.T) {
		_, err := Run(m, w, map[string]*runtime.Tensor{"x": x, "mask": ramp(3)})
		wantError(t, err, `"mask"`, "[3]")
	})
	t.Run("input shape", func(t *testing.T) {
		_, err := Run(m, w, map[string]*runtime.Tensor{"x": ramp(2, 3, 5)})
		wantError(t, err, "%x", "f32[2, 3, 4]", "[2, 3, 5]")
	})
	t.Run("input dtype", func(t *testing.T) {
		_, err := Run(m, w, map[string]*runtime.Tensor{"x": runtime.FromI64(make([]int64, 24), 2, 3, 4)})
		wantError(t, err, "%x", "I64", "F32")
	})
	t.Run("input data length", func(t *testing.T) {
		bad := &runtime.Tensor{DType: runtime.F32, Shape: []int{2, 3, 4}, F32: make([]float32, 5)}
		_, err := Run(m, w, map[string]*runtime.Tensor{"x": bad})
		wantError(t, err, "%x", "5 elements")
	})
	t.Run("missing weight", func(t *testing.T) {
		partial := Weights{m.Param("Linear.weight"): w[m.Param("Linear.weight")]}
		_, err := Run(m, partial, map[string]*runtime.Tensor{"x": x})
		wantError(t, err, `"fc.bias"`, "f32[5]")
	})
	t.Run("weight shape", func(t *testing.T) {
		bad := Weights{m.Param("Linear.weight"): ramp(4, 5), m.Param("Linear.bias"): w[m.Param("Linear.bias")]}
		_, err := Run(m, bad, map[string]*runtime.Tensor{"x": x})
		wantError(t, err, `"fc.weight"`, "[4, 5]", "f32[5, 4]")
	})
}

func TestRunRefusesSymbolicShapes(t *testing.T) {
	text, err := os.ReadFile("../ir/testdata/mlp.ir")
	if err != nil {
		t.Fatal(err)
	}
	m := testutil.ParseIR(t, string(text))
	_, err = Run(m, Weights{}, map[string]*runtime.Tensor{"x": ramp(2, 3, 4)})
	wantError(t, err, "symbolic", "batch", "%x")
}

func TestRunBadModules(t *testing.T) {
	head := "module Bad\nscope \"\" Bad key \"\"\ninput %x: f32[2, 3]\n"
	t.Run("unknown op", func(t *testing.T) {
		m := testutil.ParseIR(t, head+"%0: f32[2, 3] = relu(%x) in \"\"\n%1: f32[2, 3] = frobnicate(%0) in \"\"\noutput %1\n")
		_, err := Run(m, Weights{}, map[string]*runtime.Tensor{"x": ramp(2, 3)})
		wantError(t, err, `"frobnicate"`, "%1")
	})
	t.Run("wrong declared type", func(t *testing.T) {
		m := testutil.ParseIR(t, head+"%0: f32[2, 4] = relu(%x) in \"\"\noutput %0\n")
		_, err := Run(m, Weights{}, map[string]*runtime.Tensor{"x": ramp(2, 3)})
		wantError(t, err, "%0", "f32[2, 4]", "f32[2, 3]")
	})
	t.Run("missing attribute", func(t *testing.T) {
		m := testutil.ParseIR(t, head+"%0: f32[2, 3] = softmax(%x) in \"\"\noutput %0\n")
		_, err := Run(m, Weights{}, map[string]*runtime.Tensor{"x": ramp(2, 3)})
		wantError(t, err, "%0", "softmax", "dim")
	})
	t.Run("kernel panic", func(t *testing.T) {
		saved := opTable["relu"]
		opTable["relu"] = func(*call) (*runtime.Tensor, error) { panic("index out of range [7]") }
		defer func() { opTable["relu"] = saved }()
		m := testutil.ParseIR(t, head+"%0: f32[2, 3] = relu(%x) in \"\"\noutput %0\n")
		_, err := Run(m, Weights{}, map[string]*runtime.Tensor{"x": ramp(2, 3)})
		wantError(t, err, "relu", "panicked", "index out of range")
	})
	t.Run("embedding index", func(t *testing.T) {
		m := testutil.ParseIR(t, `module Emb
scope "" Emb key ""
input %ids: i64[3]
param @table: f32[4, 2] key "table" in ""
%0: f32[3, 2] = embedding(%ids, @table) in ""
output %0
`)
		w := Weights{m.Param("table"): ramp(4, 2)}
		_, err := Run(m, w, map[string]*runtime.Tensor{"ids": runtime.FromI64([]int64{1, 4, 0}, 3)})
		wantError(t, err, "embedding", "%0", "4")
	})
}

// TestMemoryStaysNearLiveSet runs a long chain step by step and checks that dead
// intermediates are dropped and element-wise ops reuse their dying operand's buffer.
func TestMemoryStaysNearLiveSet(t *testing.T) {
	var b strings.Builder
	b.WriteString("module Chain\nscope \"\" Chain key \"\"\ninput %x: f32[3, 5]\nparam @w: f32[5, 5] key \"w\" in \"\"\n")
	n := 0
	for i := 0; i < 20; i++ {
		prev := "%x"
		if n > 0 {
			prev = "%" + strconv.Itoa(n-1)
		}
		b.WriteString("%" + strconv.Itoa(n) + ": f32[3, 5] = linear(" + prev + ", @w) in \"\"\n")
		n++
		b.WriteString("%" + strconv.Itoa(n) + ": f32[3, 5] = tanh(%" + strconv.Itoa(n-1) + ") in \"\"\n")
		n++
	}
	b.WriteString("output %" + strconv.Itoa(n-1) + "\n")
	m := testutil.ParseIR(t, b.String())
	mc := newMachine(m)
	if err := mc.bindInputs(map[string]*runtime.Tensor{"x": ramp(3, 5)}); err != nil {
		t.Fatal(err)
	}
	if err := mc.bindWeights(Weights{m.Param("w"): ramp(5, 5)}); err != nil {
		t.Fatal(err)
	}
	for i, v := range m.Body {
		var before []float32
		if v.Op == "tanh" {
			before = mc.slots[v.Args[0]].t.F32
		}
		if err := mc.step(i, v); err != nil {
			t.Fatal(err)
		}
		if live := len(mc.slots) - 2; live > 1 {
			t.Fatalf("after %s, %d intermediates are live, want 1", v.Ref(), live)
		}
		if before != nil && &mc.slots[v].t.F32[0] != &before[0] {
			t.Errorf("%s did not reuse its dying operand's buffer", v.Ref())
		}
	}
}

func TestBindDims(t *testing.T) {
	in := func(name string, dims ...ir.Dim) *ir.Value {
		return &ir.Value{Kind: ir.KindInput, Name: name, Type: ir.F32Of(ir.Shape(dims))}
	}
	batch, two, four := ir.S("batch"), ir.D(2), ir.D(4)
	t.Run("bind", func(t *testing.T) {
		got, err := BindDims([]*ir.Value{in("x", batch, four), in("y", batch, ir.S("len"))},
			map[string]*runtime.Tensor{"x": ramp(3, 4), "y": ramp(3, 7)})
		if err != nil {
			t.Fatal(err)
		}
		if got["batch"] != 3 || got["len"] != 7 || len(got) != 2 {
			t.Errorf("got %v", got)
		}
	})
	t.Run("conflict", func(t *testing.T) {
		_, err := BindDims([]*ir.Value{in("x", batch, four), in("y", batch)},
			map[string]*runtime.Tensor{"x": ramp(3, 4), "y": ramp(2)})
		wantError(t, err, "%y", "batch", "f32[batch]", "[2]")
	})
	t.Run("static mismatch", func(t *testing.T) {
		_, err := BindDims([]*ir.Value{in("x", batch, four)}, map[string]*runtime.Tensor{"x": ramp(3, 5)})
		wantError(t, err, "%x", "f32[batch, 4]", "[3, 5]")
	})
	t.Run("rank", func(t *testing.T) {
		_, err := BindDims([]*ir.Value{in("x", batch, four)}, map[string]*runtime.Tensor{"x": ramp(3, 4, 1)})
		wantError(t, err, "%x", "f32[batch, 4]", "[3, 4, 1]")
	})
	t.Run("missing and extra", func(t *testing.T) {
		_, err := BindDims([]*ir.Value{in("x", two)}, map[string]*runtime.Tensor{"z": ramp(2)})
		wantError(t, err, "%x", "f32[2]", `"z"`)
	})
	t.Run("compound", func(t *testing.T) {
		ins := []*ir.Value{in("x", ir.MulDim(batch, two)), in("y", batch), in("z", ir.AddDim(ir.S("n"), ir.D(1)))}
		got, err := BindDims(ins, map[string]*runtime.Tensor{"x": ramp(6), "y": ramp(3), "z": ramp(5)})
		if err != nil {
			t.Fatal(err)
		}
		if got["batch"] != 3 || got["n"] != 4 {
			t.Errorf("got %v", got)
		}
		_, err = BindDims(ins, map[string]*runtime.Tensor{"x": ramp(7), "y": ramp(3), "z": ramp(5)})
		wantError(t, err, "%x", "batch*2")
	})
	t.Run("floor division", func(t *testing.T) {
		half, _ := ir.ParseDim("(n+1)//2")
		odd, _ := ir.ParseDim("h*2+1")
		ins := []*ir.Value{in("x", ir.S("n")), in("y", half), in("z", odd)}
		got, err := BindDims(ins, map[string]*runtime.Tensor{"x": ramp(5), "y": ramp(3), "z": ramp(7)})
		if err != nil || got["n"] != 5 || got["h"] != 3 {
			t.Errorf("got %v, %v", got, err)
		}
		_, err = BindDims(ins, map[string]*runtime.Tensor{"x": ramp(5), "y": ramp(4), "z": ramp(8)})
		wantError(t, err, "dim (n+1)//2 is 3, not 4", "size 8 is not a value of dim h*2+1 for any h ≥ 1")
		_, err = BindDims([]*ir.Value{in("y", half)}, map[string]*runtime.Tensor{"y": ramp(3)})
		wantError(t, err, "size 3 of dim (n+1)//2 does not determine n")
	})
}
