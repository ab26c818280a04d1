package dsl

import (
	"os"
	"path/filepath"
	"testing"
)

// Under fuzzing one input may expand this many layers and build lists this long: the
// limits of real use (200,000 layers, a million elements) let one mutated repeat count
// take seconds, and the fuzzer then tries a few inputs a minute. Every code path a larger
// input takes, a smaller one takes too.
const (
	fuzzMaxLayers  = 2000
	fuzzMaxListLen = 1 << 12
	// fuzzMaxSource bounds the source: parsing takes about a microsecond a byte, so the
	// models of models/ (3 KB) would cost more than all the rest. Small models reach
	// every path of elaboration; FuzzParse covers large inputs.
	fuzzMaxSource = 1500
)

// FuzzElaborate feeds arbitrary sources through loading and elaboration of every model:
// errors are fine, a panic is not (every mistake must come back as a positioned error).
func FuzzElaborate(f *testing.F) {
	// The programs rfc check refuses, and the differential fuzzer's shrunk models; the
	// committed corpus (testdata/fuzz/FuzzElaborate) adds small generated models, which
	// use every layer, container and statement kind.
	seeds, _ := filepath.Glob("../testdata/check/*.rfn")
	regress, _ := filepath.Glob("../internal/fuzzgen/testdata/regress/*.rfn")
	for _, path := range append(seeds, regress...) {
		if src, err := os.ReadFile(path); err == nil && len(src) <= fuzzMaxSource {
			f.Add(string(src))
		}
	}
	f.Add("model M(n: int = 3) {\n    input x: f32[2, n]\n    repeat i in n {\n        Linear(n, n) key i\n    }\n}\n")
	f.Add("# lists, conditionals, Product\nmodel M(w: [int] = [4, 8], g: bool = true) {\n    input x: f32[2, w[0]]\n    repeat c in w[1:] {\n        Linear(w[0], c if g else w[0])\n    }\n    Product {\n        Identity()\n        Sigmoid()\n    }\n}\n")
	defer func(layers, list int) { maxLayers, maxListLen = layers, list }(maxLayers, maxListLen)
	maxLayers, maxListLen = fuzzMaxLayers, fuzzMaxListLen
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > fuzzMaxSource {
			return
		}
		p, err := LoadSource("fuzz.rfn", []byte(src))
		if err != nil {
			return
		}
		for _, name := range p.ModelNames() {
			if m, err := p.Elaborate(Options{Model: name}); err == nil && m == nil {
				t.Fatalf("model %s: no module and no error", name)
			}
			p.Elaborate(Options{Model: name, Set: map[string]string{"batch": "2"}})
		}
	})
}
