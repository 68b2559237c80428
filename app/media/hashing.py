"""64-bit perceptual hash (pHash: DCT of a 32×32 grey image) and Hamming distance.

Same construction as imagehash.phash (low 8×8 DCT coefficients against their median), computed
with one precomputed numpy matrix instead of scipy. Stored as a signed 64-bit int so it fits a
BIGINT column; `hamming` accepts signed or unsigned values.

Measured on synthetic photos (tests/media/test_hashing.py): JPEG quality 40 + half size, ≤ 4
bits; 3 % crop per side, ≤ 8; different photos, ≥ 18 (typically ~32).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

HASH_SIZE = 8
SAMPLE_SIZE = 32
MASK64 = (1 << 64) - 1
# Rows of the DCT-II basis for the 8 lowest frequencies over 32 samples (scale is irrelevant:
# every bit compares a coefficient with the median of the same block).
_n = np.arange(SAMPLE_SIZE)
_DCT = np.cos(np.pi * (2 * _n[None, :] + 1) * np.arange(HASH_SIZE)[:, None] / (2 * SAMPLE_SIZE))


def phash64(image: Image.Image) -> int:
    """Perceptual hash of `image` as a signed 64-bit int."""
    grey = image if image.mode == "L" else image.convert("L")
    pixels = np.asarray(grey.resize((SAMPLE_SIZE, SAMPLE_SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
    low = _DCT @ pixels @ _DCT.T
    bits = (low > np.median(low)).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return to_signed64(value)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes (signed or unsigned)."""
    return ((a ^ b) & MASK64).bit_count()


def to_signed64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned64(value: int) -> int:
    return value & MASK64
