package dsl

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzElaborate feeds arbitrary sources through loading and elaboration of every model:
// errors are fine, a panic is not (every mistake must come back as a positioned error).
func FuzzElaborate(f *testing.F) {
	seeds, _ := filepath.Glob("../models/*.rfn")
	more, _ := filepath.Glob("../testdata/check/*.rfn")
	for _, path := range append(seeds, more...) {
		if src, err := os.ReadFile(path); err == nil {
			f.Add(string(src))
		}
	}
	f.Add("model M(n: int = 3) {\n    input x: f32[2, n]\n    repeat i in n {\n        Linear(n, n) key i\n    }\n}\n")
	f.Add("# lists, conditionals, Product\nmodel M(w: [int] = [4, 8], g: bool = true) {\n    input x: f32[2, w[0]]\n    repeat c in w[1:] {\n        Linear(w[0], c if g else w[0])\n    }\n    Product {\n        Identity()\n        Sigmoid()\n    }\n}\n")
	f.Fuzz(func(t *testing.T, src string) {
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
