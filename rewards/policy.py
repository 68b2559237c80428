"""Reward policy as data: amounts, when a reward is earned, who may earn it, the caps.

Amounts come from the catalogue (Category.reward_fen by severity) unless the policy overrides a
category. A policy version is a row in reward_policies; the newest one is in force. Changing it
goes through a second finance user (rewards.finance_ops).
"""
from __future__ import annotations

from sqlalchemy import select

from app.errors import Unprocessable
from app.extensions import db
from rewards.models import RewardPolicy

PACKET_MIN_FEN, PACKET_MAX_FEN = 100, 20000         # WeChat: ¥1–200 a packet
WECHAT_DAY_COUNT, WECHAT_DAY_FEN = 10, 100000       # WeChat: 10 packets and ¥1000 per user per day
TRIGGERS = ("approval", "verification")

DEFAULT_POLICY = {
    "trigger": "approval",              # or "verification": paid once the department verifies the hazard
    "first_reporter_only": True,        # one reward per hazard, to the first accepted tip
    "resident_day_count": 3,
    "resident_day_fen": 30000,
    "resident_month_count": 30,
    "resident_month_fen": 200000,
    "program_day_fen": 1000000,         # ¥10,000 a day across the program
    "category_amounts": {},             # {"lpg_illegal": {"1": 5000, "2": 10000, "3": 20000}}
}

NOT_GRANTED_LABELS = {
    "no_reward_list": "该报料人不参与奖励",
    "not_first_reporter": "该隐患已由他人首先报告",
    "already_rewarded": "同一报料人对同一隐患只奖励一次",
    "resident_day_cap": "已达到每日奖励上限",
    "resident_month_cap": "已达到每月奖励上限",
    "program_day_cap": "今日奖励预算已用完",
    "program_month_cap": "本月奖励预算已用完",
    "no_amount": "该类别未设置奖励金额",
    "account_closed": "报料人已注销账号",
}


def validate_policy(settings: dict) -> dict:
    """A complete, checked policy (defaults filled in); Unprocessable with field messages otherwise."""
    if not isinstance(settings, dict):
        raise Unprocessable(fields={"policy": ["须为对象"]})
    merged = {**DEFAULT_POLICY, **settings}
    errors: dict[str, list[str]] = {}
    unknown = set(settings) - set(DEFAULT_POLICY)
    for name in unknown:
        errors[name] = ["未知的设置项"]
    if merged["trigger"] not in TRIGGERS:
        errors["trigger"] = ["须为 approval 或 verification"]
    if not isinstance(merged["first_reporter_only"], bool):
        errors["first_reporter_only"] = ["须为布尔值"]
    limits = {"resident_day_count": (1, WECHAT_DAY_COUNT), "resident_day_fen": (PACKET_MIN_FEN, WECHAT_DAY_FEN),
              "resident_month_count": (1, 31 * WECHAT_DAY_COUNT), "resident_month_fen": (PACKET_MIN_FEN, 31 * WECHAT_DAY_FEN),
              "program_day_fen": (0, 10 ** 11)}
    for name, (low, high) in limits.items():
        value = merged[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errors[name] = [f"须为 {low} 到 {high} 之间的整数（金额单位：分）"]
    amounts = merged["category_amounts"]
    if not isinstance(amounts, dict):
        errors["category_amounts"] = ["须为对象"]
    else:
        for code, by_severity in amounts.items():
            if not isinstance(by_severity, dict) or not all(
                    str(k) in ("1", "2", "3") and isinstance(v, int) and PACKET_MIN_FEN <= v <= PACKET_MAX_FEN
                    for k, v in by_severity.items()):
                errors[f"category_amounts.{code}"] = ["每个红包金额须在 100 到 20000 分（1–200 元）之间"]
    if errors:
        raise Unprocessable("奖励规则设置有误", fields=errors)
    return merged


def active_policy() -> dict:
    row = db.session.execute(select(RewardPolicy).order_by(RewardPolicy.id.desc()).limit(1)).scalar_one_or_none()
    return {**DEFAULT_POLICY, **(row.settings if row else {})}


def amount_for(category_code: str, severity: int, policy: dict) -> int | None:
    """The packet amount in fen for a category and severity, kept inside WeChat's ¥1–200; None: no reward."""
    from app.hazards.models import Category

    severity = str(min(max(int(severity or 1), 1), 3))
    override = (policy.get("category_amounts") or {}).get(category_code) or {}
    if severity in override:
        amount = int(override[severity])
    else:
        category = db.session.execute(select(Category).filter_by(code=category_code)).scalar_one_or_none()
        if category is None or severity not in (category.reward_fen or {}):
            return None
        amount = int(category.reward_fen[severity])
    if amount <= 0:
        return None
    return min(max(amount, PACKET_MIN_FEN), PACKET_MAX_FEN)


def save_policy(settings: dict, *, created_by: int | None, approved_by: int | None) -> RewardPolicy:
    row = RewardPolicy(settings=validate_policy(settings), created_by=created_by, approved_by=approved_by)
    db.session.add(row)
    db.session.flush()
    return row
