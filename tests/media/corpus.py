"""Test images built in the tests: realistic-ish synthetic photos and hostile files."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, TiffImagePlugin


def street_photo(seed: int, size=(1200, 900)) -> Image.Image:
    """A 'street scene': sky, ground, buildings with windows, clutter, sensor noise.

    Every seed shares the layout family (sky above, ground below), so distances between two
    seeds measure how well the hash separates *similar scenes*, not flat colour from noise.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    horizon = int(height * rng.uniform(0.35, 0.6))
    sky_top, sky_bottom = rng.integers(90, 200, 3), rng.integers(150, 255, 3)
    ground = rng.integers(60, 140, 3)
    rows = np.linspace(0, 1, horizon)[:, None, None]
    sky = (sky_top * (1 - rows) + sky_bottom * rows) * np.ones((1, width, 1))
    land = ground * np.ones((height - horizon, width, 1))
    canvas = np.concatenate([sky, land], axis=0).astype(np.float32)
    image = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 9))):  # buildings with windows
        left = int(rng.integers(0, width - 60))
        w = int(rng.integers(60, width // 3))
        top = int(rng.integers(height // 10, horizon))
        colour = tuple(int(c) for c in rng.integers(40, 230, 3))
        draw.rectangle([left, top, left + w, horizon + 10], fill=colour)
        for wy in range(top + 10, horizon - 10, 24):
            for wx in range(left + 8, left + w - 12, 20):
                if rng.random() < 0.7:
                    shade = int(rng.integers(20, 255))
                    draw.rectangle([wx, wy, wx + 9, wy + 12], fill=(shade, shade, int(rng.integers(0, 255))))
    for _ in range(int(rng.integers(10, 25))):  # clutter: bins, cylinders, people, cars
        x, y = int(rng.integers(0, width)), int(rng.integers(horizon, height))
        r = int(rng.integers(10, 80))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r // 2], fill=colour)
        else:
            draw.rectangle([x - r, y - r, x + r * 2, y], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 7, (height, width, 3))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt="JPEG", **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def jpeg(image=None, quality=88, **params) -> bytes:
    return encode(image if image is not None else street_photo(1, (640, 480)), "JPEG", quality=quality, **params)


def gps_exif(lat=(22, 58, 30.45), lng=(113, 45, 12.5), lat_ref="N", lng_ref="E", when="2024:05:01 09:30:15",
             offset="+08:00", orientation=1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    details = exif.get_ifd(0x8769)
    details[0x9003] = when
    if offset:
        details[0x9011] = offset
    gps = exif.get_ifd(0x8825)
    gps[1], gps[3] = lat_ref, lng_ref
    gps[2] = tuple(TiffImagePlugin.IFDRational(v) for v in lat)
    gps[4] = tuple(TiffImagePlugin.IFDRational(v) for v in lng)
    return exif


def insert_jpeg_segment(data: bytes, marker: int, body: bytes) -> bytes:
    """Insert a segment right after SOI."""
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body
    return data[:2] + segment + data[2:]


def hostile_exif_block(entries=5000) -> bytes:
    """A 64 KB TIFF block with thousands of IFD0 entries, each pointing at most of the block."""
    body = b"".join(struct.pack("<HHII", 0x9000 + i, 7, 60000, 8) for i in range(entries))
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", entries) + body + b"\x00\x00\x00\x00"
    return b"Exif\x00\x00" + tiff.ljust(65000, b"\x00")


# --- hand-built PNG / WebP / JPEG headers (for shapes Pillow will not write) -----------------------

def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width, height, rows: bytes, bit_depth=8, colour_type=2, extra=()) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunks = [png_chunk(b"IHDR", header), *extra, png_chunk(b"IDAT", zlib.compress(rows, 9)), png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def png_bomb(width=100_000, height=100_000) -> bytes:
    """Huge declared dimensions, a few hundred bytes on disk (the IDAT is a sliver of zeros)."""
    return png(width, height, b"\x00" * 1024, bit_depth=1, colour_type=0)


def png_16bit_rgb(width=64, height=48) -> bytes:
    ramp = np.linspace(0, 65535, width, dtype=np.uint16)
    pixel_rows = np.stack([np.tile(ramp, (height, 1))] * 3, axis=-1).astype(">u2")
    rows = b"".join(b"\x00" + pixel_rows[y].tobytes() for y in range(height))
    return png(width, height, rows, bit_depth=16, colour_type=2)


def webp_bomb() -> bytes:
    """VP8X declaring a 16384×16384 canvas around a tiny real image."""
    small = encode(Image.new("RGB", (16, 16), "green"), "WEBP")
    payload = small[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0, 0, 0, 0]) + (16383).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def jpeg_bomb(width=60000, height=60000) -> bytes:
    """A real JPEG whose frame header claims huge dimensions."""
    data = bytearray(jpeg(Image.new("RGB", (16, 16), "red")))
    index = data.find(b"\xff\xc0")
    data[index + 5:index + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return out.getvalue()


def jpeg_segments(data: bytes) -> list[int]:
    """Markers of the segments before the first scan (what metadata a JPEG carries)."""
    markers, pos = [], 2
    while pos < len(data) - 4:
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + length
    return markers
