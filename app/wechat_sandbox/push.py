"""Message push (消息推送) of media_check_async results to the configured callback URL.

As WeChat does: query `signature`/`timestamp`/`nonce` (sha1 of the sorted token, timestamp, nonce);
in safe mode (an EncodingAESKey configured) the body is `{"ToUserName", "Encrypt"}` plus
`encrypt_type=aes&msg_signature=...`; data format JSON or XML. Retried three times without "success".
"""
from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from xml.sax.saxutils import escape

import requests


def _sha1(*parts) -> str:
    return hashlib.sha1("".join(sorted(str(p) for p in parts)).encode("utf-8")).hexdigest()


def event_payload(cfg, row, created: int) -> dict:
    return {"ToUserName": cfg.get("SANDBOX_ORIGINAL_ID", "gh_sandbox000001"), "FromUserName": row["openid"],
            "CreateTime": created, "MsgType": "event", "Event": "wxa_media_check", "appid": cfg["WECHAT_APPID"],
            "trace_id": row["trace_id"], "version": 2,
            "detail": [{"strategy": "content_model", "errcode": 0, "suggest": row["suggest"],
                        "label": _label(row["label"]), "prob": 90}],
            "errcode": 0, "errmsg": "ok", "result": {"suggest": row["suggest"], "label": _label(row["label"])}}


def _label(value):
    """A captured real wxa_media_check push carries `label` as a string ("100"), not a number."""
    return None if value is None else str(value)


def _to_xml(payload: dict) -> str:
    def element(name, value):
        if isinstance(value, dict):
            return f"<{name}>" + "".join(element(k, v) for k, v in value.items()) + f"</{name}>"
        if isinstance(value, list):
            return "".join(element(name, v) for v in value)
        if isinstance(value, int):
            return f"<{name}>{value}</{name}>"
        return f"<{name}><![CDATA[{value}]]></{name}>"

    return "<xml>" + "".join(element(k, v) for k, v in payload.items()) + "</xml>"


def encrypt_message(aes_key: str, plain: str, appid: str) -> str:
    """WeChat's safe-mode cipher: AES-256-CBC, iv = key[:16], PKCS#7 to 32-byte blocks, over
    16 random bytes + 4-byte network-order length + message + appid; base64 out."""
    import base64
    import struct

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(aes_key + "=")
    text = plain.encode("utf-8")
    raw = secrets.token_bytes(16) + struct.pack(">I", len(text)) + text + appid.encode("utf-8")
    pad = 32 - len(raw) % 32
    raw += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode("ascii")


def build_push(cfg, payload: dict, timestamp: int | None = None, nonce: str | None = None):
    """(query params, body bytes, content type) for one push, signed and encrypted as configured."""
    token = cfg["WECHAT_PUSH_TOKEN"]
    timestamp = str(timestamp or int(time.time()))
    nonce = nonce or str(secrets.randbelow(10 ** 9))
    fmt = (cfg.get("WECHAT_PUSH_FORMAT") or "json").lower()
    plain = json.dumps(payload, ensure_ascii=False) if fmt == "json" else _to_xml(payload)
    params = {"signature": _sha1(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    aes_key = cfg.get("WECHAT_PUSH_AES_KEY")
    if aes_key:
        encrypted = encrypt_message(aes_key, plain, cfg["WECHAT_APPID"])
        params.update(encrypt_type="aes", msg_signature=_sha1(token, timestamp, nonce, encrypted))
        if fmt == "json":
            plain = json.dumps({"ToUserName": payload["ToUserName"], "Encrypt": encrypted})
        else:
            plain = (f"<xml><ToUserName><![CDATA[{escape(payload['ToUserName'])}]]></ToUserName>"
                     f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
    content_type = "application/json" if fmt == "json" else "text/xml"
    return params, plain.encode("utf-8"), content_type


def push_settings(app) -> dict:
    """The app's WECHAT_PUSH_* settings, overridden by whatever the control API set at run time."""
    state = app.extensions["sandbox_state"]
    cfg = dict(app.config)
    for setting, name in (("push_url", "WECHAT_PUSH_URL"), ("push_format", "WECHAT_PUSH_FORMAT"),
                          ("push_token", "WECHAT_PUSH_TOKEN"), ("push_aes_key", "WECHAT_PUSH_AES_KEY")):
        value = state.get_setting(setting)
        if value is not None:
            cfg[name] = value
    return cfg


def push_media_check(app, trace_id: str) -> str:
    """Deliver one result; returns the outcome recorded in the sandbox ("success", "no_url", "failed: ...")."""
    state = app.extensions["sandbox_state"]
    cfg = push_settings(app)
    url = cfg.get("WECHAT_PUSH_URL")
    rows = state.query("SELECT * FROM media_checks WHERE trace_id = ?", (trace_id,))
    if not rows:
        return "unknown trace_id"
    outcome = "no_url"
    if url:
        for attempt in range(3):
            params, body, content_type = build_push(cfg, event_payload(cfg, rows[0], int(state.now())))
            try:
                reply = requests.post(url, params=params, data=body, headers={"Content-Type": content_type},
                                      timeout=5)
                if reply.status_code == 200 and reply.text.strip() in ("success", ""):
                    outcome = "success"
                    break
                outcome = f"failed: HTTP {reply.status_code}"
            except requests.RequestException as exc:
                outcome = f"failed: {type(exc).__name__}"
            time.sleep(0.2 * (attempt + 1))
    with state.tx() as conn:
        conn.execute("UPDATE media_checks SET pushed_at = ?, push_status = ? WHERE trace_id = ?",
                     (state.now(conn), outcome, trace_id))
    return outcome


def schedule_push(app, trace_id: str) -> None:
    delay = float(app.config.get("SANDBOX_PUSH_DELAY", 0.2))

    def run():
        time.sleep(delay)
        push_media_check(app, trace_id)

    threading.Thread(target=run, name=f"push-{trace_id}", daemon=True).start()
