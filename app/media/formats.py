"""Byte-level container parsing for the three accepted formats: JPEG, PNG, WebP.

Everything here works on the raw bytes before Pillow sees them: the real type from the magic
bytes (never the file name), the declared dimensions (so a decompression bomb is refused before
any pixel is decoded), animation, the end of the image (bytes after it are a trailer, checked for
a smuggled archive or script) and the raw EXIF block (read by app.media.exif, never by Pillow).

For JPEG, metadata segments Pillow would otherwise parse on open (EXIF, XMP, Photoshop, MPF) are
re-tagged in place as APP15, which Pillow ignores: hostile metadata cannot slow, warn or crash
the decoder, and no copy we make can inherit it.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
EXTENSIONS = {JPEG: "jpg", PNG: "png", WEBP: "webp"}
SNIFF_BYTES = 16  # enough to tell every accepted format from every rejected one


class FormatError(Exception):
    """The bytes are not an acceptable image. `reason` is a stable error code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Container:
    mime: str
    width: int
    height: int
    animated: bool
    progressive: bool
    exif: bytes | None  # the TIFF block (starts with II/MM), without the "Exif\0\0" prefix
    end: int  # offset just past the image; data[end:] is a trailer


def sniff_mime(head: bytes) -> str | None:
    """The accepted type the first bytes announce, or None."""
    if head[:3] == b"\xff\xd8\xff":
        return JPEG
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def parse_container(data: bytearray) -> Container:
    """Parse the structure of an accepted image. May re-tag JPEG metadata segments in `data`."""
    mime = sniff_mime(bytes(data[:SNIFF_BYTES]))
    if mime == JPEG:
        return _parse_jpeg(data)
    if mime == PNG:
        return _parse_png(data)
    if mime == WEBP:
        return _parse_webp(data)
    raise FormatError("unsupported_image_type")


# --- JPEG -------------------------------------------------------------------------------------

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_NEUTRAL_APP = 0xEF  # APP15: Pillow keeps it in applist and never parses it
# A marker inside entropy-coded data: 0xFF followed by neither a stuffed 0x00, a restart marker
# nor another fill byte.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_segments(data: bytearray):
    """Yield (marker, start, body_start, body_end, next_start) for every segment after SOI up to and
    including EOI. `start` is the segment's 0xFF; for SOS, next_start runs past the entropy-coded
    data that follows it (restart markers included), for the others it is body_end."""
    size = len(data)
    pos = 2
    while True:
        while pos < size and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= size:
            raise FormatError("image_corrupt", "JPEG ends before EOI")
        if data[pos - 1] != 0xFF:
            raise FormatError("image_corrupt", "JPEG marker expected")
        marker = data[pos]
        if marker == 0xD9:
            yield marker, pos - 1, pos + 1, pos + 1, pos + 1
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 1
            continue
        if pos + 3 > size:
            raise FormatError("image_corrupt", "JPEG segment header truncated")
        length = (data[pos + 1] << 8) | data[pos + 2]
        body_start, body_end = pos + 3, pos + 1 + length
        if length < 2 or body_end > size:
            raise FormatError("image_corrupt", "JPEG segment truncated")
        next_start = body_end
        if marker == 0xDA:  # start of scan: the entropy-coded data runs up to the next real marker
            match = _NEXT_MARKER.search(data, body_end)
            if match is None:
                raise FormatError("image_corrupt", "JPEG scan truncated")
            next_start = match.start()
        yield marker, pos - 1, body_start, body_end, next_start
        pos = next_start + 1 if marker == 0xDA else next_start


def _parse_jpeg(data: bytearray) -> Container:
    width = height = 0
    progressive = False
    exif = None
    end = 0
    for marker, _start, body_start, body_end, next_start in _jpeg_segments(data):
        if marker == 0xD9:
            end = next_start
        elif marker in _SOF and not width:
            if body_end - body_start < 6:
                raise FormatError("image_corrupt", "short SOF")
            height, width = struct.unpack(">HH", bytes(data[body_start + 1:body_start + 5]))
            progressive = marker in _PROGRESSIVE
            if not width or not height:
                raise FormatError("image_corrupt", "JPEG without dimensions")
        elif 0xE1 <= marker <= 0xED:
            body = bytes(data[body_start:min(body_end, body_start + 14)])
            if marker == 0xE1 and body.startswith(b"Exif\x00\x00") and exif is None:
                exif = bytes(data[body_start + 6:body_end])
            # Keep ICC (APP2 ICC_PROFILE) for colour conversion; hide everything else from Pillow.
            if not (marker == 0xE2 and body.startswith(b"ICC_PROFILE")):
                data[body_start - 3] = _NEUTRAL_APP
        elif marker == 0xDA and not width:
            raise FormatError("image_corrupt", "scan before frame header")
    if not width:
        raise FormatError("image_corrupt", "JPEG without frame")
    return Container(JPEG, width, height, False, progressive, exif, end)


# Frame types every browser and WeChat's image view decode: Huffman baseline, extended, progressive.
_BROWSER_SOF = {0xC0, 0xC1, 0xC2}


def strip_jpeg(data: bytearray) -> bytes | None:
    """The same JPEG without its metadata, pixels untouched (no decode, no re-encode): every APPn
    segment (EXIF, XMP, ICC, Photoshop/IPTC, JFIF, MPF, maker notes) and comment dropped, wherever it
    sits, only Adobe's colour-transform flag kept, nothing after EOI. None when the frame is one
    a browser may not show (arithmetic coding, lossless, 12-bit, CMYK/YCCK)."""
    out = bytearray(b"\xff\xd8")
    for marker, start, body_start, body_end, next_start in _jpeg_segments(data):
        if marker in _SOF:
            if marker not in _BROWSER_SOF or body_end - body_start < 6:
                return None
            precision, components = data[body_start], data[body_start + 5]
            if precision != 8 or components not in (1, 3):
                return None
        elif marker == 0xCC:  # arithmetic-coding conditioning
            return None
        elif 0xE0 <= marker <= 0xEF or marker == 0xFE:
            if not (marker == 0xEE and bytes(data[body_start:body_start + 5]) == b"Adobe"):
                continue
        out += data[start:next_start]
    return bytes(out)


# --- PNG --------------------------------------------------------------------------------------

def _parse_png(data: bytearray) -> Container:
    size = len(data)
    pos = 8
    width = height = 0
    animated = False
    exif = None
    seen_idat = False
    first = True
    while True:
        if pos + 8 > size:
            raise FormatError("image_corrupt", "PNG ends before IEND")
        length, ctype = struct.unpack(">I4s", bytes(data[pos:pos + 8]))
        body_start, body_end = pos + 8, pos + 8 + length
        if body_end + 4 > size:
            raise FormatError("image_corrupt", "PNG chunk truncated")
        if first:
            if ctype != b"IHDR" or length != 13:
                raise FormatError("image_corrupt", "PNG without IHDR")
            width, height = struct.unpack(">II", bytes(data[body_start:body_start + 8]))
            if not width or not height:
                raise FormatError("image_corrupt", "PNG without dimensions")
            first = False
        elif ctype == b"acTL" and length >= 8:
            frames = struct.unpack(">I", bytes(data[body_start:body_start + 4]))[0]
            animated = frames > 1
        elif ctype == b"eXIf" and exif is None:
            exif = _strip_exif_prefix(bytes(data[body_start:body_end]))
        elif ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"IEND":
            pos = body_end + 4
            break
        pos = body_end + 4
    if not seen_idat:
        raise FormatError("image_corrupt", "PNG without image data")
    return Container(PNG, width, height, animated, False, exif, pos)


# --- WebP -------------------------------------------------------------------------------------

def _parse_webp(data: bytearray) -> Container:
    if len(data) < 20:
        raise FormatError("image_corrupt", "WebP header truncated")
    riff_end = 8 + struct.unpack("<I", bytes(data[4:8]))[0]
    if riff_end > len(data):
        raise FormatError("image_corrupt", "WebP truncated")
    pos = 12
    width = height = 0
    animated = False
    exif = None
    while pos + 8 <= riff_end:
        fourcc, length = struct.unpack("<4sI", bytes(data[pos:pos + 8]))
        body_start, body_end = pos + 8, pos + 8 + length
        if body_end > riff_end:
            raise FormatError("image_corrupt", "WebP chunk truncated")
        body = bytes(data[body_start:min(body_end, body_start + 16)])
        if fourcc == b"VP8X" and len(body) >= 10:
            animated = animated or bool(body[0] & 0x02)
            width = 1 + int.from_bytes(body[4:7], "little")
            height = 1 + int.from_bytes(body[7:10], "little")
        elif fourcc in (b"ANIM", b"ANMF"):
            animated = True
        elif fourcc == b"VP8 " and not width:
            if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
                raise FormatError("image_corrupt", "bad VP8 frame header")
            width = struct.unpack("<H", body[6:8])[0] & 0x3FFF
            height = struct.unpack("<H", body[8:10])[0] & 0x3FFF
        elif fourcc == b"VP8L" and not width:
            if len(body) < 5 or body[0] != 0x2F:
                raise FormatError("image_corrupt", "bad VP8L header")
            bits = struct.unpack("<I", body[1:5])[0]
            width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        elif fourcc == b"EXIF" and exif is None:
            exif = _strip_exif_prefix(bytes(data[body_start:body_end]))
        pos = body_end + (length & 1)
    if not width or not height:
        raise FormatError("image_corrupt", "WebP without image")
    return Container(WEBP, width, height, animated, False, exif, riff_end)


def _strip_exif_prefix(block: bytes) -> bytes:
    return block[6:] if block.startswith(b"Exif\x00\x00") else block


# --- trailers ---------------------------------------------------------------------------------

# Formats a browser, unzip, a PDF reader or a shell would act on. Camera trailers (Samsung SEFT,
# a Motion Photo's MP4) are not among them: they are harmless because the original is never
# served and every copy we hand out is re-encoded from pixels.
_FOREIGN_SIGNATURES = (
    b"PK\x03\x04", b"PK\x05\x06", b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c", b"%PDF-", b"\x7fELF",
    b"<html", b"<!doctype", b"<script", b"<svg", b"<?php", b"<?xml", b"#!/",
)


def find_smuggled_payload(data: bytearray, end: int) -> str | None:
    """Name what is smuggled after the image (or as a ZIP readable from the end), or None."""
    trailer = bytes(data[end:end + 1024 * 1024]).lower()
    for signature in _FOREIGN_SIGNATURES:
        if signature.lower() in trailer:
            return signature.decode("latin-1").strip("\x00\x1a\x07")
    if _has_zip_directory(data):
        return "zip"
    return None


def _has_zip_directory(data: bytearray) -> bool:
    """A ZIP reader opens a file when its end-of-central-directory record ends it exactly."""
    tail_start = max(0, len(data) - (22 + 0xFFFF))
    tail = bytes(data[tail_start:])
    index = tail.rfind(b"PK\x05\x06")
    while index != -1:
        if index + 22 <= len(tail):
            comment_length = struct.unpack("<H", tail[index + 20:index + 22])[0]
            if index + 22 + comment_length == len(tail):
                return True
        index = tail.rfind(b"PK\x05\x06", 0, index)
    return False
