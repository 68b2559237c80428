"""Where photo bytes live: a local folder or an S3-compatible bucket, behind one interface.

MEDIA_STORAGE is either a folder path (served by the `media` blueprint through HMAC-signed URLs)
or `s3://bucket/prefix?endpoint_url=http://host:port&region=...&addressing_style=path` (served
by presigned URLs; credentials come from the usual AWS environment variables or instance role).
Keys under `private/` (the originals) are never given a URL by either backend.
"""
from __future__ import annotations

import io
from abc import ABC, abstractmethod
import mimetypes
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable
from urllib.parse import parse_qs, quote, urlencode, urlparse

from flask import current_app, has_request_context, url_for

from app.media import signing
from app.media.signing import PRIVATE_PREFIX

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_CHUNK = 64 * 1024


def check_key(key: str) -> str:
    """Keys are relative, slash-separated, no '..' and no leading dot: safe as a path and a URL."""
    if not isinstance(key, str) or len(key) > 255 or not _KEY.match(key) or ".." in key:
        raise ValueError(f"bad media key: {key!r}")
    return key


class Storage(ABC):
    """The interface. `data` is bytes or a binary stream; `open` returns a readable binary stream."""

    @abstractmethod
    def put(self, key: str, data: bytes | BinaryIO, content_type: str) -> None:
        """Store all of `data` under `key`, replacing any previous object; all or nothing."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Raises FileNotFoundError when the key is absent."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Absent keys are fine: deleting is idempotent."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""

    @abstractmethod
    def signed_url(self, key: str, ttl: int) -> str:
        """A GET URL valid for at least `ttl` seconds; ValueError for private keys."""

    @staticmethod
    def _refuse_private(key: str) -> None:
        if key.startswith(PRIVATE_PREFIX):
            raise ValueError("private media keys are never given a URL")


class LocalStorage(Storage):
    """Files under `folder`. `url_builder(key, exp, sig)` makes the URL (default: the blueprint)."""

    def __init__(self, folder: str | os.PathLike, url_builder: Callable[[str, int, str], str] | None = None,
                 secret: str | None = None):
        self.folder = Path(folder).resolve()
        self.url_builder = url_builder or flask_media_url
        self._secret = secret

    def path_for(self, key: str) -> Path:
        path = (self.folder / check_key(key)).resolve()
        if self.folder not in path.parents:
            raise ValueError(f"bad media key: {key!r}")
        return path

    def put(self, key, data, content_type):
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside, then rename: a reader never sees half a file, a crash leaves no partial one.
        fd, temp = tempfile.mkstemp(prefix=".put-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    handle.write(data)
                else:
                    shutil.copyfileobj(data, handle, _CHUNK)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise

    def open(self, key):
        return open(self.path_for(key), "rb")

    def delete(self, key):
        self.path_for(key).unlink(missing_ok=True)

    def exists(self, key):
        return self.path_for(key).is_file()

    def signed_url(self, key, ttl):
        check_key(key)
        self._refuse_private(key)
        exp = signing.expiry_for(ttl)
        return self.url_builder(key, exp, signing.sign(self.secret, key, exp))

    @property
    def secret(self) -> str:
        return self._secret or current_app.config["SECRET_KEY"]


def flask_media_url(key: str, exp: int, sig: str) -> str:
    """PUBLIC_BASE_URL + /media/<key>?exp=&sig= (absolute: the mini-program needs full URLs)."""
    query = urlencode({"exp": exp, "sig": sig})
    base = current_app.config.get("PUBLIC_BASE_URL", "").rstrip("/")
    if base:
        return f"{base}/media/{quote(key)}?{query}"
    if has_request_context():
        return url_for("media.serve", key=key, exp=exp, sig=sig, _external=True)
    return f"/media/{quote(key)}?{query}"


class S3Storage(Storage):
    """An S3-compatible bucket via boto3; URLs are presigned GETs."""

    def __init__(self, url: str, client=None):
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError("MEDIA_STORAGE for S3 must look like s3://bucket/prefix")
        options = {name: values[-1] for name, values in parse_qs(parsed.query).items()}
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = client or _make_s3_client(options)

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key, data, content_type):
        body = io.BytesIO(bytes(data)) if isinstance(data, (bytes, bytearray, memoryview)) else data
        self.client.upload_fileobj(body, self.bucket, self._object(key), ExtraArgs={"ContentType": content_type})

    def open(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._object(key))["Body"]
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(key) from None

    def delete(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))

    def exists(self, key):
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object(key))
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def signed_url(self, key, ttl):
        self._refuse_private(check_key(key))
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._object(key)}, ExpiresIn=int(ttl))


def _make_s3_client(options: dict):
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": options.get("addressing_style", "auto")},
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=options.get("endpoint_url"),
                        region_name=options.get("region") or options.get("region_name"), config=config)


def make_storage(setting: str) -> Storage:
    """A folder path → LocalStorage; s3://… → S3Storage."""
    if setting.startswith("s3://"):
        return S3Storage(setting)
    return LocalStorage(setting)


def get_storage(app=None) -> Storage:
    """The app's storage, built once from MEDIA_STORAGE."""
    app = app or current_app._get_current_object()
    storage = app.extensions.get("media_storage")
    if storage is None:
        storage = app.extensions["media_storage"] = make_storage(app.config["MEDIA_STORAGE"])
    return storage


def content_type_for(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"
