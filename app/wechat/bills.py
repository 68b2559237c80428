"""Fund-flow bill parsing (streamed): rows, WeChat's own totals, exact yuan → fen."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Iterator

import requests

from app.wechat.common import _wx_time
from app.wechat.errors import WeChatBillIncomplete
from app.wechat.results import PayOutcome


@dataclass(frozen=True)
class FundFlowRow:
    booked_at: datetime
    transaction_id: str       # 微信支付业务单号 (red packet detail_id)
    flow_id: str              # 资金流水单号
    business_name: str
    business_type: str
    direction: str            # income | expense
    amount_fen: int
    balance_fen: int
    applicant: str
    remark: str
    voucher_no: str           # 业务凭证号: the merchant order number (mch_billno)


@dataclass(frozen=True)
class FundFlowSummary:
    total_count: int
    income_count: int
    income_fen: int
    expense_count: int
    expense_fen: int


class FundFlowBill:
    """status: READY (rows follow), NO_BILL (nothing moved that day), NOT_READY (ask again later),
    FAILED (see outcome/code). Iterating a READY bill yields FundFlowRow and then sets `summary`."""

    def __init__(self, outcome: PayOutcome, status: str, code: str, message: str = "", lines=None, response=None):
        self.outcome, self.status, self.code, self.message = outcome, status, code, message
        self.summary: FundFlowSummary | None = None
        self._lines, self._response = lines, response

    @property
    def ready(self) -> bool:
        return self.status == "READY"

    def __iter__(self) -> Iterator[FundFlowRow]:
        if not self.ready or self._lines is None:
            return iter(())
        return self._rows()

    def _rows(self):
        lines, self._lines = self._lines, None
        count = income = expense = 0
        try:
            for line in lines:
                cells = _bill_cells(line)
                if not cells or not any(cells):
                    continue
                if cells[0] == "资金流水总笔数":
                    self.summary = _summary(next(lines))
                    break
                row = _flow_row(cells)
                count += 1
                income += row.amount_fen if row.direction == "income" else 0
                expense += row.amount_fen if row.direction == "expense" else 0
                yield row
        except requests.RequestException as exc:
            raise WeChatBillIncomplete(fields={"reason": type(exc).__name__}) from exc
        except (StopIteration, ValueError, IndexError, InvalidOperation) as exc:
            raise WeChatBillIncomplete(fields={"reason": "malformed bill"}) from exc
        finally:
            if self._response is not None:
                self._response.close()
        s = self.summary
        if s is None or (s.total_count, s.income_fen, s.expense_fen) != (count, income, expense):
            self.summary = None
            raise WeChatBillIncomplete(fields={"reason": "summary does not match the rows"})


BILL_HEADER_FIRST = "记账时间"


def _bill_cells(line: str) -> list[str]:
    return [cell.strip().lstrip("`").strip() for cell in line.rstrip("\r\n").split(",")]


def yuan_to_fen(value: str) -> int:
    """Exact: '12.34' → 1234; anything finer than a fen is an error, never rounded."""
    fen = Decimal(value.replace(",", "").strip()) * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"amount {value!r} is finer than a fen")
    return int(fen)


def _flow_row(cells: list[str]) -> FundFlowRow:
    if len(cells) < 11:
        raise ValueError("fund-flow row with too few columns")
    direction = {"收入": "income", "支出": "expense"}.get(cells[5])
    if direction is None:
        raise ValueError("unknown 收支类型")
    return FundFlowRow(booked_at=_wx_time(cells[0]), transaction_id=cells[1], flow_id=cells[2],
                       business_name=cells[3], business_type=cells[4], direction=direction,
                       amount_fen=yuan_to_fen(cells[6]), balance_fen=yuan_to_fen(cells[7]), applicant=cells[8],
                       remark=cells[9], voucher_no=cells[10])


def _summary(line: str) -> FundFlowSummary:
    cells = _bill_cells(line)
    count = lambda v: int(Decimal(v))  # noqa: E731  (WeChat sometimes writes counts as "3.0")
    return FundFlowSummary(count(cells[0]), count(cells[1]), yuan_to_fen(cells[2]), count(cells[3]),
                           yuan_to_fen(cells[4]))
