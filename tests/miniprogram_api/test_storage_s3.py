"""The same upload → tip → display-copy path with S3-compatible storage (moto's server on loopback)."""
import io
import time

import pytest
import requests
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.media.photos import make_display_copy
from app.models.photo import Photo
from tests.media import corpus
from tests.miniprogram_api.conftest import Resident, tip_body


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_app(make_app, sandbox_config, reference_data, db, moto_endpoint, monkeypatch):
    import boto3

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"rrp-mp-{time.time_ns()}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    application = make_app(**sandbox_config, MEDIA_STORAGE=(
        f"s3://{bucket}/media?endpoint_url={moto_endpoint}&region=us-east-1&addressing_style=path"))
    with application.app_context():
        yield application, client, bucket


def keys_in(client, bucket):
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_upload_tip_and_display_copy_on_s3(s3_app, wechat_sandbox):
    application, client, bucket = s3_app
    http = application.test_client()
    login = http.post("/api/mp/v1/auth/login", json={"code": wechat_sandbox.login_code("o_s3")}).get_json()
    resident = Resident(http, login["token"], login["resident"]["id"], "o_s3")

    answer = resident.upload(corpus.jpeg(corpus.street_photo(9, (1000, 750)), exif=corpus.gps_exif()))
    assert answer.status_code == 201, answer.get_json()
    photo = db.session.get(Photo, answer.get_json()["id"])
    stored = keys_in(client, bucket)
    assert stored == sorted([f"media/{photo.original_key}", f"media/{photo.thumb_key}"])
    db.session.rollback()
    assert make_display_copy(photo.id) == "done"
    assert make_display_copy(photo.id) == "skipped"  # idempotent
    assert f"media/{photo.display_key}" in keys_in(client, bucket)

    tip = resident.submit(tip_body([photo.id])).get_json()
    url = tip["photos"][0]["url"]
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=" in url
    fetched = requests.get(url, timeout=10)
    assert fetched.status_code == 200
    image = Image.open(io.BytesIO(fetched.content))
    assert image.size == (1000, 750) and not image.getexif()
    assert "private/" not in url


def test_refused_upload_leaves_nothing_in_the_bucket(s3_app, wechat_sandbox):
    application, client, bucket = s3_app
    http = application.test_client()
    login = http.post("/api/mp/v1/auth/login", json={"code": wechat_sandbox.login_code("o_s3b")}).get_json()
    resident = Resident(http, login["token"], login["resident"]["id"], "o_s3b")
    assert resident.upload(corpus.jpeg()[:-2]).status_code == 422
    assert resident.upload(corpus.png_bomb()).status_code == 413
    assert keys_in(client, bucket) == []
    assert db.session.scalars(select(Photo)).all() == []
