package fuzzgen

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/parser"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite parser's committed FuzzFormat seeds from generated models")

// FuzzModelFormat formats generated models: the formatted text must elaborate to the
// same IR as the source (formatting never changes what a model means) and format to
// itself. The fuzzer mutates the seed and the size, so it searches the generator's space.
func FuzzModelFormat(f *testing.F) {
	for seed := uint64(1); seed <= 8; seed++ {
		f.Add(seed, uint8(24))
	}
	f.Fuzz(func(t *testing.T, seed uint64, layers uint8) {
		cfg := DefaultConfig()
		cfg.Layers = 1 + int(layers)%48
		m := Generate(seed, cfg)
		file, err := parser.ParseFile("fuzz.rfn", []byte(m.Source))
		if err != nil {
			t.Fatalf("generated source does not parse: %v\n%s", err, m.Source)
		}
		out := parser.Format(file)
		again, err := parser.ParseFile("fuzz.rfn", out)
		if err != nil {
			t.Fatalf("formatted text does not parse: %v\n%s", err, out)
		}
		if o2 := parser.Format(again); !bytes.Equal(o2, out) {
			t.Fatalf("not idempotent:\n%s\n---\n%s", out, o2)
		}
		a, errA := elaborate(m, m.Source)
		b, errB := elaborate(m, string(out))
		if errA != nil || errB != nil {
			t.Fatalf("source: %v; formatted: %v\n%s", errA, errB, out)
		}
		if a != b {
			t.Fatalf("formatting changed the IR:\n%s\n---\n%s\n--- formatted:\n%s", a, b, out)
		}
	})
}

func elaborate(m *Model, src string) (string, error) {
	prog, err := dsl.LoadSource("fuzz.rfn", []byte(src))
	if err != nil {
		return "", fmt.Errorf("%s", dsl.Detail(err))
	}
	mod, err := prog.Elaborate(dsl.Options{Model: m.Entry, Set: m.Set})
	if err != nil {
		return "", fmt.Errorf("%s", dsl.Detail(err))
	}
	return ir.Print(mod), nil
}

// formatSeeds are the seeds of parser's FuzzFormat: generated models (every statement
// kind of the language) and the same written with the old `//` comments.
func formatSeeds() map[string][]byte {
	out := map[string][]byte{}
	for _, seed := range []uint64{3, 7, 11, 19, 23, 42} {
		cfg := DefaultConfig()
		cfg.Layers = 12
		src := Generate(seed, cfg).Source
		out[fmt.Sprintf("generated_%d", seed)] = []byte(src)
		out[fmt.Sprintf("generated_%d_old_comments", seed)] = []byte(strings.ReplaceAll(src, "#", "//"))
	}
	return out
}

// elaborateSeeds are seeds of dsl's FuzzElaborate: small generated models, under its
// size limit (fuzzMaxSource).
func elaborateSeeds() map[string][]byte {
	out := map[string][]byte{}
	for seed := uint64(1); len(out) < 16; seed++ {
		cfg := DefaultConfig()
		cfg.Layers = 5
		src := Generate(seed, cfg).Source
		if len(src) <= 1500 {
			out[fmt.Sprintf("generated_%d", seed)] = []byte(src)
		}
	}
	return out
}

// TestFormatSeedCorpus keeps parser/testdata/fuzz/FuzzFormat and
// dsl/testdata/fuzz/FuzzElaborate in step with formatSeeds and elaborateSeeds
// (-update-seeds rewrites them).
func TestFormatSeedCorpus(t *testing.T) {
	checkCorpus(t, filepath.Join("..", "..", "parser", "testdata", "fuzz", "FuzzFormat"), "[]byte", formatSeeds())
	checkCorpus(t, filepath.Join("..", "..", "dsl", "testdata", "fuzz", "FuzzElaborate"), "string", elaborateSeeds())
}

// checkCorpus compares (or with -update-seeds, writes) a fuzz target's corpus files, whose
// one argument is of type typ.
func checkCorpus(t *testing.T, dir, typ string, seeds map[string][]byte) {
	for name, data := range seeds {
		file := fmt.Appendf(nil, "go test fuzz v1\n%s(%q)\n", typ, data)
		path := filepath.Join(dir, name)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, file) {
			t.Errorf("seed %s is missing or stale (%v); run go test ./internal/fuzzgen -run TestFormatSeedCorpus -update-seeds", path, err)
		}
	}
}
