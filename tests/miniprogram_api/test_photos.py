"""POST /photos over HTTP: real type from the bytes, the hostile corpus, EXIF kept privately and
stripped from what is served, signed URLs, and nothing left behind on refusal."""
import io
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.media.processing import MAX_UPLOAD_BYTES
from app.models.outbox import OutboxMessage
from app.models.photo import Photo
from tests.media import corpus
from tests.miniprogram_api.conftest import tip_body


def fetch(resident, url) -> Image.Image:
    """GET a signed media URL through the app; the image, checked to be a JPEG."""
    parsed = urlparse(url)
    served = resident.client.get(f"{parsed.path}?{parsed.query}")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    return Image.open(io.BytesIO(served.data))


def stored_files(app) -> list[Path]:
    root = Path(app.config["MEDIA_STORAGE"])
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_upload_stores_original_privately_and_serves_stripped_copies(mp_app, login, run_jobs):
    resident = login()
    # A camera original held sideways (orientation 6): its display copy needs a decode (a job).
    data = corpus.jpeg(corpus.street_photo(3, (900, 1200)), exif=corpus.gps_exif(orientation=6))
    answer = resident.upload(data, filename="whatever.png")
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert set(body) >= {"id", "sha256", "width", "height", "url", "thumb_url"}
    assert (body["width"], body["height"]) == (1200, 900)
    import hashlib

    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    photo = db.session.get(Photo, body["id"])
    assert photo.resident_id == resident.id and photo.tip_id is None and photo.mime == "image/jpeg"
    assert photo.exif_lat == pytest.approx(22 + 58 / 60 + 30.45 / 3600, abs=1e-4)
    assert photo.exif_taken_at is not None and photo.phash is not None
    assert photo.original_key.startswith("private/")
    # Until the display copy is made (a job), the photo shows its thumbnail.
    assert body["url"] == body["thumb_url"]
    thumb = fetch(resident, body["thumb_url"])
    assert max(thumb.size) == 320 and not thumb.getexif() and "exif" not in thumb.info
    db.session.rollback()  # end the test's read before the worker writes (SQLite has one writer)
    run_jobs(["intake"])
    tip_photo = resident.submit(tip_body([photo.id])).get_json()["photos"][0]
    assert tip_photo["url"] != tip_photo["thumb_url"]
    display = fetch(resident, tip_photo["url"])
    assert display.size == (1200, 900) and not display.getexif() and "exif" not in display.info
    url = urlparse(tip_photo["url"])
    # Tampered or unsigned URLs are refused; the original has no URL at all.
    assert resident.client.get(url.path).status_code == 403
    assert resident.client.get(f"/media/{photo.original_key}?exp=9999999999&sig=x").status_code == 403


def test_upright_photo_has_its_display_copy_at_once(mp_app, login):
    """The mini-program's compressed photos (upright, sRGB, ≤ 2048 px): the original without its
    metadata is the display copy, stored in the upload request; no job is left to do."""
    from app.media.photos import pending_display_ids

    resident = login()
    data = corpus.jpeg(corpus.street_photo(3, (1200, 900)), exif=corpus.gps_exif())
    body = resident.upload(data).get_json()
    assert body["url"] != body["thumb_url"]
    display = fetch(resident, body["url"])
    assert display.size == (1200, 900) and not display.getexif() and "exif" not in display.info
    assert pending_display_ids([body["id"]]) == set()
    assert db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "photo.display")).all() == []


def test_orientation_is_applied(login):
    resident = login()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    data = corpus.jpeg(corpus.street_photo(4, (800, 600)), exif=exif.tobytes())
    body = resident.upload(data).get_json()
    assert (body["width"], body["height"]) == (600, 800)


def test_webp_and_png_are_accepted(login):
    resident = login()
    for fmt in ("PNG", "WEBP"):
        answer = resident.upload(corpus.encode(corpus.street_photo(5, (300, 200)), fmt), filename="x.jpg")
        assert answer.status_code == 201, (fmt, answer.get_json())
        assert db.session.get(Photo, answer.get_json()["id"]).mime == f"image/{fmt.lower()}"


HOSTILE = {
    "decompression_bomb_png": (corpus.png_bomb, 413, "image_too_large"),
    "decompression_bomb_jpeg": (corpus.jpeg_bomb, 413, "image_too_large"),
    "decompression_bomb_webp": (corpus.webp_bomb, 413, "image_too_large"),
    "truncated_jpeg": (lambda: corpus.jpeg()[: len(corpus.jpeg()) * 6 // 10], 422, "image_corrupt"),
    "corrupt_png": (lambda: corpus.png(50, 50, b"\x00" * 10 + bytes(range(256)) * 4), 422, "image_corrupt"),
    "polyglot_jpeg_zip": (lambda: corpus.jpeg() + corpus.zip_bytes(), 415, "image_polyglot"),
    "polyglot_jpeg_html": (lambda: corpus.jpeg() + b"<html><script>alert(1)</script></html>", 415, "image_polyglot"),
    "gif_named_jpg": (lambda: corpus.encode(Image.new("P", (40, 40)), "GIF"), 415, "unsupported_image_type"),
    "pdf": (lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", 415, "unsupported_image_type"),
    "html": (lambda: b"<!doctype html><html><body>hi</body></html>", 415, "unsupported_image_type"),
    "animated_png": (lambda: corpus.encode(Image.new("RGB", (60, 60), "red"), "PNG", save_all=True,
                                           append_images=[Image.new("RGB", (60, 60), "blue")]), 415, "image_animated"),
    "animated_webp": (lambda: corpus.encode(Image.new("RGB", (60, 60), "red"), "WEBP", save_all=True,
                                            append_images=[Image.new("RGB", (60, 60), "blue")]), 415, "image_animated"),
    "empty": (lambda: b"", 422, "image_empty"),
    "too_big": (lambda: corpus.jpeg() + b"\x00" * (MAX_UPLOAD_BYTES + 1 - len(corpus.jpeg())), 413, None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_get_the_right_4xx_and_leave_nothing(mp_app, login, name):
    make, status, code = HOSTILE[name]
    resident = login()
    before = stored_files(mp_app)
    answer = resident.upload(make())
    assert answer.status_code == status, (name, answer.get_json())
    error = answer.get_json()["error"]
    if code:
        assert error["code"] == code
    assert error["message"] and not error["message"].isascii()  # Chinese for the resident
    assert db.session.scalars(select(Photo)).all() == []
    assert stored_files(mp_app) == before


@pytest.mark.parametrize("name", ["cmyk", "sixteen_bit_png", "huge_exif"])
def test_odd_but_valid_files_are_accepted(login, name):
    if name == "cmyk":
        data = corpus.encode(corpus.street_photo(7, (300, 200)).convert("CMYK"), "JPEG")
    elif name == "sixteen_bit_png":
        data = corpus.png_16bit_rgb()
    else:
        data = corpus.insert_jpeg_segment(corpus.jpeg(), 0xE1, b"Exif\x00\x00" + corpus.hostile_exif_block())
    answer = login().upload(data)
    assert answer.status_code == 201, answer.get_json()


def test_missing_file_field_is_422(login):
    resident = login()
    answer = resident.post("/photos", data={"other": (io.BytesIO(corpus.jpeg()), "x.jpg")},
                           content_type="multipart/form-data")
    assert answer.status_code == 422 and "file" in answer.get_json()["error"]["fields"]
    assert resident.post("/photos", json={"file": "abc"}).status_code == 422


def test_failed_commit_removes_the_stored_files(mp_app, login, monkeypatch):
    resident = login()
    before = stored_files(mp_app)

    def broken_commit():
        raise RuntimeError("database went away")

    monkeypatch.setattr(db.session, "commit", broken_commit)
    mp_app.config["PROPAGATE_UNEXPECTED"] = False
    try:
        answer = resident.upload()
    finally:
        mp_app.config["PROPAGATE_UNEXPECTED"] = True
        monkeypatch.undo()
    assert answer.status_code == 500
    assert stored_files(mp_app) == before
    assert db.session.scalars(select(Photo)).all() == []


def test_display_copies_can_be_forced_before_urls_are_handed_out(mp_app, login, run_jobs):
    from app.media.photos import ensure_display_copies, make_display_copy, pending_display_ids, photo_urls

    resident = login()
    sideways = Image.Exif()
    sideways[0x0112] = 8
    ids = [resident.photo_id(corpus.jpeg(corpus.street_photo(seed, (480, 640)), exif=sideways.tobytes()))
           for seed in (21, 22)]
    photos = [db.session.get(Photo, i) for i in ids]
    assert pending_display_ids(ids) == set(ids)
    assert ensure_display_copies(photos) == 2
    db.session.commit()
    assert pending_display_ids(ids) == set() and ensure_display_copies(photos) == 0
    assert make_display_copy(ids[0]) == "skipped"
    for photo in photos:
        assert fetch(resident, photo_urls(photo.display_key, photo.thumb_key)["url"]).size == (640, 480)


def test_photos_never_used_in_a_tip_are_purged_after_a_day(mp_app, login):
    from datetime import timedelta

    from app.models.base import utcnow
    from miniprogram_api.intake import purge_orphan_photos
    from tests.miniprogram_api.conftest import tip_body

    resident = login()
    used, orphan, fresh = resident.photo_id(), resident.photo_id(), resident.photo_id()
    assert resident.submit(tip_body([used])).status_code == 201
    old = utcnow() - timedelta(hours=25)
    from sqlalchemy import update

    db.session.execute(update(Photo).where(Photo.id.in_([used, orphan])).values(created_at=old))
    db.session.commit()
    orphan_keys = db.session.get(Photo, orphan)
    keys = [orphan_keys.original_key, orphan_keys.thumb_key]
    root = Path(mp_app.config["MEDIA_STORAGE"])
    assert all((root / key).exists() for key in keys)
    assert purge_orphan_photos() == 1
    assert db.session.get(Photo, orphan) is None
    assert db.session.get(Photo, used) is not None and db.session.get(Photo, fresh) is not None
    assert not any((root / key).exists() for key in keys)
    assert purge_orphan_photos() == 0
