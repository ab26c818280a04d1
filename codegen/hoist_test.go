package codegen

import (
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
)

// A weight-only chain (a merged LoRA: W + s·up·down) is computed once by Load: Forward holds
// only the linear, and the intermediates of the chain are freed after Load.
func TestHoistWeightOnlyOps(t *testing.T) {
	m, err := ir.Parse(`module Merged
scope "" Merged key "" -> f32[2, 4] {
  scope "Linear" Linear key "Linear" -> f32[2, 4]
}
input %x: f32[2, 4]
param @Linear.weight: f32[4, 4] key "w" in "Linear"
param @Linear.down: f32[2, 4] key "down" in "Linear"
param @Linear.up: f32[4, 2] key "up" in "Linear"
%0: f32[4, 4] = matmul(@Linear.up, @Linear.down) in "Linear"
%1: f32[4, 4] = scale(%0) {scale=0.5, bias=0.0} in "Linear"
%2: f32[4, 4] = add(@Linear.weight, %1) in "Linear"
%3: f32[2, 4] = linear(%x, %2) in "Linear"
output %3
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	res, err := Generate(m, Options{Package: "merged"})
	if err != nil {
		t.Fatal(err)
	}
	var model, weights string
	for _, f := range res.Files {
		switch f.Name {
		case "model.go":
			model = string(f.Data)
		case "weights.go":
			weights = string(f.Data)
		}
	}
	fwd := model[strings.Index(model, "func (m *Model) Forward"):strings.Index(model, "func (m *Model) prepare")]
	if strings.Contains(fwd, "BatchedMatMul") || strings.Contains(fwd, "ScaleBias") || strings.Contains(fwd, "OpAdd") {
		t.Errorf("Forward still computes the weight chain:\n%s", fwd)
	}
	if !strings.Contains(fwd, "kernels.Linear") {
		t.Errorf("Forward lost the linear:\n%s", fwd)
	}
	prep := model[strings.Index(model, "func (m *Model) prepare"):]
	for _, want := range []string{"BatchedMatMul", "ScaleBias", "OpAdd", "m.load0 = nil", "m.load1 = nil"} {
		if !strings.Contains(prep, want) {
			t.Errorf("prepare lacks %q:\n%s", want, prep)
		}
	}
	if strings.Contains(prep, "m.load2 = nil") {
		t.Errorf("prepare frees the merged weight Forward reads")
	}
	if !strings.Contains(weights, "m.prepare()") {
		t.Errorf("LoadFiles does not call prepare")
	}
}
