package sd15

import (
	"errors"
	"fmt"
	"math"

	"github.com/rfc-project/rfc/imaging"
	"github.com/rfc-project/rfc/solvers"
)

// Reference is an image whose style reference-only control carries over
// (Options.ReferenceOnly).
type Reference struct {
	Image *imaging.Image
	// Fidelity is Refiners' style_cfg, in [0, 1]: how much the guidance's negative half
	// attends to the reference too (0.5 is Refiners' default; sd-webui's style_fidelity is
	// its complement). It is taken as given.
	Fidelity float64
}

// DefaultReferenceFidelity is Refiners' default style_cfg.
const DefaultReferenceFidelity = 0.5

// checkAdapters checks a request's image prompt and reference against what the pipeline
// was loaded with.
func (p *Pipeline) checkAdapters(r Request) error {
	a := p.adapted
	if ip := r.ImagePrompt; ip != nil {
		switch {
		case a == nil || a.kind == "":
			return errors.New("an image prompt needs a pipeline loaded with an IP-Adapter (Options.IPAdapter)")
		case ip.Image == nil:
			return errors.New("the image prompt has no image")
		case math.IsNaN(ip.Scale) || math.IsInf(ip.Scale, 0):
			return fmt.Errorf("IP-Adapter scale %g: must be a finite number", ip.Scale)
		}
	}
	ref := r.Reference
	switch {
	case ref == nil && a != nil && a.reference:
		return errors.New("this pipeline was loaded for reference-only control (Options.ReferenceOnly): give Request.Reference")
	case ref == nil:
		if r.ReferenceNoise != nil {
			return errors.New("reference noise without a reference image")
		}
		return nil
	case a == nil || !a.reference:
		return errors.New("a reference image needs a pipeline loaded with Options.ReferenceOnly")
	case ref.Image == nil:
		return errors.New("the reference has no image")
	case !(ref.Fidelity >= 0 && ref.Fidelity <= 1):
		return fmt.Errorf("reference fidelity %g: must be in [0, 1]", ref.Fidelity)
	case r.Solver == "euler":
		return errors.New("the euler solver cannot noise the reference image (Refiners' Euler has no add_noise); use dpm, ddim or lcm")
	}
	n := 2 * latentLen(r)
	for i, s := range r.ReferenceNoise {
		if len(s) != n {
			return fmt.Errorf("reference noise %d has %d values, want %d ([2, 4, %d, %d])", i, len(s), n, r.Height/8, r.Width/8)
		}
	}
	return nil
}

// adaptedStep is the UNet call of one generation with its image tokens and reference:
// it has the plain UNet's signature, so that the denoising loop is the same for all.
type adaptedStep struct {
	p              *Pipeline
	tokens         []float32 // [2, T, dim]: the negative half's, then the positive's
	tokensT        int
	scale          []float32
	fidelity       []float32
	solver         solvers.Solver
	step           int       // the step of the next call
	refLatents     []float32 // [1, 4, h, w]
	refNoise       [][]float32
	src            *solvers.NoiseSource // the seed's stream when refNoise is used up
	n              int
	guide, x4, t4  []float32
	noise, tokens4 []float32
}

// stepUNet returns the UNet call of the request's steps: the plain UNet, or the adapted
// one with the request's image tokens (computed once) and reference (encoded once,
// noised at each step: from ReferenceNoise, else drawn from src before the step's other
// noise).
func (p *Pipeline) stepUNet(r Request, s solvers.Solver, src *solvers.NoiseSource) (unet, error) {
	a := p.adapted
	if a == nil || (a.kind == "" && !a.reference) {
		return p.unet, nil
	}
	if steps := s.NumSteps() - s.FirstStep(); a.reference && src == nil && len(r.ReferenceNoise) < steps {
		return nil, fmt.Errorf("reference-only control noises the reference at each of the %d steps: give that many ReferenceNoise slices with Noise (%d given), or a Seed", steps, len(r.ReferenceNoise))
	}
	st := &adaptedStep{p: p, solver: s, step: s.FirstStep(), n: latentLen(r), refNoise: r.ReferenceNoise, src: src}
	if a.kind != "" {
		st.tokensT = a.numTokens
		st.scale = []float32{0}
		if ip := r.ImagePrompt; ip != nil {
			var err error
			if st.tokens, err = p.imageTokens(ip.Image); err != nil {
				return nil, err
			}
			st.scale[0] = float32(ip.Scale)
		} else { // at scale 0 the adapted UNet computes exactly the plain one's result
			st.tokens = make([]float32, 2*a.numTokens*p.set.embeddingDim)
		}
	}
	if a.reference {
		var err error
		if st.refLatents, err = p.encode(r.Reference.Image, r.Width, r.Height); err != nil {
			return nil, err
		}
		st.fidelity = []float32{float32(r.Reference.Fidelity)}
	}
	return st, nil
}

// Forward runs one step's UNet call: x [b, 4, h, w] (b = 2 with guidance, the negative
// half first; 1 without), text [b, 77, dim].
func (st *adaptedStep) Forward(x []float32, xShape []int, timestep, text []float32, textShape []int) ([]float32, []int, error) {
	a := st.p.adapted
	step := st.step
	st.step++
	batch, n := xShape[0], st.n
	tokLen := st.tokensT * st.p.set.embeddingDim
	if !a.reference {
		tokens, shape := st.tokens, []int{2, st.tokensT, st.p.set.embeddingDim}
		if batch == 1 { // without guidance: the conditional tokens alone
			tokens, shape = st.tokens[tokLen:], []int{1, st.tokensT, st.p.set.embeddingDim}
		}
		return a.ip.Forward(x, xShape, timestep, text, textShape, tokens, shape, st.scale)
	}
	// The reference latents noised to the step, two rows (negative, positive).
	if st.guide == nil {
		st.guide = make([]float32, 2*n)
		st.x4 = make([]float32, 4*n)
		st.noise = make([]float32, 2*n)
	}
	noise := st.noise
	if len(st.refNoise) > 0 {
		noise = st.refNoise[0]
		st.refNoise = st.refNoise[1:]
	} else {
		st.src.Fill(noise)
	}
	for h := range 2 {
		if err := st.solver.AddNoise(st.guide[h*n:(h+1)*n], st.refLatents, noise[h*n:(h+1)*n], step); err != nil {
			return nil, nil, err
		}
	}
	// [generation's negative, positive, reference's negative, positive]: without guidance
	// the prompt's row stands in both halves and only its row comes back (nothing blends it).
	dim := len(text) / batch
	if st.t4 == nil {
		st.t4 = make([]float32, 4*dim)
	}
	for row := range 4 {
		src := row % 2
		if batch == 1 {
			src = 0
		}
		copy(st.t4[row*dim:(row+1)*dim], text[src*dim:(src+1)*dim])
		if row < 2 {
			copy(st.x4[row*n:(row+1)*n], x[src*n:(src+1)*n])
		}
	}
	copy(st.x4[2*n:], st.guide)
	shape := []int{4, xShape[1], xShape[2], xShape[3]}
	var out []float32
	var err error
	if a.kind == "" {
		out, _, err = a.ref.Forward(st.x4, shape, timestep, st.t4, st.fidelity)
	} else {
		if st.tokens4 == nil {
			st.tokens4 = make([]float32, 4*tokLen)
			for row := range 4 {
				src := row % 2
				if batch == 1 {
					src = 1
				}
				copy(st.tokens4[row*tokLen:(row+1)*tokLen], st.tokens[src*tokLen:(src+1)*tokLen])
			}
		}
		out, _, err = a.ipRef.Forward(st.x4, shape, timestep, st.t4, st.tokens4, []int{4, st.tokensT, st.p.set.embeddingDim}, st.scale, st.fidelity)
	}
	if err != nil {
		return nil, nil, err
	}
	if batch == 1 {
		return out[n : 2*n], xShape, nil
	}
	return out[:2*n], xShape, nil
}
