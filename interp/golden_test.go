package interp

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
)

// goldenPaths hold the op cases of scripts/golden/interp_ops.py (testutil.OpCases); the
// fused ops (made by the fusion passes only) have a file of their own.
var goldenPaths = []string{"../testdata/golden/interp_ops.safetensors", "../testdata/golden/interp_fused_ops.safetensors"}

func TestGolden(t *testing.T) {
	dir := t.TempDir()
	for _, c := range testutil.OpCases(t, goldenPaths...) {
		t.Run(c.Name, func(t *testing.T) {
			// Load the weights the way the command line does: from a checkpoint file.
			path := filepath.Join(dir, c.Name+".safetensors")
			if err := runtime.WriteSafetensors(path, c.Params, nil); err != nil {
				t.Fatal(err)
			}
			f, err := runtime.OpenSafetensors(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w, err := LoadWeights(c.Module, f)
			if err != nil {
				t.Fatal(err)
			}
			before := map[string]*runtime.Tensor{}
			for name, in := range c.Inputs {
				before[name] = cloneTensor(in)
			}
			weightsBefore := map[*ir.Value]*runtime.Tensor{}
			for p, wt := range w {
				weightsBefore[p] = cloneTensor(wt)
			}
			outs, err := Run(c.Module, w, c.Inputs)
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != len(c.Outputs) {
				t.Fatalf("got %d outputs, want %d", len(outs), len(c.Outputs))
			}
			for i := range outs {
				if err := testutil.WithinTolerance(outs[i], c.Outputs[i], 1e-4); err != nil {
					t.Errorf("output %d (%s): %v", i, c.Module.Outputs[i].Ref(), err)
				}
			}
			// The interpreter may overwrite its own intermediates, never the caller's data.
			for name, in := range c.Inputs {
				if !slices.Equal(in.F32, before[name].F32) || !slices.Equal(in.I64, before[name].I64) {
					t.Errorf("input %s was modified", name)
				}
			}
			for p, wt := range w {
				if !slices.Equal(wt.F32, weightsBefore[p].F32) {
					t.Errorf("weight %s was modified", p.Key)
				}
			}
			// An output must not share memory with an input.
			for i, o := range outs {
				for name, in := range c.Inputs {
					if len(o.F32) > 0 && len(in.F32) > 0 && &o.F32[0] == &in.F32[0] || len(o.I64) > 0 && len(in.I64) > 0 && &o.I64[0] == &in.I64[0] {
						t.Errorf("output %d shares memory with input %s", i, name)
					}
				}
			}
		})
	}
}

// TestGoldenCoversCatalogue fails when an op of the IR catalogue, or one of its modes, has no
// golden case.
func TestGoldenCoversCatalogue(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range testutil.OpCases(t, goldenPaths...) {
		for _, v := range c.Module.Body {
			covered[v.Op] = true
			switch v.Op {
			case "gelu":
				a, _ := v.ActivationOp()
				approx, _ := a.GeLU()
				covered["gelu approximate="+approx.String()] = true
			case "upsample":
				covered["upsample mode="+v.Upsample().Mode.String()] = true
			case "pad":
				covered["pad mode="+v.Pad().Mode.String()] = true
			case "glu", "linear_glu":
				covered["glu activation="+v.GLUActivation().String()] = true
			case "arange":
				covered["arange dtype="+v.Arange().DType.String()] = true
			}
			if info, _ := ir.Lookup(v.Op); info.Fused && v.Op != "linear_glu" {
				covered["a fused op with act="+v.FusedAct().String()] = true
			}
		}
	}
	want := append(ir.OpNames(), ir.FusedOpNames()...)
	for _, a := range ir.Activations {
		want = append(want, "glu activation="+a.String())
	}
	for _, a := range ir.FusedActivations {
		want = append(want, "a fused op with act="+a.String())
	}
	for _, a := range ir.GeLUApproxes {
		want = append(want, "gelu approximate="+a.String())
	}
	for _, m := range ir.UpsampleModes {
		want = append(want, "upsample mode="+m.String())
	}
	for _, m := range ir.PadModes {
		want = append(want, "pad mode="+m.String())
	}
	want = append(want, "arange dtype=f32", "arange dtype=i32", "arange dtype=i64")
	for _, op := range want {
		if !covered[op] {
			t.Errorf("no golden case exercises %s: add one to scripts/golden/interp_ops.py", op)
		}
	}
}
