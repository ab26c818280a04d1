#!/usr/bin/python3
"""Goldens for runtime's f16/bf16 conversions, computed with numpy.

Writes under runtime/testdata/golden/:
  dtypes.bin         records of <u32 f32 bits, u16 f16 bits, u16 bf16 bits>, little-endian:
                     numpy's float32 -> float16 cast (round to nearest even) and a bf16
                     rounding done with integer ops (round to nearest even on the top 16
                     bits; NaN kept NaN). The inputs are special values, rounding ties and
                     their neighbours, and random bit patterns and magnitudes.
  f16_to_f32.sha256  hex SHA-256 of numpy's float16 -> float32 widening of all 65536 f16
                     bit patterns, as little-endian f32 bits in bit-pattern order.

Run: /usr/bin/python3 scripts/golden/dtypes.py
"""
import hashlib
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "runtime", "testdata", "golden")


def f32_bits(values):
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def neighbours(bits):
    """bits and the f32 patterns one below and one above, within the same sign."""
    bits = np.asarray(bits, dtype=np.int64)
    out = np.concatenate([bits - 1, bits, bits + 1])
    return out[(out >= 0) & (out <= 0xFFFFFFFF)].astype(np.uint32)


def main():
    rng = np.random.default_rng(20240611)
    inputs = []

    # Special values and the edges of the f16 and f32 ranges.
    specials = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf,
                65504.0, 65519.0, 65520.0, -65520.0, 65536.0, 1e10,
                2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -25, 2.0 ** -26,
                2.0 ** -14 - 2.0 ** -25, np.finfo(np.float32).max,
                np.finfo(np.float32).tiny, 1e-45, -1e-45, 3.4e38, np.pi, -np.e]
    inputs.append(neighbours(f32_bits(specials)))
    inputs.append(np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FBFFFFF,
                            0x7F802000, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F800100], dtype=np.uint32))

    # Midpoints between adjacent f16 values (exact in f32) and their neighbours: ties to
    # even in the normal and subnormal ranges, and the overflow edge.
    h = np.concatenate([np.arange(0, 0x7C00, 97), [0x3FE, 0x3FF, 0x400, 0x401, 0x7BFE, 0x7BFF],
                        rng.integers(0, 0x7C00, 200)]).astype(np.uint16)
    lo = h.view(np.float16).astype(np.float64)
    hi = (h + 1).astype(np.uint16).view(np.float16).astype(np.float64)
    hi[h == 0x7BFF] = 65536.0  # the next "value" after 65504 for rounding purposes
    mid = ((lo + hi) / 2).astype(np.float32)
    inputs.append(neighbours(mid.view(np.uint32)))
    inputs.append(neighbours((-mid).view(np.uint32)))

    # bf16 ties: low half exactly 0x8000 above even and odd top halves.
    top = rng.integers(0, 0x10000, 300).astype(np.uint32)
    inputs.append(neighbours((top << 16) | 0x8000))

    # Random bit patterns, and random magnitudes over the whole exponent range.
    inputs.append(rng.integers(0, 2 ** 32, 3000, dtype=np.uint64).astype(np.uint32))
    mags = rng.standard_normal(2000) * np.exp2(rng.uniform(-30, 20, 2000))
    inputs.append(f32_bits(mags))

    bits = np.concatenate(inputs).astype(np.uint32)
    f = bits.view(np.float32)
    with np.errstate(over="ignore"):
        f16 = f.astype(np.float16).view(np.uint16)

    wide = bits.astype(np.uint64)
    bf16 = ((wide + 0x7FFF + ((wide >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(f)
    bf16[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)

    rec = np.zeros(len(bits), dtype=[("f32", "<u4"), ("f16", "<u2"), ("bf16", "<u2")])
    rec["f32"], rec["f16"], rec["bf16"] = bits, f16, bf16
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "dtypes.bin"), "wb") as out:
        out.write(rec.tobytes())

    table = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    widened = table.astype(np.float32).view(np.uint32).astype("<u4").tobytes()
    with open(os.path.join(OUT, "f16_to_f32.sha256"), "w") as out:
        out.write(hashlib.sha256(widened).hexdigest() + "\n")
    print(f"{len(bits)} records")


if __name__ == "__main__":
    main()
