package fuzzgen

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
		// Old comments on lines of their own: after an expression, the old rule reads
		// `//` as floor division when the comment's words could continue it.
		var old []string
		for _, l := range strings.Split(src, "\n") {
			if code, _, found := strings.Cut(l, "  #"); found {
				l = code
			}
			old = append(old, strings.Replace(l, "#", "//", 1))
		}
		out[fmt.Sprintf("generated_%d_old_comments", seed)] = []byte(strings.Join(old, "\n"))
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

// TestFormatSeedCorpus checks the generated seeds committed for parser's FuzzFormat and
// dsl's FuzzElaborate: each is a generated model that elaborates (the old-comment variants
// after conversion). -update-seeds writes them again from the current generator.
func TestFormatSeedCorpus(t *testing.T) {
	checkCorpus(t, filepath.Join("..", "..", "parser", "testdata", "fuzz", "FuzzFormat"), "[]byte", formatSeeds())
	checkCorpus(t, filepath.Join("..", "..", "dsl", "testdata", "fuzz", "FuzzElaborate"), "string", elaborateSeeds())
}

// checkCorpus writes (with -update-seeds) a fuzz target's generated seeds, whose one
// argument is of type typ, or checks the committed ones.
func checkCorpus(t *testing.T, dir, typ string, seeds map[string][]byte) {
	if *updateSeeds {
		old, _ := filepath.Glob(filepath.Join(dir, "generated_*"))
		for _, p := range old {
			os.Remove(p)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range seeds {
			if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n%s(%q)\n", typ, data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "generated_*"))
	if len(files) == 0 {
		t.Errorf("no generated seeds in %s; run go test ./internal/fuzzgen -run TestFormatSeedCorpus -update-seeds", dir)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(data), "\n")
		lit, ok := strings.CutPrefix(strings.TrimSpace(rest), typ+"(")
		src, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
		if !ok || err != nil {
			t.Errorf("%s: not a corpus file of one %s", path, typ)
			continue
		}
		file, _, err := parser.ParseUpgrading("seed.rfn", []byte(src))
		if err == nil {
			_, err = dsl.LoadSource("seed.rfn", parser.Format(file))
		}
		if err != nil {
			t.Errorf("%s: %v", path, dsl.Detail(err))
		}
	}
}
