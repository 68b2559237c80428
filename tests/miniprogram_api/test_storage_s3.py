"""The same upload → tip → display-copy path with S3-compatible storage (moto's server on loopback)."""
import io

import pytest
import requests
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.media.photos import make_display_copy
from app.models.photo import Photo
from tests.media import corpus
from tests.miniprogram_api.conftest import Resident, tip_body


@pytest.fixture
def s3_app(make_app, sandbox_config, reference_data, db, s3_bucket):
    application = make_app(**sandbox_config, MEDIA_STORAGE=s3_bucket.media_url)
    with application.app_context():
        yield application, s3_bucket


def test_upload_tip_and_display_copy_on_s3(s3_app, wechat_sandbox):
    application, bucket = s3_app
    http = application.test_client()
    login = http.post("/api/mp/v1/auth/login", json={"code": wechat_sandbox.login_code("o_s3")}).get_json()
    resident = Resident(http, login["token"], login["resident"]["id"], "o_s3")

    # held sideways (orientation 6): the display copy is the job's
    answer = resident.upload(corpus.jpeg(corpus.street_photo(9, (750, 1000)), exif=corpus.gps_exif(orientation=6)))
    assert answer.status_code == 201, answer.get_json()
    photo = db.session.get(Photo, answer.get_json()["id"])
    stored = bucket.keys()
    assert stored == sorted([f"media/{photo.original_key}", f"media/{photo.thumb_key}"])
    db.session.rollback()
    assert make_display_copy(photo.id) == "done"
    assert make_display_copy(photo.id) == "skipped"  # idempotent
    assert f"media/{photo.display_key}" in bucket.keys()

    # upright: the original without its metadata is the display copy, written in the request
    upright = resident.upload(corpus.jpeg(corpus.street_photo(10, (1000, 750)), exif=corpus.gps_exif()))
    upright_photo = db.session.get(Photo, upright.get_json()["id"])
    assert f"media/{upright_photo.display_key}" in bucket.keys()

    tip = resident.submit(tip_body([photo.id, upright_photo.id])).get_json()
    for served in tip["photos"]:
        url = served["url"]
        assert "X-Amz-Signature=" in url and "X-Amz-Expires=" in url
        fetched = requests.get(url, timeout=10)
        assert fetched.status_code == 200
        image = Image.open(io.BytesIO(fetched.content))
        assert image.size == (1000, 750) and not image.getexif() and b"TestCam" not in fetched.content
        assert "private/" not in url


def test_refused_upload_leaves_nothing_in_the_bucket(s3_app, wechat_sandbox):
    application, bucket = s3_app
    http = application.test_client()
    login = http.post("/api/mp/v1/auth/login", json={"code": wechat_sandbox.login_code("o_s3b")}).get_json()
    resident = Resident(http, login["token"], login["resident"]["id"], "o_s3b")
    assert resident.upload(corpus.jpeg()[:-2]).status_code == 422
    assert resident.upload(corpus.png_bomb()).status_code == 413
    assert bucket.keys() == []
    assert db.session.scalars(select(Photo)).all() == []
