"""The demo's terminal (issue 13): a short line per notable event and every error, read from the JSON
logs under instance/logs/; everything else stays in the files."""
import json

from app.demo_feed import LogFeed, line_for


def _json(**record) -> str:
    return json.dumps({"ts": "2026-12-05 10:00:00,000", "level": "INFO", "logger": "x", "request_id": "-", **record})


def test_events_read_as_short_chinese_lines():
    received = line_for(_json(message="tip received", event="tip.received", tip_id=7, category="gas_cylinder",
                              category_name="违规使用液化气瓶"), "web")
    assert received.endswith("收到报料 #7（违规使用液化气瓶）")
    decided = line_for(_json(message="tip decided", event="tip.decided", tip_id=7, action="approve",
                             staff="moderator", reward_status="reserved", reward_fen=500), "web")
    assert decided.endswith("报料 #7 审核通过（moderator），红包 ¥5.00 待发放")
    refused = line_for(_json(message="tip decided", event="tip.decided", tip_id=8, action="approve", staff="moderator",
                             reward_status="not_granted", reward_reason="本月预算已用完"), "web")
    assert refused.endswith("不发红包：本月预算已用完")
    refused = line_for(_json(message="tip refused at intake", event="tip.refused", tip_id=9, outcome="rejected",
                             check="text"), "worker")
    assert refused.endswith("报料 #9 未受理：内容未通过内容安全检查，已自动驳回")
    refused = line_for(_json(message="tip refused at intake", event="tip.refused", tip_id=10, outcome="rejected",
                             check="media"), "worker")
    assert refused.endswith("报料 #10 未受理：图片未通过内容安全检查，已自动驳回")
    resend = line_for(_json(message="tip refused at intake", event="tip.refused", tip_id=11, outcome="duplicate",
                            check="photos", duplicate_of=4), "worker")
    assert resend.endswith("报料 #11 未受理：与本人报料 #4 照片相同，自动判为重复")
    paid = line_for(_json(message="red packet sent", event="payout.sent", tip_id=7, payout_id=3, amount_fen=500),
                    "worker")
    assert paid.endswith("红包已发出：报料 #7，¥5.00")


def test_errors_show_and_the_rest_stays_in_the_files():
    error = line_for(_json(level="ERROR", message="outbox message gave up after 25 attempts"), "worker")
    assert "错误（worker）：outbox message gave up" in error and "logs/worker.log" in error
    assert "错误（web）" in line_for("[2026-12-05 10:00:00 +0000] [12] [ERROR] Exception in worker process", "web")
    assert line_for(_json(message="wechat access token refreshed"), "worker") is None
    assert line_for(_json(level="WARNING", message="wechat call failed"), "worker") is None
    assert line_for('127.0.0.1 - - [05/Dec/2026:10:00:00 +0000] "GET /healthz HTTP/1.1" 200 15', "web") is None
    assert line_for("[2026-12-05 10:00:00 +0000] [12] [INFO] Booting worker with pid: 12", "web") is None


def test_the_feed_follows_files_from_their_end(tmp_path):
    path = tmp_path / "worker.log"
    path.write_text(_json(event="payout.sent", tip_id=1, amount_fen=100) + "\n")  # before the feed: not shown
    shown: list[str] = []
    feed = LogFeed({"worker": path}, shown.append)
    with open(path, "a") as log:
        log.write(_json(event="payout.sent", tip_id=2, amount_fen=200) + "\n")
        log.write(_json(event="payout.sent", tip_id=3, amount_fen=300)[:20])  # half a line: wait for the rest
    feed.poll()
    assert [line[9:] for line in shown] == ["红包已发出：报料 #2，¥2.00"]
    with open(path, "a") as log:
        log.write(_json(event="payout.sent", tip_id=3, amount_fen=300)[20:] + "\n")
    feed.poll()
    assert shown[-1].endswith("报料 #3，¥3.00") and feed.printed == 2
