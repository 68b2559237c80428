"""Demo tips in every state, made the way real ones are: through the HTTP APIs, the jobs and the sandbox.

Residents log in through the WeChat sandbox, upload generated photos and submit tips; the intake
job checks them; the demo moderator decides through the staff API; departments move their tickets
through the department and staff APIs; red packets go out to the sandbox, some are opened, some
expire and are refunded. Nothing here writes a row the product would not have written itself.
Runs once: a second `flask demo` finds the demo residents and keeps the data as it is.
"""
from __future__ import annotations

import dataclasses
import io
import random
import uuid

import requests
from flask import current_app
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from app.extensions import db
from app.models.resident import Resident

DEMO_OPENID_PREFIX = "demo-resident-"
STAFF_PASSWORD = "renrenpai-demo"

# Points in several towns (WGS-84), each a street corner or a block of flats, with the address a
# resident's phone would fill in (wx.chooseLocation gives one).
PLACES = [
    (23.0170, 113.7490, "东莞市南城街道鸿福路106号"), (23.0148, 113.7362, "东莞市南城街道宏图路38号"),
    (23.0431, 113.7496, "东莞市莞城街道可园北路12号"), (23.0498, 113.7203, "东莞市万江街道万道路201号"),
    (23.1102, 113.8712, "东莞市石龙镇中山东路56号"), (22.8204, 113.6741, "东莞市虎门镇连升中路88号"),
    (22.8105, 113.8021, "东莞市长安镇长青南路15号"), (22.9812, 114.0003, "东莞市常平镇常平大道320号"),
    (22.9206, 113.8843, "东莞市松山湖新竹路4号"), (22.9448, 113.6702, "东莞市厚街镇康乐南路27号"),
    (22.9915, 113.8824, "东莞市寮步镇香市路63号"), (22.9408, 113.9411, "东莞市大朗镇美景中路9号"),
    (23.0951, 113.8005, "东莞市石碣镇崇焕中路45号"), (23.0712, 113.8702, "东莞市茶山镇茶山大道112号"),
    (22.8012, 114.0713, "东莞市塘厦镇花园街18号"), (22.7421, 114.1412, "东莞市凤岗镇凤深大道76号"),
]


@dataclasses.dataclass
class Story:
    """One demo tip and what happens to it."""
    category: str
    text: str
    fate: str                  # approve | reject | need_info | duplicate | pending | withdraw | risky | flagged
    ticket: str | None = None  # how far the approved tip's ticket gets
    severity: int = 2
    reason: str | None = None
    packet: str | None = None  # claim | expire | wait (for approved tips)


STORIES = [
    Story("ebike_indoor_charging", "楼道里停着三辆电动车在充电，电线从三楼窗户拉下来", "approve", "closed", 2, packet="claim"),
    Story("fire_exit_blocked", "商场B1安全出口被货物堵死，门还上了锁", "approve", "verified", 3, packet="claim"),
    Story("lpg_illegal", "小巷里有人用面包车卸液化气瓶，没有任何标识，怀疑是黑气", "approve", "resolved", 3, packet="expire"),
    Story("rental_unsafe", "出租屋窗户全部焊死防盗网，没有逃生口", "approve", "handling", 2, packet="claim"),
    Story("small_venue_residence", "五金店楼上阁楼住了人，楼下堆满油漆稀料", "approve", "accepted", 3, packet="expire"),
    Story("gas_unsafe_use", "大排档用的燃气软管老化开裂，灶台旁边就是液化气瓶", "approve", "dispatched", 1, packet="wait"),
    Story("manhole_missing", "人行道上的井盖不见了，晚上很危险", "approve", "closed", 2, packet="claim"),
    Story("fire_lane_occupied", "小区消防车通道被私家车长期占用", "approve", "returned", 1, packet="wait"),
    Story("billboard_danger", "台风过后招牌一边脱落，悬在人行道上方", "approve", "reopened", 2, packet="expire"),
    Story("hazchem_illegal", "厂房后面堆放着没有标签的化工桶，有刺鼻气味", "approve", "dispatched", 3, packet="wait"),
    Story("waterlogging", "下穿隧道积水过膝，车辆还在往里开", "approve", "handling", 2, packet="claim"),
    Story("food_safety", "无证小作坊在路边加工凉菜，苍蝇很多", "reject", reason="not_a_hazard"),
    Story("streetlight_out", "这张照片是网上找的", "reject", reason="false_report"),
    Story("road_damage", "路上有个坑", "need_info", reason="need_location"),
    Story("special_equipment", "电梯经常困人", "need_info", reason="need_clearer_photo"),
    Story("ebike_indoor_charging", "同一处楼道电动车充电，邻居也拍到了", "duplicate"),
    Story("fire_equipment_missing", "宿舍楼灭火器全部过期，消防栓没有水带", "pending", severity=2),
    Story("rental_overcrowded", "一套两居室住了十几个人，上下铺堆到门口", "pending"),
    Story("pollution_discharge", "夜里有工厂往河里偷排黑水", "pending"),
    Story("construction_site_unsafe", "工地塔吊下面没有围挡，行人直接穿过", "pending"),
    Story("public_order", "【待审】出租屋里常有人聚集打牌到深夜", "flagged"),
    Story("waste_dumping", "【违规】这是一条违规测试内容", "risky"),
    Story("school_surroundings", "学校门口的流动摊贩占道，孩子放学很挤", "withdraw"),
    Story("slope_collapse", "山边护坡出现裂缝，下雨后有碎石滚落", "withdraw"),
]


def make_demo_photo(seed: int, size=(1200, 900)) -> bytes:
    """A photo-like JPEG (a gradient with shapes), different for every seed."""
    rng = random.Random(seed)
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(0, size[1], 8):
        shade = int(255 * y / size[1])
        draw.rectangle([0, y, size[0], y + 8], fill=(shade, rng.randint(60, 120), 255 - shade))
    for _ in range(25):
        x, y = rng.randint(0, size[0]), rng.randint(0, size[1])
        w, h = rng.randint(60, 400), rng.randint(60, 300)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=colour)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def recompress_photo(jpeg: bytes) -> bytes:
    """What a second phone does to a forwarded photo: smaller, lower quality."""
    image = Image.open(io.BytesIO(jpeg))
    image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=60)
    return out.getvalue()


class DemoClient:
    """HTTP calls into the app (its test client) and the sandbox, failing loudly on surprises."""

    def __init__(self, app):
        self.app = app
        self.http = app.test_client()
        self.sandbox = app.config["WECHAT_API_BASE"].rstrip("/") + "/__sandbox__"

    def call(self, method, path, token=None, expect=(200, 201), api_key=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if api_key:
            headers["X-Api-Key"] = api_key
        reply = self.http.open(path, method=method, headers=headers, **kwargs)
        if reply.status_code not in expect:
            raise RuntimeError(f"demo data: {method} {path} answered {reply.status_code}: {reply.get_data(as_text=True)[:300]}")
        return reply.get_json(silent=True)

    def sandbox_call(self, method, path, **kwargs):
        reply = requests.request(method, self.sandbox + path, timeout=10, **kwargs)
        reply.raise_for_status()
        return reply.json()

    def login_resident(self, openid: str) -> str:
        return self.call("POST", "/api/mp/v1/auth/login", json={"code": f"sbx:{openid}"})["token"]

    def login_staff(self, username: str) -> str:
        return self.call("POST", "/api/staff/v1/auth/login",
                         json={"username": username, "password": STAFF_PASSWORD})["token"]

    def submit(self, token, story: Story, place, photos: list[bytes]) -> int:
        photo_ids = [self.call("POST", "/api/mp/v1/photos", token=token, expect=(201,),
                               data={"file": (io.BytesIO(p), "photo.jpg", "image/jpeg")},
                               content_type="multipart/form-data")["id"] for p in photos]
        body = {"category": story.category, "description": story.text, "photo_ids": photo_ids,
                "location": {"lat": place[0], "lng": place[1], "coord": "wgs84", "address": place[2]}}
        return self.call("POST", "/api/mp/v1/tips", token=token, json=body, expect=(201,),
                         headers={"Idempotency-Key": str(uuid.uuid4())})["id"]


def run_background_work(app, queues=("intake", "payouts", "notify", "webhooks")) -> None:
    """What the worker would do next: relay the outbox, run the queues, run the periodic sweeps."""
    from app.outbox import relay_due
    from app.queue import run_burst

    for _ in range(3):
        relay_due(limit=1000)
        run_burst(app, queues)


def sweep_payouts_now() -> None:
    """The reward sweeper's next rounds, now: it asks WeChat about packets it would check in 20 min."""
    from datetime import timedelta

    from app.models.base import utcnow
    from rewards.sweeper import sweep_payouts

    sweep_payouts(now=utcnow() + timedelta(minutes=20))
    db.session.commit()


def seed_demo_tips() -> str:
    app = current_app._get_current_object()
    existing = db.session.scalar(select(func.count()).select_from(Resident)
                                 .where(Resident.openid.like(DEMO_OPENID_PREFIX + "%")))
    if existing:
        return f"already loaded ({existing} demo residents); kept as they are"
    run = DemoRun(DemoClient(app))
    run.fund_budget(2_000_000)

    # 1. Decided tips; their packets go out, some are opened, the rest expire after 24 h.
    first = [s for s in STORIES if s.fate in ("approve", "reject", "need_info", "duplicate", "risky")
             and s.packet != "wait"]
    approved = run.decide_all(run.submit_all(first))
    run_background_work(app, ("payouts",))
    run.claim_packets([t for t in approved if run.tips[t].packet == "claim"])
    run.demo.sandbox_call("POST", "/clock", json={"advance_hours": 25})
    sweep_payouts_now()

    # 2. Approved after the clock moved on: their packets wait to be opened.
    approved.update(run.decide_all(run.submit_all([s for s in STORIES if s.packet == "wait"])))
    run_background_work(app, ("payouts",))
    run.move_tickets(approved)

    # 3. Left for the moderators to try, one flagged by content security, and two withdrawn.
    for tip_id, story in run.submit_all([s for s in STORIES if s.fate in ("pending", "flagged", "withdraw")]).items():
        if story.fate == "withdraw":
            run.demo.call("POST", f"/api/mp/v1/tips/{tip_id}/withdraw", token=run.owner[tip_id])
    run_background_work(app, ("notify", "webhooks"))
    return f"{len(run.tips)} tips from {len(run.residents)} residents"


class DemoRun:
    """The demo residents, their tips and the photos' seeds (a forwarded copy needs the original)."""

    def __init__(self, demo: DemoClient):
        self.demo = demo
        self.residents = [demo.login_resident(f"{DEMO_OPENID_PREFIX}{n:02d}") for n in range(1, 13)]
        self.moderator = demo.login_staff("moderator")
        self.supervisor = demo.login_staff("supervisor")
        self.tips: dict[int, Story] = {}
        self.owner: dict[int, str] = {}
        self.seed: dict[int, int] = {}

    def submit_all(self, stories) -> dict[int, Story]:
        """Submit the stories (a duplicate forwards an earlier photo from close by); run the intake."""
        batch: dict[int, Story] = {}
        for story in stories:
            n = len(self.tips)
            token = self.residents[n % len(self.residents)]
            seed = 1000 + n
            if story.fate == "duplicate":
                original = next(t for t, s in self.tips.items() if s.category == story.category and s.fate == "approve")
                place = (PLACES[0][0] + 0.0001, PLACES[0][1] + 0.0001, PLACES[0][2])
                photos = [recompress_photo(make_demo_photo(self.seed[original]))]
            else:
                place, photos = PLACES[n % len(PLACES)], [make_demo_photo(seed), make_demo_photo(seed + 5000)]
            tip_id = self.demo.submit(token, story, place, photos)
            self.tips[tip_id] = batch[tip_id] = story
            self.owner[tip_id], self.seed[tip_id] = token, seed
        run_background_work(self.demo.app, ("intake",))
        return batch

    def decide_all(self, batch: dict[int, Story]) -> dict[int, dict]:
        """The moderator works through the queue; returns {tip_id: decision answer} of approved tips."""
        approved = {}
        while claimed := self.demo.call("POST", "/api/staff/v1/review/claim", token=self.moderator, expect=(200, 204)):
            tip_id = claimed["id"]
            story = batch[tip_id]
            if story.fate == "duplicate":
                original = next(c["tip_id"] for c in claimed["candidates"] if c.get("tip_id"))
                body = {"action": "duplicate", "duplicate_of": {"tip_id": original}}
            elif story.fate == "approve":
                body = {"action": "approve", "category": story.category, "severity": story.severity}
            else:
                body = {"action": story.fate, "reason": story.reason}
            answer = self.demo.call("POST", f"/api/staff/v1/tips/{tip_id}/decision", token=self.moderator, json=body)
            if story.fate == "approve":
                approved[tip_id] = answer
        return approved

    def fund_budget(self, amount_fen: int) -> None:
        """This month's red-packet budget, topped up under dual control: one asks, another approves."""
        from rewards.clock import period_of

        period = period_of()
        asked = self.demo.call("POST", "/api/staff/v1/finance/requests", token=self.demo.login_staff("finance"),
                               json={"kind": "topup", "payload": {"period": period, "amount_fen": amount_fen},
                                     "note": "演示：本月红包预算"})
        self.demo.call("POST", f"/api/staff/v1/finance/requests/{asked['id']}/decision",
                       token=self.demo.login_staff("finance2"), json={"approve": True, "note": "同意"})

    def claim_packets(self, tip_ids) -> None:
        finance = self.demo.login_staff("finance")
        payouts = self.demo.call("GET", "/api/staff/v1/finance/payouts", token=finance)["items"]
        billnos = {p["tip_id"]: p["mch_billno"] for p in payouts}
        channels = {p["tip_id"]: p.get("channel") for p in payouts}
        for tip_id in tip_ids:  # the resident opens the packet, or confirms the 商家转账 (PAYOUT_CHANNEL=transfer)
            if channels[tip_id] == "transfer":
                self.demo.sandbox_call("POST", f"/transfers/{billnos[tip_id]}/confirm")
            else:
                self.demo.sandbox_call("POST", f"/redpacks/{billnos[tip_id]}/claim")

    def move_tickets(self, approved: dict[int, dict]) -> None:
        from app.hazards.keys import create_department_key

        keys: dict[str, str] = {}
        moved: set[int] = set()
        for tip_id, answer in approved.items():
            hazard = answer["hazard"]
            if hazard["id"] in moved:
                continue
            moved.add(hazard["id"])
            department = hazard["department"]["code"]
            if department not in keys:
                keys[department], _ = create_department_key(department, label="演示数据")
                db.session.commit()
            for who, step in TICKET_STEPS[self.tips[tip_id].ticket]:
                note = NOTES.get(step, "")
                if who == "dept":
                    body = {"resolve": {"note": note, "photo_ids": []}, "return": {"reason": note}}.get(step, {})
                    self.demo.call("POST", f"/api/dept/v1/tickets/{hazard['id']}/{step}", api_key=keys[department],
                                   json=body)
                else:
                    self.demo.call("POST", f"/api/staff/v1/hazards/{hazard['id']}/transition", token=self.supervisor,
                                   json={"to": step, "note": note})


# The department's and the supervisor's steps that bring a new ticket (dispatched) to each stage.
TICKET_STEPS = {
    "dispatched": [],
    "accepted": [("dept", "ack")],
    "handling": [("dept", "ack"), ("dept", "start")],
    "resolved": [("dept", "ack"), ("dept", "resolve")],
    "verified": [("dept", "ack"), ("dept", "resolve"), ("supervisor", "verified")],
    "closed": [("dept", "ack"), ("dept", "resolve"), ("supervisor", "verified"), ("supervisor", "closed")],
    "returned": [("dept", "return")],
    "reopened": [("dept", "ack"), ("dept", "resolve"), ("supervisor", "reopened")],
}
NOTES = {"resolve": "已现场处置并拍照留档", "return": "该地址不属于本部门辖区，请重新分拨",
         "verified": "现场复核已整改", "closed": "结案", "reopened": "复核发现仍未整改，请继续处置"}
