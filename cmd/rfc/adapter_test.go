package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/runtime"
)

// loraGolden reads scripts/golden/lora.py's outputs, the ViT settings and LoRA scales.
func loraGolden(t *testing.T) (set []string, scales map[string]string, outputs map[string]*runtime.Tensor) {
	t.Helper()
	f, err := runtime.OpenSafetensors(goldenDir + "lora_output.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta := f.Metadata()
	var cfg map[string]int
	if err := json.Unmarshal([]byte(meta["config"]), &cfg); err != nil {
		t.Fatal(err)
	}
	set = []string{"--model", "ViT"}
	for k, v := range cfg {
		set = append(set, "--set", k+"="+strconv.Itoa(v))
	}
	scales = map[string]string{"a": meta["scale_a"], "b": meta["scale_b"], "c": meta["scale_c"]}
	outputs = map[string]*runtime.Tensor{}
	for _, n := range f.Names() {
		outputs[n], _ = f.Tensor(n)
	}
	return set, scales, outputs
}

// runLora runs the golden ViT with extra flags and returns y.
func runLora(t *testing.T, set []string, extra ...string) *runtime.Tensor {
	t.Helper()
	out := filepath.Join(t.TempDir(), "y.safetensors")
	args := append([]string{"run", "../../models/vit.rfn"}, set...)
	args = append(args, extra...)
	args = append(args, "--weights", goldenDir+"lora_weights.safetensors", "--input", goldenDir+"lora_input.safetensors", "--output", out)
	_, stderr, status := rfc(t, args...)
	if status != 0 {
		t.Fatalf("rfc %s: status %d\n%s", strings.Join(args, " "), status, stderr)
	}
	return readY(t, out)
}

// Two stacked LoRAs (kohya file, PEFT directory) against PyTorch, unmerged and merged.
func TestRunLoraStacked(t *testing.T) {
	set, scales, outputs := loraGolden(t)
	loras := []string{"--lora", goldenDir + "lora_a_kohya.safetensors:" + scales["a"], "--lora", "b=" + goldenDir + "lora_b_peft:" + scales["b"]}
	unmerged := runLora(t, set, loras...)
	merged := runLora(t, set, append(loras, "--merge")...)
	for name, y := range map[string]*runtime.Tensor{"unmerged": unmerged, "merged": merged} {
		d, s := maxDiff(t, y, outputs["y_ab"])
		t.Logf("%s: max|Δ| vs torch %.3g (max|ref| %.3g)", name, d, s)
		if d > 1e-4*s {
			t.Errorf("%s: max|Δ| = %g > 1e-4 × %g", name, d, s)
		}
	}
	if d, _ := maxDiff(t, merged, unmerged); d > 1e-5 {
		t.Errorf("merged and unmerged differ by %g > 1e-5", d)
	}
}

// The same LoRA in kohya and PEFT naming gives the same output; scale 0 gives the base's.
func TestRunLoraNamingsAndScale(t *testing.T) {
	set, _, outputs := loraGolden(t)
	kohya := runLora(t, set, "--lora", "x="+goldenDir+"lora_a_kohya.safetensors:0.7")
	peft := runLora(t, set, "--lora", "x="+goldenDir+"lora_a_peft:0.7")
	if !slices.Equal(kohya.F32, peft.F32) {
		d, _ := maxDiff(t, kohya, peft)
		t.Errorf("kohya and PEFT files differ by %g", d)
	}
	base := runLora(t, set)
	if d, s := maxDiff(t, base, outputs["y_base"]); d > 1e-4*s {
		t.Fatalf("base differs from torch by %g", d)
	}
	zero := runLora(t, set, "--lora", goldenDir+"lora_a_kohya.safetensors:0", "--lora", goldenDir+"lora_c_kohya.safetensors:0")
	if !slices.Equal(zero.F32, base.F32) {
		d, _ := maxDiff(t, zero, base)
		t.Errorf("scale 0 differs from the base by %g", d)
	}
	if d, _ := maxDiff(t, kohya, base); d < 1e-3 {
		t.Errorf("the LoRA changes nothing (Δ %g): the test could not fail", d)
	}
}

func TestTreeLora(t *testing.T) {
	set, _, _ := loraGolden(t)
	args := append([]string{"tree", "../../models/vit.rfn"}, set...)
	stdout, stderr, status := rfc(t, append(args, "--lora", goldenDir+"lora_a_kohya.safetensors", "--lora", "conv="+goldenDir+"lora_c_kohya.safetensors:0.5")...)
	if status != 0 {
		t.Fatalf("status %d\n%s", status, stderr)
	}
	for _, want := range []string{
		"├── Conv2dLora(rank=2, alpha=1.5) [adapter conv]",
		"(×3) LinearLora_1 … LinearLora_3: LinearLora(rank=3, alpha=2.0) [adapter lora_a_kohya]",
		"MultiplyInput(input=\"lora_a_kohya_scale\")",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("tree lacks %q:\n%s", want, stdout)
		}
	}
}

// rfc ir: an adapter of the language chosen by --adapter and --select; --merge folds it.
func TestIRAdapterFlags(t *testing.T) {
	set, _, _ := loraGolden(t)
	args := append([]string{"ir", "../../models/vit.rfn"}, append(set, "--set", "batch=2")...)
	stdout, stderr, status := rfc(t, append(args, "--adapter", "x=LinearLora(rank=2, alpha=4):0.5", "--select", "Linear@**.Attention.Distribute.*")...)
	if status != 0 {
		t.Fatalf("status %d\n%s", status, stderr)
	}
	if n := strings.Count(stdout, `adapter "x"`); n != 6 {
		t.Errorf("%d adapter scopes, want 6 (3 per layer)", n)
	}
	if !strings.Contains(stdout, "input %x_scale: f32[]") || !strings.Contains(stdout, "scale=2.0") {
		t.Errorf("want the scale input and alpha/rank = 2:\n%s", stdout)
	}
	stdout, stderr, status = rfc(t, append(args, "--adapter", "x=LinearLora(rank=2, alpha=4):0.5", "--select", "Linear@**.Attention.Distribute.*", "--merge")...)
	if status != 0 {
		t.Fatalf("status %d\n%s", status, stderr)
	}
	if strings.Contains(stdout, "%x_scale") || strings.Count(stdout, "= matmul(") != 6 || strings.Contains(stdout, "= scale(") {
		t.Errorf("want the merged form (alpha/rank·scale = 1):\n%s", stdout)
	}
}

func TestLoraFlagErrors(t *testing.T) {
	set, _, _ := loraGolden(t)
	out := filepath.Join(t.TempDir(), "y.safetensors")
	run := func(extra ...string) (string, int) {
		args := append([]string{"run", "../../models/vit.rfn"}, set...)
		args = append(args, extra...)
		args = append(args, "--weights", goldenDir+"lora_weights.safetensors", "--input", goldenDir+"lora_input.safetensors", "--output", out)
		_, stderr, status := rfc(t, args...)
		return stderr, status
	}
	cases := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"select first", []string{"--select", "**", "--lora", goldenDir + "lora_a_kohya.safetensors"}, 2, []string{"--select applies to the --lora or --adapter before it"}},
		{"no such file", []string{"--lora", goldenDir + "nope.safetensors"}, 1, []string{"nope.safetensors"}},
		{"select narrower than the file", []string{"--lora", goldenDir + "lora_a_kohya.safetensors", "--select", "Linear@Chain_1.**.Distribute.*"}, 1,
			[]string{"lora_vit_Chain_1_Residual_1_Attention_Linear (", "lora_vit_Chain_2_Residual_1_Attention_Distribute_Linear_3 (", "matches no layer"}},
		{"select wider than the file", []string{"--lora", goldenDir + "lora_c_kohya.safetensors", "--select", "**"}, 1,
			[]string{`layer Chain_2.Chain.Linear_2 (key "Chain_2.Chain.Linear_2"), selected by "**", has no weights in the file`}},
		{"pattern selects nothing", []string{"--adapter", "x=LinearLora", "--select", "Linear@**.Atention.**"}, 1, []string{`no Linear layer matches "**.Atention.**"; nearest paths:`}},
		{"adapter weights missing", []string{"--adapter", "x=LinearLora(rank=2)", "--select", "**.Attention.Linear"}, 1, []string{`missing weight "x.Chain_1.Residual_1.Attention.Linear.down.weight"`}},
		{"same name twice", []string{"--lora", "a=" + goldenDir + "lora_a_kohya.safetensors", "--lora", "a=" + goldenDir + "lora_b_peft"}, 1, []string{"already has an adapter named a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stderr, status := run(c.args...)
			if status != c.status {
				t.Errorf("status %d, want %d\n%s", status, c.status, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("output written despite the error")
			}
		})
	}
}

// The compiled engine gives the interpreter's outputs with LoRAs, unmerged (scale inputs)
// and merged (weights computed from parameters).
func TestRunLoraCompiledMatchesInterp(t *testing.T) {
	needGo(t)
	set, scales, _ := loraGolden(t)
	loras := []string{"--lora", "a=" + goldenDir + "lora_a_kohya.safetensors:" + scales["a"], "--lora", "b=" + goldenDir + "lora_b_peft:" + scales["b"],
		"--lora", "c=" + goldenDir + "lora_c_kohya.safetensors:" + scales["c"]}
	for _, mode := range []string{"unmerged", "merged"} {
		t.Run(mode, func(t *testing.T) {
			extra := loras
			if mode == "merged" {
				extra = append(slices.Clone(loras), "--merge")
			}
			want := runLora(t, set, extra...)
			got := runLora(t, set, append(slices.Clone(extra), "--engine", "compiled")...)
			if !slices.Equal(got.F32, want.F32) {
				d, _ := maxDiff(t, got, want)
				t.Errorf("compiled and interpreted outputs differ: max|Δ| = %g", d)
			}
		})
	}
}

// TestFileAdapterFlags: --lora and --controlnet read [NAME=]PATH[:SCALE] alike.
func TestFileAdapterFlags(t *testing.T) {
	for _, c := range []struct {
		v, name, path string
		scale         float64
		err           string
	}{
		{v: "dir/style.safetensors", name: nameFromPath("dir/style.safetensors"), path: "dir/style.safetensors", scale: 1},
		{v: "a=dir/style.safetensors:0.5", name: "a", path: "dir/style.safetensors", scale: 0.5},
		{v: "dir/x=y.safetensors:2", name: nameFromPath("dir/x=y.safetensors"), path: "dir/x=y.safetensors", scale: 2},
		{v: "a=c:/w.safetensors", name: "a", path: "c:/w.safetensors", scale: 1},
		{v: "a=:0.5", err: "wants [NAME=]PATH[:SCALE], got \"a=:0.5\""},
	} {
		for _, which := range []string{"lora", "controlnet"} {
			var af adapterFlags
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			af.register(fs)
			err := fs.Set(which, c.v)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), "--"+which+" "+c.err) {
					t.Errorf("--%s %s: got %v, want an error with %q", which, c.v, err, c.err)
				}
				continue
			}
			if err != nil || len(af.reqs) != 1 {
				t.Fatalf("--%s %s: %v, %d requests", which, c.v, err, len(af.reqs))
			}
			r := af.reqs[0]
			if r.name != c.name || r.path != c.path || r.scale != c.scale || r.lora != (which == "lora") || r.controlNet != (which == "controlnet") || r.flag != "--"+which+" "+c.v {
				t.Errorf("--%s %s: got %+v", which, c.v, *r)
			}
		}
	}
}
