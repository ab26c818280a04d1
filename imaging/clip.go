package imaging

import (
	"fmt"

	"github.com/rfc-project/rfc/runtime"
)

// CLIP's normalization (openai/CLIP), the defaults of Refiners' IPAdapter.preprocess_image.
var (
	CLIPMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	CLIPStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// CLIPInput prepares an RGB image for CLIP's image encoder as Refiners' IPAdapter
// .preprocess_image does: resized to size×size with no crop (the aspect ratio is not kept;
// PIL's bicubic, as Resize), ToTensor's [0, 1] values, then (x − mean) / std per channel in
// float32, a subtraction then a division as PyTorch computes them. The original IP-Adapter
// resizes the short side and crops the center (transformers' CLIPImageProcessor); Refiners
// does not, and neither does this. The result is [1, 3, size, size].
func CLIPInput(m *Image, size int) (*runtime.Tensor, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if m.Channels != 3 {
		return nil, fmt.Errorf("CLIP's image encoder takes an RGB image, got %d channel(s)", m.Channels)
	}
	resized, err := Resize(m, size, size)
	if err != nil {
		return nil, err
	}
	t, err := ToTensor(resized, Unit)
	if err != nil {
		return nil, err
	}
	plane := size * size
	for c := range 3 {
		for i, v := range t.F32[c*plane : (c+1)*plane] {
			t.F32[c*plane+i] = float32(v-CLIPMean[c]) / CLIPStd[c]
		}
	}
	return t, nil
}
