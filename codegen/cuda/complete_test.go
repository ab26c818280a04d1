package cuda

import (
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
)

// coverage is what the CUDA target implements of the catalogue. Fused ops are left out by
// design: the target does not claim them, so the fusion passes never make them for it.
func coverage() ir.Coverage {
	return ir.Coverage{
		Op:              func(op string) bool { _, ok := lowerings[op]; return ok },
		OpTable:         "lowerings (codegen/cuda/lower.go)",
		Activation:      func(a ir.Activation) bool { _, ok := deviceActivations[a]; return ok },
		ActivationTable: "deviceActivations (codegen/cuda/lower.go, kernels.cuh)",
	}
}

func TestCatalogueComplete(t *testing.T) {
	if missing := coverage().Missing(); len(missing) > 0 {
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
	if got := strings.Join(coverage().Missing(), "\n"); !strings.Contains(got, "op exp: no entry in lowerings") {
		t.Errorf("a missing lowering is not named: %q", got)
	}
}
