"""The three events the demo's terminal shows (app/demo_feed.py) are logged where they happen: a tip
received (the residents' API), a decision (moderation), a red packet sent (the payouts worker)."""
import logging

from app.demo_feed import line_for
from app.log import RequestContextFilter, json_formatter
from tests.miniprogram_api.conftest import packet_sent


def test_a_tip_its_decision_and_its_packet_are_logged_as_events(mp_app, mp_client, login, staff, wechat_sandbox,
                                                                  caplog):
    caplog.set_level(logging.INFO)
    packet_sent(login(), mp_app, mp_client, staff, wechat_sandbox)
    events = {r.event: r for r in caplog.records if getattr(r, "event", None)}
    assert {"tip.received", "tip.decided", "payout.sent"} <= set(events)
    # as the production JSON log line says it, and as the demo's terminal shows it
    formatter, redact = json_formatter(), RequestContextFilter()
    text = {name: (redact.filter(record), formatter.format(record))[1] for name, record in events.items()}
    lines = {name: line_for(line, "web") for name, line in text.items()}
    assert "收到报料 #" in lines["tip.received"] and "（" in lines["tip.received"]
    assert "审核通过（mp-moderator），红包 ¥" in lines["tip.decided"]
    assert "红包已发出：报料 #" in lines["payout.sent"]
    assert "openid" not in " ".join(text.values())
