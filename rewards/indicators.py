"""Operator indicators for payouts (app/ops.py): what is stuck, and what waits for finance."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select

from app.extensions import db
from app.models.base import utcnow
from rewards.models import Payout

# A reserved/sending payout normally leaves those states within seconds (outbox → RQ → WeChat);
# a sent packet is settled by the sweeper within 24 h plus WeChat's refund delay.
STUCK_AFTER = {"reserved": timedelta(minutes=10), "sending": timedelta(minutes=10), "sent": timedelta(hours=26),
               "waiting_confirm": timedelta(hours=26)}


def count_stuck_payouts() -> dict[str, int]:
    now = utcnow()
    counts = {status: 0 for status in (*STUCK_AFTER, "manual_review")}
    since = func.coalesce(Payout.sent_at, Payout.first_call_at, Payout.reserved_at, Payout.created_at)
    stuck = or_(*[(Payout.status == status) & (since < now - age) for status, age in STUCK_AFTER.items()],
                Payout.status == "manual_review")
    for status, count in db.session.execute(select(Payout.status, func.count()).where(stuck).group_by(Payout.status)):
        counts[status] = count
    return counts


def count_paused() -> dict[str, int]:
    """1 for the code of the merchant's open payout pause (rewards/pauses.py), nothing when none is open."""
    from rewards import pauses

    pause = pauses.open_pause()
    return {pause.code: 1} if pause is not None else {}


def pause_warnings() -> list[str]:
    from app.display import format_time as local_time
    from rewards import decisions, pauses

    pause = pauses.open_pause()
    if pause is None:
        return []
    ends = (f"，{local_time(pause.resume_at)} 自动恢复" if pause.resume_at
            else "，财务充值或处理后在财务页面点「已充值，恢复发放」（或待试发成功后自动恢复）")
    return [f"红包发放已暂停：{decisions.pause_label(pause.code)}（{local_time(pause.started_at)} 起，"
            f"{pauses.count_held()} 个红包等待，无人被拒发{ends}）"]


def register_indicators() -> None:
    from app.ops import Indicator, register_indicator, register_warning
    from rewards.budget import budget_warnings

    register_warning(budget_warnings)
    register_warning(pause_warnings)
    register_indicator(Indicator("payouts_paused", "红包发放暂停（商户号）", "1 while red-packet payouts are "
                                 "paused for the merchant, labelled with WeChat's code", count_paused,
                                 label="code", alert_above=0))

    register_indicator(Indicator("payouts_stuck", "红包卡住/待人工处理", "Payouts stuck in a state too long, "
                                 "and those waiting in manual review, per status", count_stuck_payouts,
                                 label="status", alert_above=0, label_kind="reward_status"))
