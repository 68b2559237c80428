"""Key pairs for WeChat Pay APIv3 outside production: generated once under the instance folder.

The app (as the merchant) and the sandbox (as WeChat Pay) started with the same instance folder find
the same files, so `PAYOUT_CHANNEL=transfer` works in the demo and the tests with nothing set:
  merchant_key.pem   the merchant's private key (WECHAT_PAY_KEY_FILE), its serial in merchant_serial
  wechatpay_key.pem  WeChat Pay's private key (the sandbox signs with it)
  wechatpay_pub.pem  its public key (WECHAT_PAY_PUBLIC_KEY_FILE), its id in wechatpay_pub_id
Never used in production (app.config refuses to start the transfer channel without real keys).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

FOLDER = "wechatpay_dev"


def _pem_private(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_public(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def dev_v3_keys(instance_path: str | os.PathLike) -> dict:
    """Paths and ids of the development key pairs, generating them the first time (one process at a
    time: the app and the sandbox may start together)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    folder = Path(instance_path) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    files = {"merchant": folder / "merchant_key.pem", "wechatpay": folder / "wechatpay_key.pem",
             "public": folder / "wechatpay_pub.pem", "serial": folder / "merchant_serial",
             "public_id": folder / "wechatpay_pub_id"}
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(path.exists() for path in files.values()):
            merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            wechatpay = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            serial = hashlib.sha1(_pem_public(merchant)).hexdigest().upper()
            public_id = "PUB_KEY_ID_" + str(int(hashlib.sha1(_pem_public(wechatpay)).hexdigest()[:16], 16))
            _write(files["merchant"], _pem_private(merchant))
            _write(files["wechatpay"], _pem_private(wechatpay))
            _write(files["public"], _pem_public(wechatpay))
            _write(files["serial"], serial.encode())
            _write(files["public_id"], public_id.encode())
    return {"WECHAT_PAY_KEY_FILE": str(files["merchant"]), "WECHAT_PAY_SERIAL": files["serial"].read_text().strip(),
            "WECHAT_PAY_PUBLIC_KEY_FILE": str(files["public"]),
            "WECHAT_PAY_PUBLIC_KEY_ID": files["public_id"].read_text().strip(),
            "SANDBOX_PAY_PRIVATE_KEY_FILE": str(files["wechatpay"])}
