import io
import os
import time
from datetime import datetime, timezone

import numpy as np
import pytest
from PIL import Image, ImageOps

from app.errors import PayloadTooLarge, Unprocessable, UnsupportedMedia
from app.media.processing import (
    DISPLAY_SIZE,
    ERRORS,
    MAX_UPLOAD_BYTES,
    THUMB_SIZE,
    inspect_upload,
    process_photo,
)
from tests.media import corpus


def refused(data, error_class, code):
    with pytest.raises(error_class) as caught:
        process_photo(data)
    assert caught.value.code == code
    assert caught.value.fields == {"file": [ERRORS[code][1]]}
    return caught.value


# --- hostile files: each gets its own clear 4xx ------------------------------------------------

HOSTILE = {
    "empty": (lambda: b"", Unprocessable, "image_empty"),
    "png_decompression_bomb": (corpus.png_bomb, PayloadTooLarge, "image_too_large"),
    "png_36_megapixels": (lambda: corpus.png_bomb(6000, 6000), PayloadTooLarge, "image_too_large"),
    "webp_decompression_bomb": (corpus.webp_bomb, PayloadTooLarge, "image_too_large"),
    "jpeg_declares_3600_megapixels": (corpus.jpeg_bomb, PayloadTooLarge, "image_too_large"),
    "jpeg_one_side_too_long": (lambda: corpus.jpeg_bomb(30000, 100), PayloadTooLarge, "image_too_large"),
    "truncated_jpeg": (lambda: corpus.jpeg()[: len(corpus.jpeg()) * 6 // 10], Unprocessable, "image_corrupt"),
    "jpeg_without_eoi": (lambda: corpus.jpeg()[:-2], Unprocessable, "image_corrupt"),
    "truncated_png": (lambda: corpus.encode(corpus.street_photo(2, (300, 200)), "PNG")[:-5000], Unprocessable, "image_corrupt"),
    "truncated_webp": (lambda: corpus.encode(corpus.street_photo(2, (300, 200)), "WEBP")[:-500], Unprocessable, "image_corrupt"),
    "jpeg_magic_then_garbage": (lambda: b"\xff\xd8\xff\xe0" + os.urandom(4000), Unprocessable, "image_corrupt"),
    "png_header_then_garbage_idat": (lambda: corpus.png(50, 50, os.urandom(1000)), Unprocessable, "image_corrupt"),
    "jpeg_plus_zip": (lambda: corpus.jpeg() + corpus.zip_bytes(), UnsupportedMedia, "image_polyglot"),
    "jpeg_plus_script": (lambda: corpus.jpeg() + b"\n<script>alert(1)</script>", UnsupportedMedia, "image_polyglot"),
    "png_plus_php": (lambda: corpus.encode(Image.new("RGB", (80, 80)), "PNG") + b"<?php system($_GET[1]);", UnsupportedMedia, "image_polyglot"),
    "html_named_jpg": (lambda: b"<html><body><script>alert(1)</script></body></html>", UnsupportedMedia, "unsupported_image_type"),
    "zip": (corpus.zip_bytes, UnsupportedMedia, "unsupported_image_type"),
    "gif": (lambda: corpus.encode(Image.new("P", (40, 40)), "GIF"), UnsupportedMedia, "unsupported_image_type"),
    "bmp": (lambda: corpus.encode(Image.new("RGB", (40, 40)), "BMP"), UnsupportedMedia, "unsupported_image_type"),
    "tiff": (lambda: corpus.encode(Image.new("RGB", (40, 40)), "TIFF"), UnsupportedMedia, "unsupported_image_type"),
    "heic_brand": (lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100, UnsupportedMedia, "unsupported_image_type"),
    "animated_webp": (
        lambda: corpus.encode(Image.new("RGB", (60, 60), "red"), "WEBP", save_all=True,
                              append_images=[Image.new("RGB", (60, 60), "blue")], duration=100),
        UnsupportedMedia, "image_animated"),
    "animated_png": (
        lambda: corpus.encode(Image.new("RGB", (60, 60), "red"), "PNG", save_all=True,
                              append_images=[Image.new("RGB", (60, 60), "blue")], duration=100),
        UnsupportedMedia, "image_animated"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_refused_with_its_code(name):
    make, error_class, code = HOSTILE[name]
    error = refused(make(), error_class, code)
    assert error.status in (413, 415, 422)


def test_every_error_code_has_a_chinese_message():
    for code, (error_class, message) in ERRORS.items():
        assert error_class.status in (413, 415, 422), code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in message), code


def test_bomb_is_refused_before_decoding():
    started = time.perf_counter()
    refused(corpus.png_bomb(), PayloadTooLarge, "image_too_large")
    assert time.perf_counter() - started < 0.5


def test_file_over_10_mb_is_refused_by_process_photo():
    data = corpus.jpeg() + b"\x00" * (MAX_UPLOAD_BYTES + 1)
    refused(data, PayloadTooLarge, "file_too_large")


def test_harmless_camera_trailer_is_tolerated_and_not_copied():
    trailer = b"SEFH" + os.urandom(2048) + b"SEFT"
    photo = process_photo(corpus.jpeg() + trailer)
    assert trailer[4:40] not in photo.display and trailer[4:40] not in photo.thumb


# --- upload inspection -------------------------------------------------------------------------

class CountingStream(io.RawIOBase):
    """A stream of `size` bytes starting with `head`, recording how much was read."""

    def __init__(self, head: bytes, size: int):
        self.head, self.size, self.consumed = head, size, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.size - self.consumed)
        chunk = (self.head[self.consumed:] + b"\x00" * count)[:count] if self.consumed < len(self.head) else b"\x00" * count
        buffer[:count] = chunk
        self.consumed += count
        return count


def test_inspect_upload_spools_hashes_and_sniffs(tmp_path):
    data = corpus.jpeg()
    upload = inspect_upload(io.BytesIO(data), spool_dir=str(tmp_path))
    with upload:
        assert upload.mime == "image/jpeg" and upload.size == len(data) and upload.extension == "jpg"
        import hashlib

        assert upload.sha256 == hashlib.sha256(data).hexdigest()
        assert open(upload.path, "rb").read() == data
        assert process_photo(upload).sha256 == upload.sha256
    assert list(tmp_path.iterdir()) == []


def test_inspect_upload_stops_reading_past_the_limit_and_leaves_nothing(tmp_path):
    stream = CountingStream(b"\xff\xd8\xff\xe0", 50 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge) as caught:
        inspect_upload(stream, spool_dir=str(tmp_path))
    assert caught.value.code == "file_too_large"
    assert stream.consumed <= MAX_UPLOAD_BYTES + 128 * 1024
    assert list(tmp_path.iterdir()) == []


def test_inspect_upload_accepts_exactly_the_limit(tmp_path):
    stream = CountingStream(b"\xff\xd8\xff\xe0", 4096)
    with inspect_upload(stream, max_bytes=4096, spool_dir=str(tmp_path)) as upload:
        assert upload.size == 4096
    with pytest.raises(PayloadTooLarge):
        inspect_upload(CountingStream(b"\xff\xd8\xff\xe0", 4097), max_bytes=4096, spool_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("data, error_class, code", [
    (b"", Unprocessable, "image_empty"),
    (b"<html><script>", UnsupportedMedia, "unsupported_image_type"),
    (b"GIF89a" + b"\x00" * 100, UnsupportedMedia, "unsupported_image_type"),
])
def test_inspect_upload_refuses_by_magic_and_leaves_nothing(tmp_path, data, error_class, code):
    with pytest.raises(error_class) as caught:
        inspect_upload(io.BytesIO(data), spool_dir=str(tmp_path))
    assert caught.value.code == code
    assert list(tmp_path.iterdir()) == []


class TrickleStream(io.RawIOBase):
    """Returns one byte per read, like a slow socket."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.pos >= len(self.data) or not len(buffer):
            return 0
        buffer[0] = self.data[self.pos]
        self.pos += 1
        return 1


def test_inspect_upload_sniffs_across_short_reads(tmp_path):
    data = corpus.encode(Image.new("RGB", (20, 20)), "PNG")
    with inspect_upload(TrickleStream(data), spool_dir=str(tmp_path)) as upload:
        assert upload.mime == "image/png" and upload.size == len(data)


# --- happy paths: formats, sizes, colour ---------------------------------------------------------

def test_large_jpeg_gives_display_thumb_and_full_dimensions():
    photo = process_photo(corpus.jpeg(corpus.street_photo(5, (4000, 3000)), quality=85))
    assert (photo.width, photo.height) == (4000, 3000)
    # The 1/2 draft decode (2000×1500) is at most DISPLAY_MAX: it is the display copy, not resampled.
    assert photo.display_size == (2000, 1500) and photo.thumb_size == (THUMB_SIZE, 240)
    assert Image.open(io.BytesIO(photo.display)).size == photo.display_size
    assert Image.open(io.BytesIO(photo.thumb)).size == photo.thumb_size
    assert photo.mime == "image/jpeg" and photo.output_mime == "image/jpeg"


def test_small_image_is_not_upscaled():
    photo = process_photo(corpus.encode(corpus.street_photo(6, (300, 200)), "WEBP", quality=80))
    assert photo.mime == "image/webp" and (photo.width, photo.height) == (300, 200)
    assert photo.display_size == (300, 200) and photo.thumb_size == (300, 200)


def mean_colour(jpeg_bytes):
    return np.asarray(Image.open(io.BytesIO(jpeg_bytes)).convert("RGB"), dtype=np.float32).mean(axis=(0, 1))


def test_cmyk_jpeg_is_converted_to_rgb():
    red = Image.new("RGB", (200, 150), (220, 30, 30)).convert("CMYK")
    photo = process_photo(corpus.encode(red, "JPEG", quality=90))
    assert Image.open(io.BytesIO(photo.display)).mode == "RGB"
    r, g, b = mean_colour(photo.display)
    assert r > 180 and g < 80 and b < 80


def test_16_bit_png_is_scaled_not_clipped():
    photo = process_photo(corpus.png_16bit_rgb())
    grey = np.asarray(Image.open(io.BytesIO(photo.display)).convert("L"), dtype=np.float32)
    assert grey[:, :5].mean() < 30 and grey[:, -5:].mean() > 225  # a full ramp, not all white
    grey16 = Image.fromarray(np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (48, 1)))
    ramp = np.asarray(Image.open(io.BytesIO(process_photo(corpus.encode(grey16, "PNG")).display)), dtype=np.float32)
    assert 100 < ramp.mean() < 155


def test_transparent_png_and_palette_png_flatten_onto_white():
    clear = Image.new("RGBA", (120, 80), (0, 0, 0, 0))
    assert mean_colour(process_photo(corpus.encode(clear, "PNG")).display).min() > 245
    palette = Image.new("P", (120, 80), 0)
    palette.putpalette([0, 0, 0] * 256)
    assert mean_colour(process_photo(corpus.encode(palette, "PNG", transparency=0)).display).min() > 245
    opaque_palette = corpus.street_photo(7, (240, 160)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert process_photo(corpus.encode(opaque_palette, "PNG")).display_size == (240, 160)


def test_grey_jpeg_stays_valid():
    photo = process_photo(corpus.encode(corpus.street_photo(8, (640, 480)).convert("L"), "JPEG"))
    assert Image.open(io.BytesIO(photo.display)).mode == "L"


def test_wide_gamut_icc_photo_is_converted_and_profile_dropped():
    from PIL import ImageCms

    lab_like = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # a non-sRGB profile
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = corpus.street_photo(9, (320, 240))
    for profile in (srgb, lab_like, b"not a profile"):
        photo = process_photo(corpus.encode(image, "JPEG", icc_profile=profile))
        assert Image.open(io.BytesIO(photo.display)).info.get("icc_profile") is None


def test_progressive_jpeg_is_processed():
    photo = process_photo(corpus.jpeg(corpus.street_photo(10, (2000, 1500)), progressive=True))
    assert photo.display_size == (2000, 1500)  # ≤ DISPLAY_MAX: kept as decoded
    big = process_photo(corpus.jpeg(corpus.street_photo(10, (3000, 2000)), progressive=True))
    assert big.display_size == (DISPLAY_SIZE, 1067)  # 1/2 would be 1500 < 1600: full decode, then fitted


# --- the display copy without a decode ----------------------------------------------------------

def pixels(jpeg_bytes):
    return np.asarray(Image.open(io.BytesIO(jpeg_bytes)))


def test_upright_srgb_jpeg_is_its_own_display_copy_without_its_metadata():
    """What the mini-program's compressed photos are: the display copy is the original's own
    entropy-coded data (no generation loss), with EXIF, XMP, comments and trailers cut out."""
    from app.media.processing import display_copy

    exif = corpus.gps_exif()
    data = corpus.jpeg(corpus.street_photo(31, (1920, 1440)), quality=85, exif=exif.tobytes(),
                       comment=b"secret-comment")
    data = corpus.insert_jpeg_segment(data, 0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>GPS</x:xmpmeta>")
    data += b"SEFH" + os.urandom(512) + b"SEFT"
    photo = process_photo(data)
    assert photo.display_size == (1920, 1440) and photo.thumb_size == (480, 360)  # the 1/4 decode as it is
    assert np.array_equal(pixels(photo.display), pixels(data))  # the same pixels: nothing re-encoded
    assert len(photo.display) < len(data) - 512
    assert corpus.jpeg_segments(photo.display)[0] != 0xE1
    assert not {0xE0, 0xE1, 0xE2, 0xED, 0xFE} & set(corpus.jpeg_segments(photo.display))
    for secret in (b"Exif", b"TestCam", b"xmpmeta", b"secret-comment", b"SEFH"):
        assert secret not in photo.display
    # the job that makes display copies later takes the same path
    assert display_copy(data) == (photo.display, (1920, 1440))


def test_progressive_jpeg_loses_metadata_hidden_between_its_scans():
    from app.media.formats import strip_jpeg

    data = corpus.jpeg(corpus.street_photo(32, (800, 600)), progressive=True)
    second_scan = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    data = data[:second_scan] + b"\xff\xe1\x00\x0ahidden!!" + data[second_scan:]
    stripped = strip_jpeg(bytearray(data))
    assert b"hidden!!" not in stripped
    assert np.array_equal(pixels(stripped), pixels(data))
    assert process_photo(data).display == stripped


@pytest.mark.parametrize("why", ["orientation", "wide_gamut", "cmyk", "too_many_bytes", "too_large", "png"])
def test_display_copy_is_decoded_and_re_encoded_when_the_original_cannot_serve(why, monkeypatch):
    from PIL import ImageCms

    from app.media import processing
    from app.media.formats import strip_jpeg

    image = corpus.street_photo(33, (640, 480))
    if why == "orientation":
        exif = Image.Exif()
        exif[0x0112] = 6
        data = corpus.jpeg(image, exif=exif.tobytes())
    elif why == "wide_gamut":
        data = corpus.jpeg(image, icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes())
    elif why == "cmyk":
        data = corpus.encode(image.convert("CMYK"), "JPEG")
    elif why == "too_many_bytes":
        data = corpus.jpeg(image, quality=100)
        monkeypatch.setattr(processing, "DISPLAY_AS_IS_BYTES", len(data) - 1)
    elif why == "too_large":
        data = corpus.jpeg(corpus.street_photo(33, (2100, 1400)))
    else:
        data = corpus.encode(image, "PNG")
    photo = process_photo(data)
    assert Image.open(io.BytesIO(photo.display)).format == "JPEG"
    assert Image.open(io.BytesIO(photo.display)).mode in ("RGB", "L")
    if data[:2] == b"\xff\xd8":
        assert photo.display != strip_jpeg(bytearray(data))


@pytest.mark.parametrize("patch", ["arithmetic", "lossless", "12_bit", "four_components"])
def test_strip_jpeg_refuses_frames_a_browser_may_not_show(patch):
    from app.media.formats import strip_jpeg

    data = bytearray(corpus.jpeg(corpus.street_photo(34, (320, 240))))
    assert strip_jpeg(bytearray(data)) is not None
    sof = data.index(b"\xff\xc0")
    if patch == "arithmetic":
        data[sof + 1] = 0xC9
    elif patch == "lossless":
        data[sof + 1] = 0xC3
    elif patch == "12_bit":
        data[sof + 4] = 12
    else:
        data[sof + 9] = 4
    assert strip_jpeg(data) is None


# --- EXIF: read, then gone ------------------------------------------------------------------------

def test_exif_time_and_gps_are_read_and_absent_from_every_copy():
    exif = corpus.gps_exif()
    data = corpus.jpeg(corpus.street_photo(11, (800, 600)), exif=exif.tobytes())
    photo = process_photo(data)
    assert photo.exif.taken_at == datetime(2024, 5, 1, 1, 30, 15, tzinfo=timezone.utc)
    lat, lng = photo.exif.gps
    assert lat == pytest.approx(22 + 58 / 60 + 30.45 / 3600) and lng == pytest.approx(113 + 45 / 60 + 12.5 / 3600)
    for copy in (photo.display, photo.thumb):
        assert corpus.jpeg_segments(copy)[:1] == [0xE0] or 0xE1 not in corpus.jpeg_segments(copy)
        assert not {0xE1, 0xE2, 0xED, 0xFE} & set(corpus.jpeg_segments(copy))
        assert b"Exif" not in copy and b"TestCam" not in copy and b"http://ns.adobe.com" not in copy
        assert len(Image.open(io.BytesIO(copy)).getexif()) == 0


def test_xmp_and_comments_are_not_copied():
    data = corpus.jpeg(corpus.street_photo(12, (400, 300)), comment=b"secret-comment")
    data = corpus.insert_jpeg_segment(data, 0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>GPSLatitude=22.9</x:xmpmeta>")
    photo = process_photo(data)
    for copy in (photo.display, photo.thumb):
        assert b"secret-comment" not in copy and b"xmpmeta" not in copy


def test_exif_in_png_and_webp_is_read():
    exif = corpus.gps_exif(lat_ref="S", lng_ref="W", offset="-03:00", when="2023:12:31 22:00:00")
    image = corpus.street_photo(13, (300, 200))
    for fmt in ("PNG", "WEBP"):
        photo = process_photo(corpus.encode(image, fmt, exif=exif.tobytes()))
        assert photo.exif.gps[0] < 0 and photo.exif.gps[1] < 0, fmt
        assert photo.exif.taken_at == datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc), fmt


def quadrants(image):
    """Mean colour of each quadrant, rounded to a colour name index."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    h, w = arr.shape[0] // 2, arr.shape[1] // 2
    return [tuple(int(v) for v in arr[y:y + h, x:x + w].mean(axis=(0, 1)) // 64)
            for y in (0, h) for x in (0, w)]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_applied(orientation):
    base = Image.new("RGB", (400, 200))
    for (x, y), colour in zip([(0, 0), (200, 0), (0, 100), (200, 100)],
                              [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]):
        base.paste(colour, (x, y, x + 200, y + 100))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = corpus.encode(base, "JPEG", quality=95, exif=exif.tobytes())
    photo = process_photo(data)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert photo.exif.orientation == orientation
    assert (photo.width, photo.height) == expected.size == photo.display_size
    assert quadrants(Image.open(io.BytesIO(photo.display))) == quadrants(expected)


def test_hostile_exif_is_survived_quickly_without_warnings():
    # pytest turns warnings into errors here, so Pillow's per-tag warnings would fail this test.
    data = corpus.insert_jpeg_segment(corpus.jpeg(), 0xE1, corpus.hostile_exif_block()[:65000])
    started = time.perf_counter()
    photo = process_photo(data)
    assert time.perf_counter() - started < 1.0
    assert photo.exif.orientation == 1 and photo.exif.gps is None


def test_huge_exif_in_png_is_read_and_stripped():
    exif = corpus.gps_exif()
    exif[0x927C] = b"M" * (4 * 1024 * 1024)  # a 4 MB MakerNote
    exif[0x010E] = "x" * 100_000
    data = corpus.encode(corpus.street_photo(14, (300, 200)), "PNG", exif=exif.tobytes())
    assert len(data) > 4 * 1024 * 1024
    photo = process_photo(data)
    assert photo.exif.gps is not None
    assert len(photo.display) < 200_000 and b"MMMMMMMM" not in photo.display


def test_full_size_jpeg_exif_segment_at_the_64k_limit():
    exif = corpus.gps_exif()
    exif[0x927C] = b"\x01" * 60_000
    photo = process_photo(corpus.jpeg(corpus.street_photo(15, (640, 480)), exif=exif.tobytes()))
    assert photo.exif.gps is not None and photo.exif.taken_at is not None


# --- leave nothing behind ------------------------------------------------------------------------

def test_process_photo_does_not_touch_its_source(tmp_path):
    source = tmp_path / "in.jpg"
    source.write_bytes(corpus.jpeg())
    before = source.read_bytes()
    process_photo(str(source))
    assert source.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["in.jpg"]
