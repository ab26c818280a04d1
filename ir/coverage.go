package ir

import "fmt"

// Coverage describes what a back end implements of the catalogue, for its completeness test
// (docs/ADDING_AN_OP.md): each func reports whether the back end has that piece, and each
// table names where a missing one goes. A nil func skips that kind of piece.
type Coverage struct {
	Op      func(op string) bool
	OpTable string
	// FusedOps: the back end implements the fused ops too (the fusion passes make them
	// only for a back end that claims them).
	FusedOps bool
	// Activation: the element-wise function of an activation op or of GLU's gate (every
	// activation but ActNone).
	Activation      func(Activation) bool
	ActivationTable string
	// FusedActivation: an act value of the fused ops.
	FusedActivation      func(Activation) bool
	FusedActivationTable string
	PadMode              func(PadMode) bool
	PadModeTable         string
}

// Missing lists the pieces the back end lacks, one line each, naming the table to extend.
func (c Coverage) Missing() []string {
	var missing []string
	note := func(format string, args ...any) { missing = append(missing, fmt.Sprintf(format, args...)) }
	ops := OpNames()
	if c.FusedOps {
		ops = append(ops, FusedOpNames()...)
	}
	for _, op := range ops {
		if !c.Op(op) {
			note("op %s: no entry in %s", op, c.OpTable)
		}
	}
	for _, a := range AllActivations {
		if c.Activation != nil && a != ActNone && !c.Activation(a) {
			note("activation %s: no kernel in %s", a, c.ActivationTable)
		}
	}
	for _, a := range FusedActivations {
		if c.FusedActivation != nil && !c.FusedActivation(a) {
			note("fused activation %s: no kernel in %s", a, c.FusedActivationTable)
		}
	}
	for _, m := range PadModes {
		if c.PadMode != nil && !c.PadMode(m) {
			note("pad mode %s: no kernel in %s", m, c.PadModeTable)
		}
	}
	return missing
}
