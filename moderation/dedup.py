"""Exact and near-duplicate photo lookup at city scale.

Near duplicates: every stored photo whose 64-bit perceptual hash is within Hamming distance d of
the query, found without scanning them all (multi-index hashing). The hash is cut into m bands; if
two hashes differ in at most d bits, then by the pigeonhole principle at least one band differs in
at most r = floor(d / m) bits. So the lookup enumerates, for each band, every value within r bits
of the query's band ("probes"), fetches the rows whose band equals a probe through an ordinary
B-tree index, and checks the full Hamming distance of those few candidates exactly. No false
negatives by construction, on any engine.

Layout: 3 bands of 22/21/21 bits. At d = 8 → r = 2: 254 + 232 + 232 = 718 probes, and with a
million photos each probe matches about one row in 2-4 million (uniform hashes), so a lookup
touches a few hundred index entries. Four 16-bit bands would need only 548 probes but each probe
matches ~15 rows per million photos (≈ 8,000 candidates per lookup).
"""
from __future__ import annotations

import functools
import itertools

from sqlalchemy import Integer, any_, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import ARRAY

from app.extensions import db
from app.media.hashing import hamming, to_unsigned64
from moderation.models import PhotoHashBand

BAND_WIDTHS = (22, 21, 21)
BAND_SHIFT = 24  # band_key = band_no << BAND_SHIFT | value; every width is below 24 bits
DEFAULT_DISTANCE = 8


def _offsets():
    offsets, start = [], 0
    for width in BAND_WIDTHS:
        offsets.append((start, width))
        start += width
    return tuple(offsets)


BANDS = _offsets()


def band_keys(phash: int) -> list[int]:
    """The m index keys of one hash (signed or unsigned 64-bit)."""
    value = to_unsigned64(phash)
    return [(no << BAND_SHIFT) | ((value >> start) & ((1 << width) - 1)) for no, (start, width) in enumerate(BANDS)]


@functools.lru_cache(maxsize=16)
def _flip_masks(width: int, radius: int) -> tuple[int, ...]:
    """Every mask of at most `radius` set bits within `width` bits (0 first)."""
    masks = [0]
    for k in range(1, radius + 1):
        for bits in itertools.combinations(range(width), k):
            masks.append(sum(1 << b for b in bits))
    return tuple(masks)


def probe_keys(phash: int, distance: int = DEFAULT_DISTANCE) -> list[int]:
    """Every band key a hash within `distance` must share at least one of."""
    if distance < 0:
        raise ValueError("distance must be >= 0")
    radius = distance // len(BANDS)
    keys = []
    for key, (_start, width) in zip(band_keys(phash), BANDS):
        base = key & ((1 << width) - 1)
        prefix = key & ~((1 << BAND_SHIFT) - 1)
        keys.extend(prefix | (base ^ mask) for mask in _flip_masks(width, radius))
    return keys


def index_photo_hash(photo_id: int, phash: int) -> None:
    """Add a photo to the index (idempotent; flush only, the caller commits)."""
    rows = [{"photo_id": photo_id, "band_key": key, "phash": phash} for key in band_keys(phash)]
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(PhotoHashBand)
    db.session.execute(insert.values(rows).on_conflict_do_nothing())


def unindex_photo(photo_id: int) -> None:
    db.session.execute(delete(PhotoHashBand).where(PhotoHashBand.photo_id == photo_id))


def find_near_hashes(phash: int, distance: int = DEFAULT_DISTANCE, exclude_photo_ids=()) -> list[tuple[int, int]]:
    """[(photo_id, hamming distance)] of every indexed photo within `distance`, nearest first."""
    keys = probe_keys(phash, distance)
    query = select(PhotoHashBand.photo_id, PhotoHashBand.phash).distinct()
    if db.session.get_bind().dialect.name == "postgresql":
        # one array parameter instead of hundreds of bound values: cheaper to plan and send
        query = query.where(PhotoHashBand.band_key == any_(bindparam("keys", keys, type_=ARRAY(Integer))))
    else:
        query = query.where(PhotoHashBand.band_key.in_(keys))
    excluded = set(exclude_photo_ids)
    found = []
    for photo_id, other in db.session.execute(query):
        if photo_id in excluded:
            continue
        d = hamming(phash, other)
        if d <= distance:
            found.append((photo_id, d))
    found.sort(key=lambda item: (item[1], item[0]))
    return found
