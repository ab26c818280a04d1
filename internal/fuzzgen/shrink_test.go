package fuzzgen

import (
	"errors"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
)

// strideBackend pretends to miscompile every strided convolution, the kind of bug the
// fuzzer is for: its outputs are the interpreter's, plus one where a conv2d has stride 2.
type strideBackend struct{}

func (strideBackend) Name() string       { return "fake" }
func (strideBackend) Ops(string) bool    { return false }
func (strideBackend) Tolerance() float64 { return 1e-5 }
func (strideBackend) Run(jobs []*Job) ([]Result, error) {
	out := make([]Result, len(jobs))
	for i, j := range jobs {
		for _, v := range j.Module.Body {
			if v.Op == "conv2d" && v.Conv().Stride[0] == 2 {
				out[i].Err = errors.New("strided convolution miscompiled")
			}
		}
		if out[i].Err == nil {
			out[i].Err = errors.New("fine")
		}
	}
	return out, nil
}

// The shrinker reduces a model that exposes a back end's bug to a few lines that still
// expose it, and the corpus format round-trips the result.
func TestShrink(t *testing.T) {
	var m *Model
	var fail Failure
	for seed := uint64(1); m == nil; seed++ {
		rep := Check([]uint64{seed}, DefaultConfig(), strideBackend{})
		for _, f := range rep.Failures {
			if strings.Contains(f.Msg, "strided") && len(f.Model.Source) > 1500 {
				m, fail = f.Model, f
				break
			}
		}
	}
	small := Shrink(m, fail, []Backend{strideBackend{}}, t.Logf)
	t.Logf("seed %d: %d bytes shrunk to %d:\n%s", m.Seed, len(m.Source), len(small.Source), small.Source)
	if len(small.Source) > 500 || !strings.Contains(small.Source, "Conv2d") {
		t.Errorf("the shrunk model is not small, or lost its convolution")
	}
	back, err := Decode(Encode(small, "a strided convolution"))
	if err != nil {
		t.Fatal(err)
	}
	c1, err1 := Build(small)
	c2, err2 := Build(back)
	if err1 != nil || err2 != nil || ir.Print(c1.Module) != ir.Print(c2.Module) {
		t.Errorf("the corpus file does not give back the model: %v, %v", err1, err2)
	}
}
