"""WeChat's message push (/wechat/push): signature, freshness and nonce checked, safe-mode messages
decrypted, media checks recorded."""
from __future__ import annotations

import hashlib
import logging
import time

from flask import Blueprint, Response, current_app, request
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from app.json_body import InvalidJson, load_json
from app.wechat.common import _parse_xml
from app.wechat.media import _record_media_check

log = logging.getLogger(__name__)

push_bp = Blueprint("wechat_push", __name__)
# WeChat signs only token, timestamp and nonce (in 明文模式 not the body): a signed query string is
# good for one message, within PUSH_MAX_SKEW seconds of its timestamp. Nonces are remembered in Redis
# for as long as their timestamp would pass.
PUSH_MAX_SKEW = 300
_PUSH_NONCE_TTL = 2 * PUSH_MAX_SKEW


@push_bp.route("/wechat/push", methods=["GET", "POST"])
def receive_push():
    """WeChat's message push: signature, freshness and nonce checked, safe-mode messages decrypted,
    media checks recorded."""
    from app.extensions import db

    cfg = current_app.config
    token = cfg.get("WECHAT_PUSH_TOKEN")
    args = request.args
    if not token:
        return Response("push not configured", status=403)
    try:
        check_signature(token, args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", ""))
    except InvalidSignatureException:
        log.warning("wechat push with a bad signature")
        return Response("invalid signature", status=403)
    if not _push_is_fresh(args.get("timestamp", "")):
        log.warning("wechat push with a timestamp more than %s s off", PUSH_MAX_SKEW)
        return Response("stale timestamp", status=403)
    body = request.get_data() if request.method == "POST" else args.get("echostr", "").encode()
    delivery = _claim_push_nonce(args, body)
    if delivery == "replay":
        log.warning("wechat push replayed a used signature with another message")
        return Response("replayed nonce", status=403)
    if request.method == "GET":  # URL verification when the push URL is configured
        return Response(args.get("echostr", ""), content_type="text/plain")
    if delivery == "repeat":  # WeChat resending the very same message: done the first time
        return Response("success", content_type="text/plain")
    try:
        return _handle_push(body, args, cfg, db)
    except BaseException:
        _release_push_nonce(args)  # WeChat's retry of this message must be handled, not taken for a repeat
        raise


def _handle_push(body: bytes, args, cfg, db) -> Response:
    payload = _push_payload(body, args, cfg)
    if payload is None:
        return Response("invalid message", status=400)
    if payload.get("appid") not in (None, cfg["WECHAT_APPID"]):
        return Response("unknown appid", status=403)
    if payload.get("Event") == "wxa_media_check" and payload.get("trace_id"):
        _record_media_check(str(payload["trace_id"]), payload=payload)
        db.session.commit()
    return Response("success", content_type="text/plain")


def _push_is_fresh(timestamp: str) -> bool:
    try:
        return abs(time.time() - int(timestamp)) <= PUSH_MAX_SKEW
    except ValueError:
        return False


def _push_nonce_key(args) -> str:
    seen = hashlib.sha256(f"{args.get('timestamp', '')}:{args.get('nonce', '')}".encode()).hexdigest()
    return f"wechat:push:nonce:{seen}"


def _claim_push_nonce(args, body: bytes) -> str:
    """"new" the first time a signed query is used; "repeat" for the same message again (WeChat
    retries a push it got no answer for); "replay" for another message under a used signature."""
    from app.extensions import redis

    digest = hashlib.sha256(body).hexdigest()
    key = _push_nonce_key(args)
    if redis.conn.set(key, digest, nx=True, ex=_PUSH_NONCE_TTL):
        return "new"
    return "repeat" if redis.conn.get(key) == digest.encode() else "replay"


def _release_push_nonce(args) -> None:
    from app.extensions import redis

    redis.conn.delete(_push_nonce_key(args))


def _push_payload(body: bytes, args, cfg) -> dict | None:
    message = _decode_push(body)
    if message is None:
        return None
    aes_key = cfg.get("WECHAT_PUSH_AES_KEY")
    # Safe mode (an AES key configured) accepts only encrypted messages; plaintext mode only plaintext.
    if aes_key or args.get("encrypt_type") == "aes" or "Encrypt" in message:
        if not aes_key or "Encrypt" not in message:
            return None
        try:
            crypto = WeChatCrypto(cfg["WECHAT_PUSH_TOKEN"], aes_key, cfg["WECHAT_APPID"])
            plain = crypto.decrypt_message({"Encrypt": message["Encrypt"]}, args.get("msg_signature", ""),
                                           args.get("timestamp", ""), args.get("nonce", ""))
        except Exception:  # bad signature, wrong appid, bad padding: reject the message
            log.warning("wechat push could not be decrypted")
            return None
        message = _decode_push(plain.encode("utf-8") if isinstance(plain, str) else plain)
    return message


def _decode_push(body: bytes) -> dict | None:
    """The message, or None (answered 400 "invalid message"). JSON goes through the project's one
    loader: nesting thousands deep, lone surrogates or 5,000-digit numbers are refused, not a 500."""
    text = body.strip() if body else b""
    if text.startswith(b"{"):
        try:
            data = load_json(text)
        except InvalidJson:
            return None
        return data if isinstance(data, dict) else None
    return _parse_xml(text) if text.startswith(b"<") else None
