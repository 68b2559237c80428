import io
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest

from app.media import signing
from app.media.photos import delete_photo_files, new_photo_keys, photo_urls, store_photo
from app.media.processing import inspect_upload, process_photo
from app.media.storage import LocalStorage, S3Storage, Storage, get_storage, make_storage
from app.media.views import bp as media_bp
from tests.media import corpus

SECRET = "test-secret"


def exercise_storage(storage: Storage):
    storage.put("photos/2024/05/a.jpg", b"first", "image/jpeg")
    storage.put("photos/2024/05/a.jpg", io.BytesIO(b"second"), "image/jpeg")  # replaces
    assert storage.exists("photos/2024/05/a.jpg")
    with storage.open("photos/2024/05/a.jpg") as handle:
        assert handle.read() == b"second"
    storage.delete("photos/2024/05/a.jpg")
    storage.delete("photos/2024/05/a.jpg")  # idempotent
    assert not storage.exists("photos/2024/05/a.jpg")
    with pytest.raises(FileNotFoundError):
        storage.open("photos/2024/05/a.jpg")
    for bad in ("../etc/passwd", "/abs/key.jpg", "photos/../../x", ".hidden", "a//b", "a/./b", ""):
        with pytest.raises(ValueError):
            storage.put(bad, b"x", "image/jpeg")
    storage.put("private/originals/o.jpg", b"original", "image/jpeg")
    with pytest.raises(ValueError):
        storage.signed_url("private/originals/o.jpg", 60)
    assert storage.exists("private/originals/o.jpg")


# --- local -------------------------------------------------------------------------------------

def test_local_storage_contract(tmp_path):
    storage = LocalStorage(tmp_path, url_builder=lambda key, exp, sig: f"/m/{key}?{exp}&{sig}", secret=SECRET)
    exercise_storage(storage)
    assert not [p for p in tmp_path.rglob(".put-*")]


def test_local_put_is_all_or_nothing(tmp_path):
    storage = LocalStorage(tmp_path, secret=SECRET)

    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise OSError("client went away")

    with pytest.raises(OSError):
        storage.put("photos/x.jpg", Broken(), "image/jpeg")
    assert not storage.exists("photos/x.jpg") and not list(tmp_path.rglob(".put-*"))


def test_make_storage_picks_the_backend(tmp_path):
    assert isinstance(make_storage(str(tmp_path)), LocalStorage)
    assert isinstance(make_storage("s3://bucket/prefix?endpoint_url=http://127.0.0.1:9&region=us-east-1"), S3Storage)
    with pytest.raises(ValueError):
        S3Storage("s3:///no-bucket")


@pytest.fixture
def media_app(make_app, tmp_path):
    app = make_app(MEDIA_STORAGE=str(tmp_path / "media"), SECRET_KEY=SECRET, PUBLIC_BASE_URL="")
    if "media" not in app.blueprints:
        app.register_blueprint(media_bp)
    return app


def test_get_storage_is_built_once_per_app(media_app):
    with media_app.app_context():
        assert get_storage() is get_storage()
        assert isinstance(get_storage(), LocalStorage)


def fetch(client, url):
    parsed = urlparse(url)
    return client.get(parsed.path + ("?" + parsed.query if parsed.query else ""))


def test_signed_url_serves_the_copy_with_safe_headers(media_app):
    client = media_app.test_client()
    with media_app.test_request_context():
        storage = get_storage()
        storage.put("photos/p.jpg", b"\xff\xd8display", "image/jpeg")
        url = storage.signed_url("photos/p.jpg", 600)
    assert url.startswith("http://localhost/media/photos/p.jpg?")
    response = fetch(client, url)
    assert response.status_code == 200 and response.data == b"\xff\xd8display"
    assert response.mimetype == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"].startswith("private, max-age=")
    assert 600 <= int(response.headers["Cache-Control"].split("=")[1]) <= 900


def test_public_base_url_is_used_when_configured(media_app):
    media_app.config["PUBLIC_BASE_URL"] = "https://rrp.example.cn/"
    with media_app.app_context():
        url = get_storage().signed_url("photos/p.jpg", 60)
    assert url.startswith("https://rrp.example.cn/media/photos/p.jpg?exp=")


def error_of(response):
    body = response.get_json()
    return response.status_code, body["error"]["code"], body["error"]["message"]


def test_tampered_expired_and_private_urls_are_403_in_the_error_shape(media_app):
    client = media_app.test_client()
    with media_app.app_context():
        storage = get_storage()
        storage.put("photos/p.jpg", b"img", "image/jpeg")
        storage.put("photos/q.jpg", b"other", "image/jpeg")
        storage.put("private/originals/o.jpg", b"original", "image/jpeg")
        url = storage.signed_url("photos/p.jpg", 600)
    query = parse_qs(urlparse(url).query)
    exp, sig = query["exp"][0], query["sig"][0]
    tampered_sig = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    cases = {
        f"/media/photos/p.jpg?exp={exp}&sig={tampered_sig}": "media_url_invalid",
        f"/media/photos/p.jpg?exp={int(exp) + 300}&sig={sig}": "media_url_invalid",  # extended expiry
        f"/media/photos/q.jpg?exp={exp}&sig={sig}": "media_url_invalid",  # another key
        "/media/photos/p.jpg": "media_url_invalid",
        f"/media/photos/p.jpg?exp=soon&sig={sig}": "media_url_invalid",
    }
    past = int(time.time()) - 10
    cases[f"/media/photos/p.jpg?exp={past}&sig={signing.sign(SECRET, 'photos/p.jpg', past)}"] = "media_url_expired"
    future = int(time.time()) + 600
    private_sig = signing.sign(SECRET, "private/originals/o.jpg", future)  # even a correct signature
    cases[f"/media/private/originals/o.jpg?exp={future}&sig={private_sig}"] = "media_url_invalid"
    for path, code in cases.items():
        status, got, message = error_of(client.get(path))
        assert (status, got) == (403, code), path
        assert any("\u4e00" <= ch <= "\u9fff" for ch in message)


def test_signature_depends_on_secret():
    exp = int(time.time()) + 60
    assert signing.check("other-secret", "photos/p.jpg", exp, signing.sign(SECRET, "photos/p.jpg", exp)) == "media_url_invalid"
    assert signing.check(SECRET, "photos/p.jpg", exp, signing.sign(SECRET, "photos/p.jpg", exp)) is None
    assert signing.check("", "photos/p.jpg", exp, signing.sign("", "photos/p.jpg", exp)) == "media_url_invalid"


def test_expiry_is_rounded_up_to_a_step():
    assert signing.expiry_for(3600, now=1000) == 4800
    assert signing.expiry_for(3600, now=1200) == 4800
    assert signing.expiry_for(3600, now=1201) == 5100


def test_valid_signature_for_missing_file_is_404(media_app):
    client = media_app.test_client()
    exp = int(time.time()) + 60
    status, code, _ = error_of(client.get(f"/media/photos/gone.jpg?exp={exp}&sig={signing.sign(SECRET, 'photos/gone.jpg', exp)}"))
    assert (status, code) == (404, "media_not_found")


# --- photos: three objects in, all out on failure -----------------------------------------------

def test_store_photo_writes_three_objects_and_urls_never_reach_the_original(media_app, tmp_path):
    data = corpus.jpeg(exif=corpus.gps_exif().tobytes())
    with media_app.test_request_context(), inspect_upload(io.BytesIO(data), spool_dir=str(tmp_path)) as upload:
        photo = process_photo(upload)
        keys = store_photo(upload, photo)
        storage = get_storage()
        assert keys.original_key.startswith("private/originals/") and keys.original_key.endswith(".jpg")
        with storage.open(keys.original_key) as handle:
            assert handle.read() == data  # the original, verbatim (EXIF and all), kept privately
        urls = photo_urls(keys.display_key, keys.thumb_key)
        client = media_app.test_client()
        assert fetch(client, urls["url"]).data == photo.display
        assert fetch(client, urls["thumb_url"]).data == photo.thumb
        delete_photo_files(keys)
        assert not any(storage.exists(key) for key in keys.all())


def test_store_photo_removes_what_it_wrote_when_a_put_fails(tmp_path):
    class FailingThird(LocalStorage):
        calls = 0

        def put(self, key, data, content_type):
            self.calls += 1
            if self.calls == 3:
                raise OSError("disk full")
            super().put(key, data, content_type)

    storage = FailingThird(tmp_path / "store", secret=SECRET)
    with inspect_upload(io.BytesIO(corpus.jpeg()), spool_dir=str(tmp_path)) as upload:
        photo = process_photo(upload)
        with pytest.raises(OSError):
            store_photo(upload, photo, storage)
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


def test_keys_are_random_and_original_is_unlinkable_from_display():
    a, b = new_photo_keys("png"), new_photo_keys("png")
    assert a.display_key != b.display_key and a.original_key.endswith(".png")
    assert a.original_key.split("/")[-1].split(".")[0] not in a.display_key


# --- S3 (moto server on loopback) ---------------------------------------------------------------

@pytest.fixture
def s3_storage(s3_bucket):
    storage = make_storage(s3_bucket.media_url)
    storage.test_bucket = s3_bucket.name
    return storage


def test_s3_storage_contract(s3_storage):
    exercise_storage(s3_storage)
    listed = s3_storage.client.list_objects_v2(Bucket=s3_storage.test_bucket)["Contents"]
    assert {item["Key"] for item in listed} == {"media/private/originals/o.jpg"}  # under the prefix


def test_s3_presigned_url_fetches_the_copy_and_expires_in_ttl(s3_storage):
    s3_storage.put("photos/p.jpg", b"\xff\xd8display", "image/jpeg")
    url = s3_storage.signed_url("photos/p.jpg", 900)
    query = parse_qs(urlparse(url).query)
    assert query["X-Amz-Expires"] == ["900"] and query["X-Amz-Signature"][0]
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"\xff\xd8display"
        assert response.headers["Content-Type"] == "image/jpeg"


def test_store_photo_on_s3_cleans_up_on_failure(s3_storage, tmp_path, monkeypatch):
    original_put = s3_storage.put
    calls = []

    def failing_put(key, data, content_type):
        calls.append(key)
        if len(calls) == 2:
            raise OSError("network down")
        original_put(key, data, content_type)

    monkeypatch.setattr(s3_storage, "put", failing_put)
    with inspect_upload(io.BytesIO(corpus.jpeg()), spool_dir=str(tmp_path)) as upload:
        with pytest.raises(OSError):
            store_photo(upload, process_photo(upload), s3_storage)
    assert "Contents" not in s3_storage.client.list_objects_v2(Bucket=s3_storage.test_bucket)
