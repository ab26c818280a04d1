package interp

import (
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
)

// coverage is what the interpreter implements of the catalogue.
func coverage() ir.Coverage {
	return ir.Coverage{
		Op:                   func(op string) bool { _, ok := opTable[op]; return ok },
		OpTable:              "opTable (interp/ops.go)",
		FusedOps:             true,
		Activation:           func(a ir.Activation) bool { _, ok := elementwise[a]; return ok },
		ActivationTable:      "elementwise (interp/ops.go)",
		FusedActivation:      func(a ir.Activation) bool { _, ok := epilogueActs[a]; return ok },
		FusedActivationTable: "epilogueActs (interp/ops.go)",
		PadMode:              func(m ir.PadMode) bool { _, ok := padModes[m]; return ok },
		PadModeTable:         "padModes (interp/ops.go)",
	}
}

// TestCatalogueComplete: every op, activation and mode of the catalogue has its kernel in the
// interpreter, and the interpreter knows no op the catalogue lacks.
func TestCatalogueComplete(t *testing.T) {
	if missing := coverage().Missing(); len(missing) > 0 {
		t.Errorf("the interpreter lacks:\n%s", strings.Join(missing, "\n"))
	}
	for op := range opTable {
		if _, ok := ir.Lookup(op); !ok {
			t.Errorf("the interpreter implements %q, which the IR catalogue does not have", op)
		}
	}
	// A piece taken out is named, with the table to extend.
	saved, savedAct := opTable["exp"], elementwise[ir.ActExp]
	delete(opTable, "exp")
	delete(elementwise, ir.ActExp)
	defer func() { opTable["exp"], elementwise[ir.ActExp] = saved, savedAct }()
	got := strings.Join(coverage().Missing(), "\n")
	for _, want := range []string{"op exp: no entry in opTable (interp/ops.go)", "activation exp: no kernel in elementwise (interp/ops.go)"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing pieces %q do not say %q", got, want)
		}
	}
}
