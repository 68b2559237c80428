"""商家转账 (WeChat Pay APIv3) through the real wechatpayv3 client against the sandbox: signed requests
and replies, the bill's states, the decision table of error codes, notifications, the fund-flow bill."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.extensions import wechat
from app.wechat import PayOutcome

OPENID = "oResidentTransfer1"
REMARK = "隐患报料奖励"
_serial = iter(range(int(time.time() * 1000) % 10 ** 9, 10 ** 12))


def new_bill_no() -> str:
    return f"rrp{next(_serial)}"


def create(out_bill_no, amount=150, openid=OPENID, remark=REMARK):
    return wechat.create_transfer(out_bill_no, openid, amount, remark)


class Receiver:
    """The app's notify_url stand-in: records each delivery; answers `statuses` in turn, then 200."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.deliveries = []
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ, start_response):
        request = Request(environ)
        self.deliveries.append((dict(request.headers), request.get_data()))
        status = self.statuses.pop(0) if self.statuses else 200
        return Response("", status=status)(environ, start_response)

    def wait(self, count, timeout=15.0):
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.deliveries

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    started = []

    def _start(statuses=()):
        started.append(Receiver(statuses))
        return started[-1]

    yield _start
    for r in started:
        r.stop()


@pytest.fixture
def transfer_app(make_app, sandbox_config, db, receiver):
    """An app wired to the sandbox whose transfer notifications go to a Receiver (`app.receiver`)."""
    hook = receiver()
    application = make_app(**sandbox_config, WECHAT_TRANSFER_NOTIFY_URL=hook.url)
    application.receiver = hook
    with application.app_context():
        yield application


def test_a_bill_waits_for_the_resident_with_what_the_mini_program_needs(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    result = create(out_bill_no)

    assert result.outcome is PayOutcome.SUCCESS
    assert (result.status, result.amount_fen, result.mch_billno) == ("WAIT_USER_CONFIRM", 150, out_bill_no)
    assert result.package and result.detail_id
    assert wechat.transfer_params(result.package) == {"mch_id": "1900000109", "app_id": "wxsandbox0000000001",
                                                      "package": result.package}
    [bill] = wechat_sandbox.transfers()
    assert (bill["out_bill_no"], bill["openid"], bill["amount_fen"], bill["state"]) == (
        out_bill_no, OPENID, 150, "WAIT_USER_CONFIRM")


def test_the_same_bill_number_creates_one_bill(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    first, second = create(out_bill_no), create(out_bill_no)

    assert first.ok and second.ok and first.detail_id == second.detail_id
    assert len(wechat_sandbox.transfers()) == 1


def test_the_same_number_with_other_parameters_is_unknown_never_a_new_bill(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    create(out_bill_no, amount=150)
    again = create(out_bill_no, amount=160)

    assert (again.outcome, again.code) == (PayOutcome.UNKNOWN, "INVALID_REQUEST")
    assert [b["amount_fen"] for b in wechat_sandbox.transfers()] == [150]


def test_confirmed_bill_succeeds_and_is_notified_encrypted_and_signed(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    created = create(out_bill_no)
    assert wechat_sandbox.confirm_transfer(out_bill_no)["state"] == "SUCCESS"

    queried = wechat.query_transfer(out_bill_no)
    assert (queried.outcome, queried.status, queried.detail_id) == (PayOutcome.SUCCESS, "SUCCESS", created.detail_id)
    assert queried.rcv_time is not None and queried.amount_fen == 150
    [(headers, body)] = transfer_app.receiver.wait(1)
    assert "resource" in json.loads(body) and out_bill_no.encode() not in body  # the result is encrypted
    resource = wechat.read_transfer_notification(headers, body)
    assert (resource["out_bill_no"], resource["state"], resource["transfer_amount"]) == (out_bill_no, "SUCCESS", 150)


def test_a_notification_that_does_not_verify_or_is_stale_is_refused(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    create(out_bill_no)
    wechat_sandbox.confirm_transfer(out_bill_no)
    [(headers, body)] = transfer_app.receiver.wait(1)

    tampered = body.replace(b'"summary"', b'"summary" ', 1)
    assert wechat.read_transfer_notification(headers, tampered) is None
    stale = {**headers, "Wechatpay-Timestamp": str(int(time.time()) - 3600)}
    assert wechat.read_transfer_notification(stale, body) is None
    assert wechat.read_transfer_notification(headers, body)["state"] == "SUCCESS"


def test_notifications_are_retried_until_the_app_answers(transfer_app, wechat_sandbox):
    transfer_app.receiver.statuses = [500, 503]
    out_bill_no = new_bill_no()
    create(out_bill_no)
    wechat_sandbox.expire_transfer(out_bill_no)

    deliveries = transfer_app.receiver.wait(3)
    assert len(deliveries) == 3
    states = {wechat.read_transfer_notification(h, b)["state"] for h, b in deliveries}
    assert states == {"FAIL"}
    deadline = time.monotonic() + 5
    while wechat_sandbox.transfers()[0]["notify_status"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.05)
    [bill] = wechat_sandbox.transfers()
    assert (bill["notify_status"], bill["notify_attempts"]) == ("delivered", 3)


def test_an_unconfirmed_bill_closes_overdue_after_a_day(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    create(out_bill_no)
    wechat_sandbox.advance(24.1)

    result = wechat.query_transfer(out_bill_no)
    assert (result.status, result.reason) == ("FAIL", "OVERDUE_CLOSE")
    assert wechat_sandbox.expire_transfer(out_bill_no)["state"] == "FAIL"  # already closed: 409


def test_cancel_ends_cancelled_through_canceling(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    create(out_bill_no)

    cancelled = wechat.cancel_transfer(out_bill_no)
    assert (cancelled.outcome, cancelled.status) == (PayOutcome.SUCCESS, "CANCELING")
    assert wechat.query_transfer(out_bill_no).status == "CANCELLED"
    assert wechat_sandbox.confirm_transfer(out_bill_no)["state"] == "CANCELLED"  # too late for the resident


def test_a_paid_bill_cannot_be_cancelled(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    create(out_bill_no)
    wechat_sandbox.confirm_transfer(out_bill_no)

    result = wechat.cancel_transfer(out_bill_no)
    assert (result.outcome, result.code) == (PayOutcome.UNKNOWN, "INVALID_REQUEST")
    assert wechat.query_transfer(out_bill_no).status == "SUCCESS"


def test_a_bill_never_sent_is_not_found_and_may_be_sent_again(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    result = wechat.query_transfer(out_bill_no)

    assert (result.outcome, result.code) == (PayOutcome.RETRY_SAME, "NOT_FOUND")
    assert create(out_bill_no).ok


def test_a_request_signed_with_another_merchant_key_is_refused(make_app, sandbox_config, db, wechat_sandbox,
                                                                tmp_path):
    from app.dev_keys import dev_v3_keys

    other = dev_v3_keys(tmp_path)  # a key pair the sandbox does not know, with the sandbox's WeChat Pay key
    ours = dev_v3_keys(make_app(**sandbox_config).config["INSTANCE_PATH"])
    application = make_app(**sandbox_config, WECHAT_PAY_SERIAL=ours["WECHAT_PAY_SERIAL"],
                           WECHAT_PAY_KEY_FILE=other["WECHAT_PAY_KEY_FILE"],
                           WECHAT_PAY_PUBLIC_KEY_FILE=ours["WECHAT_PAY_PUBLIC_KEY_FILE"],
                           WECHAT_PAY_PUBLIC_KEY_ID=ours["WECHAT_PAY_PUBLIC_KEY_ID"])
    with application.app_context():
        result = create(new_bill_no())

    assert (result.outcome, result.code) == (PayOutcome.CONFIG_ERROR, "SIGN_ERROR")
    assert wechat_sandbox.transfers() == []


def test_a_reply_signed_by_another_key_is_unknown_and_the_bill_is_queried(transfer_app, wechat_sandbox):
    out_bill_no = new_bill_no()
    wechat_sandbox.fault("transfer_bills", "bad_sign")

    result = create(out_bill_no)
    assert (result.outcome, result.code) == (PayOutcome.UNKNOWN, "INVALID_SIGNATURE")
    assert wechat.query_transfer(out_bill_no).status == "WAIT_USER_CONFIRM"  # it was created all the same


@pytest.mark.parametrize("mode, outcome, code", [
    ("SYSTEM_ERROR", PayOutcome.RETRY_SAME, "SYSTEM_ERROR"),
    ("SYSTEMERROR", PayOutcome.RETRY_SAME, "SYSTEM_ERROR"),
    ("NOT_ENOUGH", PayOutcome.RETRY_SAME, "NOT_ENOUGH"),
    ("NOTENOUGH", PayOutcome.RETRY_SAME, "NOT_ENOUGH"),
    ("FREQUENCY_LIMIT_EXCEED", PayOutcome.RETRY_SAME, "FREQUENCY_LIMIT_EXCEED"),
    ("FREQ_LIMIT", PayOutcome.RETRY_SAME, "FREQUENCY_LIMIT_EXCEED"),
    ("PARAM_ERROR", PayOutcome.FAILED_FINAL, "PARAM_ERROR"),
    ("ACCOUNT_ERROR", PayOutcome.FAILED_FINAL, "ACCOUNT_ERROR"),
    ("SIGN_ERROR", PayOutcome.CONFIG_ERROR, "SIGN_ERROR"),
    ("NO_AUTH", PayOutcome.CONFIG_ERROR, "NO_AUTH"),
    ("INVALID_REQUEST", PayOutcome.UNKNOWN, "INVALID_REQUEST"),
    ("unknown_code", PayOutcome.UNKNOWN, "NEW_RISK_CONTROL"),
    ("http_500", PayOutcome.UNKNOWN, "HTTP_500"),
    ("not_xml", PayOutcome.UNKNOWN, "HTTP_502"),
    ("timeout", PayOutcome.UNKNOWN, "TIMEOUT"),
    ("accept_then_timeout", PayOutcome.UNKNOWN, "TIMEOUT"),
    ("missing_field", PayOutcome.UNKNOWN, "MISSING_FIELD"),
])
def test_each_fault_of_bill_creation_has_its_outcome(transfer_app, wechat_sandbox, mode, outcome, code):
    out_bill_no = new_bill_no()
    wechat_sandbox.fault("transfer_bills", mode)

    result = create(out_bill_no)
    assert (result.outcome, result.code) == (outcome, code)
    processed = mode in ("accept_then_timeout", "missing_field")
    assert [b["out_bill_no"] for b in wechat_sandbox.transfers()] == ([out_bill_no] if processed else [])
    assert create(out_bill_no).ok  # the same number goes through once WeChat answers


def test_the_remark_is_at_most_32_characters(transfer_app, wechat_sandbox):
    result = create(new_bill_no(), remark="长" * 33)
    assert (result.outcome, result.code) == (PayOutcome.CONFIG_ERROR, "PARAM_ERROR")
    assert wechat_sandbox.transfers() == []


def test_the_fund_flow_bill_lists_the_paid_transfers_and_checks_its_hash(transfer_app, wechat_sandbox):
    paid, lapsed = new_bill_no(), new_bill_no()
    create(paid, amount=150)
    create(lapsed, amount=200)
    wechat_sandbox.confirm_transfer(paid)
    wechat_sandbox.expire_transfer(lapsed)
    today = datetime.now(timezone(timedelta(hours=8))).date()

    assert wechat.download_fundflow_v3(today).status == "NOT_READY"  # a day's bill exists the next morning
    wechat_sandbox.advance(24)
    bill = wechat.download_fundflow_v3(today)
    assert bill.status == "READY"
    rows = list(bill)
    assert [(r.voucher_no, r.direction, r.amount_fen, r.business_name) for r in rows] == [
        (paid, "expense", 150, "商家转账")]
    assert (bill.summary.expense_count, bill.summary.expense_fen) == (1, 150)
    assert wechat.download_fundflow_v3(today - timedelta(days=1)).status == "NO_BILL"

    wechat_sandbox.fault("fundflowbill", "missing_field")  # the file is cut: it no longer matches its hash
    cut = wechat.download_fundflow_v3(today)
    assert (cut.status, cut.code, cut.outcome) == ("FAILED", "HASH_MISMATCH", PayOutcome.RETRY_SAME)


def test_bill_creation_is_limited_to_100_calls_a_second(transfer_app, wechat_sandbox):
    wechat_sandbox.configure(transfer_rate_limit=3)
    results = [create(new_bill_no()) for _ in range(6)]

    refused = [r for r in results if r.code == "FREQUENCY_LIMIT_EXCEED"]
    assert refused and all(r.outcome is PayOutcome.RETRY_SAME for r in refused)
    assert len(wechat_sandbox.transfers()) == 6 - len(refused)


def _pooled_requests(url) -> int:
    """Requests made so far through this thread's keep-alive session to `url`'s host."""
    from urllib.parse import urlsplit

    from app.wechat.keepalive import pooled_session

    pools = pooled_session().get_adapter(url).poolmanager.pools
    return sum(pools[key].num_requests for key in pools.keys() if pools[key].port == urlsplit(url).port)


def test_calls_go_through_the_keepalive_session(transfer_app, wechat_sandbox):
    """wechatpayv3 alone builds a Session (and a connection) per call; through
    app/wechat/keepalive.py every APIv3 call goes over the thread's one keep-alive session.
    (The sandbox, a werkzeug development server, closes each connection, so connection reuse
    itself is shown against a keep-alive server in tests/wechat/test_keepalive.py.)"""
    before = _pooled_requests(wechat_sandbox.url)
    bill = new_bill_no()
    assert create(bill).status == "WAIT_USER_CONFIRM"
    assert wechat.query_transfer(bill).status == "WAIT_USER_CONFIRM"
    assert wechat.cancel_transfer(bill).status == "CANCELING"
    assert _pooled_requests(wechat_sandbox.url) == before + 3
