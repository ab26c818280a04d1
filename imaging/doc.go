// Package imaging prepares condition images for ControlNet, T2I-Adapter and IP-Adapter the
// way the Python tools people compare against do, bit for bit on 8-bit images:
//
//   - Canny: OpenCV's cv2.Canny (aperture 3, L1 gradient), the edge detector of the canny
//     ControlNet preprocessors, on one- or three-channel images; an edge map of 0 and 255.
//   - GaussianBlur: OpenCV's cv2.GaussianBlur with its default border (BORDER_REFLECT_101),
//     the optional smoothing some pipelines apply before Canny. OpenCV's Canny itself does
//     not blur, and neither do the ControlNet annotator nor diffusers' examples.
//   - Resize: PIL's Image.resize with its default filter (BICUBIC, antialiased when
//     shrinking), which is what Refiners uses to bring an image to the size it generates.
//   - ToTensor: Refiners' image_to_tensor, a [1, C, H, W] float32 tensor in [0, 1], or in
//     [-1, 1] as the autoencoder takes it.
//   - ControlImage: an edge map as the three-channel image ControlNet expects.
//   - CLIPInput: an image as CLIP's image encoder takes it for IP-Adapter, as Refiners
//     prepares it (resized to a square without cropping, CLIP's mean and std).
//
// Images are Image values: 8-bit, interleaved, one or three channels, as NumPy arrays
// from PIL are. Load and Save read and write PNG and JPEG through runtime.LoadImage and
// runtime.SaveImage; FromTensor and ToTensor convert to and from runtime tensors.
//
// # A canny condition
//
// As the ControlNet annotator does, resize the photo to the generated size first, then
// detect edges (resizing an edge map would blur its one-pixel lines):
//
//	photo, err := imaging.Load("in.png")
//	photo, err = imaging.Resize(photo, 512, 768) // width, height of the output
//	edges, err := imaging.Canny(photo, 100, 200) // optionally GaussianBlur(photo, 5, 0) first
//	err = imaging.Save("canny.png", edges)
//	rgb, err := imaging.ControlImage(edges)
//	cond, err := imaging.ToTensor(rgb, imaging.Unit) // [1, 3, 768, 512], the ControlNet condition
//
// # Sources and exactness
//
// The algorithms are transcribed (maths, not code) from OpenCV 4.x
// (modules/imgproc/src/canny.cpp: parallelCanny and the global hysteresis;
// smooth.dispatch.cpp: getGaussianKernelBitExact, getGaussianKernelFixedPoint_ED,
// GaussianBlur's 8-bit fixed-point path; core/src/softfloat.cpp: f64_exp) and Pillow
// (src/libImaging/Resample.c: precompute_coeffs, normalize_coeffs_8bpc, the 8-bit passes;
// PIL/Image.py: resize's default filter). Refiners' side: refiners/fluxion/utils.py
// (image_to_tensor), refiners/foundationals/latent_diffusion/model.py
// (LatentDiffusionModel.init_latents: init_image.resize(size=(width, height))), and the
// adapting-SDXL guide, which resizes its T2I-Adapter condition the same way before
// image_to_tensor; Refiners' ControlNet and T2I-Adapter classes take the tensor as given.
// Refiners asks for Pillow ≥ 10.4, whose Resample.c computes 8-bit images as 9.4 does.
//
// scripts/golden/imaging.py runs OpenCV 4.6 and Pillow 9.4 (Debian's python3-opencv and
// python3-pil) on the repository's photos and on small synthetic images (1×1 up to 64×40,
// uniform noise, smooth noise, few-level blocks that tie gradients); the tests require
// every pixel equal. OpenCV's kernels are also compared as doubles, bit for bit, which is
// why its own exp is transcribed: math.Exp differs from it in the last bit.
//
// Differences from the Python functions: Canny rejects low > high (OpenCV swaps them) and
// negative or non-finite thresholds; GaussianBlur takes one size and one sigma for both
// directions; Load decodes JPEG with Go's decoder, which may differ from libjpeg by a level.
package imaging
