package sd15

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rfc-project/rfc/internal/testutil"

	"github.com/rfc-project/rfc/runtime"
)

const ipDir = reduced + "ip/"

// Every set of models has its IP-Adapter and reference-only models.
func TestAdapterSetsCoverModelSets(t *testing.T) {
	for _, set := range modelSets {
		a := adapterSets[set.name]
		if a == nil {
			t.Fatalf("no adapterSet for %q", set.name)
		}
		if len(a.unetIPSpecs) <= len(set.unetSpecs) || len(a.unetRefSpecs) != len(set.unetSpecs) || len(a.unetIPRefSpecs) != len(a.unetIPSpecs) {
			t.Errorf("%s: the adapted UNets' weights do not add up", set.name)
		}
	}
}

// tsvRows reads a key table of scripts/golden/sd15_ip.py (written from the full-size
// PyTorch models at their published names).
func tsvRows(t *testing.T, name string) [][]string {
	f, err := os.Open(ipDir + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := s.Text(); line != "" && !strings.HasPrefix(line, "#") {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

func dims(s string) []int {
	var out []int
	for _, d := range strings.Split(s, ",") {
		n, _ := strconv.Atoi(d)
		out = append(out, n)
	}
	return out
}

// writeHeaderOnly writes a safetensors file of float16 tensors with these shapes whose data
// is a hole (a sparse file): the keys and shapes of a full-size file at no cost.
func writeHeaderOnly(t *testing.T, path string, shapes map[string][]int) {
	header := map[string]any{}
	off := 0
	for _, k := range slices.Sorted(maps.Keys(shapes)) {
		n := 2
		for _, d := range shapes[k] {
			n *= d
		}
		header[k] = map[string]any{"dtype": "F16", "shape": shapes[k], "data_offsets": []int{off, off + n}}
		off += n
	}
	js, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := binary.Write(f, binary.LittleEndian, uint64(len(js))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(js); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(8 + len(js) + off)); err != nil {
		t.Fatal(err)
	}
}

// TestFullSizeIPAdapterFiles: the full-size packages accept the published files' keys and
// shapes — ip-adapter_sd15, ip-adapter-plus_sd15 and IP-Adapter's image_encoder
// (transformers' CLIPVisionModelWithProjection, position_ids included) — as the PyTorch
// side lists them (keys_image_*.tsv, ip_cross_attentions.tsv), and tell base from plus.
func TestFullSizeIPAdapterFiles(t *testing.T) {
	set := adapterSets[modelSets[0].name]
	dir := t.TempDir()
	cross := map[string][]int{}
	for _, r := range tsvRows(t, "ip_cross_attentions.tsv") {
		for _, kv := range []string{"k", "v"} {
			cross[fmt.Sprintf("ip_adapter.%s.to_%s_ip.weight", r[0], kv)] = dims(r[5])
		}
	}
	if len(cross) != 32 {
		t.Fatalf("%d image cross-attention tensors", len(cross))
	}
	for _, kind := range []string{"base", "plus"} {
		shapes := maps.Clone(cross)
		for _, r := range tsvRows(t, "keys_image_proj_"+kind+".tsv") {
			shapes[r[1]] = dims(r[3])
		}
		path := filepath.Join(dir, kind+".safetensors")
		writeHeaderOnly(t, path, shapes)
		files, err := runtime.OpenWeights(path)
		if err != nil {
			t.Fatal(err)
		}
		a := &adapted{ipFiles: files}
		if err := ipAdapterKind(path, a); err != nil || a.kind != kind {
			t.Errorf("%s: told as %q (%v)", kind, a.kind, err)
		}
		specs, _ := set.ipFileSpecs(kind, modelSets[0].unetSpecs)
		if _, err := runtime.LocateWeights("IP-Adapter", specs, files...); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
		runtime.CloseAll(files)
	}
	shapes := map[string][]int{}
	for _, r := range tsvRows(t, "keys_image_encoder.tsv") {
		shapes[r[1]] = dims(r[3])
	}
	if len(shapes) != 520 {
		t.Fatalf("%d image encoder tensors", len(shapes))
	}
	path := filepath.Join(dir, "model.safetensors")
	writeHeaderOnly(t, path, shapes)
	files, err := runtime.OpenWeights(path)
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.CloseAll(files)
	if _, err := runtime.LocateWeights("CLIPImageEncoderH", set.encoderSpecs, files...); err != nil {
		t.Error(err)
	}
}

// TestIPPipeline loads the reduced model with the IP-Adapter plus and reference-only
// control through the library: the golden of both together matches; a request without an
// image prompt on an IP-Adapter pipeline is the plain pipeline's image bit for bit; the
// requests a pipeline was not loaded for are refused by name.
func TestIPPipeline(t *testing.T) {
	golden := testutil.Tensors(t, goldens+"ip/ip_plus_reference.safetensors", "x", "reference_noise", "latents")
	x, refNoise, want := golden["x"], golden["reference_noise"], golden["latents"]
	astronaut, err := OpenImage("../../testdata/images/astronaut.png")
	if err != nil {
		t.Fatal(err)
	}
	coffee, err := OpenImage("../../testdata/images/coffee.png")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{IPAdapter: ipDir + "ip-adapter-plus_sd15.safetensors", ImageEncoder: ipDir + "image_encoder", ReferenceOnly: true}
	p, err := Load(reduced+"single-file.safetensors", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	n := len(x.F32)
	req := Request{Prompt: "a photograph of an astronaut riding a horse", Steps: 3, Solver: "ddim", Noise: x.F32,
		ImagePrompt: &ImagePrompt{Image: astronaut, Scale: 1}, Reference: &Reference{Image: coffee, Fidelity: 0.6}}
	for k := range 3 {
		req.ReferenceNoise = append(req.ReferenceNoise, refNoise.F32[k*2*n:(k+1)*2*n])
	}
	res, err := p.Generate(req)
	if err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelDiff(res.Latents, want.F32); e > 1e-3 {
		t.Errorf("latents differ from PyTorch's by %.2e of their largest value", e)
	}
	noRef := req
	noRef.Reference = nil
	if _, err := p.Generate(noRef); err == nil || !strings.Contains(err.Error(), "give Request.Reference") {
		t.Errorf("a request without a reference on a reference-only pipeline: %v", err)
	}

	ip, err := Load(reduced+"single-file.safetensors", Options{IPAdapter: opts.IPAdapter, ImageEncoder: opts.ImageEncoder})
	if err != nil {
		t.Fatal(err)
	}
	defer ip.Close()
	plain, err := Load(reduced+"single-file.safetensors", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	bare := Request{Prompt: "a cat", Steps: 2, Seed: 9}
	a, err := ip.Generate(bare)
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.Generate(bare)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Latents, b.Latents) {
		t.Error("an IP-Adapter pipeline without an image prompt differs from the plain pipeline")
	}
	for _, c := range []struct {
		p    *Pipeline
		r    Request
		want string
	}{
		{plain, Request{Prompt: "x", ImagePrompt: &ImagePrompt{Image: coffee, Scale: 1}}, "needs a pipeline loaded with an IP-Adapter"},
		{plain, Request{Prompt: "x", Reference: &Reference{Image: coffee, Fidelity: 0.5}}, "needs a pipeline loaded with Options.ReferenceOnly"},
		{ip, Request{Prompt: "x", ImagePrompt: &ImagePrompt{Scale: 1}}, "has no image"},
		{p, Request{Prompt: "x", Reference: &Reference{Image: coffee, Fidelity: 2}}, "fidelity 2"},
		{p, Request{Prompt: "x", Reference: &Reference{Image: coffee}, ReferenceNoise: [][]float32{{1}}}, "reference noise 0 has 1 values, want 512"},
		{ip, Request{Prompt: "x", ControlNets: []ControlNet{{Path: controlWeights + "controlnet_a/single-file.safetensors", Condition: coffee, Scale: 1}}}, "do not combine with an IP-Adapter"},
	} {
		if _, err := c.p.Generate(c.r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
	if _, err := Load(reduced+"single-file.safetensors", Options{IPAdapter: opts.IPAdapter}); err == nil || !strings.Contains(err.Error(), "give Options.ImageEncoder") {
		t.Errorf("an IP-Adapter without its encoder: %v", err)
	}
}
