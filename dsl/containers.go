package dsl

// Containers and context layers have no build function: the elaborator gives them their
// Refiners semantics (see LANGUAGE.md); the catalogue only declares their arguments.
var containerKinds = map[string]bool{
	"Chain": true, "Residual": true, "Parallel": true, "Distribute": true,
	"Passthrough": true, "Sum": true, "Product": true, "Concatenate": true,
}

func defContainers() {
	for name := range containerKinds {
		b := &builtin{Name: name, Container: true, Inputs: -1}
		if name == "Concatenate" {
			b.Args = []argSpec{{"dim", kInt, 0}}
		}
		def(b)
	}
	def(&builtin{Name: "SetContext", Inputs: -1, Args: []argSpec{{"context", kString, required}, {"key", kString, required}}})
	def(&builtin{Name: "UseContext", Inputs: -1, Args: []argSpec{{"context", kString, required}, {"key", kString, required}}})
}
