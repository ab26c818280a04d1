// Package sd15 is Stable Diffusion 1.5 text-to-image and image-to-image as a Go library:
// load a checkpoint once, generate many images. It is the pipeline of Refiners'
// StableDiffusion_1 on the models of models/sd15.rfn compiled ahead of time by rfc (the
// packages under internal/, kept current by go generate ./pipeline/sd15/...), so it links
// only rfc's runtime, kernels and its own packages, never the compiler. The command sd15
// (cmd/sd15) is a thin shell over it.
//
// The steps, as Refiners takes them:
//
//  1. The prompt and the negative prompt are tokenized (package tokenizer, OpenAI CLIP's
//     tokenizer, 77 ids) and encoded by CLIP's text encoder.
//  2. The initial noise [1, 4, H/8, W/8] comes from Request.Noise or from the seed
//     (solvers.NoiseSource: SplitMix64 and Box–Muller, documented there so that other
//     implementations can reproduce it). For image-to-image the image is resized to the
//     output size (PIL's bicubic, package imaging), encoded by the autoencoder and noised
//     to the first step, round((1 − strength)·(steps − 1)).
//  3. Each step runs the UNet once: with classifier-free guidance on a batch of two, the
//     negative prompt's half first, and takes uncond + scale·(cond − uncond); a guidance
//     scale of 1 runs the prompt's half alone. The solver (package solvers: dpm, ddim,
//     euler, lcm) advances the latents; LCM's fresh noise continues the seed's stream.
//  4. The autoencoder decodes the latents and the image is converted to 8 bits as
//     Refiners' tensor_to_image does: (x + 1)/2, clamped, times 255, truncated.
//
// Checkpoints load as published, in any of three layouts: the single file
// (v1-5-pruned-emaonly.safetensors, community fine-tunes), a diffusers folder, or a folder
// of Refiners' converted files; float16, bfloat16 and float32 tensors all load (computed
// in float32). LoRAs in the community namings (kohya/sd-webui names derived from the
// diffusers or the LDM module paths, diffusers/PEFT names) are merged into the UNet's and
// the text encoder's weights as they load (package lora), so a LoRA costs nothing per
// step; several stack.
//
// Image prompts and reference images (ipadapter.go, reference.go), as Refiners'
// SD1IPAdapter and ReferenceOnlyControlAdapter run them:
//
//   - IP-Adapter: Options.IPAdapter (ip-adapter_sd15 or ip-adapter-plus_sd15, told apart by
//     their tensors) with Options.ImageEncoder (CLIP ViT-H/14, a file or IP-Adapter's
//     image_encoder folder); Request.ImagePrompt gives the image and its scale. The image is
//     resized to 224×224 without a crop and normalized (imaging.CLIPInput); base projects
//     the encoder's embedding to 4 tokens, plus resamples its penultimate states to 16. The
//     guidance's negative half gets the tokens of a zero embedding (base) or of zero pixels
//     (plus). The UNet is the one with the image cross-attentions (models/ip_adapter.rfn
//     compiled with ImageCrossAttention); a request without an image prompt runs it at scale
//     0, which is the plain UNet's result bit for bit.
//   - Reference-only: Options.ReferenceOnly compiles in the UNet with ReferenceOnlyAttention;
//     every request then gives Request.Reference (the image and Refiners' style_cfg). The
//     image, resized to the output size and encoded, is noised to each step
//     (Request.ReferenceNoise, or the seed's stream) and goes through the UNet with the
//     generation in one call of four rows: the generation's two halves, then the
//     reference's, whose self-attention tokens the generation's also attend to.
//   - Both together use the UNet with both adapters; the reference's rows get the same image
//     tokens (Refiners' order: the IP-Adapter injected first).
//
// Without guidance (Guidance 1) the IP-Adapter takes the image's tokens alone and
// reference-only blends nothing: Refiners always runs both halves, and this batch of one
// computes what their positive half does. Memory: the image encoder adds 2.5 GB (float32), the
// projection 13 MB (base) or 120 MB (plus); the adapted UNet replaces the plain one.
//
// ControlNets and T2I-Adapters (Request.ControlNets, Request.T2IAdapters; any number of
// both, with LoRAs) guide the image by condition images as Refiners' SD1ControlnetAdapter
// and SD1T2IAdapter do. The condition is resized to the output size (PIL's bicubic) and
// given in [0, 1] (image_to_tensor), one for both halves of the guided batch. They run apart
// from the UNet, as compiled packages of their own: each ControlNet (models/controlnet.rfn's
// SD1Controlnet) once per step on the UNet's inputs, its 13 residuals times its scale summed
// in Refiners' order (the ControlNet given last first); each T2I-Adapter's encoder
// (models/t2i_adapter.rfn) once per request, its 4 feature maps times its scale summed. The
// sums are inputs of a second compiled UNet (ControlInputs): the first request with control
// loads it in place of the plain UNet, which it replaces for every later request (with zero
// inputs it computes the plain UNet's output bit for bit). ControlNets stay loaded by path
// until Close (1.4 GB each at full size); a T2I-Adapter's encoder is loaded for its request.
// The ControlNet and T2I-Adapter files are read by package control/checkpoint: a ControlNet's
// single file (control_v11p_sd15_*), diffusers folder or Refiners file; a T2I-Adapter's
// TencentARC file, diffusers folder or Refiners file (full on RGB or one-channel
// conditions, or light).
// ControlNets and T2I-Adapters do not combine with an IP-Adapter or reference-only control
// yet: no compiled UNet takes both kinds of inputs.
//
// PNG files written by Result.WritePNG carry the parameters in a "parameters" text chunk
// in sd-webui's format (prompt, negative prompt, steps, sampler, CFG scale, seed, size,
// model), so that existing tools show them.
//
// Sizes: the UNet and the autoencoder are compiled with their batch and image sizes
// chosen at run time, so any width and height that are multiples of 8 work (512×512 by
// default); each new size plans its activation memory once. The reduced SD1.5 of the tests
// (testdata/sd15, random weights, 64×64 by default) is a second compiled set: a checkpoint
// is matched against both by its tensors' names and shapes.
//
// Memory: the linear and convolution weights stay in the checkpoint's precision when it
// holds them exactly (a float16 checkpoint: 1.7 GB for the UNet, packed for the kernels),
// others are float32 (a float32 checkpoint: 3.4 GB for the UNet, 0.5 GB for the text
// encoder, 0.2 GB for the decoder); plus the activations planned for each size met (at
// 512×512: 0.1 GB for the UNet with guidance, 0.7 GB for the decoder) and the kernels'
// scratch (0.6 GB for the decoder at 512×512). From the float16 single file a guided
// 512×512 generation peaks at 3.5 to 3.7 GB resident. The first image-to-image request
// adds the encoder (0.14 GB in float32, and 0.5 GB of activations at 512×512). The
// checkpoint's pages do not stay resident once read (runtime releases them).
package sd15
