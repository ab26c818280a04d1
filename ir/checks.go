package ir

import "fmt"

// Check is a condition on sizes that a shape rule needs but cannot decide when the module
// is built, because it depends on sizes known only at run time (a concatenation of a
// tensor of height h with one of height ((h+1)//2)*2 needs h even). Generated code tests
// the checks of every op when it meets a new set of sizes, before running anything, and
// reports a failing one with its Rule.
type Check struct {
	A, B    Dim
	AtLeast bool   // A ≥ B; otherwise A = B
	Rule    string // what needs it, as the rule's error would say it
}

func (c Check) String() string {
	op := "="
	if c.AtLeast {
		op = "≥"
	}
	return fmt.Sprintf("%s %s %s (%s)", c.A, op, c.B, c.Rule)
}

// rules collects the checks of one inference.
type rules struct{ checks []Check }

// require states that a = b (or a ≥ b with atLeast). When the answer is the same for every
// size it is decided now: fail's error when false. Otherwise it becomes a check whose rule
// is fail's message.
func (r *rules) require(a, b Dim, atLeast bool, fail func() error) error {
	decided, holds := Decide(a, b, atLeast)
	switch {
	case decided && holds:
		return nil
	case decided:
		return fail()
	}
	if r != nil {
		r.checks = append(r.checks, Check{A: a, B: b, AtLeast: atLeast, Rule: fail().Error()})
	}
	return nil
}

// eq requires a = b.
func (r *rules) eq(a, b Dim, fail func() error) error { return r.require(a, b, false, fail) }

// atLeast requires a ≥ b.
func (r *rules) atLeast(a, b Dim, fail func() error) error { return r.require(a, b, true, fail) }

// sameShape requires two shapes of one rank to be equal dim by dim.
func (r *rules) sameShape(a, b Shape, fail func() error) error {
	if len(a) != len(b) {
		return fail()
	}
	for i := range a {
		if err := r.eq(a[i], b[i], fail); err != nil {
			return err
		}
	}
	return nil
}

// InferChecks is Infer with the checks the result depends on: conditions on sizes known
// only at run time, which a back end must test before it runs the op (none when every
// dim is static).
func InferChecks(v *Value) (Type, []Check, error) {
	r := &rules{}
	t, err := infer(r, v)
	if err != nil {
		return Type{}, nil, err
	}
	return t, r.checks, nil
}
