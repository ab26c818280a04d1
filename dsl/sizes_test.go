package dsl

import (
	"strings"
	"testing"

	"github.com/rfc-project/rfc/ir"
)

// TestRunTimeSizes elaborates models whose sizes are known only at run time: the shapes
// stay expressions of the input dims through convolutions, up- and downsampling,
// flattening of h·w tokens and concatenation.
func TestRunTimeSizes(t *testing.T) {
	src := `
model Down(c: int = 8) {
    Conv2d(c, c, 3, stride=2, padding=1)
}

model Net(height: size, width: size) {
    input x: f32[batch, 8, height, width]
    Conv2d(8, 8, 3, padding=1)
    SetContext("skip", "saved")
    Down(8)
    SelfAttention2d(8)
    Upsample(scale_factor=2)
    Parallel {
        Identity()
        UseContext("skip", "saved")
    }
    Upsample()
    Flatten(2)
    Unflatten(2, [height, width])
    Reshape(8, height * width)
    Reshape(8, -1, width)
    Interpolate(scale_factor=0.5)
}`
	m := elaborate(t, src, Options{})
	if got := m.Outputs[0].Type.String(); got != "f32[batch, 8, height//2, width//2]" {
		t.Errorf("output %s", got)
	}
	if len(m.Settings) != 0 {
		t.Errorf("settings %v: sizes known at run time are no settings", m.Settings)
	}
	want := map[string]string{
		"Down.Conv2d":               "f32[batch, 8, (height+1)//2, (width+1)//2]",
		"SelfAttention2d":           "f32[batch, 8, (height+1)//2, (width+1)//2]",
		"Upsample_1":                "f32[batch, 8, ((height+1)//2)*2, ((width+1)//2)*2]",
		"Upsample_2":                "f32[batch, 8, height, width]",
		"Flatten":                   "f32[batch, 8, height*width]",
		"Unflatten":                 "f32[batch, 8, height, width]",
		"Reshape_2":                 "f32[batch, 8, height, width]",
		"Interpolate":               "f32[batch, 8, height//2, width//2]",
		"SelfAttention2d.Unflatten": "f32[batch, 8, (height+1)//2, (width+1)//2]",
	}
	for _, s := range allScopes(m.Root) {
		if w, ok := want[s.Path()]; ok {
			if got := s.Outs[0].String(); got != w {
				t.Errorf("%s: %s, want %s", s.Path(), got, w)
			}
			delete(want, s.Path())
		}
	}
	for p := range want {
		t.Errorf("no layer %s", p)
	}
	// --set fixes a size, which is then a setting.
	m = elaborate(t, src, Options{Set: map[string]string{"height": "16", "width": "12"}})
	if got := m.Outputs[0].Type.String(); got != "f32[batch, 8, 8, 6]" {
		t.Errorf("--set: output %s", got)
	}
	if len(m.Settings) != 2 || m.Settings[0].Value != "16" {
		t.Errorf("--set: settings %v", m.Settings)
	}
}

func TestRunTimeSizeErrors(t *testing.T) {
	cases := map[string]struct{ src, want string }{
		"compared": {`
model M() {
    input x: f32[1, 4, h]
    if h > 3 {
        Identity()
    }
}`, "h > 3 needs the value of h, a size known only at run time (fix it with --set h=N)"},
		"layer argument": {`
model M() {
    input x: f32[1, h]
    Linear(h, 4)
}`, "h is a size known only at run time, and this argument needs its value when the model is compiled (fix it with --set h=N)"},
		"default": {`
model M(h: size = 4) {
    input x: f32[1, h]
}`, "parameter h is a size: it takes its value from the inputs or --set, not from a default"},
		"odd scale": {`
model M() {
    input x: f32[1, 1, h, 4]
    Upsample(scale_factor=1.5)
}`, "scale_factor 1.5 of the size h, known only at run time, needs an integer factor or its inverse"},
		"decided mismatch": {`
model M() {
    input x: f32[1, 4, h, w]
    Sum {
        Identity()
        Pad([0, 0, 0, 1])
    }
}`, "do not broadcast (dim 2: h vs h+1)"},
	}
	for name, c := range cases {
		got := elaborateErr(t, c.src, Options{})
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", name, got, c.want)
		}
	}
}

func allScopes(s *ir.Scope) []*ir.Scope {
	var out []*ir.Scope
	s.Walk(func(c *ir.Scope) { out = append(out, c) })
	return out
}
