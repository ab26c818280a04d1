package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rfc-project/rfc/runtime"
)

// valueRange is --range LO,HI: the values that black and white map to.
type valueRange struct{ lo, hi float64 }

func (r *valueRange) String() string {
	return strconv.FormatFloat(r.lo, 'g', -1, 64) + "," + strconv.FormatFloat(r.hi, 'g', -1, 64)
}

func (r *valueRange) Set(v string) error {
	a, b, ok := strings.Cut(v, ",")
	lo, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	hi, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if !ok || err1 != nil || err2 != nil || !(lo < hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return fmt.Errorf("--range wants LO,HI with LO < HI, such as 0,1 or -1,1; got %q", v)
	}
	r.lo, r.hi = lo, hi
	return nil
}

var imageToTensorCommand = &command{
	name:    "image to-tensor",
	args:    "IMAGE -o OUT.safetensors [--name x] [--range 0,1|-1,1]",
	summary: "write a PNG or JPEG as a [1, 3, H, W] float32 tensor (a model input)",
	about: `Decodes IMAGE (PNG or JPEG, told apart by content; 8- or 16-bit, gray, RGB, alpha dropped)
and writes it to OUT as one F32 tensor of shape [1, 3, H, W], RGB planes, named --name.
Pixel values map linearly to --range: 0,1 (the default) gives black 0 and white 1, -1,1
gives -1 and 1 (the convention of many diffusion models). OUT's folder is created as needed;
nothing is written when IMAGE cannot be read.`,
	examples: []string{
		"rfc image to-tensor testdata/images/astronaut.png -o x.safetensors",
		"rfc image to-tensor testdata/images/coffee.png -o coffee.safetensors --name image --range -1,1",
	},
	define: func(fs *flag.FlagSet) runFunc {
		out := fs.String("o", "", "safetensors `FILE` to write (required)")
		name := fs.String("name", "x", "the tensor's `NAME` in the file")
		r := &valueRange{0, 1}
		fs.Var(r, "range", "`LO,HI`: the values of black and white")
		return func(pos []string, stdout, stderr io.Writer) int {
			if len(pos) != 1 || *out == "" {
				fmt.Fprintln(stderr, "rfc image to-tensor: want one IMAGE and -o OUT (rfc help image to-tensor)")
				return 2
			}
			if *name == "" {
				fmt.Fprintln(stderr, "rfc image to-tensor: --name is empty")
				return 2
			}
			t, err := runtime.LoadImage(pos[0])
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			if r.lo != 0 || r.hi != 1 {
				scale, lo := float32(r.hi-r.lo), float32(r.lo)
				for i, v := range t.F32 {
					t.F32[i] = lo + v*scale
				}
			}
			meta := map[string]string{"image": filepath.Base(pos[0]), "range": r.String()}
			if err := runtime.WriteSafetensors(*out, map[string]*runtime.Tensor{*name: t}, meta); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			fmt.Fprintf(stdout, "%s: %q f32%s\n", *out, *name, t.ShapeString())
			return 0
		}
	},
}

var imageToPNGCommand = &command{
	name:    "image to-png",
	args:    "TENSORS.safetensors -o OUT.png [--name y] [--range 0,1|-1,1]",
	summary: "write a [1, 3, H, W] (or [3, H, W], or one-channel) tensor as a PNG image",
	about: `Reads the tensor --name of TENSORS (by default its only tensor: a model output "y") and writes
it as an 8-bit image: RGB for 3 channels, gray for 1; shapes [1, C, H, W] or [C, H, W].
Values map linearly from --range (0,1 by default; -1,1 for models that output [-1, 1]) to
0…255, are clamped to that range (NaN to black) and rounded to the nearest level. OUT ending
in .png gives PNG; .jpg or .jpeg gives JPEG (quality 95). OUT's folder is created as needed;
nothing is written when the tensor is not an image.`,
	examples: []string{
		"rfc image to-png y.safetensors -o roundtrip.png",
		"rfc image to-png testdata/golden/taef2_decoder_output.safetensors --name y -o out/decoded.png",
	},
	define: func(fs *flag.FlagSet) runFunc {
		out := fs.String("o", "", "image `FILE` to write: .png (or .jpg, .jpeg) (required)")
		name := fs.String("name", "", "the tensor's `NAME` (default: the file's only tensor)")
		r := &valueRange{0, 1}
		fs.Var(r, "range", "`LO,HI`: the values of black and white")
		return func(pos []string, stdout, stderr io.Writer) int {
			if len(pos) != 1 || *out == "" {
				fmt.Fprintln(stderr, "rfc image to-png: want one TENSORS file and -o OUT (rfc help image to-png)")
				return 2
			}
			t, err := imageTensor(pos[0], *name)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			if r.lo != 0 || r.hi != 1 {
				lo, scale := float32(r.lo), float32(1/(r.hi-r.lo))
				for i, v := range t.F32 {
					t.F32[i] = (v - lo) * scale
				}
			}
			if err := runtime.SaveImage(*out, t); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			return 0
		}
	},
}

// imageTensor reads the tensor name (or the only one) of path and checks that it is an image.
func imageTensor(path, name string) (*runtime.Tensor, error) {
	f, err := runtime.OpenSafetensors(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := f.Names()
	if name == "" {
		if len(names) != 1 {
			return nil, fmt.Errorf("%s holds %d tensors (%s): choose one with --name", path, len(names), strings.Join(names, ", "))
		}
		name = names[0]
	}
	info, ok := f.Info(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q (tensors: %s)", path, name, strings.Join(names, ", "))
	}
	shape := info.Shape
	if len(shape) == 4 && shape[0] == 1 {
		shape = shape[1:]
	}
	if !info.DType.IsFloat() || len(shape) != 3 || shape[0] != 1 && shape[0] != 3 || shape[1] < 1 || shape[2] < 1 {
		return nil, fmt.Errorf("%s: tensor %q is %s %v; an image is a floating-point [1, 3, H, W] or [3, H, W] (or 1 channel for gray)", path, name, info.DType, formatShape(info.Shape))
	}
	return f.Tensor(name)
}

func formatShape(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
