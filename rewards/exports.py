"""Payout exports that finance can hand on: CSV (UTF-8 with BOM, opens right in Excel) and a typed
Excel sheet. Chinese headers, amounts in 元 with two decimals, Beijing time, category and status
names, a totals row. Never the resident's openid (resident id only), as in the payout list."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal

from app.extensions import db
from app.display import to_beijing
from rewards.models import Payout

# (header, how a payout gives the value, Excel kind) — kind: int | yuan | text | time
COLUMNS = (
    ("奖励编号", lambda p, n: p.id, "int"),
    ("报料编号", lambda p, n: p.tip_id, "int"),
    ("报料人编号", lambda p, n: p.resident_id, "int"),
    ("类别", lambda p, n: n["category"](p.category), "text"),
    ("严重程度", lambda p, n: n["severity"](p.severity), "text"),
    ("金额（元）", lambda p, n: p.amount_fen, "yuan"),
    ("状态", lambda p, n: n["status"](p.status), "text"),
    ("原因", lambda p, n: n["reason"](p.reason), "text"),
    ("商户订单号", lambda p, n: p.mch_billno, "text"),
    ("预算期", lambda p, n: p.period, "text"),
    ("创建时间", lambda p, n: p.created_at, "time"),
    ("发出时间", lambda p, n: p.sent_at, "time"),
    ("结清时间", lambda p, n: p.settled_at, "time"),
)
AMOUNT = next(i for i, c in enumerate(COLUMNS) if c[2] == "yuan")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
BATCH = 2000


def yuan_text(fen: int) -> str:
    """12345 → "123.45" (exact: integer arithmetic, never a float)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def beijing(value: datetime | None) -> datetime | None:
    """An aware UTC time as Beijing wall-clock time (naive: Excel has no time zones)."""
    return to_beijing(value).replace(tzinfo=None) if value is not None else None


def _namers() -> dict:
    from app.display import label

    return {"category": lambda code: label("category", code), "severity": lambda n: label("severity", n),
            "status": lambda code: label("reward_status", code),
            "reason": lambda code: label("failure", code) if code else ""}


def _payouts(query):
    return db.session.execute(query.order_by(Payout.id).execution_options(yield_per=BATCH)).scalars()


def iter_csv(query):
    """CSV streamed in batches; the last row is the totals row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([header for header, _, _ in COLUMNS])
    names, count, total = _namers(), 0, 0
    for payout in _payouts(query):
        count, total = count + 1, total + payout.amount_fen
        writer.writerow([_text(get(payout, names), kind) for _, get, kind in COLUMNS])
        if count % BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerow(_totals(count, yuan_text(total)))
    yield buffer.getvalue()


def _text(value, kind) -> str:
    if value is None:
        return ""
    if kind == "yuan":
        return yuan_text(value)
    if kind == "time":
        return beijing(value).strftime(TIME_FORMAT)
    return str(value)


def _totals(count: int, amount) -> list:
    row = [""] * len(COLUMNS)
    row[0], row[1], row[AMOUNT] = "合计", f"{count} 笔", amount
    return row


def build_xlsx(query) -> bytes:
    """Excel (openpyxl write-only: rows go out as they are written). Numbers are numbers, amounts
    two-decimal numbers in 元, times real Excel dates in Beijing time."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet("红包发放")
    sheet.freeze_panes = "A2"
    for letter, width in zip("ABCDEFGHIJKLM", (10, 10, 11, 16, 9, 11, 10, 18, 30, 9, 20, 20, 20)):
        sheet.column_dimensions[letter].width = width
    bold = Font(bold=True)

    def cell(value, kind, strong=False):
        c = WriteOnlyCell(sheet, value=value)
        if kind == "yuan":
            c.number_format = "#,##0.00"
        elif kind == "time":
            c.number_format = "yyyy-mm-dd hh:mm:ss"
        if strong:
            c.font = bold
        return c

    sheet.append([cell(header, "text", True) for header, _, _ in COLUMNS])
    names, count, total = _namers(), 0, 0
    for payout in _payouts(query):
        count, total = count + 1, total + payout.amount_fen
        sheet.append([cell(_typed(get(payout, names), kind), kind) for _, get, kind in COLUMNS])
    totals = _totals(count, Decimal(total).scaleb(-2))
    sheet.append([cell(value, COLUMNS[i][2] if i == AMOUNT else "text", True) for i, value in enumerate(totals)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _typed(value, kind):
    if value is None:
        return None
    if kind == "yuan":
        return Decimal(int(value)).scaleb(-2)
    if kind == "time":
        return beijing(value)
    return value
