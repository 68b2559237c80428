"""Reconciliation benchmark: one business day of N red packets (default 100,000).

    .venv/bin/python bench/reconcile.py [--packets 100000]

Setup (not timed): a scratch database (DATABASE_URL when set, else a temp SQLite file; Redis from
REDIS_URL or the embedded one) holding N sent payouts with their ledger transactions booked on one
day, and that day's fund-flow bill (WeChat's format: backtick cells, summary rows) written to a
file and served by a tiny HTTP server at pay/downloadfundflow, so the real gateway downloads and
streams it. One row in the bill is 1 fen off and one is missing, so the exception paths run too.

Timed: `rewards.reconciliation.reconcile_day` in a FRESH subprocess — download, stream, match,
classify, write the run — with wall time and the process's peak RSS (VmHWM) printed, against a
subprocess that only imports the same modules. Goals: ≤ 60 s; peak < 200 MB.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DAY = date(2026, 11, 20)
SHANGHAI = timezone(timedelta(hours=8))


def _app(db_url: str, pay_base: str):
    from app import create_app

    cfg = {"APP_ENV": "development", "SQLALCHEMY_DATABASE_URI": db_url, "WECHAT_PAY_API_BASE": pay_base,
           "WECHAT_PAY_TIMEOUT": 30.0, "LOG_LEVEL": "WARNING", "LOG_JSON": False}
    if os.environ.get("REDIS_URL"):
        cfg["REDIS_URL"] = os.environ["REDIS_URL"]
    if os.environ.get("BENCH_INSTANCE"):
        cfg["INSTANCE_PATH"] = os.environ["BENCH_INSTANCE"]
    return create_app(cfg)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def setup(db_url: str, bill_path: Path, packets: int) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from app.extensions import db
    from app.models import Resident, Tip
    from rewards.models import LedgerEntry, LedgerTransaction, Payout

    app = _app(db_url, "http://127.0.0.1:1/")
    with app.app_context():
        upgrade()
        mch = app.config["WECHAT_MCH_ID"]
        db.session.execute(insert(Resident).values(id=1, openid="oBench", no_reward=False, blocked=False,
                                                   created_at=datetime.now(timezone.utc)))
        now = datetime.combine(DAY, datetime.min.time(), SHANGHAI).astimezone(timezone.utc) + timedelta(hours=9)
        batch = 5000
        for start in range(1, packets + 1, batch):
            ids = range(start, min(start + batch, packets + 1))
            db.session.execute(insert(Tip), [dict(id=i, resident_id=1, idempotency_key=f"b{i}", request_hash="0" * 64,
                                                  category="road_damage", description="", lat=23.0, lng=113.7,
                                                  coord_in="wgs84", status="accepted", status_changed_at=now,
                                                  priority=0, signals={}, candidates=[], flagged=False,
                                                  created_at=now) for i in ids])
            db.session.execute(insert(Payout), [dict(id=i, tip_id=i, resident_id=1, category="road_damage", severity=2,
                                                     amount_fen=100 + i % 19900, status="sent", period="2026-11",
                                                     business_day=DAY, mch_billno=f"{mch}{DAY:%Y%m%d}{i:010d}",
                                                     attempts=1, sent_at=now, updated_at=now, created_at=now)
                                                for i in ids])
            db.session.execute(insert(LedgerTransaction), [dict(id=i, kind="sent", payout_id=i, period="2026-11",
                                                                business_day=DAY, created_at=now) for i in ids])
            db.session.execute(insert(LedgerEntry), [
                dict(transaction_id=i, account=a, amount_fen=s * (100 + i % 19900), payout_id=i)
                for i in ids for a, s in (("packets_in_flight", 1), ("wechat_merchant", -1),
                                          ("budget_reserved:2026-11", 1), ("budget_committed:2026-11", -1))])
            db.session.commit()
        if db.engine.dialect.name == "postgresql":
            for table in ("tips", "payouts", "ledger_transactions", "residents"):
                db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"(SELECT max(id) FROM {table}))"))
            db.session.commit()
    balance = 10 ** 11
    count = expense = 0
    with bill_path.open("w", encoding="utf-8") as out:
        out.write("记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,"
                  "资金变更提交申请人,备注,业务凭证号\r\n")
        for i in range(1, packets + 1):
            if i == 7:
                continue  # missing in the bill
            amount = 100 + i % 19900 + (1 if i == 11 else 0)  # one row 1 fen off
            balance -= amount
            count += 1
            expense += amount
            cells = [f"2026-11-20 09:{(i // 60) % 60:02d}:{i % 60:02d}", f"1000041701{i:018d}", f"{i:028d}",
                     "现金红包", "红包发放", "支出", _yuan(amount), _yuan(balance), "api", "红包发放",
                     f"1900000109{DAY:%Y%m%d}{i:010d}"]
            out.write(",".join("`" + c for c in cells) + "\r\n")
        out.write("资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额\r\n")
        out.write(f"`{count},`0,`0.00,`{count},`{_yuan(expense)}\r\n")


class BillHandler(http.server.BaseHTTPRequestHandler):
    bill_path: Path = None

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self.path.endswith("pay/downloadfundflow"):  # gethbinfo for the missing packet: unknown here
            body = ("<xml><return_code>SUCCESS</return_code><result_code>FAIL</result_code>"
                    "<err_code>NOT_FOUND</err_code><err_code_des>指定单号数据不存在</err_code_des></xml>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        size = self.bill_path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "text/plain;charset=utf-8")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with self.bill_path.open("rb") as f:
            while chunk := f.read(64 * 1024):
                self.wfile.write(chunk)

    def log_message(self, *args):
        pass


def child(db_url: str, pay_base: str, only_import: bool) -> None:
    import rewards.reconciliation  # noqa: F401

    app = _app(db_url, pay_base)
    result = {}
    if not only_import:
        with app.app_context():
            from rewards.reconciliation import reconcile_day

            started, cpu = time.perf_counter(), time.process_time()
            run = reconcile_day(DAY)
            result = {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu, "status": run.status, "error": run.error,
                      "rows": run.bill_rows, "matched": run.matched, "exceptions": run.exception_count}
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    result["peak_mb"] = hwm / 1024
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--child", choices=("run", "import"))
    parser.add_argument("--db")
    parser.add_argument("--pay-base")
    args = parser.parse_args()
    if args.child:
        child(args.db, args.pay_base, args.child == "import")
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    os.environ.setdefault("BENCH_INSTANCE", str(tmp / "instance"))
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    from app.config import normalize_database_url
    from bench.common import embedded_redis_stopped, reset_database

    db_url = normalize_database_url(db_url)
    reset_database(db_url)
    with embedded_redis_stopped(Path(os.environ["BENCH_INSTANCE"])):  # the children started it
        bill = tmp / "bill.csv"
        t0 = time.perf_counter()
        setup(db_url, bill, args.packets)
        print(f"setup: {args.packets} payouts + ledger, bill {bill.stat().st_size / 1e6:.1f} MB "
              f"in {time.perf_counter() - t0:.1f} s ({db_url.split(':')[0]})")
        BillHandler.bill_path = bill
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BillHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        pay_base = f"http://127.0.0.1:{server.server_address[1]}/"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        outs = {}
        for mode in ("import", "run"):
            proc = subprocess.run([sys.executable, __file__, "--child", mode, "--db", db_url, "--pay-base", pay_base],
                                  capture_output=True, text=True, env=env, cwd=ROOT)
            if proc.returncode != 0:
                print(proc.stderr[-3000:])
                raise SystemExit(1)
            outs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        server.shutdown()
        run = outs["run"]
        print(f"reconcile_day: {run['seconds']:.1f} s for {run['rows']} bill rows — status {run['status']}, "
              f"matched {run['matched']}, exceptions {run['exceptions']} (goal ≤ 60 s)")
        print(f"peak RSS: imports only {outs['import']['peak_mb']:.1f} MB; reconciling {run['peak_mb']:.1f} MB "
              f"(goal < 200 MB)")


if __name__ == "__main__":
    main()
