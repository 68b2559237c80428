"""What a person reads: Beijing time, business days, and the Chinese name of every code.

Times are stored in UTC; people read them in Beijing time (Asia/Shanghai, UTC+8 all year since
1991, so a fixed offset needs no tz database). Business days and budget months are Asia/Shanghai
days. `label(kind, code)` is the one place a code becomes words: the tables below, the hazard
catalogue and the grids in the database, and the tables areas register with `register_labels`
(their own catalogues, e.g. moderation's reasons). An unknown code comes back as "未知（code）"
rather than bare, so a missing name is visible and never passes for Chinese.

Console templates get the filters `bj_time`, `bj_date`, `bj_day`, `label`, `staff_name`,
`yuan` and the global `TIME_NOTE`.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Mapping

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_NOTE = "时间均为北京时间"


# --- time ---------------------------------------------------------------------------------------

def _utcnow() -> datetime:
    from app.clock import utcnow   # the app's one clock (a demo living through its past moves it)

    return utcnow()


def to_beijing(at: datetime) -> datetime:
    """An aware datetime in Beijing time (a naive one is taken as UTC, as the database stores)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(SHANGHAI)


def format_time(at: datetime | str | None, *, seconds: bool = False, empty: str = "—") -> str:
    """'2026-12-05 15:34' in Beijing time; ISO strings (API answers) are accepted too."""
    if at is None or at == "":
        return empty
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return to_beijing(at).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def format_date(value: datetime | date | str | None, *, empty: str = "—") -> str:
    """'2026-12-05': a date as is, an instant as its Beijing day."""
    if value is None or value == "":
        return empty
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = to_beijing(value).date()
    return value.strftime("%Y-%m-%d")


def format_day(day: date | str | None, *, empty: str = "—") -> str:
    """'2026年12月5日' for headings that say which day a figure covers."""
    if day is None or day == "":
        return empty
    if isinstance(day, str):
        day = date.fromisoformat(day)
    if isinstance(day, datetime):
        day = to_beijing(day).date()
    return f"{day.year}年{day.month}月{day.day}日"


def iso_beijing(at: datetime | None) -> str | None:
    """ISO-8601 with the +08:00 offset, for API answers people may also read."""
    return to_beijing(at).isoformat() if at is not None else None


def business_day(at: datetime | None = None) -> date:
    """The Asia/Shanghai day an instant falls on (now when not given)."""
    return to_beijing(at or _utcnow()).date()


def day_bounds_utc(day: date) -> tuple[datetime, datetime]:
    """[start, end) of an Asia/Shanghai day, in UTC."""
    start = datetime.combine(day, time(0), SHANGHAI).astimezone(timezone.utc)
    return start, start + timedelta(days=1)


def day_start(at: datetime | None = None) -> datetime:
    """Midnight (Beijing) of the business day `at` falls on, as an aware Beijing datetime."""
    return datetime.combine(business_day(at), time(0), SHANGHAI)


def period_of(at: datetime | date | None = None) -> str:
    """The budget month, 'YYYY-MM' (Asia/Shanghai)."""
    day = at if isinstance(at, date) and not isinstance(at, datetime) else business_day(at)
    return day.strftime("%Y-%m")


def format_yuan(fen: int | None, *, empty: str = "—") -> str:
    """Integer fen as '¥1,234.50' (exact: no float on the way)."""
    if fen is None:
        return empty
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


# --- names of codes -----------------------------------------------------------------------------

# One set of status words: the console, the residents' API (`status_label`) and subscribe messages.
TIP_STATUS = {
    "received": "已提交", "checking": "核验中", "pending_review": "待审核", "accepted": "已采纳",
    "rejected": "未采纳", "duplicate": "重复报料", "need_info": "需补充信息", "withdrawn": "已撤回",
}
TICKET_STATUS = {
    "reported": "已上报", "dispatched": "已分拨", "accepted": "已受理", "handling": "处置中",
    "resolved": "已处置", "verified": "已核查", "closed": "已结案", "returned": "已退回",
    "reopened": "重新处置", "open": "未结案", "overdue": "超时",
}
REWARD_STATUS = {
    "awaiting_verification": "待核查后发放", "not_granted": "未发放", "reserved": "已预留",
    "sending": "发放中", "sent": "待领取", "claimed": "已领取", "refunded": "已退回（未领取）",
    "failed": "发放失败", "manual_review": "待人工核对", "waiting_confirm": "待确认收款", "cancelled": "已取消",
}
# The words for a moderator's decision (the button), next to the status it leads to.
DECISION = {
    "approve": "采纳", "reject": "不予采纳", "duplicate": "判为重复", "need_info": "要求补充",
    "reverse": "撤销决定", "auto_reject": "自动不予采纳", "auto_duplicate": "自动判为重复",
}
# Timeline entries a tip gets from its ticket ("hazard_<status>") are built from TICKET_STATUS.
TIMELINE_EVENT = {
    **TIP_STATUS,
    "hazard_linked": "已转为隐患工单",
    "reward": "奖励",
}
TICKET_EVENT = {
    "created": "工单创建", "status": "状态变更", "tip_added": "关联报料", "tip_removed": "移除报料",
    "rerouted": "改派部门", "overdue": "超时",
}
AUDIT_ACTION = {
    "review.claim": "领取审核", "review.release": "释放审核", "review.reassign": "改派审核员",
    "tip.approve": "采纳报料", "tip.reject": "不予采纳", "tip.duplicate": "判为重复",
    "tip.need_info": "要求补充信息", "tip.reverse": "撤销审核决定",
    "tip.auto_reject": "自动不予采纳", "tip.auto_duplicate": "自动判为重复",
    "hazard.transition": "工单状态变更",
    "budget.fund": "预算入账",
    "payout.recheck": "红包重新查询", "payout.retry": "红包重新发放", "payout.mark_failed": "红包标记为失败",
    "finance.request": "提交财务申请", "finance.approve": "批准财务申请", "finance.reject": "驳回财务申请",
    "reconciliation.resolve": "处理对账差异",
    "staff.create": "创建工作人员账号",
}
# The operator page: queues, outbox topics and states.
QUEUE = {"intake": "报料检查", "payouts": "红包发放", "notify": "订阅消息", "webhooks": "推送网格系统",
         "maintenance": "维护任务"}
OUTBOX_TOPIC = {"tip.intake": "报料检查", "photo.display": "照片处理", "hazard.notify": "订阅消息",
                "hazard.webhook": "推送网格系统", "rewards.payout": "红包发放"}
OUTBOX_STATUS = {"pending": "待发送", "dispatched": "已交给队列", "done": "已完成", "dead": "已放弃"}
ROLE = {"moderator": "审核员", "supervisor": "审核主管", "department": "部门人员", "finance": "财务",
        "admin": "管理员"}
ACTOR_TYPE = {"staff": "工作人员", "system": "系统", "department": "部门系统", "resident": "报料人"}
SEVERITY = {1: "一般", 2: "较重", 3: "严重"}
FINANCE_REQUEST_KIND = {"topup": "追加预算", "policy": "修改奖励规则"}
FINANCE_REQUEST_STATUS = {"pending": "待审批", "approved": "已批准", "rejected": "已驳回"}
RECONCILIATION_STATUS = {"running": "对账中", "done": "已完成", "failed": "失败"}
PAYOUT_CHANNEL = {"redpack": "小程序红包", "transfer": "商家转账"}
CONTENT_CHECK = {"pass": "通过", "review": "需人工复核", "risky": "违规", "pending": "检查中",
                 "unavailable": "暂不可用", "skipped": "未送检"}
NOTICE_KIND = {"accepted": "报料已采纳", "resolved": "隐患已处置", "closed": "隐患已结案"}
NOTICE_STATUS = {"pending": "待发送", "sent": "已发送", "refused": "未发送（用户未订阅）"}
# Why a payout failed or a reconciliation did not finish: WeChat's codes and our own.
FAILURE = {
    "SEND_FAILED": "微信发放失败", "OPENID_ERROR": "用户身份无效", "SENDNUM_LIMIT": "该用户今日领取红包个数已达上限",
    "SENDAMOUNT_LIMIT": "商户今日发放总额已达上限", "RCVDAMOUNT_LIMIT": "该用户今日领取金额已达上限",
    "MONEY_LIMIT": "金额超出允许范围", "PARAM_ERROR": "请求参数错误", "NO_AUTH": "商户无发放权限",
    "USER_ERROR": "用户账户异常", "SYSTEMERROR": "微信系统繁忙", "PROCESSING": "微信处理中",
    "FREQ_LIMIT": "调用过于频繁", "NOTENOUGH": "商户余额不足", "NOT_FOUND": "微信查无此单",
    "SIGN_ERROR": "签名错误（请检查商户密钥）", "CA_ERROR": "商户证书错误", "ILLEGAL_APPID": "小程序 AppID 无效",
    "MSGAPPID_ERROR": "AppID 与商户号不匹配", "ACCEPTMODE_ERROR": "商户接入模式错误",
    "API_METHOD_CLOSED": "该接口已关闭", "XML_ERROR": "请求格式错误", "MCHID_ERROR": "商户号错误",
    "INVALID_BILLNO": "红包单号无效", "FATAL_ERROR": "同一单号参数不一致", "FAILED": "微信发放失败",
    "OVERDUE_CLOSE": "用户超时未确认，已关闭", "TIMEOUT": "请求微信超时", "HTTP_500": "微信服务器错误",
    "NOT_XML": "微信答复无法解析",
    "manual_failed": "人工核对后标记为失败", "wechat_failed_after_sent": "微信显示发出后失败，需人工核对",
    "bill_incomplete": "账单不完整（合计与明细不符）", "internal_error": "系统内部错误",
    "not_ready": "账单尚未生成（次日 10 点后生成）", "bill_creating": "账单生成中",
    "no_bill": "当日无账单", "no_bill_exist": "当日无账单", "not_a_bill": "答复不是账单",
    "config": "商户配置问题", "failed": "失败", "sign_error": "签名错误（请检查商户密钥）",
    "systemerror": "微信系统繁忙", "unknown": "结果未知",
    "unsettled_after_window": "超过查询期限仍未结清", "not_found_after_window": "超过查询期限微信仍查无此单",
    "unanswered": "微信未答复", "CERT_MISSING": "商户证书缺失", "LOCAL_RATE_LIMIT": "本地限流，未发出",
}

_TABLES: dict[str, Mapping] = {
    "tip_status": TIP_STATUS, "ticket_status": TICKET_STATUS, "reward_status": REWARD_STATUS,
    "decision": DECISION, "timeline_event": TIMELINE_EVENT, "ticket_event": TICKET_EVENT,
    "audit_action": AUDIT_ACTION, "role": ROLE, "actor_type": ACTOR_TYPE, "severity": SEVERITY,
    "finance_request_kind": FINANCE_REQUEST_KIND, "finance_request_status": FINANCE_REQUEST_STATUS,
    "reconciliation_status": RECONCILIATION_STATUS, "channel": PAYOUT_CHANNEL,
    "content_check": CONTENT_CHECK, "notice_kind": NOTICE_KIND, "notice_status": NOTICE_STATUS,
    "failure": FAILURE, "queue": QUEUE, "outbox_topic": OUTBOX_TOPIC, "outbox_status": OUTBOX_STATUS,
}
# Kinds whose names live in the database: looked up once per request.
_LOOKUPS: dict[str, Callable[[], Mapping]] = {}


def register_labels(kind: str, names: Mapping) -> None:
    """An area's own catalogue of names (e.g. reasons), so `label` knows them without importing it."""
    table = dict(_TABLES.get(kind, {}))
    table.update(names)
    _TABLES[kind] = table


def label(kind: str, code, default: str | None = None) -> str:
    """The Chinese name of `code` of `kind`; '' for no code; '未知（code）' (or `default`) if unnamed."""
    if code is None or code == "":
        return ""
    if kind == "timeline_event" and isinstance(code, str) and code.startswith("hazard_") and code not in TIMELINE_EVENT:
        status = code[len("hazard_"):]
        return f"工单{TICKET_STATUS[status]}" if status in TICKET_STATUS else _unknown(code, default)
    if kind == "severity":
        try:
            code = int(code)
        except (TypeError, ValueError):
            return _unknown(code, default)
    if kind == "failure":
        return failure_label(code, default)
    if kind == "staff":
        return staff_name(code)
    if kind in _LOOKUPS:
        name = _cached_names(kind).get(code)
        return name if name else _unknown(code, default)
    table = _TABLES.get(kind)
    if table is None:
        raise KeyError(f"no names for kind {kind!r}")
    name = table.get(code)
    return name if name is not None else _unknown(code, default)


def labels(kind: str) -> dict:
    """Every known code of a table kind with its name (select options, legends)."""
    if kind in _LOOKUPS:
        return dict(_cached_names(kind))
    return dict(_TABLES[kind])


def failure_label(code: str | None, default: str | None = None) -> str:
    """WeChat and our own failure codes; 'config:NO_AUTH' → '商户配置问题：商户无发放权限',
    'not_ready:bill_creating' → '账单尚未生成（次日 10 点后生成）：账单生成中'."""
    if not code:
        return ""
    code = str(code)
    for candidate in (code, code.upper(), code.lower()):
        if candidate in FAILURE:
            return FAILURE[candidate]
    head, sep, tail = code.partition(":")
    if sep:
        first, second = failure_label(head, ""), failure_label(tail.split(";")[0].strip(), "")
        if first and second:
            return f"{first}：{second}"
        if first or second:
            return first or second
    return _unknown(code, default)


def _unknown(code, default: str | None) -> str:
    return default if default is not None else f"未知（{code}）"


def severity_label(severity) -> str:
    """一般 / 较重 / 严重; '未定' before a moderator sets it."""
    return label("severity", severity) if severity not in (None, "") else "未定"


# --- names that live in the database --------------------------------------------------------------

def _code_names(model_path: str) -> Callable[[], dict]:
    def load() -> dict:
        import importlib

        from sqlalchemy import select

        from app.extensions import db

        module, _, name = model_path.rpartition(".")
        model = getattr(importlib.import_module(module), name)
        return dict(db.session.execute(select(model.code, model.name)).all())
    return load


def _grid_names() -> dict:
    """A grid's name, with its 镇街 after it unless the name already starts with it."""
    from sqlalchemy import select

    from app.extensions import db
    from app.geo.models import Grid, Town

    rows = db.session.execute(select(Grid.code, Grid.name, Town.name).join(Town, Grid.town_id == Town.id)).all()
    return {code: name if name.startswith(town) else f"{name}（{town}）" for code, name, town in rows}


_LOOKUPS.update({"category": _code_names("app.hazards.models.Category"),
                 "department": _code_names("app.hazards.models.Department"),
                 "town": _code_names("app.geo.models.Town"), "grid": _grid_names})


def _cached_names(kind: str) -> Mapping:
    from flask import g, has_app_context

    if not has_app_context():
        return _LOOKUPS[kind]()
    cache = g.setdefault("display_names", {})
    if kind not in cache:
        cache[kind] = _LOOKUPS[kind]()
    return cache[kind]


def staff_name(staff_id, *, default: str = "工作人员") -> str:
    """A staff member's display name (username when no display name was given)."""
    if staff_id in (None, ""):
        return default
    return staff_names([staff_id]).get(int(staff_id), f"{default} #{staff_id}")


def staff_names(ids) -> dict[int, str]:
    """{id: display name or username} for several staff at once (cached per request)."""
    from flask import g, has_app_context
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models.staff import StaffUser

    wanted = {int(i) for i in ids if i not in (None, "")}
    cache = g.setdefault("display_staff", {}) if has_app_context() else {}
    missing = wanted - set(cache)
    if missing:
        rows = db.session.execute(select(StaffUser.id, func.coalesce(StaffUser.display_name, StaffUser.username))
                                  .where(StaffUser.id.in_(missing))).all()
        cache.update({staff_id: name for staff_id, name in rows})
    return {i: cache[i] for i in wanted if i in cache}


def actor_name(actor_type: str | None, actor_id=None, department_code: str | None = None) -> str:
    """Who did it, as a person reads it: a staff member's name, a department's name, '系统'."""
    if actor_type == "staff" and actor_id:
        return staff_name(actor_id)
    if actor_type == "department" and department_code:
        return label("department", department_code)
    return ACTOR_TYPE.get(actor_type or "system", "系统")


# --- the console's templates ------------------------------------------------------------------------

def init_app(app) -> None:
    app.jinja_env.filters.update({
        "bj_time": format_time, "bj_date": format_date, "bj_day": format_day, "label": _label_filter,
        "staff_name": staff_name, "yuan": format_yuan, "severity": severity_label, "failure": failure_label,
    })
    app.jinja_env.globals.update(TIME_NOTE=TIME_NOTE, label=label, actor_name=actor_name)


def _label_filter(code, kind: str, default: str | None = None) -> str:
    """`{{ tip.category | label('category') }}`"""
    return label(kind, code, default)
