"""Goldens for imaging/: OpenCV's Canny and GaussianBlur, PIL's resize, Refiners' image_to_tensor.

Run with Debian's Python (python3-opencv 4.6, python3-pil 9.4, python3-torch, numpy):

    /usr/bin/python3 scripts/golden/imaging.py

The Go package must reproduce every output here bit for bit (0 differing pixels). It writes
into imaging/testdata/:

  golden.json            the manifest: versions, photo cases (PNG file or SHA-256 of the raw
                         HWC bytes), the small synthetic cases' parameters
  canny_*.png            cv2.Canny edge maps of the repository's photos (testdata/images/,
                         loaded by PIL as RGB, the array the ControlNet annotator gets),
                         some after cv2.GaussianBlur
  resize_*.png           PIL Image.resize of the photos, default filter (BICUBIC)
  small.safetensors      synthetic cases, U8 unless said:
                           input/I             the synthetic images, [H,W,C]
                           canny/N             cv2.Canny of input "input" of case N, [H,W]
                           blur/N              cv2.GaussianBlur, [H,W,C]
                           resize/N            PIL resize, [H,W,C]
                           kernel/N            cv2.getGaussianKernel(n, sigma, CV_64F) as I64 bits
                           tensor/{rgb,gray}   the inputs, [H,W,C]
                           tensor/{rgb,gray}/{unit,signed}  F32: image_to_tensor, and ×2-1

Photos decode identically in PIL and Go (8-bit PNG), so Go reads the same pixels.
"""

import hashlib
import json
import os
import sys

import cv2
import numpy as np
import PIL
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PHOTOS = os.path.join(ROOT, "testdata", "images")
OUT = os.path.join(ROOT, "imaging", "testdata")

CANNY_THRESHOLDS = [(100, 200), (50, 150), (150, 300)]
# (ksize, sigma) as cv2.GaussianBlur(img, (ksize, ksize), sigma) takes them.
BLURS_BEFORE_CANNY = [(5, 0), (7, 1.4)]
PHOTO_BLURS = [(3, 0), (5, 0), (9, 0), (7, 1.4), (0, 2.0), (15, 3.3)]
# (width, height); stored as PNG when small, as a SHA-256 digest when large.
PHOTO_RESIZES = {
    "astronaut": [(200, 136), (512, 768), (96, 96)],
    "coffee": [(300, 200), (768, 512), (600, 512), (1000, 301)],
}
PNG_RESIZE_MAX_PIXELS = 64 * 1024


def load_photo(name):
    return np.array(Image.open(os.path.join(PHOTOS, name + ".png")).convert("RGB"))


def digest(arr):
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def save_png(name, arr):
    Image.fromarray(arr).save(os.path.join(OUT, name), "PNG", optimize=True)


def blur(img, ksize, sigma):
    return cv2.GaussianBlur(img, (ksize, ksize), sigma)


def photo_cases():
    cases = {"canny": [], "blur": [], "resize": []}
    for name in ("astronaut", "coffee"):
        img = load_photo(name)
        for low, high in CANNY_THRESHOLDS:
            out = f"canny_{name}_{low}_{high}.png"
            save_png(out, cv2.Canny(img, low, high))
            cases["canny"].append({"image": name, "low": low, "high": high, "file": out})
        for ksize, sigma in BLURS_BEFORE_CANNY:
            low, high = CANNY_THRESHOLDS[0]
            out = f"canny_{name}_blur{ksize}s{sigma:g}_{low}_{high}.png"
            save_png(out, cv2.Canny(blur(img, ksize, sigma), low, high))
            cases["canny"].append(
                {"image": name, "low": low, "high": high, "blur": {"ksize": ksize, "sigma": sigma}, "file": out}
            )
        for ksize, sigma in PHOTO_BLURS:
            cases["blur"].append({"image": name, "ksize": ksize, "sigma": sigma, "sha256": digest(blur(img, ksize, sigma))})
        for w, h in PHOTO_RESIZES[name]:
            out = np.array(Image.fromarray(img).resize((w, h)))
            case = {"image": name, "width": w, "height": h}
            if w * h <= PNG_RESIZE_MAX_PIXELS:
                case["file"] = f"resize_{name}_{w}x{h}.png"
                save_png(case["file"], out)
            else:
                case["sha256"] = digest(out)
            cases["resize"].append(case)
    return cases


def noise_images(rng):
    """Small synthetic inputs: uniform noise, smooth noise, and blocky images with few levels
    (which tie gradient magnitudes across channels and neighbours)."""
    sizes = [(1, 1), (1, 7), (7, 1), (2, 2), (3, 4), (5, 3), (8, 8), (17, 13), (32, 24), (64, 40)]
    out = []
    for i, (w, h) in enumerate(sizes):
        for c in (1, 3):
            kind = ("uniform", "smooth", "blocky")[(i + c) % 3]
            if kind == "uniform":
                a = rng.randint(0, 256, size=(h, w, c))
            elif kind == "smooth":
                lw, lh = max(1, w // 4), max(1, h // 4)
                low = rng.randint(0, 256, size=(lh, lw, c)).astype(np.uint8)
                a = np.stack(
                    [np.array(Image.fromarray(low[:, :, k]).resize((w, h), Image.BICUBIC)) for k in range(c)], axis=2
                )
            else:
                levels = np.array([0, 64, 128, 255])
                a = levels[rng.randint(0, 4, size=((h + 2) // 3, (w + 2) // 3, c))]
                a = np.repeat(np.repeat(a, 3, axis=0), 3, axis=1)[:h, :w]
            out.append(np.ascontiguousarray(a.astype(np.uint8)))
    return out


def as_cv(a):
    return a[:, :, 0] if a.shape[2] == 1 else a


def small_cases(rng):
    tensors, meta = {}, {"canny": [], "blur": [], "resize": [], "kernel": []}
    images = noise_images(rng)
    for i, img in enumerate(images):
        tensors[f"input/{i}"] = torch.from_numpy(img)
    thresholds = [(0, 0), (0, 50), (10, 10), (49.9, 100.2), (100, 200), (300, 600), (1000, 3000), (2039, 2040)]
    blurs = [(3, 0), (5, 0), (7, 0), (9, 0), (11, 0), (3, 0.5), (5, 1.1), (7, 1.4), (0, 1.5), (15, 3.0), (31, 5.0), (0, 0.1)]
    targets = [(1, 1), (5, 3), (3, 5), (2, 9), (13, 11), (40, 29), (100, 3)]
    for i, img in enumerate(images):
        h, w, c = img.shape
        for low, high in thresholds:
            tensors[f"canny/{len(meta['canny'])}"] = torch.from_numpy(cv2.Canny(as_cv(img), low, high))
            meta["canny"].append({"input": i, "low": low, "high": high})
        for ksize, sigma in blurs:
            out = blur(img, ksize, sigma)
            tensors[f"blur/{len(meta['blur'])}"] = torch.from_numpy(out.reshape(img.shape))
            meta["blur"].append({"input": i, "ksize": ksize, "sigma": sigma})
        pil = Image.fromarray(as_cv(img))
        for tw, th in targets + [(w, h), (w, max(1, h // 2)), (max(1, w * 2), h)]:
            out = np.array(pil.resize((tw, th))).reshape(th, tw, c)
            tensors[f"resize/{len(meta['resize'])}"] = torch.from_numpy(out)
            meta["resize"].append({"input": i, "width": tw, "height": th})
    n = 0
    for size in range(1, 33, 2):
        for sigma in (0, 0.3, 0.5, 0.8, 1, 1.1, 1.4, 1.5, 2, 2.5, 3, 3.3, 5, 7.3, 10):
            k = cv2.getGaussianKernel(size, sigma, cv2.CV_64F).ravel().astype("<f8")
            tensors[f"kernel/{n}"] = torch.from_numpy(k.view("<i8").copy())
            meta["kernel"].append({"n": size, "sigma": sigma})
            n += 1
    # Refiners' image_to_tensor (fluxion/utils.py) on an RGB and an L image, and ×2-1.
    rgb = rng.randint(0, 256, size=(5, 7, 3)).astype(np.uint8)
    gray = rng.randint(0, 256, size=(4, 6, 1)).astype(np.uint8)
    rgb[0, :3] = [[0, 0, 0], [255, 255, 255], [1, 128, 254]]
    for name, arr, mode in (("rgb", rgb, "RGB"), ("gray", gray, "L")):
        image = Image.fromarray(as_cv(arr), mode)
        t = image_to_tensor(image)
        tensors[f"tensor/{name}"] = torch.from_numpy(arr)
        tensors[f"tensor/{name}/unit"] = t
        tensors[f"tensor/{name}/signed"] = t * 2 - 1
    return tensors, meta


def image_to_tensor(image):
    """Refiners' refiners.fluxion.utils.image_to_tensor, transcribed."""
    t = torch.tensor(np.array(image).astype(np.float32) / 255.0)
    if image.mode == "L":
        t = t.unsqueeze(0)
    else:
        t = t.permute(2, 0, 1)
    return t.unsqueeze(0).contiguous()


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.RandomState(20240517)
    manifest = {
        "versions": {"opencv": cv2.__version__, "pillow": PIL.__version__, "numpy": np.__version__},
        "photos": photo_cases(),
    }
    tensors, meta = small_cases(rng)
    manifest["small"] = meta
    st.save(os.path.join(OUT, "small.safetensors"), tensors)
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    counts = {k: len(v) for k, v in meta.items()}
    print("wrote", OUT, "photos:", {k: len(v) for k, v in manifest["photos"].items()}, "small:", counts)


if __name__ == "__main__":
    main()
