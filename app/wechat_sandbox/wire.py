"""WeChat's wire formats, written independently of wechatpy so the sandbox really checks the client.

Pay v2: XML bodies, `sign` = upper-case MD5 (or HMAC-SHA256) over the sorted non-empty `k=v` pairs
joined by `&`, then `&key=<merchant key>`. Mini-program APIs: JSON with `errcode`/`errmsg`.
"""
from __future__ import annotations

import hashlib
import hmac
from xml.sax.saxutils import escape

import xmltodict
from flask import Response, jsonify


def pay_sign(params: dict, key: str, sign_type: str = "MD5") -> str:
    pairs = "&".join(f"{k}={params[k]}" for k in sorted(params)
                     if k != "sign" and params[k] not in (None, "") and not isinstance(params[k], dict))
    payload = f"{pairs}&key={key}".encode("utf-8")
    if sign_type == "HMAC-SHA256":
        return hmac.new(key.encode("utf-8"), payload, hashlib.sha256).hexdigest().upper()
    return hashlib.md5(payload).hexdigest().upper()


def parse_xml(body: bytes) -> dict | None:
    try:
        doc = xmltodict.parse(body)
    except Exception:  # expat errors, empty bodies: the caller answers XML_ERROR
        return None
    data = doc.get("xml") if isinstance(doc, dict) else None
    return dict(data) if isinstance(data, dict) else None


def _element(name, value) -> str:
    if isinstance(value, dict):
        return f"<{name}>" + "".join(_element(k, v) for k, v in value.items()) + f"</{name}>"
    if isinstance(value, list):
        return "".join(_element(name, item) for item in value)
    text = str(value)
    if text.isdigit():
        return f"<{name}>{text}</{name}>"
    return f"<{name}><![CDATA[{text.replace(']]>', ']]]]><![CDATA[>')}]]></{name}>"


def xml_response(fields: dict, key: str | None = None, status: int = 200) -> Response:
    fields = {k: v for k, v in fields.items() if v is not None}
    if key:
        fields["sign"] = pay_sign(fields, key)
    body = "<xml>" + "".join(_element(k, v) for k, v in fields.items()) + "</xml>"
    return Response(body, status=status, content_type="text/xml; charset=utf-8")


def pay_fail(err_code: str, message: str, *, communication: bool = False, extra: dict | None = None) -> Response:
    """A business failure (return_code SUCCESS, result_code FAIL), or a communication failure."""
    fields = {"return_code": "FAIL" if communication else "SUCCESS", "return_msg": message,
              "result_code": "FAIL", "err_code": err_code, "err_code_des": message}
    fields.update(extra or {})
    return xml_response(fields)


def json_error(errcode: int, errmsg: str, status: int = 200):
    response = jsonify({"errcode": errcode, "errmsg": errmsg})
    response.status_code = status
    return response


def html_page(text: str, status: int = 200) -> Response:
    """What a proxy in front of WeChat returns when it has a bad day: neither XML nor JSON."""
    return Response(f"<html><head><title>{escape(text)}</title></head><body><center><h1>{escape(text)}</h1>"
                    "</center><hr><center>stgw</center></body></html>", status=status,
                    content_type="text/html")
