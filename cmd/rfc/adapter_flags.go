package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/adapters"
	"github.com/rfc-project/rfc/control"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/passes"
	"github.com/rfc-project/rfc/runtime"
)

// adapterFlags inject adapters after elaboration (rfc tree, ir, run, compile):
//
//	--lora [NAME=]PATH[:SCALE]        a LoRA file (PEFT/diffusers or kohya naming, or a PEFT
//	                                  directory); targets come from its keys; NAME defaults
//	                                  to the file's name, SCALE to 1
//	--adapter NAME=DECL[(k=v, …)][:SCALE]
//	                                  an adapter declared in the .rfn file (or LinearLora,
//	                                  Conv2dLora) with its parameters
//	--select [CLASS@]PATTERN          the targets of the --lora or --adapter before it: layers
//	                                  of CLASS whose path matches PATTERN (`**` any depth)
//	--merge                           fold LoRA branches into the weights (lora_merge)
//	--controlnet [NAME=]PATH[:SCALE]  a ControlNet (single file, diffusers folder, Refiners
//	                                  file) on an SD1UNet of models/controlnet.rfn; its
//	                                  condition image is the input NAME_condition
//	--t2i-adapter NAME[=FEATURES][:SCALE]
//	                                  a T2I-Adapter's features (y0 … y3 of FEATURES, written
//	                                  by rfc run models/t2i_adapter.rfn; else the inputs
//	                                  NAME_features_0 … 3) added to an SD1UNet's down path
//	--control-inputs                  the inputs control_residual_0 … 12 and
//	                                  control_features_0 … 3 on an SD1UNet, for a program
//	                                  that runs its ControlNets and T2I-Adapters apart
type adapterFlags struct {
	reqs    []*adapterRequest
	merge   bool
	tensors map[string]*runtime.Tensor // LoRA and ControlNet weights by checkpoint key, after apply
	added   bool                       // inputs added scalar inputs the input file lacked
	// shapes are the shapes of the input file's tensors (rfc run), which give a
	// ControlNet's condition and a T2I-Adapter's features their sizes.
	shapes map[string][]int
	// features are T2I-Adapter features read from --t2i-adapter files, as inputs.
	features map[string]*runtime.Tensor
}

type adapterRequest struct {
	flag           string   // as given, for messages
	args           []string // as given, for the recorded command line
	lora           bool
	controlNet     bool // path is a ControlNet
	t2i            bool // path is "" or a file of T2I-Adapter features
	controlInputs  bool
	name, path     string
	decl           string
	params         map[string]string
	scale          float64
	class, pattern string
	selected       bool
}

func (af *adapterFlags) register(fs *flag.FlagSet) {
	fs.Var(loraFlag{af}, "lora", "inject a LoRA file: `[NAME=]PATH[:SCALE]` (PEFT/diffusers or kohya keys; repeatable, stacked in order)")
	fs.Var(adapterFlag{af}, "adapter", "inject an adapter declaration: `NAME=DECL[(k=v, …)][:SCALE]` (repeatable; give its targets with --select)")
	fs.Var(selectFlag{af}, "select", "targets of the preceding --lora/--adapter: `[CLASS@]PATTERN`, e.g. 'Linear@**.Attention.**'")
	fs.BoolVar(&af.merge, "merge", false, "merge LoRA weights into the base weights (the scales become fixed)")
	fs.Var(controlNetFlag{af}, "controlnet", "inject a ControlNet into an SD1UNet of models/controlnet.rfn: `[NAME=]PATH[:SCALE]` (single file, diffusers folder or Refiners file; the input NAME_condition is its condition image; repeatable)")
	fs.Var(controlInputsFlag{af}, "control-inputs", "give an SD1UNet of models/controlnet.rfn the inputs control_residual_0 … 12 and control_features_0 … 3: the summed, scaled outputs of ControlNets and T2I-Adapters run apart")
	fs.Var(t2iFlag{af}, "t2i-adapter", "add a T2I-Adapter's features to an SD1UNet of models/controlnet.rfn: `NAME[=FEATURES][:SCALE]` (y0 … y3 of FEATURES, as rfc run models/t2i_adapter.rfn writes them, else the inputs NAME_features_0 … 3; repeatable)")
}

type controlNetFlag struct{ af *adapterFlags }
type controlInputsFlag struct{ af *adapterFlags }

func (controlInputsFlag) String() string   { return "" }
func (controlInputsFlag) IsBoolFlag() bool { return true }

func (f controlInputsFlag) Set(v string) error {
	if v != "true" {
		return fmt.Errorf("--control-inputs takes no value")
	}
	f.af.reqs = append(f.af.reqs, &adapterRequest{flag: "--control-inputs", args: []string{"--control-inputs"}, controlInputs: true, name: control.InputsName})
	return nil
}

type t2iFlag struct{ af *adapterFlags }

func (controlNetFlag) String() string { return "" }
func (t2iFlag) String() string        { return "" }

// cutScale splits off a trailing :SCALE, when what follows the last colon is a number.
func cutScale(v string) (string, float64) {
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		if s, err := strconv.ParseFloat(v[i+1:], 64); err == nil {
			return v[:i], s
		}
	}
	return v, 1
}

func (f controlNetFlag) Set(v string) error {
	return f.af.addFile("--controlnet", v, &adapterRequest{controlNet: true})
}

// addFile adds r, an adapter read from a file, given to flag as [NAME=]PATH[:SCALE]; NAME
// defaults to the file's (nameFromPath).
func (af *adapterFlags) addFile(flag, v string, r *adapterRequest) error {
	r.flag, r.args = flag+" "+v, []string{flag, v}
	rest, scale := cutScale(v)
	r.scale = scale
	if name, path, ok := strings.Cut(rest, "="); ok && ir.IsIdent(name) {
		r.name, rest = name, path
	}
	if rest == "" {
		return fmt.Errorf("%s wants [NAME=]PATH[:SCALE], got %q", flag, v)
	}
	r.path = rest
	if r.name == "" {
		r.name = nameFromPath(rest)
	}
	af.reqs = append(af.reqs, r)
	return nil
}

func (f t2iFlag) Set(v string) error {
	r := &adapterRequest{flag: "--t2i-adapter " + v, args: []string{"--t2i-adapter", v}, t2i: true}
	rest, scale := cutScale(v)
	r.scale = scale
	name, path, _ := strings.Cut(rest, "=")
	if !ir.IsIdent(name) {
		return fmt.Errorf("--t2i-adapter wants NAME[=FEATURES][:SCALE] with NAME an identifier, got %q", v)
	}
	r.name, r.path = name, path
	f.af.reqs = append(f.af.reqs, r)
	return nil
}

type loraFlag struct{ af *adapterFlags }
type adapterFlag struct{ af *adapterFlags }
type selectFlag struct{ af *adapterFlags }

func (loraFlag) String() string    { return "" }
func (adapterFlag) String() string { return "" }
func (selectFlag) String() string  { return "" }

func (f loraFlag) Set(v string) error {
	return f.af.addFile("--lora", v, &adapterRequest{lora: true})
}

func (f adapterFlag) Set(v string) error {
	bad := func(why string) error {
		return fmt.Errorf("--adapter wants NAME=DECL[(k=v, …)][:SCALE], got %q: %s", v, why)
	}
	name, rest, ok := strings.Cut(v, "=")
	if !ok || !ir.IsIdent(name) {
		return bad("NAME= must come first")
	}
	r := &adapterRequest{flag: "--adapter " + v, args: []string{"--adapter", v}, name: name, scale: 1, params: map[string]string{}}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && i > strings.LastIndexByte(rest, ')') {
		s, err := strconv.ParseFloat(rest[i+1:], 64)
		if err != nil {
			return bad("SCALE is not a number")
		}
		r.scale, rest = s, rest[:i]
	}
	decl, args, hasArgs := strings.Cut(rest, "(")
	r.decl = strings.TrimSpace(decl)
	if !ir.IsIdent(r.decl) {
		return bad("DECL is not a name")
	}
	if hasArgs {
		inner, ok := strings.CutSuffix(strings.TrimSpace(args), ")")
		if !ok {
			return bad("missing )")
		}
		for _, kv := range splitTopLevel(inner) {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			if !ok || !ir.IsIdent(strings.TrimSpace(k)) {
				return bad(fmt.Sprintf("argument %q is not k=v", strings.TrimSpace(kv)))
			}
			r.params[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
	}
	f.af.reqs = append(f.af.reqs, r)
	return nil
}

func (f selectFlag) Set(v string) error {
	if len(f.af.reqs) == 0 {
		return errors.New("--select applies to the --lora or --adapter before it; give that first")
	}
	r := f.af.reqs[len(f.af.reqs)-1]
	if r.selected {
		return fmt.Errorf("%s already has a --select", r.flag)
	}
	r.selected = true
	r.flag += " --select " + v
	r.args = append(r.args, "--select", v)
	if class, pattern, ok := strings.Cut(v, "@"); ok {
		r.class, r.pattern = class, pattern
	} else {
		r.pattern = v
	}
	return nil
}

// splitTopLevel splits at commas outside brackets ("k=[3, 1], r=4").
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// nameFromPath makes an adapter name from a file or directory name: lora_a_kohya for
// lora_a_kohya.safetensors.
func nameFromPath(p string) string {
	base := strings.TrimSuffix(filepath.Base(filepath.Clean(p)), ".safetensors")
	if base == "adapter_model" {
		base = filepath.Base(filepath.Dir(filepath.Clean(p)))
	}
	var b strings.Builder
	for _, r := range base {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		name = "lora_" + name
	}
	return name
}

// commandLine is the flags as they were given, for the command recorded in generated code.
func (af *adapterFlags) commandLine() string {
	var b strings.Builder
	for _, r := range af.reqs {
		for _, a := range r.args {
			b.WriteString(" " + shellQuote(a))
		}
	}
	if af.merge {
		b.WriteString(" --merge")
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain characters.
func shellQuote(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./=:,@+", c)) {
			plain = false
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// given reports whether any adapter flag was used.
func (af *adapterFlags) given() bool { return len(af.reqs) > 0 || af.merge }

// apply injects the requested adapters into m, in command-line order, then merges when
// asked. It keeps the LoRA tensors for weights and compiledFiles.
func (af *adapterFlags) apply(prog *dsl.Program, m *ir.Module, stderr io.Writer) (*ir.Module, bool) {
	if !af.given() {
		return m, true
	}
	if err := adapters.AddLibrary(prog); err != nil {
		fmt.Fprintln(stderr, dsl.Detail(err))
		return nil, false
	}
	af.tensors = map[string]*runtime.Tensor{}
	for _, r := range af.reqs {
		var err error
		switch {
		case r.lora:
			m, err = af.injectLora(prog, m, r)
		case r.controlNet:
			m, err = af.injectControlNet(prog, m, r)
		case r.t2i:
			m, err = af.injectT2I(prog, m, r)
		case r.controlInputs:
			m, err = control.InjectInputs(m, prog)
		default:
			m, err = adapters.Inject(m, prog, adapters.Spec{Name: r.name, Adapter: r.decl, Class: r.class, Pattern: r.pattern, Params: r.params, Scale: r.scale})
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %s\n", r.flag, dsl.Detail(err))
			return nil, false
		}
	}
	if af.merge {
		if err := passes.LoraMerge(m); err != nil {
			fmt.Fprintln(stderr, err)
			return nil, false
		}
		if err := ir.Verify(m); err != nil {
			fmt.Fprintf(stderr, "internal error: the merged IR does not verify: %v\n", err)
			return nil, false
		}
	}
	return m, true
}

// injectControlNet reads the ControlNet's file and injects it, for the condition of the
// input file (or one condition for the batch, 8 times the latent's size).
func (af *adapterFlags) injectControlNet(prog *dsl.Program, m *ir.Module, r *adapterRequest) (*ir.Module, error) {
	u, err := control.ReadUNet(m)
	if err != nil {
		return nil, err
	}
	cond, ok := af.shapes[r.name+"_condition"]
	if !ok {
		cond = []int{1, 3, 8 * u.Height, 8 * u.Width}
	}
	c, err := control.OpenControlNet(r.path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out, tensors, err := control.InjectControlNet(m, prog, c, r.name, r.scale, cond)
	if err != nil {
		return nil, err
	}
	for k, t := range tensors {
		af.tensors[k] = t
	}
	return out, nil
}

// injectT2I adds a T2I-Adapter's features: read from its file as inputs, or given by the
// input file.
func (af *adapterFlags) injectT2I(prog *dsl.Program, m *ir.Module, r *adapterRequest) (*ir.Module, error) {
	batch := 1
	if s, ok := af.shapes[r.name+"_features_0"]; ok && len(s) > 0 {
		batch = s[0]
	}
	if r.path != "" {
		f, err := runtime.OpenSafetensors(r.path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		for i := range 4 {
			t, err := f.Tensor(fmt.Sprintf("y%d", i))
			if err != nil {
				return nil, fmt.Errorf("%s: T2I-Adapter features are y0 … y3 (rfc run models/t2i_adapter.rfn writes them): %v", r.path, err)
			}
			if af.features == nil {
				af.features = map[string]*runtime.Tensor{}
			}
			af.features[fmt.Sprintf("%s_features_%d", r.name, i)] = t
			batch = t.Shape[0]
		}
	}
	out, err := control.InjectT2IAdapter(m, prog, r.name, r.scale, batch)
	if err != nil && r.path != "" {
		return nil, fmt.Errorf("%s: %w", r.path, err)
	}
	return out, err
}

func (af *adapterFlags) injectLora(prog *dsl.Program, m *ir.Module, r *adapterRequest) (*ir.Module, error) {
	lf, err := adapters.OpenLora(r.path)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	out, tensors, err := adapters.InjectLora(m, prog, lf, adapters.LoraOptions{Name: r.name, Scale: r.scale, Class: r.class, Pattern: r.pattern})
	if err != nil {
		return nil, err
	}
	for k, t := range tensors {
		af.tensors[k] = t
	}
	return out, nil
}

// inputs adds the adapters' scalar inputs (LoRA scales) that the input file lacks, and the
// T2I-Adapter features read from files.
func (af *adapterFlags) inputs(m *ir.Module, inputs map[string]*runtime.Tensor) map[string]*runtime.Tensor {
	all := adapters.ScalarInputs(m, inputs)
	for k, t := range af.features {
		if _, given := all[k]; !given {
			all[k] = t
		}
	}
	af.added = af.added || len(all) != len(inputs)
	return all
}

// compiledFiles writes what the compiled engine reads from files: the LoRA tensors by
// their checkpoint keys, and, when inputs added scalar inputs or renamed (a tensor given
// for a model's only input under another name), all the inputs. It returns the extra
// weight files, the input file to use, and a cleanup.
func (af *adapterFlags) compiledFiles(m *ir.Module, inputs map[string]*runtime.Tensor, input string, renamed bool) ([]string, string, func(), error) {
	if len(af.reqs) == 0 && !renamed {
		return nil, input, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "rfc-adapters-")
	if err != nil {
		return nil, "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	var weights []string
	if len(af.tensors) > 0 {
		w := filepath.Join(dir, "adapters.safetensors")
		if err := runtime.WriteSafetensors(w, af.tensors, nil); err != nil {
			cleanup()
			return nil, "", nil, err
		}
		weights = append(weights, w)
	}
	if af.added || renamed {
		input = filepath.Join(dir, "inputs.safetensors")
		if err := runtime.WriteSafetensors(input, af.inputs(m, inputs), nil); err != nil {
			cleanup()
			return nil, "", nil, err
		}
	}
	return weights, input, cleanup, nil
}
