package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/imaging"
	"github.com/rfc-project/rfc/pipeline/sd15"
)

// controlFlags collects a repeated --controlnet or --t2i-adapter PATH:COND.png[:SCALE], as
// given: addControl checks them, so that a bad one is one line and status 1.
type controlFlags []string

func (c *controlFlags) String() string { return "" }

func (c *controlFlags) Set(v string) error {
	*c = append(*c, v)
	return nil
}

// parseControl splits PATH:COND.png[:SCALE] at its colons (a path that holds one cannot be
// given).
func parseControl(flagName, v string) (path, condition string, scale float64, err error) {
	parts := strings.Split(v, ":")
	scale = 1
	switch len(parts) {
	case 2:
	case 3:
		scale, err = strconv.ParseFloat(parts[2], 64)
		if err != nil || math.IsNaN(scale) || math.IsInf(scale, 0) {
			return "", "", 0, fmt.Errorf("--%s %s: the scale %q is not a finite number (PATH:COND.png[:SCALE])", flagName, v, parts[2])
		}
	default:
		return "", "", 0, fmt.Errorf("--%s %s: want PATH:COND.png[:SCALE] (the weights, the condition image, the scale)", flagName, v)
	}
	if parts[0] == "" || parts[1] == "" {
		return "", "", 0, fmt.Errorf("--%s %s: want PATH:COND.png[:SCALE], with both paths", flagName, v)
	}
	return parts[0], parts[1], scale, nil
}

// registerControlFlags adds --controlnet and --t2i-adapter to sd15 generate's flags.
func registerControlFlags(fs *flag.FlagSet, o *generateOptions) {
	fs.Var(&o.controlNets, "controlnet", "a ControlNet `PATH:COND.png[:SCALE]`: its weights (single file, diffusers folder or Refiners file),\nthe condition image (resized to the output size) and the scale of its residuals (default 1);\nrepeatable, they stack (with --t2i-adapter and --lora too)")
	fs.Var(&o.t2iAdapters, "t2i-adapter", "a T2I-Adapter `PATH:COND.png[:SCALE]`: its weights (TencentARC's file, diffusers folder or Refiners\nfile), the condition image (resized to the output size) and the scale of its features (default 1);\nrepeatable")
}

// addControl checks the control flags and reads their condition images into the request.
func (o *generateOptions) addControl(req *sd15.Request) error {
	for _, v := range o.controlNets {
		path, cond, scale, err := parseControl("controlnet", v)
		if err != nil {
			return err
		}
		img, err := openCondition(cond)
		if err != nil {
			return fmt.Errorf("--controlnet %s: %w", v, err)
		}
		req.ControlNets = append(req.ControlNets, sd15.ControlNet{Path: path, Condition: img, Scale: scale})
	}
	for _, v := range o.t2iAdapters {
		path, cond, scale, err := parseControl("t2i-adapter", v)
		if err != nil {
			return err
		}
		img, err := openCondition(cond)
		if err != nil {
			return fmt.Errorf("--t2i-adapter %s: %w", v, err)
		}
		req.T2IAdapters = append(req.T2IAdapters, sd15.T2IAdapter{Path: path, Condition: img, Scale: scale})
	}
	return nil
}

func openCondition(path string) (*imaging.Image, error) {
	img, err := sd15.OpenImage(path)
	if err != nil {
		return nil, fmt.Errorf("condition image: %w", err)
	}
	return img, nil
}

func cannyFlags(low, high *float64, blur *int, sigma *float64, out *string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("canny", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Float64Var(low, "low", 100, "the lower hysteresis threshold")
	fs.Float64Var(high, "high", 200, "the upper hysteresis threshold")
	fs.IntVar(blur, "blur", 0, "an odd kernel `SIZE`: Gaussian blur first (OpenCV's GaussianBlur); 0: none, as OpenCV's Canny and the\nControlNet annotator")
	fs.Float64Var(sigma, "sigma", 0, "with --blur: the Gaussian's sigma (0: from the kernel size, as OpenCV)")
	fs.StringVar(out, "o", "", "the edge map to write, `OUT.png` (white edges on black, one channel)")
	fs.Usage = func() {
		fmt.Fprint(w, "Usage: sd15 canny IN.png -o OUT.png [--low 100] [--high 200] [--blur 0 [--sigma 0]]\n\nWrites the edges of IN as OpenCV's cv2.Canny(image, low, high) finds them, bit for bit: the\ncondition image of a canny ControlNet (sd15 generate --controlnet PATH:OUT.png).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// canny is sd15 canny: the edge map of an image, as the canny ControlNets' preprocessor.
func canny(args []string, stderr io.Writer) int {
	var low, high, sigma float64
	var blur int
	var out string
	fs := cannyFlags(&low, &high, &blur, &sigma, &out, stderr)
	// The input may come before, between or after the flags.
	var inputs []string
	for {
		if err := fs.Parse(args); err != nil {
			return flagStatus(err)
		}
		if fs.NArg() == 0 {
			break
		}
		inputs = append(inputs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(inputs) > 1 {
		fmt.Fprintf(stderr, "sd15 canny: unexpected argument %q (one input image)\n", inputs[1])
		return 2
	}
	if len(inputs) == 0 || out == "" {
		fmt.Fprintln(stderr, "sd15 canny: give IN.png and -o OUT.png")
		return 2
	}
	in := inputs[0]
	fail := func(err error) int {
		fmt.Fprintln(stderr, "sd15:", err)
		return 1
	}
	img, err := sd15.OpenImage(in)
	if err != nil {
		return fail(err)
	}
	if blur != 0 {
		if blur < 0 || blur%2 == 0 {
			return fail(fmt.Errorf("--blur %d: the kernel size must be odd and positive (or 0: no blur)", blur))
		}
		if img, err = imaging.GaussianBlur(img, blur, sigma); err != nil {
			return fail(err)
		}
	}
	edges, err := imaging.Canny(img, low, high)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", in, err))
	}
	if err := imaging.Save(out, edges); err != nil {
		return fail(err)
	}
	return 0
}
