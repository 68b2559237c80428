"""The WeChat gateway's errors: each is an AppError, so a view that lets one escape answers in the
one JSON error shape."""
from app.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthorized


class WeChatCodeInvalid(Unauthorized):
    status, code, message = 401, "wechat_code_invalid", "微信登录凭证无效或已使用，请重新登录"


class WeChatRateLimited(RateLimited):
    status, code, message = 429, "wechat_rate_limited", "微信接口调用太频繁，请稍后再试"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("headers", {"Retry-After": "60"})
        super().__init__(*args, **kwargs)


class WeChatUnavailable(ServiceUnavailable):
    status, code, message = 503, "wechat_unavailable", "微信服务暂时不可用，请稍后再试"


class WeChatLoginRefused(Forbidden):
    status, code, message = 403, "wechat_login_refused", "微信判定该账号存在风险，暂时无法登录"


class WeChatBillIncomplete(WeChatUnavailable):
    code, message = "wechat_bill_incomplete", "资金账单下载不完整，请稍后重试"
