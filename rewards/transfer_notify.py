"""POST /wechat/pay/transfer-notify: WeChat Pay's result notification of a 商家转账 bill.

Verified by the gateway (WeChat Pay's signature, the AES-256-GCM tag under the APIv3 key, signed at
most 5 minutes ago: an old notification replayed is refused), then settled exactly as the sweeper's
query would (compare-and-set: a repeat, a replay within the window or a notification racing the
sweeper finds nothing left to do). The sweeper's queries stay the fallback for a notification that
never arrives. WeChat wants 2xx for "received" and retries anything else.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

bp = Blueprint("transfer_notify", __name__)
log = logging.getLogger(__name__)


@bp.route("/wechat/pay/transfer-notify", methods=["POST"])
def receive_transfer_notification():
    from app.extensions import db, wechat
    from rewards.channels.transfer import settle_notification

    resource = wechat.read_transfer_notification(request.headers, request.get_data())
    if resource is None:
        log.warning("transfer notification refused (signature, key or timestamp)")
        return jsonify(code="FAIL", message="验签失败"), 401
    try:
        outcome = settle_notification(resource)
    except Exception:  # WeChat retries; the sweeper settles it anyway
        db.session.rollback()
        log.exception("transfer notification could not be settled")
        return jsonify(code="FAIL", message="处理失败，请重试"), 500
    log.info("transfer notification settled", extra={"event": "payout.notified", "outcome": outcome})
    return Response(status=204)
