package cuda

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
)

// missingPieces lists what the CUDA target lacks of the catalogue, one line each, naming
// the table to extend (docs/ADDING_AN_OP.md). Fused ops are left out by design: the target
// does not claim them, so the fusion passes never make them for it.
func missingPieces() []string {
	var missing []string
	for _, op := range ir.OpNames() {
		if _, ok := lowerings[op]; !ok {
			missing = append(missing, fmt.Sprintf("op %s: no entry in lowerings (codegen/cuda/lower.go)", op))
		}
	}
	for _, a := range ir.AllActivations {
		if _, ok := deviceActivations[a]; !ok && a != ir.ActNone {
			missing = append(missing, fmt.Sprintf("activation %s: no device function in deviceActivations (codegen/cuda/lower.go, kernels.cuh)", a))
		}
	}
	return missing
}

func TestCatalogueComplete(t *testing.T) {
	if missing := missingPieces(); len(missing) > 0 {
		t.Errorf("the CUDA target lacks:\n%s", strings.Join(missing, "\n"))
	}
	for op := range lowerings {
		if info, ok := ir.Lookup(op); !ok || info.Fused {
			t.Errorf("a lowering for %s, which is not a plain op of the IR catalogue", op)
		}
	}
	saved := lowerings["exp"]
	delete(lowerings, "exp")
	defer func() { lowerings["exp"] = saved }()
	if got := strings.Join(missingPieces(), "\n"); !strings.Contains(got, "op exp: no entry in lowerings") {
		t.Errorf("a missing lowering is not named: %q", got)
	}
}
