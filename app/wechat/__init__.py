"""The only package that imports wechatpy: every WeChat call of the product goes through it.

Modules, one job each:
  gateway.py  WeChatGateway (app.extensions.wechat): the per-app clients, made of the parts below
  tokens.py   the access token, cached in Redis and refreshed by one process at a time
  mp.py       mini-program APIs: login, content security, subscribe messages
  pay_v2.py   WeChat Pay v2: red packets and the fund-flow bill download; every reply classified
  pay_v3.py   WeChat Pay APIv3 (wechatpayv3): 商家转账 create/query/cancel, notifications, fund-flow bill
  limiter.py  the merchant's pay-call budget shared by every process
  keepalive.py  keep-alive HTTP sessions for wechatpayv3 (it opens a connection per call)
  bills.py    fund-flow bill parsing (streamed, checked against WeChat's totals)
  push.py     /wechat/push, WeChat's message push
  media.py    media-check results by trace_id
  errors.py, results.py, common.py   what the others raise, return and share

Facts it builds on (docs/DESIGN.md §WeChat facts): wechatpy 1.8.18 hard-codes the token URL (we fetch
tokens ourselves, cached in Redis behind a lock), base URLs are class attributes (set per instance
from WECHAT_API_BASE / WECHAT_PAY_API_BASE), nothing has a timeout by default (we always pass one),
`sendminiprogramhb` is not in wechatpy (raw `pay.post`), v2 content security goes through
`client.wxa._post`. Every pay reply is classified; nothing untyped escapes a pay call.

Imports of app.extensions happen inside functions: app.extensions imports this package. The names
below are the package's public face: import them from `app.wechat`.
"""
from app.wechat.bills import BILL_HEADER_FIRST, FundFlowBill, FundFlowRow, FundFlowSummary, yuan_to_fen
from app.wechat.common import mask_openid
from app.wechat.errors import (WeChatBillIncomplete, WeChatCodeInvalid, WeChatLoginRefused, WeChatRateLimited,
                               WeChatUnavailable)
from app.wechat.gateway import WeChatGateway
from app.wechat.media import _record_media_check, get_media_check
from app.wechat.mp import (SCENE_COMMENT, SCENE_FORUM, SCENE_PROFILE, SCENE_SOCIAL_LOG, SUBSCRIBE_REFUSALS)
from app.wechat.pay_v2 import CONFIG_ERROR_CODES, FAILED_FINAL_CODES, RETRY_SAME_CODES, make_mch_billno
from app.wechat.pay_v3 import TRANSFER_FINAL_STATES, TRANSFER_STATES
from app.wechat.push import PUSH_MAX_SKEW, push_bp
from app.wechat.results import (CONTENT_LABELS, HB_STATUSES, LoginResult, MediaCheckResult, PayOutcome, PayResult,
                                TextVerdict)
from app.wechat.tokens import TOKEN_REFRESH_MARGIN

__all__ = [
    "BILL_HEADER_FIRST", "CONFIG_ERROR_CODES", "CONTENT_LABELS", "FAILED_FINAL_CODES", "FundFlowBill", "FundFlowRow",
    "FundFlowSummary", "HB_STATUSES", "LoginResult", "MediaCheckResult", "PUSH_MAX_SKEW", "PayOutcome", "PayResult",
    "RETRY_SAME_CODES", "SCENE_COMMENT", "SCENE_FORUM", "SCENE_PROFILE", "SCENE_SOCIAL_LOG", "SUBSCRIBE_REFUSALS",
    "TOKEN_REFRESH_MARGIN", "TRANSFER_FINAL_STATES", "TRANSFER_STATES", "TextVerdict", "WeChatBillIncomplete", "WeChatCodeInvalid", "WeChatGateway",
    "WeChatLoginRefused", "WeChatRateLimited", "WeChatUnavailable", "_record_media_check", "get_media_check",
    "make_mch_billno", "mask_openid", "push_bp", "yuan_to_fen",
]
