"""The intake job against the real WeChat sandbox: each automatic outcome, the resident's timeline,
duplicate delivery, a crash between the two compare-and-sets, a withdrawal during the checks."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models.base import utcnow
from app.models.tip import Tip, TipEvent
from moderation import intake
from moderation.models import PhotoHashBand, ReviewDecision, TipMediaCheck
from tests.moderation.factories import make_photo, make_resident, make_tip, point_in_grid


def _tip(resident, jpegs, **kw):
    photos = [make_photo(resident, data) for data in jpegs]
    tip = make_tip(resident, photos, at=kw.pop("at", None) or point_in_grid(), **kw)
    db.session.commit()
    return tip


def _refused_events(caplog):
    """What the intake logged for the demo's terminal (app/demo_feed.py reads `event`)."""
    return [(r.tip_id, r.outcome, r.check) for r in caplog.records if getattr(r, "event", None) == "tip.refused"]


def _reload(tip_id):
    db.session.expire_all()
    return db.session.get(Tip, tip_id)


def _timeline(tip_id, internal=False):
    return [(e.status, e.note) for e in db.session.scalars(
        select(TipEvent).where(TipEvent.tip_id == tip_id, TipEvent.internal.is_(internal)).order_by(TipEvent.id))]


def test_clean_tip_goes_to_review_with_grid_priority_and_timeline(intake_app, scene_jpegs, wechat_sandbox):
    tip = _tip(make_resident(), scene_jpegs[:2])
    assert intake.process_tip(tip.id) == "pending_review"
    tip = _reload(tip.id)
    assert tip.status == "pending_review" and not tip.flagged
    assert tip.grid_code and tip.town_code and tip.signals["grid"]["grid_code"] == tip.grid_code
    from app.hazards.catalogue import get_category

    assert tip.priority == get_category("lpg_illegal").severity_weight > 0
    assert tip.signals["content"]["text"]["suggest"] == "pass"
    assert [m["state"] for m in tip.signals["content"]["media"]] == ["pending", "pending"]
    assert db.session.scalar(select(func.count()).select_from(TipMediaCheck).where(TipMediaCheck.tip_id == tip.id)) == 2
    assert db.session.scalar(select(func.count()).select_from(PhotoHashBand)) == 2 * 4
    statuses = [s for s, _ in _timeline(tip.id)]
    assert statuses[0] == "received" or statuses[0] == "checking"
    notes = [n for _, n in _timeline(tip.id)]
    assert intake.NOTE_CHECKING in notes and intake.NOTE_PHOTOS in notes and intake.NOTE_PENDING in notes
    assert tip.candidates == []


def test_own_resend_resaved_and_halved_is_a_duplicate_automatically(intake_app, scene_jpegs, resaved_half,
                                                                     wechat_sandbox, caplog):
    resident = make_resident()
    first = _tip(resident, scene_jpegs[:1])
    caplog.set_level("INFO", logger="moderation.intake")
    assert intake.process_tip(first.id) == "pending_review"
    second = _tip(resident, [resaved_half])
    assert intake.process_tip(second.id) == "duplicate"
    assert _refused_events(caplog) == [(second.id, "duplicate", "photos")]
    second = _reload(second.id)
    assert second.status == "duplicate" and second.duplicate_of_tip_id == first.id
    assert any("重复" in (n or "") and str(first.id) in n for _, n in _timeline(second.id))
    assert second.candidates[0]["tip_id"] == first.id and second.candidates[0]["match"] == "near"
    assert db.session.scalar(select(ReviewDecision.action).where(ReviewDecision.tip_id == second.id)) == "auto_duplicate"
    # the resend was not sent to WeChat's content checks
    assert second.signals["content"]["text"]["suggest"] == "skipped"


def test_twenty_different_photos_are_not_duplicates(intake_app, scene_jpegs, wechat_sandbox):
    resident = make_resident()
    first = _tip(resident, scene_jpegs[:1])
    intake.process_tip(first.id)
    for data in scene_jpegs[1:21]:
        other = _tip(resident, [data], at=(first.lat + 0.05, first.lng))  # far away: no "nearby" either
        assert intake.process_tip(other.id) == "pending_review"
        assert [c for c in _reload(other.id).candidates if c["kind"] == "photo"] == []


def test_same_photo_from_another_reporter_is_flagged_not_decided(intake_app, scene_jpegs, wechat_sandbox):
    first = _tip(make_resident(), scene_jpegs[:1])
    intake.process_tip(first.id)
    second = _tip(make_resident(), scene_jpegs[:1])  # the identical file
    assert intake.process_tip(second.id) == "pending_review"
    second = _reload(second.id)
    codes = {f["code"] for f in second.signals["flags"]}
    assert "stolen_photo" in codes
    photo_candidates = [c for c in second.candidates if c["kind"] == "photo"]
    assert photo_candidates[0]["match"] == "exact" and photo_candidates[0]["distance"] == 0
    assert photo_candidates[0]["same_reporter"] is False
    # and the earlier tip of the same category nearby is a "nearby" candidate too
    assert any(c["kind"] == "nearby" and c["tip_id"] == first.id for c in second.candidates)


def test_risky_text_is_rejected_with_the_reason(intake_app, scene_jpegs, wechat_sandbox, caplog):
    tip = _tip(make_resident(), scene_jpegs[:1], description="这里有【违规】内容")
    caplog.set_level("INFO", logger="moderation.intake")
    assert intake.process_tip(tip.id) == "rejected"
    assert _refused_events(caplog) == [(tip.id, "rejected", "text")]
    tip = _reload(tip.id)
    assert tip.status == "rejected" and tip.decision_reason == "content_risky"
    assert _timeline(tip.id)[-1] == ("rejected", intake.NOTE_REJECTED_RISKY)


def test_review_text_is_flagged(intake_app, scene_jpegs, wechat_sandbox):
    tip = _tip(make_resident(), scene_jpegs[:1], description="请看【待审】")
    assert intake.process_tip(tip.id) == "pending_review"
    tip = _reload(tip.id)
    assert tip.flagged and "text_review" in {f["code"] for f in tip.signals["flags"]}


def test_wechat_down_does_not_block_the_tip(intake_app, scene_jpegs, wechat_sandbox):
    wechat_sandbox.fault("msg_sec_check", "http_500", count=5)
    wechat_sandbox.fault("media_check_async", "http_500", count=5)
    tip = _tip(make_resident(), scene_jpegs[:1])
    assert intake.process_tip(tip.id) == "pending_review"
    tip = _reload(tip.id)
    assert tip.flagged
    assert tip.signals["content"]["text"]["suggest"] == "unavailable"
    assert "content_check_unavailable" in {f["code"] for f in tip.signals["flags"]}


def test_running_twice_changes_nothing_the_second_time(intake_app, scene_jpegs, wechat_sandbox):
    tip = _tip(make_resident(), scene_jpegs[:1])
    assert intake.process_tip(tip.id) == "pending_review"
    events = _timeline(tip.id)
    assert intake.process_tip(tip.id) == "skipped"
    assert _timeline(tip.id) == events


def test_a_run_in_progress_makes_a_second_delivery_retry_later(intake_app, scene_jpegs, wechat_sandbox):
    tip = _tip(make_resident(), scene_jpegs[:1])
    db.session.execute(update(Tip).where(Tip.id == tip.id).values(status="checking", status_changed_at=utcnow()))
    db.session.commit()
    with pytest.raises(intake.IntakeBusy):
        intake.process_tip(tip.id)


def test_a_crashed_run_is_taken_over_once_stale(intake_app, scene_jpegs, wechat_sandbox):
    tip = _tip(make_resident(), scene_jpegs[:1])
    long_ago = utcnow() - timedelta(seconds=intake_app.config["INTAKE_STALE_SECONDS"] + 5)
    db.session.execute(update(Tip).where(Tip.id == tip.id).values(status="checking", status_changed_at=long_ago))
    db.session.commit()
    assert intake.process_tip(tip.id) == "pending_review"
    assert any("interrupted" in (n or "") for _, n in _timeline(tip.id, internal=True))


def test_withdrawn_during_the_checks_stays_withdrawn(intake_app, scene_jpegs, wechat_sandbox, monkeypatch):
    from app.tips import change_tip_status
    from moderation import checks

    tip = _tip(make_resident(), scene_jpegs[:1])
    real = checks.check_text

    def withdraw_meanwhile(t, openid):
        result = real(t, openid)
        change_tip_status(t.id, ["checking"], "withdrawn", "报料人已撤回")
        db.session.commit()
        return result

    monkeypatch.setattr(checks, "check_text", withdraw_meanwhile)
    assert intake.process_tip(tip.id) == "superseded"
    tip = _reload(tip.id)
    assert tip.status == "withdrawn" and tip.signals == {}


def test_the_outbox_delivers_the_intake(intake_app, scene_jpegs, wechat_sandbox):
    from app.models.outbox import OutboxMessage
    from app.queue import run_burst

    tip = _tip(make_resident(), scene_jpegs[:1])
    run_burst(intake_app, ["intake"])
    assert _reload(tip.id).status == "pending_review"
    assert db.session.scalar(select(OutboxMessage.status).where(OutboxMessage.topic == "tip.intake")) == "done"


def test_media_verdicts_are_applied_once(intake_app, scene_jpegs, wechat_sandbox, caplog):
    from app.models.wechat import WeChatMediaCheck

    risky = _tip(make_resident(), scene_jpegs[:1])
    review = _tip(make_resident(), scene_jpegs[1:2], at=(risky.lat + 0.05, risky.lng))
    intake.process_tip(risky.id)
    intake.process_tip(review.id)
    for tip_id, suggest in ((risky.id, "risky"), (review.id, "review")):
        trace = db.session.scalar(select(TipMediaCheck.trace_id).where(TipMediaCheck.tip_id == tip_id))
        db.session.execute(update(WeChatMediaCheck).where(WeChatMediaCheck.trace_id == trace)
                           .values(status="done", suggest=suggest, completed_at=utcnow()))
    db.session.commit()
    caplog.set_level("INFO", logger="moderation.intake")
    assert intake.sweep_media_results() == 2
    assert intake.sweep_media_results() == 0
    assert _refused_events(caplog) == [(risky.id, "rejected", "media")]
    risky, review = _reload(risky.id), _reload(review.id)
    assert risky.status == "rejected" and risky.decision_reason == "content_risky"
    assert _timeline(risky.id)[-1] == ("rejected", intake.NOTE_REJECTED_MEDIA)
    assert review.status == "pending_review" and review.flagged
    assert "media_review" in {f["code"] for f in review.signals["flags"]}


def test_a_tip_checked_meanwhile_already_sees_the_photos_of_one_being_checked(intake_app, scene_jpegs, resaved_half,
                                                                               wechat_sandbox, monkeypatch):
    from moderation import checks

    first = _tip(make_resident(), scene_jpegs[:1])
    second = _tip(make_resident(), [resaved_half], at=(first.lat + 0.05, first.lng))
    real = checks.check_text
    outcomes = []

    def check_the_other_meanwhile(t, openid):
        if t.id == first.id:
            outcomes.append(intake.process_tip(second.id))
        return real(t, openid)

    monkeypatch.setattr(checks, "check_text", check_the_other_meanwhile)
    assert intake.process_tip(first.id) == "pending_review"
    assert outcomes == ["pending_review"]
    near = [c for c in _reload(second.id).candidates if c["kind"] == "photo"]
    assert near and near[0]["tip_id"] == first.id and near[0]["match"] == "near"


def test_reporter_signals_are_soft_flags(intake_app, wechat_sandbox):
    from tests.media.corpus import encode, gps_exif, street_photo

    resident = make_resident(no_reward=True, no_reward_reason="grid_worker")
    intake_app.config["MODERATION_MANY_TIPS_TODAY"] = 1
    old_far = encode(street_photo(4242, (640, 480)), "JPEG", quality=85, exif=gps_exif())  # 2024, ~10 km south
    earlier = _tip(resident, [], at=point_in_grid())
    tip = _tip(resident, [old_far], at=point_in_grid())
    intake.process_tip(earlier.id)
    assert intake.process_tip(tip.id) == "pending_review"  # soft signals never decide a tip
    tip = _reload(tip.id)
    codes = {f["code"] for f in tip.signals["flags"]}
    assert {"exif_time_far", "exif_gps_far", "no_reward_list", "many_tips_today"} <= codes
    reporter = tip.signals["reporter"]
    assert reporter["tips_today"] == 2 and reporter["no_reward_reason"] == "grid_worker"
    assert reporter["photos"][0]["exif_distance_m"] > 1000


def test_display_copies_still_pending_are_made_before_wechat_fetches_them(intake_app, scene_jpegs, wechat_sandbox):
    """The photo.display job normally runs before the tip's intake (same queue, queued first); when
    a redelivery reorders them, the intake makes the copy itself rather than send WeChat a 404."""
    from app.media.models import PendingDisplayCopy
    from app.media.photos import pending_display_ids
    from app.media.storage import get_storage

    tip = _tip(make_resident(), scene_jpegs[:1])
    photo = tip.photos[0]
    get_storage().delete(photo.display_key)
    db.session.add(PendingDisplayCopy(photo_id=photo.id))
    db.session.commit()

    assert intake.process_tip(tip.id) == "pending_review"
    assert get_storage().exists(photo.display_key)
    assert pending_display_ids([photo.id]) == set()
