"""What the gateway's calls return: typed results, never wechatpy's dicts."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

CONTENT_LABELS = {100: "normal", 10001: "ad", 20001: "politics", 20002: "porn", 20003: "abuse",
                  20006: "illegal", 20008: "fraud", 20012: "vulgar", 20013: "copyright", 21000: "other"}


@dataclass(frozen=True)
class LoginResult:
    openid: str
    unionid: str | None
    session_key: str = field(repr=False)  # never leaves the server; see seal_session_key()


@dataclass(frozen=True)
class TextVerdict:
    suggest: str                 # pass | review | risky
    label: int | None            # WeChat's label: 100 normal, 20001 politics, 20006 illegal, ...
    label_name: str | None = None
    trace_id: str | None = None
    error: str | None = None     # set when WeChat could not judge (e.g. openid_inactive → review)


@dataclass(frozen=True)
class MediaCheckResult:
    trace_id: str
    status: str                  # pending | done | error
    suggest: str | None
    label: int | None
    label_name: str | None
    completed_at: datetime | None


class PayOutcome(enum.Enum):
    SUCCESS = "success"
    RETRY_SAME = "retry_same"        # not paid (or not yet): retry later with the SAME mch_billno
    FAILED_FINAL = "failed_final"    # WeChat says no and nothing was paid: a new billno may be minted
    CONFIG_ERROR = "config_error"    # our setup is wrong (key, cert, appid, permission): alert an operator
    UNKNOWN = "unknown"              # may or may not have paid: query (gethbinfo), never re-mint


HB_STATUSES = ("SENDING", "SENT", "FAILED", "RECEIVED", "RFUND_ING", "REFUND")


@dataclass
class PayResult:
    outcome: PayOutcome
    code: str
    message: str = ""
    package: str | None = None
    raw: dict = field(default_factory=dict, repr=False)
    mch_billno: str | None = None
    detail_id: str | None = None
    status: str | None = None            # gethbinfo: SENDING, SENT, FAILED, RECEIVED, RFUND_ING, REFUND
    amount_fen: int | None = None
    send_time: datetime | None = None
    rcv_time: datetime | None = None
    refund_time: datetime | None = None
    refund_amount_fen: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is PayOutcome.SUCCESS
