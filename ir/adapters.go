package ir

// Injection records one adapter injected into a module (package adapters makes them), so
// that the injection can be undone exactly and so that passes know the values of the
// runtime scalars the adapter added. Records are immutable once made.
//
// Injections are not part of the text form: Print shows an injected adapter only through
// its scopes (`adapter "NAME"`), its parameters and its inputs, and Parse gives a module
// without records (which therefore cannot be ejected from).
type Injection struct {
	Name    string   // the injected adapter's name, unique in the module ("lora1")
	Adapter string   // the adapter declaration it instantiates ("LinearLora"; several for a LoRA file)
	Targets []string // the paths of its targets, in the module before the injection
	// Scalars are the scalar f32[] inputs the adapter added (a LoRA's scale), with the value
	// they were given at injection: what an unmerged run feeds by default and what
	// the lora_merge pass folds into the weights.
	Scalars map[string]float64
	// Before is the module as it was before this injection; its own Injections are the
	// records below this one.
	Before *Module
	// Redo injects the same adapter again into another module: ejecting a record below this
	// one restores that record's Before and replays the records above it.
	Redo func(*Module) (*Module, error)
}

// ScalarValue is the value recorded for a scalar input that an adapter added.
func (m *Module) ScalarValue(input string) (float64, bool) {
	for _, inj := range m.Injections {
		if v, ok := inj.Scalars[input]; ok {
			return v, true
		}
	}
	return 0, false
}

// Injection finds the record of an injected adapter by name.
func (m *Module) Injection(name string) *Injection {
	for _, inj := range m.Injections {
		if inj.Name == name {
			return inj
		}
	}
	return nil
}
