"""app.display: Beijing time for people, Asia/Shanghai business days, Chinese names of codes."""
from datetime import date, datetime, timedelta, timezone

import pytest
from flask import render_template_string

from app import display
from app.display import (business_day, day_bounds_utc, format_date, format_day, format_time, format_yuan,
                         iso_beijing, label, period_of)

UTC = timezone.utc


def test_a_utc_instant_reads_in_beijing_time():
    at = datetime(2026, 12, 5, 7, 34, 12, tzinfo=UTC)
    assert format_time(at) == "2026-12-05 15:34"
    assert format_time(at, seconds=True) == "2026-12-05 15:34:12"
    assert format_time(at.isoformat()) == "2026-12-05 15:34"   # an API answer's ISO string
    assert format_time(None) == "—"
    assert iso_beijing(at) == "2026-12-05T15:34:12+08:00"


def test_after_16_utc_is_the_next_beijing_day():
    late = datetime(2026, 12, 5, 16, 30, tzinfo=UTC)
    assert business_day(late) == date(2026, 12, 6)
    assert format_date(late) == "2026-12-06"
    assert business_day(late - timedelta(minutes=31)) == date(2026, 12, 5)
    assert period_of(datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == "2026-12"
    assert period_of(date(2026, 11, 30)) == "2026-11"


def test_a_naive_datetime_is_taken_as_utc():
    assert format_time(datetime(2026, 1, 1, 0, 0)) == "2026-01-01 08:00"


def test_day_bounds_are_beijing_midnights_in_utc():
    start, end = day_bounds_utc(date(2026, 12, 6))
    assert start == datetime(2026, 12, 5, 16, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)
    assert business_day(start) == date(2026, 12, 6)
    assert business_day(end - timedelta(microseconds=1)) == date(2026, 12, 6)
    assert business_day(end) == date(2026, 12, 7)


def test_days_and_money_in_words():
    assert format_day(date(2026, 12, 5)) == "2026年12月5日"
    assert format_day("2026-01-09") == "2026年1月9日"
    assert format_yuan(54900) == "¥549.00"
    assert format_yuan(123456789) == "¥1,234,567.89"
    assert format_yuan(-5) == "-¥0.05"
    assert format_yuan(None) == "—"


def test_table_kinds_have_chinese_names_and_unknown_codes_show_as_unknown():
    assert label("tip_status", "accepted") == "已采纳"
    assert label("ticket_status", "handling") == "处置中"
    assert label("reward_status", "sent") == "待领取"
    assert label("audit_action", "review.claim") == "领取审核"
    assert label("role", "finance") == "财务"
    assert label("severity", 3) == label("severity", "3") == "严重"
    assert label("timeline_event", "hazard_dispatched") == "工单已分拨"
    assert label("timeline_event", "pending_review") == "待审核"
    assert label("tip_status", "made_up") == "未知（made_up）"
    assert label("tip_status", "made_up", default="-") == "-"
    assert label("tip_status", None) == ""
    with pytest.raises(KeyError):
        label("no_such_kind", "x")


def test_every_status_code_of_the_models_has_a_name():
    from app.hazards.models import HAZARD_STATUSES
    from app.models.staff import ROLES
    from app.models.tip import TIP_STATUSES

    assert all(not label("tip_status", s).startswith("未知") for s in TIP_STATUSES)
    assert all(not label("ticket_status", s).startswith("未知") for s in HAZARD_STATUSES)
    assert all(not label("timeline_event", f"hazard_{s}").startswith("未知") for s in HAZARD_STATUSES)
    assert all(not label("role", r).startswith("未知") for r in ROLES)


def test_failure_codes_read_as_chinese_with_their_prefixes():
    assert label("failure", "SENDNUM_LIMIT") == "该用户今日领取红包个数已达上限"
    assert label("failure", "config:CA_ERROR") == "商户配置问题：商户证书错误"
    assert label("failure", "not_ready:bill_creating") == "账单尚未生成（次日 10 点后生成）：账单生成中"
    assert label("failure", "manual_failed") == "人工核对后标记为失败"
    assert label("failure", "WHATEVER_NEW") == "未知（WHATEVER_NEW）"


def test_an_area_registers_its_own_names():
    display.register_labels("probe_reason", {"too_dark": "照片太暗"})
    assert label("probe_reason", "too_dark") == "照片太暗"
    display.register_labels("probe_reason", {"blurred": "照片模糊"})
    assert display.labels("probe_reason") == {"too_dark": "照片太暗", "blurred": "照片模糊"}


def test_catalogue_grid_and_staff_names_come_from_the_database(app, db, reference_data):
    from sqlalchemy import select

    from app.accounts import create_staff
    from app.geo.models import Grid

    assert label("category", "lpg_illegal").startswith("黑气")
    assert label("department", "fire") == "市消防救援支队"
    grid = db.session.scalars(select(Grid).order_by(Grid.id)).first()
    assert label("grid", grid.code) == grid.name  # the demo grid's name starts with its town's
    assert label("town", grid.town.code) == grid.town.name
    assert label("category", "no_such_category") == "未知（no_such_category）"

    named = create_staff("li_wei", "correct-horse-1", ["moderator"], None, display_name="李伟")
    plain = create_staff("wang_fang", "correct-horse-1", ["finance"], None)
    db.session.commit()
    assert display.staff_name(named.id) == "李伟"
    assert display.staff_name(plain.id) == "wang_fang"  # no display name: the username
    assert display.staff_name(None) == "工作人员"
    assert display.actor_name("staff", named.id) == "李伟"
    assert display.actor_name("department", None, "fire") == "市消防救援支队"
    assert display.actor_name("system") == "系统"


def test_console_templates_get_the_filters(app, db, reference_data):
    at = datetime(2026, 12, 5, 16, 30, tzinfo=UTC)
    with app.test_request_context("/console/"):
        text = render_template_string(
            "{{ at | bj_time }}|{{ at | bj_date }}|{{ 'dispatched' | label('ticket_status') }}|"
            "{{ 'fire' | label('department') }}|{{ 2 | severity }}|{{ 12345 | yuan }}|{{ TIME_NOTE }}", at=at)
    assert text == "2026-12-06 00:30|2026-12-06|已分拨|市消防救援支队|较重|¥123.45|时间均为北京时间"
