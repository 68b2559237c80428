"""The hazard catalogue as data: app/hazards/catalogue.json → departments and categories.

`load_catalogue()` validates the whole file first, then upserts by code: running it twice changes
nothing, and a department or category that left the file is marked inactive (tips and tickets still
point at it), never deleted. Edit the file and run `flask --app wsgi init` to apply a change.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import select

from app.extensions import db
from app.hazards.models import CATEGORY_KINDS, SEVERITIES, SLA_STEPS, Category, Department

DEFAULT_PATH = Path(__file__).with_name("catalogue.json")
REWARD_MIN_FEN, REWARD_MAX_FEN = 100, 20000  # WeChat red packets: ¥1–200 each
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


class CatalogueError(ValueError):
    """The catalogue file cannot be applied; the message says where and why."""


def load_catalogue(path: str | Path | None = None, *, commit: bool = True) -> dict:
    """Apply the catalogue file; returns counts per table: created, updated, unchanged, deactivated."""
    doc = read_catalogue(path)
    summary = {"departments": _upsert_departments(doc["departments"])}
    summary["categories"] = _upsert_categories(doc["categories"])
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return summary


def read_catalogue(path: str | Path | None = None) -> dict:
    """Parse and validate the file; returns departments and fully resolved categories."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"catalogue file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise CatalogueError(f"{path}: expected a JSON object at the top level")
    groups = raw.get("groups") or []
    defaults = raw.get("defaults") or {}
    departments = [_check_department(i, d) for i, d in enumerate(_list(raw, "departments"))]
    _check_unique("department", [d["code"] for d in departments])
    dept_codes = {d["code"] for d in departments}
    categories = [_resolve_category(i, c, groups, dept_codes, defaults)
                  for i, c in enumerate(_list(raw, "categories"))]
    _check_unique("category", [c["code"] for c in categories])
    return {"departments": departments, "categories": categories}


def get_category(code: str, *, active_only: bool = False) -> Category | None:
    query = select(Category).where(Category.code == code)
    if active_only:
        query = query.where(Category.active.is_(True))
    return db.session.scalars(query).first()


def list_categories(active: bool | None = True) -> list[Category]:
    """Categories in catalogue order; active=None lists every one."""
    query = select(Category).order_by(Category.position, Category.id)
    if active is not None:
        query = query.where(Category.active.is_(active))
    return list(db.session.scalars(query))


def get_department(code: str) -> Department | None:
    return db.session.scalars(select(Department).where(Department.code == code)).first()


def list_departments(active: bool | None = True) -> list[Department]:
    query = select(Department).order_by(Department.id)
    if active is not None:
        query = query.where(Department.active.is_(active))
    return list(db.session.scalars(query))


# --- validation -------------------------------------------------------------------------------

def _list(raw: dict, key: str) -> list:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise CatalogueError(f"catalogue: '{key}' must be a non-empty list")
    return value


def _check_unique(what: str, codes: list[str]) -> None:
    seen = set()
    for code in codes:
        if code in seen:
            raise CatalogueError(f"{what} code '{code}' appears twice")
        seen.add(code)


def _check_code(where: str, code) -> str:
    if not isinstance(code, str) or not _CODE.match(code):
        raise CatalogueError(f"{where}: code {code!r} must be lower_snake_case ascii (2–48 chars)")
    return code


def _check_name(where: str, name, limit: int = 64) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > limit:
        raise CatalogueError(f"{where}: name must be a non-empty string of at most {limit} characters")
    return name.strip()


def _check_department(index: int, entry) -> dict:
    where = f"departments[{index}]"
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: expected an object")
    code = _check_code(where, entry.get("code"))
    return {"code": code, "name": _check_name(f"{where} ({code})", entry.get("name"))}


def _number(where: str, value) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise CatalogueError(f"{where}: expected a positive number, got {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def _resolve_category(index: int, entry, groups: list, dept_codes: set, defaults: dict) -> dict:
    where = f"categories[{index}]"
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: expected an object")
    code = _check_code(where, entry.get("code"))
    where = f"category '{code}'"
    group = entry.get("group")
    if group not in groups:
        raise CatalogueError(f"{where}: group {group!r} is not one of the listed groups {groups}")
    department = entry.get("department")
    if department not in dept_codes:
        raise CatalogueError(f"{where}: department {department!r} is not in the departments list")
    kind = entry.get("kind")
    if kind not in CATEGORY_KINDS:
        raise CatalogueError(f"{where}: kind must be one of {CATEGORY_KINDS}, got {kind!r}")
    radius = entry.get("dedup_radius_m", (defaults.get("dedup_radius_m") or {}).get(kind))
    sla = {**(defaults.get("sla_hours") or {}), **(entry.get("sla_hours") or {})}
    missing = [step for step in SLA_STEPS if step not in sla]
    if missing or set(sla) - set(SLA_STEPS):
        raise CatalogueError(f"{where}: sla_hours needs exactly the steps {SLA_STEPS} (missing {missing})")
    weight = entry.get("severity_weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 10:
        raise CatalogueError(f"{where}: severity_weight must be an integer 1–10")
    return {
        "code": code,
        "name": _check_name(where, entry.get("name")),
        "group": group,
        "department": department,
        "kind": kind,
        "dedup_radius_m": _number(f"{where} dedup_radius_m", radius),
        "severity_weight": weight,
        "sla_hours": {step: _number(f"{where} sla_hours.{step}", sla[step]) for step in SLA_STEPS},
        "reward_fen": _check_rewards(where, entry.get("reward_fen")),
        "position": index,
    }


def _check_rewards(where: str, rewards) -> dict:
    if not isinstance(rewards, dict) or set(rewards) != {str(s) for s in SEVERITIES}:
        raise CatalogueError(f"{where}: reward_fen needs exactly the severities 1, 2, 3")
    table = {}
    for severity in SEVERITIES:
        fen = rewards[str(severity)]
        if isinstance(fen, bool) or not isinstance(fen, int) or not REWARD_MIN_FEN <= fen <= REWARD_MAX_FEN:
            raise CatalogueError(f"{where}: reward_fen.{severity} must be integer fen within "
                                 f"{REWARD_MIN_FEN}–{REWARD_MAX_FEN} (¥1–200), got {fen!r}")
        table[str(severity)] = fen
    if not table["1"] <= table["2"] <= table["3"]:
        raise CatalogueError(f"{where}: reward_fen must not decrease with severity")
    return table


# --- upsert -----------------------------------------------------------------------------------

def _apply(row, values: dict) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


def _upsert(model, entries: list[dict], values_of) -> dict:
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deactivated": 0}
    existing = {row.code: row for row in db.session.scalars(select(model))}
    for entry in entries:
        values = {**values_of(entry), "active": True}
        row = existing.pop(entry["code"], None)
        if row is None:
            db.session.add(model(code=entry["code"], **values))
            counts["created"] += 1
        elif _apply(row, values):
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    for row in existing.values():  # left the file: keep the row, stop offering it
        if row.active:
            row.active = False
            counts["deactivated"] += 1
    db.session.flush()
    return counts


def _upsert_departments(entries: list[dict]) -> dict:
    return _upsert(Department, entries, lambda e: {"name": e["name"]})


def _upsert_categories(entries: list[dict]) -> dict:
    dept_ids = {d.code: d.id for d in db.session.scalars(select(Department))}

    def values_of(entry):
        values = {k: v for k, v in entry.items() if k not in ("code", "department")}
        return {**values, "department_id": dept_ids[entry["department"]]}

    return _upsert(Category, entries, values_of)
