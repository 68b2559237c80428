"""The sandbox itself: the control API exactly as docs/API.md lists it, per-billno state, WeChat's limits,
signature checks on raw requests, and the `flask --app wsgi wechat-sandbox` command."""
import os
import subprocess
import sys
import threading
import time

import pytest
import requests
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac, dict_to_xml

from app.config import SANDBOX_WECHAT
from app.extensions import wechat
from app.wechat import PayOutcome
from app.wechat_sandbox.faults import MODES
from app.wechat_sandbox.wire import parse_xml
from tests.fixtures.sandbox import ROOT, free_port, new_billno

OPENID = "oResidentSbx1"
KEY = SANDBOX_WECHAT["WECHAT_PAY_KEY"]


def send(billno, amount=150, openid=OPENID, **extra):
    return wechat.send_miniprogram_hb(billno, openid, amount, act_name="隐患随手拍", remark="感谢您的报料",
                                      wishing="平安东莞", **extra)


def raw_pay(sandbox, endpoint, fields, key=KEY, sign_type="MD5", sign=None):
    data = {"mch_id": SANDBOX_WECHAT["WECHAT_MCH_ID"], "nonce_str": "n0nce", **fields}
    if sign_type != "MD5":
        data["sign_type"] = sign_type
    if sign is None:
        sign = calculate_signature_hmac(data, key) if sign_type == "HMAC-SHA256" else calculate_signature(data, key)
    reply = requests.post(f"{sandbox.url}/{endpoint}", data=dict_to_xml(data, sign).encode(), timeout=5)
    return parse_xml(reply.content) or reply.text


def hb_fields(billno, amount=150):
    return {"mch_billno": billno, "wxappid": SANDBOX_WECHAT["WECHAT_APPID"], "send_name": "人人拍",
            "re_openid": OPENID, "total_amount": amount, "total_num": 1, "wishing": "w", "act_name": "a",
            "remark": "r", "notify_way": "MINI_PROGRAM_JSAPI"}


def jscode(sandbox, code):
    return requests.get(f"{sandbox.url}/sns/jscode2session", timeout=5, params={
        "appid": SANDBOX_WECHAT["WECHAT_APPID"], "secret": SANDBOX_WECHAT["WECHAT_SECRET"], "js_code": code,
        "grant_type": "authorization_code"}).json()


# --- control API -----------------------------------------------------------------------------------
def test_codes_are_one_time_and_expire(wechat_sandbox):
    reply = requests.post(f"{wechat_sandbox.url}/__sandbox__/codes", json={"openid": OPENID}, timeout=5)
    code = reply.json()["code"]

    assert reply.status_code == 200 and set(reply.json()) == {"code"}
    assert jscode(wechat_sandbox, code)["openid"] == OPENID
    assert jscode(wechat_sandbox, code)["errcode"] == 40163
    stale = wechat_sandbox.login_code(OPENID)
    wechat_sandbox.advance(0.1)  # six minutes: a wx.login code lives five
    assert jscode(wechat_sandbox, stale)["errcode"] == 40029


@pytest.mark.parametrize("body", [{}, {"openid": ""}, {"openid": 7}, None])
def test_codes_need_an_openid(wechat_sandbox, body):
    reply = requests.post(f"{wechat_sandbox.url}/__sandbox__/codes", json=body, timeout=5)
    assert reply.status_code == 400


def test_claim_is_idempotent_and_unknown_is_404(sandbox_app, wechat_sandbox):
    billno = new_billno()
    send(billno)
    url = f"{wechat_sandbox.url}/__sandbox__/redpacks/{billno}/claim"

    first = requests.post(url, timeout=5)
    second = requests.post(url, timeout=5)
    missing = requests.post(f"{wechat_sandbox.url}/__sandbox__/redpacks/{new_billno()}/claim", timeout=5)

    assert (first.status_code, first.json()["status"]) == (200, "RECEIVED")
    assert (second.status_code, second.json()["status"]) == (200, "RECEIVED")  # opening it again shows it
    assert missing.status_code == 404
    assert wechat_sandbox.redpacks()[0]["status"] == "RECEIVED"


def test_expire_refunds_a_sent_packet_now_and_books_it_in_today_s_flow(sandbox_app, wechat_sandbox):
    lapsed, opened = new_billno(), new_billno()
    send(lapsed)
    send(opened)
    wechat_sandbox.claim(opened)
    url = f"{wechat_sandbox.url}/__sandbox__/redpacks/{{}}/expire"

    first = requests.post(url.format(lapsed), timeout=5)
    again = requests.post(url.format(lapsed), timeout=5)
    refused = requests.post(url.format(opened), timeout=5)
    missing = requests.post(url.format(new_billno()), timeout=5)

    assert (first.status_code, first.json()["status"]) == (200, "REFUND")
    assert (again.status_code, again.json()["status"]) == (200, "REFUND")
    assert (refused.status_code, refused.json()["status"]) == (409, "RECEIVED")
    assert missing.status_code == 404
    info = wechat.get_hb_info(lapsed)
    assert info.status == "REFUND" and info.refund_amount_fen == 150
    assert info.refund_time.date() == info.send_time.date()  # not 24 h on: a day's bill holds both
    assert requests.post(f"{wechat_sandbox.url}/__sandbox__/redpacks/{lapsed}/claim", timeout=5).status_code == 409


def test_clock_refunds_only_packets_older_than_24_hours(sandbox_app, wechat_sandbox):
    old, young = new_billno(), new_billno()
    send(old)
    wechat_sandbox.advance(12)
    send(young)
    reply = requests.post(f"{wechat_sandbox.url}/__sandbox__/clock", json={"advance_hours": 12.5}, timeout=5)

    assert reply.status_code == 200 and reply.json()["offset_hours"] == 24.5
    statuses = {p["mch_billno"]: p["status"] for p in wechat_sandbox.redpacks()}
    assert statuses == {old: "REFUND", young: "SENT"}
    assert requests.post(f"{wechat_sandbox.url}/__sandbox__/redpacks/{old}/claim", timeout=5).status_code == 409


def test_claimed_packets_are_never_refunded(sandbox_app, wechat_sandbox):
    billno = new_billno()
    send(billno)
    wechat_sandbox.claim(billno)
    wechat_sandbox.advance(48)
    assert wechat_sandbox.redpacks()[0]["status"] == "RECEIVED"


@pytest.mark.parametrize("body", [{}, {"advance_hours": -1}, {"advance_hours": "2"}])
def test_clock_refuses_bad_input(wechat_sandbox, body):
    assert requests.post(f"{wechat_sandbox.url}/__sandbox__/clock", json=body, timeout=5).status_code == 400


def test_every_listed_fault_mode_is_accepted(wechat_sandbox):
    listed = ["SYSTEMERROR", "timeout", "accept_then_timeout", "http_500", "not_xml", "NOTENOUGH", "FREQ_LIMIT"]
    assert set(listed) <= set(MODES)
    for mode in listed:
        reply = requests.post(f"{wechat_sandbox.url}/__sandbox__/faults",
                              json={"api": "sendminiprogramhb", "mode": mode, "count": 1}, timeout=5)
        assert reply.status_code == 201 and reply.json() == {"api": "sendminiprogramhb", "mode": mode, "count": 1}


@pytest.mark.parametrize("body", [
    {"api": "nope", "mode": "SYSTEMERROR"},
    {"api": "gethbinfo", "mode": "explode"},
    {"api": "gethbinfo", "mode": "SYSTEMERROR", "count": 0},
    {"api": "gethbinfo", "mode": "SYSTEMERROR", "count": "2"},
])
def test_faults_refuse_bad_input(wechat_sandbox, body):
    assert requests.post(f"{wechat_sandbox.url}/__sandbox__/faults", json=body, timeout=5).status_code == 400


def test_fault_count_is_exact_and_per_api(sandbox_app, wechat_sandbox):
    billno = new_billno()
    send(billno)
    wechat_sandbox.fault("gethbinfo", "SYSTEMERROR", count=2)

    codes = [wechat.get_hb_info(billno).code for _ in range(3)]

    assert codes == ["SYSTEMERROR", "SYSTEMERROR", "SUCCESS"]
    assert send(new_billno()).outcome is PayOutcome.SUCCESS  # another API was never affected


def test_wildcard_fault_hits_whichever_api_comes_next(sandbox_app, wechat_sandbox):
    wechat_sandbox.fault("*", "http_500")
    assert wechat.get_hb_info(new_billno()).code == "HTTP_500"
    assert wechat.get_hb_info(new_billno()).code == "NOT_FOUND"


def test_redpacks_list_has_the_documented_fields(sandbox_app, wechat_sandbox):
    billno = new_billno()
    send(billno, amount=123)
    reply = requests.get(f"{wechat_sandbox.url}/__sandbox__/redpacks", timeout=5).json()

    [packet] = reply["items"]
    assert {"mch_billno", "openid", "amount_fen", "status"} <= set(packet)
    assert (packet["mch_billno"], packet["openid"], packet["amount_fen"], packet["status"]) == (
        billno, OPENID, 123, "SENT")


def test_messages_list(sandbox_app, wechat_sandbox):
    assert requests.get(f"{wechat_sandbox.url}/__sandbox__/messages", timeout=5).json() == {"items": []}
    wechat.send_subscribe_message(OPENID, "reward_sent", {"amount1": "1.50元"})
    [message] = requests.get(f"{wechat_sandbox.url}/__sandbox__/messages", timeout=5).json()["items"]
    assert message["openid"] == OPENID and message["data"] == {"amount1": {"value": "1.50元"}}


@pytest.mark.parametrize("body", [{"balance_fen": "10"}, {"balance_fen": None}, {"push_format": "yaml"},
                                  {"push_aes_key": "short"}, {"colour": "blue"}])
def test_config_refuses_bad_settings(wechat_sandbox, body):
    assert requests.post(f"{wechat_sandbox.url}/__sandbox__/config", json=body, timeout=5).status_code == 400


def test_gethbinfo_window_is_30_days(sandbox_app, wechat_sandbox):
    billno = new_billno()
    send(billno)
    wechat_sandbox.advance(24 * 29)
    assert wechat.get_hb_info(billno).status == "REFUND"
    wechat_sandbox.advance(24 * 2)
    assert wechat.get_hb_info(billno).code == "NOT_FOUND"


# --- per-billno state --------------------------------------------------------------------------------
@pytest.mark.parametrize("change", [{"openid": "oSomeoneElse"}, {"amount": 151}, {"wishing": "新年快乐"}])
def test_same_billno_other_parameters_is_fatal(sandbox_app, wechat_sandbox, change):
    billno = new_billno()
    assert send(billno).ok
    kwargs = {"amount": change.get("amount", 150), "openid": change.get("openid", OPENID)}
    if "wishing" in change:
        result = wechat.send_miniprogram_hb(billno, OPENID, 150, act_name="隐患随手拍", remark="感谢您的报料",
                                            wishing=change["wishing"])
    else:
        result = send(billno, **kwargs)

    assert (result.outcome, result.code) == (PayOutcome.UNKNOWN, "FATAL_ERROR")
    assert len(wechat_sandbox.redpacks()) == 1


def test_same_billno_through_the_other_api_is_fatal(sandbox_app, wechat_sandbox):
    billno = new_billno()
    assert send(billno).ok
    other = wechat.send_redpack(billno, OPENID, 150, act_name="隐患随手拍", remark="感谢您的报料", wishing="平安东莞")
    assert other.code == "FATAL_ERROR" and len(wechat_sandbox.redpacks()) == 1


def test_concurrent_sends_of_one_billno_pay_once(make_app, sandbox_config, wechat_sandbox, db):
    billno, results = new_billno(), []
    apps = [make_app(**{**sandbox_config, "WECHAT_PAY_TIMEOUT": 10.0}) for _ in range(2)]  # load is not the test
    barrier = threading.Barrier(8)

    def worker(app):
        with app.app_context():
            barrier.wait()
            results.append(send(billno))

    threads = [threading.Thread(target=worker, args=(apps[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [r.outcome for r in results] == [PayOutcome.SUCCESS] * 8
    assert len({(r.detail_id, r.package) for r in results}) == 1
    assert len(wechat_sandbox.redpacks()) == 1
    assert wechat_sandbox.control("GET", "redpacks")["balance_fen"] == 10_000_000 - 150


# --- WeChat's limits -----------------------------------------------------------------------------------
@pytest.mark.parametrize("amount", [100, 20000])
def test_amount_bounds_are_inclusive(sandbox_app, wechat_sandbox, amount):
    assert send(new_billno(), amount=amount).ok


def test_daily_limits_start_again_the_next_day(sandbox_app, wechat_sandbox):
    assert all(send(new_billno(), amount=100).ok for _ in range(10))
    assert send(new_billno(), amount=100).code == "SENDNUM_LIMIT"
    wechat_sandbox.advance(24)
    assert send(new_billno(), amount=100).ok


def test_limit_refusal_pays_nothing_and_a_new_billno_may_follow(sandbox_app, wechat_sandbox):
    for _ in range(5):
        assert send(new_billno(), amount=20000).ok
    refused = send(new_billno(), amount=100)
    assert refused.outcome is PayOutcome.RETRY_SAME and refused.code == "RCVDAMOUNT_LIMIT"
    assert sum(p["amount_fen"] for p in wechat_sandbox.redpacks()) == 100000


# --- signatures on raw requests ---------------------------------------------------------------------------
def test_correctly_signed_raw_request_is_paid(wechat_sandbox):
    reply = raw_pay(wechat_sandbox, "mmpaymkttransfers/sendminiprogramhb", hb_fields(new_billno()))
    assert (reply["return_code"], reply["result_code"]) == ("SUCCESS", "SUCCESS")
    assert "sign" not in reply  # as in WeChat's official sample: the client certificate binds the reply


def test_hmac_signed_request_is_accepted(wechat_sandbox):
    reply = raw_pay(wechat_sandbox, "mmpaymkttransfers/sendminiprogramhb", hb_fields(new_billno()),
                    sign_type="HMAC-SHA256")
    assert reply["result_code"] == "SUCCESS"


@pytest.mark.parametrize("how", ["wrong_key", "tampered", "missing"])
def test_bad_signature_is_sign_error_and_pays_nothing(wechat_sandbox, how):
    fields = hb_fields(new_billno())
    if how == "wrong_key":
        reply = raw_pay(wechat_sandbox, "mmpaymkttransfers/sendminiprogramhb", fields, key="0" * 32)
    elif how == "tampered":  # signed for ¥1.50, sent for ¥200
        sign = calculate_signature({"mch_id": SANDBOX_WECHAT["WECHAT_MCH_ID"], "nonce_str": "n0nce", **fields}, KEY)
        reply = raw_pay(wechat_sandbox, "mmpaymkttransfers/sendminiprogramhb", {**fields, "total_amount": 20000},
                        sign=sign)
    else:
        reply = raw_pay(wechat_sandbox, "mmpaymkttransfers/sendminiprogramhb", fields, sign="")
    assert (reply["return_code"], reply["err_code"]) == ("FAIL", "SIGN_ERROR")
    assert wechat_sandbox.redpacks() == []


def test_fundflow_wants_hmac(wechat_sandbox):
    fields = {"appid": SANDBOX_WECHAT["WECHAT_APPID"], "bill_date": "20260101", "account_type": "Basic"}
    md5 = raw_pay(wechat_sandbox, "pay/downloadfundflow", fields)
    wrong = raw_pay(wechat_sandbox, "pay/downloadfundflow", fields, key="0" * 32, sign_type="HMAC-SHA256")
    assert (md5["return_code"], md5["err_code"]) == ("FAIL", "PARAM_ERROR")
    assert (wrong["return_code"], wrong["err_code"]) == ("FAIL", "SIGN_ERROR")


def test_wrong_key_on_gethbinfo_is_config_error(make_app, sandbox_config, wechat_sandbox, db):
    app = make_app(**{**sandbox_config, "WECHAT_PAY_KEY": "0" * 32})
    with app.app_context():
        result = wechat.get_hb_info(new_billno())
    assert (result.outcome, result.code) == (PayOutcome.CONFIG_ERROR, "SIGN_ERROR")


def test_unreadable_merchant_certificate_is_config_error_before_sending(make_app, sandbox_config, wechat_sandbox,
                                                                       db, tmp_path):
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_text("not really a key")
    app = make_app(**{**sandbox_config, "WECHAT_PAY_CERT": str(tmp_path / "missing_cert.pem"),
                      "WECHAT_PAY_KEY_FILE": str(key_file)})
    with app.app_context():
        result = send(new_billno())
        bill = wechat.download_fundflow("2026-01-01")
    assert (result.outcome, result.code) == (PayOutcome.CONFIG_ERROR, "CERT_MISSING")
    assert (bill.outcome, bill.code) == (PayOutcome.CONFIG_ERROR, "CERT_MISSING")
    assert wechat_sandbox.redpacks() == []


# --- the command ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_flask_command_starts_a_working_sandbox(make_app, sandbox_config, subprocess_env, tmp_path, db):
    port = free_port()
    env = {**subprocess_env, "WECHAT_MCH_ID": "1900000777", "WECHAT_APPID": "wxclisandbox0000001"}
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "wechat-sandbox", "--port", str(port),
                             "--state", str(tmp_path / "cli.db")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                health = requests.get(f"{base}/__sandbox__/health", timeout=0.5).json()
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.1)
        # it took the app's WECHAT_* settings from the same environment
        assert (health["appid"], health["mch_id"]) == ("wxclisandbox0000001", "1900000777")

        app = make_app(**{**sandbox_config, "WECHAT_API_BASE": base + "/", "WECHAT_PAY_API_BASE": base + "/",
                          "WECHAT_APPID": "wxclisandbox0000001", "WECHAT_MCH_ID": "1900000777"})
        with app.app_context():
            code = requests.post(f"{base}/__sandbox__/codes", json={"openid": OPENID}, timeout=5).json()["code"]
            assert wechat.code_to_session(code).openid == OPENID
            billno = new_billno("1900000777")
            assert send(billno).ok
            assert wechat.get_hb_info(billno).status == "SENT"
        assert (tmp_path / "cli.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
    assert os.path.getsize(tmp_path / "cli.db") > 0
