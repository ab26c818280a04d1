package interp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
)

// missingPieces lists what the interpreter lacks of the catalogue, one line each, naming
// the table to extend (docs/ADDING_AN_OP.md).
func missingPieces() []string {
	var missing []string
	for _, op := range append(ir.OpNames(), ir.FusedOpNames()...) {
		if _, ok := opTable[op]; !ok {
			missing = append(missing, fmt.Sprintf("op %s: no entry in opTable (interp/ops.go)", op))
		}
	}
	for _, a := range ir.AllActivations {
		if _, ok := elementwise[a]; !ok && a != ir.ActNone {
			missing = append(missing, fmt.Sprintf("activation %s: no kernel in elementwise (interp/ops.go)", a))
		}
	}
	for _, a := range ir.FusedActivations {
		if _, ok := epilogueActs[a]; !ok {
			missing = append(missing, fmt.Sprintf("fused activation %s: no kernels.Activation in epilogueActs (interp/ops.go)", a))
		}
	}
	for _, m := range ir.PadModes {
		if _, ok := padModes[m]; !ok {
			missing = append(missing, fmt.Sprintf("pad mode %s: no kernels.PadMode in padModes (interp/ops.go)", m))
		}
	}
	return missing
}

// TestCatalogueComplete: every op, activation and mode of the catalogue has its kernel in the
// interpreter, and the interpreter knows no op the catalogue lacks.
func TestCatalogueComplete(t *testing.T) {
	if missing := missingPieces(); len(missing) > 0 {
		t.Errorf("the interpreter lacks:\n%s", strings.Join(missing, "\n"))
	}
	for op := range opTable {
		if _, ok := ir.Lookup(op); !ok {
			t.Errorf("the interpreter implements %q, which the IR catalogue does not have", op)
		}
	}
}

// TestMissingPiecesNamed: a piece taken out is named, with the table to extend.
func TestMissingPiecesNamed(t *testing.T) {
	saved, savedAct := opTable["exp"], elementwise[ir.ActExp]
	delete(opTable, "exp")
	delete(elementwise, ir.ActExp)
	defer func() { opTable["exp"], elementwise[ir.ActExp] = saved, savedAct }()
	got := strings.Join(missingPieces(), "\n")
	for _, want := range []string{"op exp: no entry in opTable", "activation exp: no kernel in elementwise"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing pieces %q do not say %q", got, want)
		}
	}
}
