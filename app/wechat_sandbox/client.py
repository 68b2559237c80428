"""What the WeChat client on the resident's phone does in the sandbox (tests, the demo's phone page).

`wx.requestMerchantTransfer` (商家转账): `POST /__sandbox__/client/transfers/confirm` checks mchId, appId and
the package against a bill waiting for that user, then confirms it (SUCCESS, paid).

`wx.sendBizRedPacket` in WeChat checks the parameters the mini-program got from its server before
the packet opens; here `POST /__sandbox__/client/redpacks/open` does the same checks on exactly what
the page gets: the package URL-encoded (领取红包接口: "package需要进行urlencode再传给页面"), the
paySign (MD5 over appId, nonceStr, that package and timeStamp, with the merchant key), the decoded
package as WeChat issued it for that packet, and that the packet is the opening user's.
"""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, unquote

from flask import Blueprint, current_app, jsonify, request

from app.wechat_sandbox.pay import claim_packet

bp = Blueprint("sandbox_client", __name__, url_prefix="/__sandbox__/client")
FIELDS = ("timeStamp", "nonceStr", "package", "signType", "paySign")


def _fail(reason: str, status: int = 400):
    return jsonify({"errMsg": f"sendBizRedPacket:fail {reason}"}), status


def expected_pay_sign(params: dict) -> str:
    cfg = current_app.config
    raw = (f"appId={cfg['WECHAT_APPID']}&nonceStr={params['nonceStr']}&package={params['package']}"
           f"&timeStamp={params['timeStamp']}&key={cfg['WECHAT_PAY_KEY']}")
    return hashlib.md5(raw.encode()).hexdigest().upper()


@bp.post("/redpacks/open")
def open_redpack():
    """Body: the five parameters of wx.sendBizRedPacket and the phone user's `openid`."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) and body[k] for k in (*FIELDS, "openid")):
        return _fail("parameters missing: " + ", ".join((*FIELDS, "openid")))
    if body["signType"] != "MD5":
        return _fail("signType must be MD5")
    if "=" in body["package"] or "&" in body["package"]:
        return _fail("package must be URL-encoded")
    if not hmac.compare_digest(body["paySign"], expected_pay_sign(body)):
        return _fail("invalid paySign")
    package = unquote(body["package"])
    billno = (parse_qs(package).get("spbillid") or [""])[0]
    state = current_app.extensions["sandbox_state"]
    row = state.query("SELECT openid, package FROM redpacks WHERE mch_billno = ?", (billno,))
    if not row or not hmac.compare_digest(row[0]["package"] or "", package):
        return _fail("invalid package")
    if row[0]["openid"] != body["openid"]:
        return _fail("this packet belongs to another user", 403)
    status = claim_packet(state, billno)
    if status != "RECEIVED":
        return _fail(f"packet is {status}", 409)
    return jsonify({"errMsg": "sendBizRedPacket:ok", "mch_billno": billno})


TRANSFER_FIELDS = ("mch_id", "app_id", "package")


def _transfer_fail(reason: str, status: int = 400):
    return jsonify({"errMsg": f"requestMerchantTransfer:fail {reason}"}), status


@bp.post("/transfers/confirm")
def confirm_transfer():
    """wx.requestMerchantTransfer: body `mch_id`, `app_id`, `package` as the app's residents' API gave
    them, and the phone user's `openid`. WeChat checks the merchant, the mini-program and that the
    bill (by its package_info) waits for this user, then the user confirms: the bill is paid."""
    from app.wechat_sandbox.transfer import settle_bill

    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) and body[k]
                                             for k in (*TRANSFER_FIELDS, "openid")):
        return _transfer_fail("parameters missing: " + ", ".join((*TRANSFER_FIELDS, "openid")))
    cfg = current_app.config
    if body["mch_id"] != cfg["WECHAT_MCH_ID"]:
        return _transfer_fail("invalid mchId")
    if body["app_id"] != cfg["WECHAT_APPID"]:
        return _transfer_fail("invalid appId")
    state = current_app.extensions["sandbox_state"]
    rows = state.query("SELECT out_bill_no, openid, state FROM transfers WHERE package_info = ?", (body["package"],))
    if not rows:
        return _transfer_fail("invalid package")
    if rows[0]["openid"] != body["openid"]:
        return _transfer_fail("this transfer belongs to another user", 403)
    final = settle_bill(current_app._get_current_object(), rows[0]["out_bill_no"], "confirm")
    if final != "SUCCESS":
        return _transfer_fail(f"transfer is {final}", 409)
    return jsonify({"errMsg": "requestMerchantTransfer:ok", "out_bill_no": rows[0]["out_bill_no"]})
