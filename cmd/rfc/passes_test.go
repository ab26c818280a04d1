package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
)

// foldable has something for every pass: two transposes that cancel (fold, which leaves
// them dead for dce), and a Sum of two equal GeLUs (cse).
const foldable = `model Foldable(dim: int = 6) {
    input x: f32[batch, 4, dim]
    Transpose(1, 2)
    Transpose(1, 2)
    Sum {
        GeLU()
        GeLU()
    }
    Linear(dim, 3)
}
`

func writeModel(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "foldable.rfn")
	if err := os.WriteFile(path, []byte(foldable), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestIRWithoutPassFlagsIsTheElaboratedIR(t *testing.T) {
	file := writeModel(t)
	prog, err := dsl.Load(file)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	m, err := prog.Elaborate(dsl.Options{Set: map[string]string{"batch": "2"}})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	out, stderr, status := rfc(t, "ir", file, "--set", "batch=2")
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	if out != ir.Print(m) {
		t.Errorf("rfc ir prints\n%s\nnot the elaborated IR\n%s", out, ir.Print(m))
	}
	if strings.Count(out, "permute(") != 2 {
		t.Errorf("rfc ir without --dump optimized something:\n%s", out)
	}
}

func TestIRDump(t *testing.T) {
	file := writeModel(t)
	out, stderr, status := rfc(t, "ir", file, "--dump", "fold")
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	if !strings.HasPrefix(out, "// after fold\nmodule Foldable\n") || strings.Count(out, "// after") != 1 {
		t.Fatalf("--dump fold printed\n%s", out)
	}
	if strings.Count(out, "permute(") != 1 || strings.Count(out, "= gelu(") != 2 {
		t.Errorf("not the IR after fold (the second transpose gone, the first dead):\n%s", out)
	}
	m, err := ir.Parse(out)
	if err != nil {
		t.Fatalf("the dump does not parse: %v", err)
	}
	if err := ir.Verify(m); err != nil {
		t.Errorf("the dump does not verify: %v", err)
	}

	ran := 0
	for _, p := range passes.Passes() {
		if !p.Disabled {
			ran++
		}
	}
	out, _, status = rfc(t, "ir", file, "--dump", "all")
	if status != 0 || strings.Count(out, "// after ") != ran {
		t.Errorf("--dump all: status %d\n%s", status, out)
	}
	last := out[strings.LastIndex(out, "// after dce\n"):]
	if strings.Count(last, "= gelu(") != 1 || strings.Contains(last, "permute(") {
		t.Errorf("IR after dce still has the duplicate GeLU or the transposes:\n%s", last)
	}

	// Flags repeat and take comma lists; a disabled pass leaves no dump.
	out, _, status = rfc(t, "ir", file, "--disable", "fold", "--dump", "cse,dce")
	if status != 0 || strings.Count(out, "// after ") != 2 || strings.Count(out, "permute(") != 4 {
		t.Errorf("--disable fold --dump cse,dce: status %d\n%s", status, out)
	}
}

func TestIRDisableAlonePrintsTheOptimizedIR(t *testing.T) {
	file := writeModel(t)
	out, stderr, status := rfc(t, "ir", file, "--disable", "cse")
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	if strings.HasPrefix(out, "//") || strings.Contains(out, "permute(") || strings.Count(out, "= gelu(") != 2 {
		t.Errorf("--disable cse printed\n%s", out)
	}
}

func TestIRPassFlagErrors(t *testing.T) {
	file := writeModel(t)
	cases := map[string][]string{
		"unknown dump":      {"--dump", "nope"},
		"unknown disable":   {"--disable", "nope"},
		"dump of disabled":  {"--disable", "cse", "--dump", "cse"},
		"unknown among two": {"--dump", "fold,frob"},
	}
	for name, args := range cases {
		out, stderr, status := rfc(t, append([]string{"ir", file}, args...)...)
		if status != 2 || out != "" {
			t.Errorf("%s: status %d, stdout %q", name, status, out)
		}
		if !strings.Contains(stderr, "fold, cse, ") && name != "dump of disabled" {
			t.Errorf("%s: the message does not list the passes: %s", name, stderr)
		}
	}
}
