#!/usr/bin/env bash
# Full-size Stable Diffusion 1.5 check, outside CI (minutes, ~12 GB of RAM, ~7 GB of disk):
# PyTorch writes full-size random weights in the single-file (float16) and diffusers
# (float32) layouts with one input and its output per entry point
# (scripts/golden/sd15.py --full), then rfc runs the four entry points on each layout and
# compares with PyTorch. The tolerance is 1e-3 of the largest output value.
#
#   scripts/sd15-fullsize.sh [DIR]      (default DIR: a fresh temporary folder, removed after)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-}
if [ -z "$dir" ]; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
fi
if [ ! -f "$dir/unet_output.safetensors" ]; then
  echo "== writing full-size weights and goldens into $dir (PyTorch)"
  /usr/bin/python3 scripts/golden/sd15.py --full "$dir"
fi
go build -o "$dir/rfc" ./cmd/rfc
status=0
check() { # name model input output weights
  local name=$1 model=$2 in=$3 want=$4 weights=$5
  local out="$dir/got_$name.safetensors"
  local t0 t1
  t0=$(date +%s%N)
  "$dir/rfc" run models/sd15.rfn --model "$model" --weights "$weights" --input "$in" --output "$out"
  t1=$(date +%s%N)
  /usr/bin/python3 - "$out" "$want" "$name" "$(( (t1 - t0) / 1000000 ))e-3" <<'PY' || status=1
import sys
sys.path.insert(0, "scripts/golden")
import st
got, want, name, secs = st.load(sys.argv[1])[0]["y"].float(), st.load(sys.argv[2])[0]["y"].float(), sys.argv[3], float(sys.argv[4])
d, scale = float((got - want).abs().max()), float(want.abs().max())
ok = d <= 1e-3 * scale
print(f"{name:28s} max|Δ| {d:.3e}  max|ref| {scale:.3e}  rel {d / scale:.2e}  {'ok' if ok else 'FAIL'}  ({secs:.1f} s)")
sys.exit(0 if ok else 1)
PY
}
for layout in single-file.safetensors diffusers; do
  w="$dir/$layout"
  check "CLIPTextEncoderL/$layout" CLIPTextEncoderL "$dir/clip_input.safetensors" "$dir/clip_output.safetensors" "$w"
  check "SD1UNet/$layout" SD1UNet "$dir/unet_input.safetensors" "$dir/unet_output.safetensors" "$w"
  check "SD1Encoder/$layout" SD1Encoder "$dir/encoder_input.safetensors" "$dir/encoder_output.safetensors" "$w"
  check "SD1Decoder/$layout" SD1Decoder "$dir/decoder_input.safetensors" "$dir/decoder_output.safetensors" "$w"
done
exit $status
