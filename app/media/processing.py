"""Photo intake over bytes: check an upload, then make the copies that may leave the server.

    upload = inspect_upload(request.files["file"].stream)   # 413 / 415 / 422, temp file removed
    with upload:
        photo = process_photo(upload.path)                 # 413 / 415 / 422
        keys = store_photo(upload, photo)                  # app.media.photos

Decisions (docs/PERFORMANCE.md "Photo processing" has the figures):
- The type comes from the magic bytes; only JPEG, PNG and WebP; at most 10 MB.
- Dimensions are read from the container header and checked before anything is decoded:
  JPEG ≤ 50 MP (decoded reduced, see below); PNG, WebP and progressive JPEG ≤ 24 MP (they are
  decoded at full size, and libjpeg buffers a progressive image's coefficients whole); no side
  over 20,000 px.
- Animated PNG/WebP is refused (a camera never makes one; a still taken from frame one would
  not be what the resident saw).
- A file carrying an archive, PDF, script or HTML after the image, or readable as a ZIP, is
  refused. Other trailing bytes (phone camera trailers) are tolerated: the original is never
  served and no copy we hand out carries them.
- EXIF is read by our own bounded reader (app.media.exif); Pillow never parses it. Copies are
  JPEG with no EXIF, XMP, ICC or comment; orientation is applied; colours are converted to sRGB
  (CMYK and wide-gamut photos included); transparency is flattened onto white.
- A photo that already is what a display copy would be (a browser-safe JPEG, upright, sRGB,
  long side ≤ DISPLAY_MAX, not oversized in bytes: what the mini-program's compressed photos
  are) becomes its own display copy with its metadata segments cut out (formats.strip_jpeg):
  no decode, no re-encode, no generation loss.
- JPEG is decoded with Image.draft at the smallest 1/2, 1/4, 1/8 scale that still covers the
  display size, so a 12 MP photo is never decoded at full size.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms

from app.errors import AppError, PayloadTooLarge, Unprocessable, UnsupportedMedia
from app.media import formats
from app.media.exif import PhotoExif, read_exif
from app.media.hashing import phash64

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000
MAX_FULL_DECODE_PIXELS = 24_000_000
MAX_SIDE = 20_000
DISPLAY_SIZE = 1600
# A decode (reduced or not) whose long side is at most this is the display copy as it is: no
# resample, which was the largest cost after the decode.
DISPLAY_MAX = 2048
THUMB_SIZE = 320
# Likewise a thumbnail-scale decode up to this long side is the thumbnail as it is (a 1920-px photo's
# 1/4 decode, 480 px; a 12-MP photo's 1/8, 500 px): no resample, which cost more than the rest of
# the thumbnail, and about what a list shows on a 3× phone screen.
THUMB_MAX = 512
DISPLAY_QUALITY = 82
# A JPEG kept as its own display copy may be at most this large (else re-encoding saves bandwidth).
DISPLAY_AS_IS_BYTES = 1_500_000
THUMB_QUALITY = 78
OUTPUT_MIME = "image/jpeg"
CHUNK = 64 * 1024

_MB = MAX_UPLOAD_BYTES // (1024 * 1024)
# The error table (docs/PERFORMANCE.md repeats it for the mini-program team).
ERRORS = {
    "file_too_large": (PayloadTooLarge, f"图片文件不能超过 {_MB} MB"),
    "image_too_large": (PayloadTooLarge, "图片尺寸过大，请压缩后再上传"),
    "unsupported_image_type": (UnsupportedMedia, "仅支持 JPEG、PNG、WebP 格式的照片"),
    "image_animated": (UnsupportedMedia, "不支持动图，请上传静态照片"),
    "image_polyglot": (UnsupportedMedia, "图片文件中夹带了其他数据，请重新拍摄或导出后上传"),
    "image_empty": (Unprocessable, "上传的文件是空的"),
    "image_corrupt": (Unprocessable, "图片已损坏或不完整，请重新上传"),
}


def photo_error(code: str):
    """The AppError for one row of the table, with the message also under fields.file."""
    error_class, message = ERRORS[code]
    return error_class(message, code=code, fields={"file": [message]})


# --- upload -----------------------------------------------------------------------------------

@dataclass
class UploadInfo:
    """An upload copied to a private temporary file. Use as a context manager, or call discard()."""

    path: str
    size: int
    mime: str
    sha256: str

    @property
    def extension(self) -> str:
        return formats.EXTENSIONS[self.mime]

    def open(self) -> BinaryIO:
        return open(self.path, "rb")

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "UploadInfo":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()


def inspect_upload(stream: BinaryIO, max_bytes: int = MAX_UPLOAD_BYTES, *, spool_dir: str | None = None) -> UploadInfo:
    """Copy `stream` to a temp file chunk by chunk, hashing as it goes; refuse early.

    Only one 64 KB chunk is in memory at a time. The type is checked from the first bytes before
    the rest is read, and reading stops at max_bytes + 1. On any refusal the temp file is gone.
    """
    digest = hashlib.sha256()
    handle = tempfile.NamedTemporaryFile(prefix="upload-", suffix=".part", dir=spool_dir, delete=False)
    try:
        with handle:
            head = _read_at_least(stream, formats.SNIFF_BYTES)
            if not head:
                raise photo_error("image_empty")
            mime = formats.sniff_mime(head)
            if mime is None:
                raise photo_error("unsupported_image_type")
            size = len(head)
            digest.update(head)
            handle.write(head)
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise photo_error("file_too_large")
                digest.update(chunk)
                handle.write(chunk)
            if size > max_bytes:
                raise photo_error("file_too_large")
        return UploadInfo(path=handle.name, size=size, mime=mime, sha256=digest.hexdigest())
    except BaseException:
        os.unlink(handle.name)
        raise


def _read_at_least(stream: BinaryIO, count: int) -> bytes:
    """Streams (sockets, multipart parts) may return short reads."""
    head = b""
    while len(head) < count:
        chunk = stream.read(count - len(head))
        if not chunk:
            break
        head += chunk
    return head


# --- processing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProcessedPhoto:
    sha256: str  # of the bytes as uploaded
    phash: int  # signed 64-bit perceptual hash of the upright image
    width: int  # of the original, upright (after orientation)
    height: int
    mime: str  # of the original
    size_bytes: int
    exif: PhotoExif
    display: bytes  # JPEG, long side ≤ DISPLAY_MAX, no metadata
    thumb: bytes  # JPEG, long side ≤ THUMB_MAX (≤ THUMB_SIZE when made from the display copy), no metadata
    display_size: tuple[int, int] = field(default=(0, 0))
    thumb_size: tuple[int, int] = field(default=(0, 0))
    output_mime: str = OUTPUT_MIME

    @property
    def extension(self) -> str:
        return formats.EXTENSIONS[self.mime]


def process_photo(source, *, max_bytes: int = MAX_UPLOAD_BYTES) -> ProcessedPhoto:
    """Verify, read EXIF, and make the display copy, thumbnail and hashes (one reduced decode).

    `source`: a path, bytes, a binary stream, or an UploadInfo. Raises the AppErrors of ERRORS.
    """
    read = _read_photo(source, max_bytes, DISPLAY_SIZE)
    if read.display_as_is is not None:  # decoded at thumbnail scale only
        thumb_image = _upright_copy(read.image, read.exif.orientation, THUMB_MAX, THUMB_SIZE)
        display, display_size = read.display_as_is, (read.width, read.height)
    else:
        upright = _upright_copy(read.image, read.exif.orientation, DISPLAY_MAX, DISPLAY_SIZE)
        thumb_image = _fit(upright, THUMB_SIZE)
        display, display_size = _encode_jpeg(upright, DISPLAY_QUALITY), upright.size
    return ProcessedPhoto(
        sha256=read.sha256,
        phash=phash64(thumb_image),
        width=read.width,
        height=read.height,
        mime=read.mime,
        size_bytes=read.size_bytes,
        exif=read.exif,
        display=display,
        thumb=_encode_jpeg(thumb_image, THUMB_QUALITY),
        display_size=display_size,
        thumb_size=thumb_image.size,
    )


@dataclass(frozen=True)
class PhotoPreview:
    """The request-time part of intake: everything but a display copy that needs a decode (made
    later, off the request). `display` is set when the original is its own display copy."""

    sha256: str
    phash: int
    width: int
    height: int
    mime: str
    size_bytes: int
    exif: PhotoExif
    thumb: bytes
    thumb_size: tuple[int, int] = field(default=(0, 0))
    output_mime: str = OUTPUT_MIME
    display: bytes | None = None

    @property
    def extension(self) -> str:
        return formats.EXTENSIONS[self.mime]


def preview_photo(source, *, max_bytes: int = MAX_UPLOAD_BYTES) -> PhotoPreview:
    """Verify, read EXIF, make the thumbnail and hashes from ONE decode reduced to thumbnail scale.

    The reduced JPEG decode still entropy-decodes every block, so a corrupt or truncated file is
    refused here exactly as in process_photo; it only skips most of the IDCT, colour conversion
    and upsampling (1/8 scale for a 12-MP photo, 1/4 for a 1920-px one).
    """
    read = _read_photo(source, max_bytes, THUMB_SIZE)
    # Bilinear (antialiased) from a decode already within 2× of the thumbnail: half Lanczos' cost.
    thumb_image = _upright_copy(read.image, read.exif.orientation, THUMB_MAX, THUMB_SIZE)
    return PhotoPreview(sha256=read.sha256, phash=phash64(thumb_image), width=read.width, height=read.height,
                        mime=read.mime, size_bytes=read.size_bytes, exif=read.exif,
                        thumb=_encode_jpeg(thumb_image, THUMB_QUALITY), thumb_size=thumb_image.size,
                        display=read.display_as_is)


@dataclass(frozen=True)
class _ReadPhoto:
    sha256: str
    size_bytes: int
    mime: str
    exif: PhotoExif
    image: Image.Image  # decoded at the reduced scale asked for, not yet upright
    width: int  # of the original, upright
    height: int
    display_as_is: bytes | None = None  # the original without metadata, when it is its own display copy


def _read_photo(source, max_bytes: int, scale: int) -> _ReadPhoto:
    """Load, verify and hash the bytes, read EXIF, decode once reduced towards `scale` — or towards
    the thumbnail when the photo can be its own display copy.

    The bytes are dropped on return: only the reduced image lives on through encoding.
    """
    data = _load_bytes(source, max_bytes)
    if not data:
        raise photo_error("image_empty")
    sha256 = hashlib.sha256(data).hexdigest()
    container = _parse(data)
    metadata = read_exif(container.exif)
    image = _open(data, container)
    as_is = _display_as_is(data, container, metadata.orientation, image)
    _decode(image, container, THUMB_SIZE if as_is is not None else scale)
    width, height = _upright_size(container, metadata.orientation)
    return _ReadPhoto(sha256, len(data), container.mime, metadata, image, width, height, as_is)


def display_copy(source, *, max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[bytes, tuple[int, int]]:
    """The display JPEG (upright, sRGB, no metadata) of an already accepted original, and its size."""
    data = _load_bytes(source, max_bytes)
    container = _parse(data)
    metadata = read_exif(container.exif)
    image = _open(data, container)
    as_is = _display_as_is(data, container, metadata.orientation, image)
    if as_is is not None:
        return as_is, (container.width, container.height)
    _decode(image, container, DISPLAY_SIZE)
    del data
    upright = _upright_copy(image, metadata.orientation, DISPLAY_MAX, DISPLAY_SIZE)
    return _encode_jpeg(upright, DISPLAY_QUALITY), upright.size


def _display_as_is(data: bytearray, container: formats.Container, orientation: int,
                   image: Image.Image) -> bytes | None:
    """The original as its own display copy (metadata cut out, pixels untouched) when it already is
    what _upright_copy would make: a browser-safe JPEG, upright, sRGB or untagged, long side at most
    DISPLAY_MAX, at most DISPLAY_AS_IS_BYTES. Else None. `image`: opened, not yet decoded."""
    if (container.mime != formats.JPEG or orientation not in (0, 1) or len(data) > DISPLAY_AS_IS_BYTES
            or max(container.width, container.height) > DISPLAY_MAX or image.mode not in ("RGB", "L")):
        return None
    try:
        if _foreign_profile(image.info.get("icc_profile")):
            return None
    except Exception:  # a profile Pillow cannot read: let the decode path judge it
        return None
    return formats.strip_jpeg(data)


def _upright_size(container: formats.Container, orientation: int) -> tuple[int, int]:
    swapped = orientation in (5, 6, 7, 8)
    return (container.height, container.width) if swapped else (container.width, container.height)


def _load_bytes(source, max_bytes: int) -> bytearray:
    if isinstance(source, UploadInfo):
        source = source.path
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_bytes:
            raise photo_error("file_too_large")
        return bytearray(source)
    if isinstance(source, (str, os.PathLike)):
        size = Path(source).stat().st_size
        if size > max_bytes:
            raise photo_error("file_too_large")
        data = bytearray(size)
        with open(source, "rb") as handle:
            read = handle.readinto(data)
        return data[:read] if read != size else data
    buffer = io.BytesIO()
    copied = 0
    while chunk := source.read(CHUNK):
        copied += len(chunk)
        if copied > max_bytes:
            raise photo_error("file_too_large")
        buffer.write(chunk)
    return bytearray(buffer.getbuffer())


def _parse(data: bytearray) -> formats.Container:
    try:
        container = formats.parse_container(data)
    except formats.FormatError as error:
        log.info("photo refused", extra={"reason": error.reason, "detail": str(error)})
        raise photo_error(error.reason) from None
    pixels = container.width * container.height
    full_decode = container.mime != formats.JPEG or container.progressive
    cap = MAX_FULL_DECODE_PIXELS if full_decode else MAX_PIXELS
    if pixels > cap or max(container.width, container.height) > MAX_SIDE:
        raise photo_error("image_too_large")
    if container.animated:
        raise photo_error("image_animated")
    smuggled = formats.find_smuggled_payload(data, container.end)
    if smuggled:
        log.info("photo refused", extra={"reason": "image_polyglot", "detail": smuggled})
        raise photo_error("image_polyglot")
    return container


_FORMAT_NAMES = {formats.JPEG: "JPEG", formats.PNG: "PNG", formats.WEBP: "WEBP"}


def _open(data: bytearray, container: formats.Container) -> Image.Image:
    """Pillow's view of the headers (nothing decoded yet). Any failure is image_corrupt."""
    with _decoder_errors():
        image = Image.open(io.BytesIO(data), formats=[_FORMAT_NAMES[container.mime]])
        if image.size != (container.width, container.height):
            raise ValueError(f"header says {container.width}x{container.height}, decoder {image.size}")
        return image


def _decode(image: Image.Image, container: formats.Container, target: int = DISPLAY_SIZE) -> None:
    """Decode `image` once, as small as a copy with long side `target` allows (JPEG scales 1/2,
    1/4, 1/8). Any decoder failure is image_corrupt."""
    with _decoder_errors():
        if container.mime == formats.JPEG:
            scale = target / max(image.size)
            if scale < 1:
                image.draft("RGB", (max(1, int(image.width * scale)), max(1, int(image.height * scale))))
        image.load()


@contextlib.contextmanager
def _decoder_errors():
    try:
        yield
    except AppError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise photo_error("image_too_large") from None
    except Exception as error:  # hostile bytes reach many decoder paths; none may become a 500
        log.info("photo refused", extra={"reason": "image_corrupt", "detail": f"{type(error).__name__}: {error}"})
        raise photo_error("image_corrupt") from None


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright_copy(image: Image.Image, orientation: int, keep_up_to: int, fit_to: int,
                  resample=Image.Resampling.BILINEAR) -> Image.Image:
    """The upright, sRGB (or grey) copy with no metadata attached: kept at its decoded size when
    its long side is at most `keep_up_to`, else scaled to `fit_to`."""
    icc = image.info.get("icc_profile")
    working = _flatten(image)
    if max(working.size) > keep_up_to:
        # Bilinear (antialiased) for the display copy: under half Lanczos' cost at these ratios,
        # with no visible difference (docs/PERFORMANCE.md).
        working = _fit(working, fit_to, resample)
    working = _to_srgb(working, icc)
    if orientation in _TRANSPOSE:
        working = working.transpose(_TRANSPOSE[orientation])
    working.info = {}  # may be the decoded image itself (ours alone): drop what the decoder kept
    return working


def _flatten(image: Image.Image) -> Image.Image:
    """8-bit RGB, L or CMYK; alpha composited onto white; 16-bit scaled, not clipped."""
    mode = image.mode
    if mode in ("RGB", "L", "CMYK"):
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(pixels * (255.0 / peak), 0, 255).astype(np.uint8))
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa", "RGBA") or "transparency" in image.info:
        image = image.convert("RGBA")
    else:  # 1, YCbCr, LAB, HSV, ...
        return image.convert("RGB")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image


def _fit(image: Image.Image, long_side: int, resample=Image.Resampling.LANCZOS) -> Image.Image:
    """Scale down (never up) so the longer side is at most long_side."""
    scale = long_side / max(image.size)
    if scale >= 1:
        return image.copy()
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, resample, reducing_gap=2.0)


_SRGB = ImageCms.createProfile("sRGB")


def _foreign_profile(icc: bytes | None) -> ImageCms.ImageCmsProfile | None:
    """The embedded profile when it is not sRGB (colours must be converted); raises when unreadable."""
    if not icc:
        return None
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    description = (ImageCms.getProfileDescription(profile) or "").lower()
    return None if "srgb" in description else profile


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert through the embedded profile when there is one; else the plain formula."""
    target_mode = "L" if image.mode == "L" else "RGB"
    if icc and image.mode in ("RGB", "CMYK"):
        try:
            profile = _foreign_profile(icc)
            if image.mode == "CMYK" and profile is None:
                profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if profile is not None:
                return ImageCms.profileToProfile(image, profile, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile: fall back to the formula, colours slightly off at worst
    return image if image.mode == target_mode else image.convert(target_mode)


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # Explicit empties: nothing from the source may ride along into a copy we hand out.
    image.save(out, "JPEG", quality=quality, optimize=False, progressive=False, exif=b"", icc_profile=None,
               comment=b"")
    return out.getvalue()

