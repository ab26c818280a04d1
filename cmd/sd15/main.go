// Command sd15 generates images with Stable Diffusion 1.5 from the command line: a thin
// shell over package sd15 (the models compiled ahead of time by rfc, no Python).
//
//	sd15 generate --checkpoint FILE|DIR --prompt TEXT [--negative-prompt TEXT]
//	              [--width 512] [--height 512] [--steps 30] [--solver dpm|ddim|euler|lcm]
//	              [--guidance 7.5] [--seed N | --noise FILE] [--lora FILE[:SCALE]]...
//	              [--init-image IMAGE --strength 0.6] [--latents-out FILE]
//	              [--controlnet PATH:COND.png[:SCALE]]... [--t2i-adapter PATH:COND.png[:SCALE]]...
//	              [--ip-adapter FILE --image-encoder FILE|DIR --ip-image IMAGE[:SCALE]]
//	              [--reference IMAGE[:FIDELITY]] -o OUT.png
//	sd15 canny IN.png -o OUT.png [--low 100] [--high 200]
//	sd15 tokenize --prompt TEXT
//
// Run sd15 help for the flags.
package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rfc-project/rfc/pipeline/sd15"
	"github.com/rfc-project/rfc/runtime"
	"github.com/rfc-project/rfc/solvers"
	"github.com/rfc-project/rfc/tokenizer"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `sd15 generates images with Stable Diffusion 1.5 (models compiled by rfc, no Python).

Usage:
  sd15 generate --checkpoint FILE|DIR --prompt TEXT [--negative-prompt TEXT]
                [--width 512] [--height 512] [--steps 30] [--solver dpm|ddim|euler|lcm]
                [--guidance 7.5] [--seed N | --noise FILE] [--lora FILE[:SCALE]]...
                [--init-image IMAGE --strength 0.6] [--latents-out FILE]
                [--controlnet PATH:COND.png[:SCALE]]... [--t2i-adapter PATH:COND.png[:SCALE]]...
                [--ip-adapter FILE --image-encoder FILE|DIR --ip-image IMAGE[:SCALE]]
                [--reference IMAGE[:FIDELITY]] -o OUT.png
  sd15 canny IN.png -o OUT.png [--low 100] [--high 200]
                                   the edge map of a canny ControlNet (OpenCV's Canny, bit for bit)
  sd15 tokenize --prompt TEXT      prints the 77 token ids, space-separated, on one line
  sd15 help [COMMAND]
`

// run is the command line; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "generate":
		return generate(args[1:], stdout, stderr)
	case "tokenize":
		return tokenize(args[1:], stdout, stderr)
	case "canny":
		return canny(args[1:], stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			switch args[1] {
			case "generate":
				generateFlags(&generateOptions{}, stdout).Usage()
				return 0
			case "tokenize":
				tokenizeFlags(new(string), stdout).Usage()
				return 0
			case "canny":
				cannyFlags(new(float64), new(float64), new(int), new(float64), new(string), stdout).Usage()
				return 0
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sd15: unknown command %q (commands: generate, canny, tokenize, help)\n", args[0])
	return 2
}

func tokenizeFlags(prompt *string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(prompt, "prompt", "", "the text to tokenize")
	fs.Usage = func() {
		fmt.Fprint(out, "Usage: sd15 tokenize --prompt TEXT\n\nPrints the 77 ids SD1.5's text encoder reads (OpenAI CLIP's tokenizer: start token,\nthe prompt's ids truncated to fit, end token, end tokens as padding), space-separated.\n\n")
		fs.PrintDefaults()
	}
	return fs
}

func tokenize(args []string, stdout, stderr io.Writer) int {
	var prompt string
	fs := tokenizeFlags(&prompt, stderr)
	if err := fs.Parse(args); err != nil {
		return flagStatus(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sd15 tokenize: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if !given(fs, "prompt") {
		fmt.Fprintln(stderr, "sd15 tokenize: --prompt is required")
		return 2
	}
	tok, err := tokenizer.Default()
	if err != nil {
		fmt.Fprintln(stderr, "sd15:", err)
		return 1
	}
	ids := tok.Tokenize(prompt)
	words := make([]string, len(ids))
	for i, id := range ids {
		words[i] = strconv.Itoa(int(id))
	}
	fmt.Fprintln(stdout, strings.Join(words, " "))
	return 0
}

// loraFlags collects repeated --lora FILE[:SCALE].
type loraFlags []sd15.LoRA

func (l *loraFlags) String() string { return "" }

func (l *loraFlags) Set(v string) error {
	path, scale, given := splitValue(v)
	if path == "" {
		return errors.New("empty path")
	}
	if !given {
		scale = 1
	}
	*l = append(*l, sd15.LoRA{Path: path, Scale: scale})
	return nil
}

// splitValue splits PATH[:NUMBER] at its last colon when what follows parses as a number
// (given); otherwise the whole is the path.
func splitValue(s string) (path string, value float64, given bool) {
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if f, err := strconv.ParseFloat(s[i+1:], 64); err == nil {
			return s[:i], f, true
		}
	}
	return s, 0, false
}

type generateOptions struct {
	checkpoint, prompt, negative string
	width, height, steps         int
	solver                       string
	guidance                     float64
	seed                         uint64
	noise                        string
	loras                        loraFlags
	initImage                    string
	strength                     float64
	latentsOut, out              string
	adapters                     adapterOptions // IP-Adapter, reference-only (adapters.go)
	controlNets, t2iAdapters     controlFlags   // control.go
}

func generateFlags(o *generateOptions, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.checkpoint, "checkpoint", "", "the SD1.5 checkpoint `FILE|DIR`: the single file, a diffusers folder or a folder of Refiners files")
	fs.StringVar(&o.prompt, "prompt", "", "the `TEXT` to draw")
	fs.StringVar(&o.negative, "negative-prompt", "", "the `TEXT` to steer away from (the guidance's unconditional half)")
	fs.IntVar(&o.width, "width", 0, "image width, a multiple of 8 (default 512; 64 for the reduced checkpoint of the tests)")
	fs.IntVar(&o.height, "height", 0, "image height, a multiple of 8 (default 512; 64 for the reduced checkpoint of the tests)")
	fs.IntVar(&o.steps, "steps", sd15.DefaultSteps, "solver steps")
	fs.StringVar(&o.solver, "solver", sd15.DefaultSolver, "dpm (DPM-Solver++ 2M), ddim, euler or lcm (for LCM weights)")
	fs.Float64Var(&o.guidance, "guidance", sd15.DefaultGuidance, "classifier-free guidance scale; 1 runs the UNet on the prompt alone")
	fs.Uint64Var(&o.seed, "seed", 0, "noise seed `N` (solvers.NoiseSource); random when neither --seed nor --noise is given")
	fs.StringVar(&o.noise, "noise", "", "safetensors `FILE` with the initial noise as tensor x [1, 4, H/8, W/8] (standard normal), and\nfor LCM its steps' noise as step_noise [k, 1, 4, H/8, W/8], for --reference the reference's as\nreference_noise [steps, 2, 4, H/8, W/8]")
	fs.Var(&o.loras, "lora", "a LoRA `FILE[:SCALE]` (kohya/sd-webui or diffusers/PEFT names) merged into the UNet and text encoder,\nat SCALE (default 1); repeatable, they stack")
	fs.StringVar(&o.initImage, "init-image", "", "start from this `IMAGE` (PNG or JPEG), resized to the output size")
	fs.Float64Var(&o.strength, "strength", 0.6, "with --init-image: how much to change it, in (0, 1]")
	fs.StringVar(&o.latentsOut, "latents-out", "", "also write the final latents as tensor latents to this safetensors `FILE`")
	o.adapters.register(fs)
	registerControlFlags(fs, o)
	fs.StringVar(&o.out, "o", "", "the PNG `OUT.png` to write (with the parameters in its \"parameters\" text chunk)")
	fs.Usage = func() {
		fmt.Fprint(out, "Usage: sd15 generate --checkpoint FILE|DIR --prompt TEXT -o OUT.png [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

func flagStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func given(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// generate is sd15 generate. Every input is checked before anything is written: a bad
// one is one line on stderr and exit status 1, and no output file.
func generate(args []string, stdout, stderr io.Writer) int {
	var o generateOptions
	fs := generateFlags(&o, stderr)
	if err := fs.Parse(args); err != nil {
		return flagStatus(err)
	}
	fail := func(err error) int {
		var ce *sd15.CheckpointError
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, "sd15:", ce.Summary())
		} else {
			fmt.Fprintln(stderr, "sd15:", err)
		}
		return 1
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "sd15 generate: unexpected argument %q\n", fs.Arg(0))
		return 2
	case o.checkpoint == "":
		fmt.Fprintln(stderr, "sd15 generate: --checkpoint is required")
		return 2
	case !given(fs, "prompt"):
		fmt.Fprintln(stderr, "sd15 generate: --prompt is required")
		return 2
	case o.out == "":
		fmt.Fprintln(stderr, "sd15 generate: -o OUT.png is required")
		return 2
	case given(fs, "seed") && o.noise != "":
		fmt.Fprintln(stderr, "sd15 generate: give --seed or --noise, not both")
		return 2
	case given(fs, "strength") && o.initImage == "":
		fmt.Fprintln(stderr, "sd15 generate: --strength needs --init-image")
		return 2
	}
	if !strings.EqualFold(filepath.Ext(o.out), ".png") {
		return fail(fmt.Errorf("%s: the output is a PNG file: name it .png", o.out))
	}
	// 0 (not given) is the pipeline's default size.
	for _, d := range []struct {
		name string
		v    int
	}{{"width", o.width}, {"height", o.height}} {
		if given(fs, d.name) && (d.v <= 0 || d.v%8 != 0) {
			return fail(fmt.Errorf("--%s %d: must be a positive multiple of 8", d.name, d.v))
		}
	}
	if !slicesContains(solvers.Names(), o.solver) {
		return fail(fmt.Errorf("unknown solver %q (known: %s)", o.solver, strings.Join(solvers.Names(), ", ")))
	}
	if o.steps < 1 {
		return fail(fmt.Errorf("--steps %d: must be at least 1", o.steps))
	}
	req := sd15.Request{
		Prompt: o.prompt, NegativePrompt: o.negative, Width: o.width, Height: o.height,
		Steps: o.steps, Solver: o.solver, Guidance: o.guidance, Seed: o.seed,
	}
	if o.guidance == 0 {
		// The library reads 0 as its default; unconditional generation is not offered.
		return fail(errors.New("--guidance 0: give a scale other than 0 (1 disables guidance)"))
	}
	if o.initImage != "" {
		img, err := sd15.OpenImage(o.initImage)
		if err != nil {
			return fail(err)
		}
		req.InitImage, req.Strength = img, o.strength
	}
	var loadOpts sd15.Options
	if err := o.adapters.apply(&req, &loadOpts); err != nil {
		return fail(err)
	}
	if err := o.addControl(&req); err != nil {
		return fail(err)
	}
	if o.noise != "" {
		x, steps, err := readNoise(o.noise)
		if err != nil {
			return fail(err)
		}
		req.Noise, req.StepNoise = x, steps
		if req.Reference != nil {
			if req.ReferenceNoise, err = readReferenceNoise(o.noise); err != nil {
				return fail(err)
			}
		}
	} else if !given(fs, "seed") {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fail(err)
		}
		req.Seed = binary.LittleEndian.Uint64(b[:]) >> 32 // a short seed, easy to copy
	}

	start := time.Now()
	loadOpts.LoRAs = o.loras
	loadOpts.Control = len(req.ControlNets)+len(req.T2IAdapters) > 0
	p, err := sd15.Load(o.checkpoint, loadOpts)
	if err != nil {
		return fail(err)
	}
	defer p.Close()
	loaded := time.Since(start)
	progress := &progressLine{w: stderr, draw: isTerminal(stderr)}
	req.Progress = progress.update
	genStart := time.Now()
	res, err := p.Generate(req)
	progress.finish()
	if err != nil {
		return fail(err)
	}
	total := time.Since(genStart)
	if err := res.WritePNG(o.out); err != nil {
		return fail(err)
	}
	if o.latentsOut != "" {
		t := runtime.FromF32(res.Latents, res.LatentShape...)
		if err := runtime.WriteSafetensors(o.latentsOut, map[string]*runtime.Tensor{"latents": t}, nil); err != nil {
			return fail(err)
		}
	}
	seed := ""
	if o.noise == "" {
		seed = fmt.Sprintf(", seed %d", req.Seed)
	}
	steps := progress.end.Sub(progress.start)
	fmt.Fprintf(stderr, "sd15: wrote %s (%dx%d, %d %s steps%s) in %.1f s: loading %.1f s, %d steps %.1f s (%.2f s/step), the rest %.1f s\n",
		o.out, res.Image.Width, res.Image.Height, res.Steps, o.solver, seed, (loaded + total).Seconds(), loaded.Seconds(),
		res.Steps, steps.Seconds(), steps.Seconds()/float64(max(res.Steps, 1)), (total - steps).Seconds())
	return 0
}

func slicesContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// readNoise reads --noise: tensor x [1, 4, h, w], and step_noise [k, 1, 4, h, w] if
// present. The sizes are checked against the request by the pipeline.
func readNoise(path string) ([]float32, [][]float32, error) {
	f, err := runtime.OpenSafetensors(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, ok := f.Info("x")
	if !ok {
		return nil, nil, fmt.Errorf("%s: no tensor x (the initial noise [1, 4, H/8, W/8])", path)
	}
	if len(info.Shape) != 4 || info.Shape[0] != 1 || info.Shape[1] != sd15.LatentChannels {
		return nil, nil, fmt.Errorf("%s: tensor x has shape %v, want [1, 4, H/8, W/8]", path, info.Shape)
	}
	x, err := f.Tensor("x")
	if err != nil {
		return nil, nil, err
	}
	var steps [][]float32
	if info, ok := f.Info("step_noise"); ok {
		if len(info.Shape) != 5 || info.Shape[1] != 1 || info.Shape[2] != sd15.LatentChannels || info.Shape[3] != x.Shape[2] || info.Shape[4] != x.Shape[3] {
			return nil, nil, fmt.Errorf("%s: tensor step_noise has shape %v, want [k, 1, 4, %d, %d]", path, info.Shape, x.Shape[2], x.Shape[3])
		}
		t, err := f.Tensor("step_noise")
		if err != nil {
			return nil, nil, err
		}
		n := len(x.F32)
		for k := range info.Shape[0] {
			steps = append(steps, t.F32[k*n:(k+1)*n])
		}
	}
	return x.F32, steps, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine times the steps and, on a terminal, redraws "step i/N, s/step, time
// left" after each.
type progressLine struct {
	w          io.Writer
	draw       bool
	start, end time.Time
	drawn      bool
}

func (p *progressLine) update(done, total int) {
	p.end = time.Now()
	if done == 0 { // the steps start
		p.start = p.end
		return
	}
	if !p.draw {
		return
	}
	per := p.end.Sub(p.start).Seconds() / float64(done)
	left := time.Duration(per * float64(total-done) * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(p.w, "\rstep %d/%d  %.2f s/step  %s left   ", done, total, per, left)
	p.drawn = true
}

func (p *progressLine) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
