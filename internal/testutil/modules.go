package testutil

import (
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
)

// ParseIR parses a module's IR text, failing the test on an error.
func ParseIR(t testing.TB, text string) *ir.Module {
	t.Helper()
	m, err := ir.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Elaborate builds the last model of a .rfn source with the given settings, failing the
// test with the error's detail.
func Elaborate(t testing.TB, src string, set map[string]string) *ir.Module {
	t.Helper()
	prog, err := dsl.LoadSource("test.rfn", []byte(src))
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	return elaborate(t, prog, dsl.Options{Set: set})
}

// ElaborateFile builds a model of a .rfn file with the given settings, failing the test
// with the error's detail.
func ElaborateFile(t testing.TB, path, model string, set map[string]string) *ir.Module {
	t.Helper()
	prog, err := dsl.Load(path)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	return elaborate(t, prog, dsl.Options{Model: model, Set: set})
}

func elaborate(t testing.TB, prog *dsl.Program, opts dsl.Options) *ir.Module {
	t.Helper()
	m, err := prog.Elaborate(opts)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	return m
}
