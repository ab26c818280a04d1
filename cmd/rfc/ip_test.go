package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/adapters"
	"github.com/rfc-project/rfc/dsl"
	"github.com/rfc-project/rfc/interp"
	"github.com/rfc-project/rfc/ir"
	"github.com/rfc-project/rfc/runtime"
	"github.com/rfc-project/rfc/solvers"
)

// IP-Adapter (base and plus), its CLIP image encoder and reference-only control at the
// reduced sizes of testdata/sd15/ip (scripts/golden/sd15_ip.py), in both engines, from the
// published files as they come, against the PyTorch goldens (Refiners' structure, float64).
const ipDir = "../../testdata/sd15/ip/"

var (
	ipEncoderSet = []string{"--model", "CLIPImageEncoderH", "--set", "image_size=20", "--set", "embedding_dim=16", "--set", "output_dim=12",
		"--set", "patch_size=4", "--set", "num_layers=3", "--set", "num_attention_heads=2", "--set", "feedforward_dim=40"}
	ipBaseSet = []string{"--model", "ImageProjection", "--set", "clip_image_embedding_dim=12", "--set", "clip_text_embedding_dim=8"}
	ipPlusSet = []string{"--model", "PerceiverResampler", "--set", "latents_dim=8", "--set", "num_attention_layers=2", "--set", "num_attention_heads=2",
		"--set", "head_dim=6", "--set", "input_dim=16", "--set", "output_dim=8"}
	ipUNetSet    = []string{"--model", "SD1UNet", "--set", "channels=[8,16,24,24]", "--set", "clip_embedding_dim=8", "--set", "num_groups=4"}
	ipAdapterSet = []string{"--adapter", "ip=ImageCrossAttention(image_embedding_dim=8)", "--select", "ScaledDotProductAttention@**.Residual_2.Attention.*"}
	ipRefOnlySet = []string{"--adapter", "reference=ReferenceOnlyAttention", "--select", "ScaledDotProductAttention@**.CrossAttentionBlock.Residual_1.SelfAttention.*"}
)

const ipModels = "../../models/ip_adapter.rfn"

func ipEngines() []string {
	if testing.Short() {
		return []string{"interp"}
	}
	return []string{"interp", "compiled"}
}

func writeTensors(t *testing.T, tensors map[string]*runtime.Tensor) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.safetensors")
	if err := runtime.WriteSafetensors(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// cat concatenates f32 tensors along dim 0.
func cat(ts ...*runtime.Tensor) *runtime.Tensor {
	shape := append([]int{0}, ts[0].Shape[1:]...)
	var data []float32
	for _, x := range ts {
		shape[0] += x.Shape[0]
		data = append(data, x.F32...)
	}
	return runtime.FromF32(data, shape...)
}

// rows returns rows [lo, hi) of an f32 tensor.
func rows(x *runtime.Tensor, lo, hi int) *runtime.Tensor {
	n := x.Len() / x.Shape[0]
	return runtime.FromF32(append([]float32(nil), x.F32[lo*n:hi*n]...), append([]int{hi - lo}, x.Shape[1:]...)...)
}

func scalar(v float32) *runtime.Tensor { return runtime.FromF32([]float32{v}) }

// runOutputs runs `rfc run` and returns its outputs by name.
func runOutputs(t *testing.T, args ...string) map[string]*runtime.Tensor {
	t.Helper()
	out := filepath.Join(t.TempDir(), "y.safetensors")
	args = append(append([]string{"run"}, args...), "--output", out)
	_, stderr, status := rfc(t, args...)
	if status != 0 {
		t.Fatalf("rfc %s: status %d\n%s", strings.Join(args, " "), status, stderr)
	}
	return testutil.Tensors(t, out)
}

// near checks got against want within tol·max(1, max|want|) and logs the figures.
func near(t *testing.T, what string, tol float64, got, want *runtime.Tensor) {
	t.Helper()
	d, s := maxDiff(t, got, want)
	t.Logf("%s: max|Δ| = %.3g (max|ref| %.3g)", what, d, s)
	if d > tol*s {
		t.Errorf("%s: max|Δ| = %g > %g × %g", what, d, tol, s)
	}
}

// identical checks two outputs bit for bit.
func identical(t *testing.T, what string, got, want *runtime.Tensor) {
	t.Helper()
	if got.ShapeString() != want.ShapeString() {
		t.Fatalf("%s: shape %s, want %s", what, got.ShapeString(), want.ShapeString())
	}
	for i := range want.F32 {
		if math.Float32bits(got.F32[i]) != math.Float32bits(want.F32[i]) {
			t.Fatalf("%s: value %d is %g, not %g", what, i, got.F32[i], want.F32[i])
		}
	}
}

// The image encoder from the published image_encoder folder (transformers' keys, float16,
// with the position_ids buffer to ignore) and from Refiners' file: both outputs.
func TestRunIPImageEncoder(t *testing.T) {
	gold := testutil.Tensors(t, ipDir+"encoder_output.safetensors")
	for _, weights := range []string{ipDir + "image_encoder", ipDir + "refiners/image_encoder.safetensors"} {
		for _, engine := range ipEngines() {
			t.Run(filepath.Base(weights)+"/"+engine, func(t *testing.T) {
				args := append([]string{"../../models/clip.rfn", "--engine", engine, "--weights", weights, "--input", ipDir + "encoder_input.safetensors"}, ipEncoderSet...)
				y := runOutputs(t, args...)
				near(t, "embedding", 1e-5, y["y0"], gold["embedding"])
				near(t, "penultimate", 1e-5, y["y1"], gold["penultimate"])
			})
		}
	}
}

// The projections from the published IP-Adapter files: base on a zero embedding (the
// negative half) and the astronaut's, plus on the encoder's features of zero pixels and
// of the astronaut.
func TestRunIPProjections(t *testing.T) {
	enc := testutil.Tensors(t, ipDir+"encoder_output.safetensors")
	tokens := testutil.Tensors(t, ipDir+"image_tokens.safetensors")
	base := writeTensors(t, map[string]*runtime.Tensor{"x": cat(runtime.NewTensor(1, 12), rows(enc["embedding"], 0, 1))})
	plus := writeTensors(t, map[string]*runtime.Tensor{"x": cat(enc["zeros_penultimate"], rows(enc["penultimate"], 0, 1))})
	for _, engine := range ipEngines() {
		t.Run("base/"+engine, func(t *testing.T) {
			args := append([]string{ipModels, "--engine", engine, "--weights", ipDir + "ip-adapter_sd15.safetensors", "--input", base}, ipBaseSet...)
			near(t, "base tokens", 1e-5, runOutputs(t, args...)["y"], tokens["base"])
		})
		t.Run("plus/"+engine, func(t *testing.T) {
			args := append([]string{ipModels, "--engine", engine, "--weights", ipDir + "ip-adapter-plus_sd15.safetensors", "--input", plus}, ipPlusSet...)
			near(t, "plus tokens", 1e-5, runOutputs(t, args...)["y"], tokens["plus"])
		})
	}
}

// The UNet with the IP-Adapter injected on its 16 cross-attentions, its tensors loaded from
// the published file by their keys ip_adapter.N, at scales 1, 0.5 and 0; at scale 0 it
// computes exactly what the UNet without the adapter computes. One compiled package serves
// base (4 tokens) and plus (16): the token count is a size known at run time.
func TestRunIPUNet(t *testing.T) {
	in := testutil.Tensors(t, ipDir+"unet_ip_input.safetensors")
	gold := testutil.Tensors(t, ipDir+"unet_ip_output.safetensors")
	unetIn := map[string]*runtime.Tensor{"x": in["x"], "timestep": in["timestep"], "clip_text_embedding": in["clip_text_embedding"]}
	for _, engine := range ipEngines() {
		t.Run(engine, func(t *testing.T) {
			plainArgs := append([]string{ipModels, "--engine", engine, "--weights", sd15Dir + "diffusers", "--input", writeTensors(t, unetIn)}, ipUNetSet...)
			plain := runOutputs(t, plainArgs...)["y"]
			near(t, "plain", 1e-4, plain, gold["plain"])
			for _, kind := range []string{"base", "plus"} {
				file := map[string]string{"base": "ip-adapter_sd15.safetensors", "plus": "ip-adapter-plus_sd15.safetensors"}[kind]
				for _, scale := range []float32{1, 0.5, 0} {
					inputs := map[string]*runtime.Tensor{"ip_image_tokens": in["image_tokens_"+kind], "ip_scale": scalar(scale)}
					for k, v := range unetIn {
						inputs[k] = v
					}
					args := append([]string{ipModels, "--engine", engine, "--weights", sd15Dir + "diffusers", "--weights", ipDir + file, "--input", writeTensors(t, inputs)}, ipUNetSet...)
					y := runOutputs(t, append(args, ipAdapterSet...)...)["y"]
					what := fmt.Sprintf("%s_%.1f", kind, scale)
					near(t, what, 1e-4, y, gold[what])
					if scale == 0 {
						identical(t, what+" against the UNet without the adapter", y, plain)
					}
				}
			}
		})
	}
}

// Reference-only control: the generation's batch of two and the noised reference's in one
// UNet call of four; the generation's half against the goldens of style_cfg 0.5 and 0.25
// (a reversed weighting differs by 0.14).
func TestRunIPReferenceOnly(t *testing.T) {
	in := testutil.Tensors(t, ipDir+"refonly_input.safetensors")
	gold := testutil.Tensors(t, ipDir+"refonly_output.safetensors")
	for _, engine := range ipEngines() {
		for _, fidelity := range []float32{0.5, 0.25} {
			t.Run(fmt.Sprintf("%s/%g", engine, fidelity), func(t *testing.T) {
				inputs := map[string]*runtime.Tensor{
					"x":                   cat(in["x"], in["guide"]),
					"timestep":            in["timestep"],
					"clip_text_embedding": cat(in["clip_text_embedding"], in["clip_text_embedding"]),
					"reference_fidelity":  scalar(fidelity),
				}
				args := append([]string{ipModels, "--engine", engine, "--weights", sd15Dir + "diffusers", "--input", writeTensors(t, inputs)}, ipUNetSet...)
				y := runOutputs(t, append(args, ipRefOnlySet...)...)["y"]
				near(t, fmt.Sprintf("style_%g", fidelity), 1e-4, rows(y, 0, 2), gold[fmt.Sprintf("style_%g", fidelity)])
			})
		}
	}
	// Without guidance the batch is [generation; reference] and nothing is blended: the
	// positive rows alone give what they give in the guided batch.
	t.Run("unguided", func(t *testing.T) {
		one := func(x *runtime.Tensor) *runtime.Tensor { return rows(x, 1, 2) }
		inputs := map[string]*runtime.Tensor{
			"x":                   cat(one(in["x"]), one(in["guide"])),
			"timestep":            in["timestep"],
			"clip_text_embedding": cat(one(in["clip_text_embedding"]), one(in["clip_text_embedding"])),
		}
		args := append([]string{ipModels, "--weights", sd15Dir + "diffusers", "--input", writeTensors(t, inputs)}, ipUNetSet...)
		args = append(args, "--adapter", "reference=ReferenceOnlyAttention(guided=false)", "--select", ipRefOnlySet[3])
		near(t, "unguided", 1e-5, rows(runOutputs(t, args...)["y"], 0, 1), rows(gold["style_0.5"], 1, 2))
	})
}

// Both adapters eject exactly: the module from before the injection, text-equal, without
// the inputs they added.
func TestIPAdaptersEject(t *testing.T) {
	prog, err := dsl.Load(ipModels)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	base, err := prog.Elaborate(dsl.Options{Model: "SD1UNet", Set: map[string]string{"channels": "[8,16,24,24]", "clip_embedding_dim": "8", "num_groups": "4", "batch": "4", "height": "16", "width": "24", "tokens": "77"}})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	ip, err := adapters.Inject(base, prog, adapters.Spec{Name: "ip", Adapter: "ImageCrossAttention", Class: "ScaledDotProductAttention", Pattern: "**.Residual_2.Attention.*", Params: map[string]string{"image_embedding_dim": "8"}, Scale: 1})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	both, err := adapters.Inject(ip, prog, adapters.Spec{Name: "reference", Adapter: "ReferenceOnlyAttention", Class: "ScaledDotProductAttention", Pattern: "**.CrossAttentionBlock.Residual_1.SelfAttention.*", Scale: 0.5})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	var keys []string
	for _, p := range both.Params {
		if strings.HasPrefix(p.Key, "ip_adapter.") {
			keys = append(keys, p.Key)
		}
	}
	if len(keys) != 32 || keys[0] != "ip_adapter.1.to_k_ip.weight" || keys[13] != "ip_adapter.31.to_v_ip.weight" {
		t.Errorf("IP-Adapter keys: %d, %v", len(keys), keys)
	}
	for _, name := range []string{"ip_image_tokens", "ip_scale", "reference_fidelity"} {
		if both.Input(name) == nil {
			t.Errorf("no input %s", name)
		}
	}
	for _, tc := range []struct {
		eject string
		want  *ir.Module
	}{{"reference", ip}, {"ip", nil}} {
		got, err := adapters.Eject(both, tc.eject)
		if err != nil {
			t.Fatal(err)
		}
		want := tc.want
		if want == nil { // ejecting the first re-injects the second on the base UNet
			if want, err = adapters.Inject(base, prog, adapters.Spec{Name: "reference", Adapter: "ReferenceOnlyAttention", Class: "ScaledDotProductAttention", Pattern: "**.CrossAttentionBlock.Residual_1.SelfAttention.*", Scale: 0.5}); err != nil {
				t.Fatal(err)
			}
		}
		if ir.Print(got) != ir.Print(want) {
			t.Errorf("ejecting %s does not give the module back", tc.eject)
		}
	}
	back, err := adapters.Eject(ip, "ip")
	if err != nil || ir.Print(back) != ir.Print(base) || back.Input("ip_image_tokens") != nil {
		t.Errorf("ejecting the IP-Adapter: %v", err)
	}
}

// IP-Adapter files that are not SD1.5's base or plus are refused with the file and the key.
func TestRunIPBadFiles(t *testing.T) {
	in := testutil.Tensors(t, ipDir+"unet_ip_input.safetensors")
	inputs := writeTensors(t, map[string]*runtime.Tensor{"x": in["x"], "timestep": in["timestep"], "clip_text_embedding": in["clip_text_embedding"],
		"ip_image_tokens": in["image_tokens_base"], "ip_scale": scalar(1)})
	for _, tc := range []struct{ file, want string }{
		{"ip-adapter_missing_key.safetensors", `missing weight "ip_adapter.13.to_v_ip.weight"`},
		{"ip-adapter_sdxl_layout.safetensors", `key "ip_adapter.5.to_k_ip.weight" has shape [8, 8], the model wants [16, 8]`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "y.safetensors")
			args := append([]string{"run", ipModels, "--weights", sd15Dir + "diffusers", "--weights", ipDir + "bad/" + tc.file, "--input", inputs, "--output", out}, ipUNetSet...)
			_, stderr, status := rfc(t, append(args, ipAdapterSet...)...)
			if status != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, tc.file) {
				t.Errorf("status %d, want 1 and %q:\n%s", status, tc.want, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an output file was written")
			}
		})
	}
}

// The full-size parameter counts of issue #16, from rfc tree: Refiners' CLIPImageEncoderH,
// SD1IPAdapter's ImageProjection (base) and PerceiverResampler (plus), and the image key and
// value projections the IP-Adapter adds to SD1.5's UNet (the published file's ip_adapter.N).
func TestIPParameterCounts(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"../../models/clip.rfn", "--model", "CLIPImageEncoderH"}, 632_076_800},
		{[]string{ipModels, "--model", "ImageProjection"}, 3_150_336},
		{[]string{ipModels, "--model", "PerceiverResampler"}, 29_918_208},
		{[]string{ipModels, "--model", "SD1UNet"}, 859_520_964},
		{append([]string{ipModels, "--model", "SD1UNet", "--adapter", "ip=ImageCrossAttention"}, ipAdapterSet[2:]...), 859_520_964 + 19_169_280},
	} {
		stdout, stderr, status := rfc(t, append([]string{"tree"}, tc.args...)...)
		want := fmt.Sprintf("total parameters: %d\n", tc.want)
		if status != 0 || !strings.HasSuffix(stdout, want) {
			t.Errorf("rfc tree %s: status %d, want %q at the end\n%s", strings.Join(tc.args, " "), status, want, stderr)
		}
	}
}

// ipUNet elaborates the reduced UNet for a batch, with the adapters of specs injected, and
// loads its weights from the diffusers folder and the given files.
func ipUNet(t *testing.T, batch, imageTokens int, files []string, specs ...adapters.Spec) (*ir.Module, interp.Weights) {
	t.Helper()
	prog, err := dsl.Load(ipModels)
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	set := map[string]string{"channels": "[8,16,24,24]", "clip_embedding_dim": "8", "num_groups": "4", "batch": strconv.Itoa(batch), "height": "16", "width": "24", "tokens": "77"}
	m, err := prog.Elaborate(dsl.Options{Model: "SD1UNet", Set: set, Dims: map[string]int{"image_tokens": imageTokens}})
	if err != nil {
		t.Fatal(dsl.Detail(err))
	}
	for _, s := range specs {
		if m, err = adapters.Inject(m, prog, s); err != nil {
			t.Fatal(dsl.Detail(err))
		}
	}
	opened, err := runtime.OpenWeights(append([]string{sd15Dir + "diffusers"}, files...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.CloseAll(opened)
	w, err := adapters.Weights(m, nil, opened...)
	if err != nil {
		t.Fatal(err)
	}
	return m, w
}

// The three DDIM steps of sd15_ip.py's runs (guidance 7.5, the negative half first), with
// the UNet adapted at the model level: the IP-Adapter's tokens the same at every step;
// reference-only's guide the reference latents noised to each step with that step's noise.
// The program's runs (sd15 generate --noise) are checked in cmd/sd15 against the goldens of
// scripts/golden/sd15_pipeline_ip.py, which drives the same models through the pipeline.
func TestIPDenoiseRuns(t *testing.T) {
	in := testutil.Tensors(t, ipDir+"run_input.safetensors")
	gold := testutil.Tensors(t, ipDir+"run_output.safetensors")
	ipSpec := adapters.Spec{Name: "ip", Adapter: "ImageCrossAttention", Class: "ScaledDotProductAttention", Pattern: "**.Residual_2.Attention.*", Params: map[string]string{"image_embedding_dim": "8"}, Scale: 1}
	refSpec := adapters.Spec{Name: "reference", Adapter: "ReferenceOnlyAttention", Class: "ScaledDotProductAttention", Pattern: "**.CrossAttentionBlock.Residual_1.SelfAttention.*", Scale: 0.5}
	for _, kind := range []string{"plain", "base", "plus", "refonly"} {
		t.Run(kind, func(t *testing.T) {
			batch, tokens, files, specs := 2, 4, []string(nil), []adapters.Spec(nil)
			switch kind {
			case "base", "plus":
				tokens = in["image_tokens_"+kind].Shape[1]
				files = []string{ipDir + map[string]string{"base": "ip-adapter_sd15.safetensors", "plus": "ip-adapter-plus_sd15.safetensors"}[kind]}
				specs = []adapters.Spec{ipSpec}
			case "refonly":
				batch, specs = 4, []adapters.Spec{refSpec}
			}
			m, w := ipUNet(t, batch, tokens, files, specs...)
			s, err := solvers.New("ddim", 3, solvers.Params{})
			if err != nil {
				t.Fatal(err)
			}
			x := append([]float32(nil), in["noise"].F32...)
			n := len(x)
			text := in["clip_text_embedding"]
			if batch == 4 {
				text = cat(text, text)
			}
			ref := in["reference_latents"].F32
			for step := range s.NumSteps() {
				inputs := map[string]*runtime.Tensor{"timestep": scalar(float32(s.Timesteps()[step])), "clip_text_embedding": text}
				inputs["timestep"].Shape = []int{1}
				rowsIn := append(append([]float32(nil), x...), x...)
				if kind == "refonly" {
					guide := make([]float32, 2*n)
					noise := in["reference_noise"].F32[step*2*n : (step+1)*2*n]
					for h := range 2 {
						if err := s.AddNoise(guide[h*n:(h+1)*n], ref, noise[h*n:(h+1)*n], step); err != nil {
							t.Fatal(err)
						}
					}
					rowsIn = append(rowsIn, guide...)
				}
				inputs["x"] = runtime.FromF32(rowsIn, batch, 4, 16, 24)
				if kind == "base" || kind == "plus" {
					inputs["ip_image_tokens"] = in["image_tokens_"+kind]
				}
				outs, err := interp.Run(m, w, adapters.ScalarInputs(m, inputs))
				if err != nil {
					t.Fatal(err)
				}
				eps := make([]float32, n)
				for i := range eps {
					uncond, cond := outs[0].F32[i], outs[0].F32[n+i]
					eps[i] = uncond + float32(7.5*float32(cond-uncond))
				}
				if err := s.Step(x, eps, step, nil); err != nil {
					t.Fatal(err)
				}
			}
			near(t, kind+" final latents", 1e-4, runtime.FromF32(x, 1, 4, 16, 24), gold[kind])
		})
	}
}
