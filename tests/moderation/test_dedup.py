"""The near-duplicate index: exact (no false negatives, no false positives) against a brute-force
scan on the engine under test; and real photos: a re-saved, halved copy is caught, others are not."""
import random

import pytest
from PIL import Image

from app.extensions import db as _db
from app.media.hashing import hamming, to_signed64
from app.models.photo import Photo
from moderation import dedup
from tests.media.corpus import encode, street_photo


def _bare_photo(phash: int) -> Photo:
    photo = Photo(sha256=f"{random.getrandbits(256):064x}", phash=phash, width=1, height=1, mime="image/jpeg",
                  size_bytes=1, original_key="k", display_key="k", thumb_key="k")
    _db.session.add(photo)
    return photo


def _flip(value: int, bits: int, rng: random.Random) -> int:
    for b in rng.sample(range(64), bits):
        value ^= 1 << b
    return to_signed64(value)


def test_probe_keys_cover_every_hash_within_the_distance():
    rng = random.Random(7)
    for distance in (0, 1, 3, 8, 9, 12):
        query = to_signed64(rng.getrandbits(64))
        probes = set(dedup.probe_keys(query, distance))
        for _ in range(300):
            other = _flip(query, rng.randint(0, distance), rng)
            assert probes & set(dedup.band_keys(other)), (distance, hex(other))
    assert dedup.band_radii(8) == (2, 1, 1, 1)
    assert len(dedup.probe_keys(0, 8)) == (1 + 17 + 136) + 18 + 16 + 16


def test_negative_distance_is_refused():
    with pytest.raises(ValueError):
        dedup.probe_keys(0, -1)


def test_lookup_matches_a_brute_force_scan(db):
    rng = random.Random(42)
    centres = [to_signed64(rng.getrandbits(64)) for _ in range(40)]
    hashes = list(centres)
    for centre in centres:  # neighbours at every distance from 0 to 12 bits
        hashes += [_flip(centre, bits, rng) for bits in range(0, 13)]
    hashes += [to_signed64(rng.getrandbits(64)) for _ in range(300)]
    hashes += [-(2 ** 63), 2 ** 63 - 1, 0, -1]  # the edges of the signed range
    photos = [_bare_photo(h) for h in hashes]
    _db.session.flush()
    for photo in photos:
        dedup.index_photo_hash(photo.id, photo.phash)
        dedup.index_photo_hash(photo.id, photo.phash)  # idempotent
    _db.session.commit()
    queries = centres[:15] + [_flip(c, 4, rng) for c in centres[15:30]] + [-(2 ** 63), -1]
    for distance in (0, 4, 8, 10):
        for query in queries:
            expected = sorted((p.id, hamming(query, p.phash)) for p in photos if hamming(query, p.phash) <= distance)
            got = sorted(dedup.find_near_hashes(query, distance))
            assert got == expected, (distance, query)


def test_lookup_excludes_and_unindexes(db):
    photo, other = _bare_photo(12345), _bare_photo(12345 ^ 0b111)
    _db.session.flush()
    dedup.index_photo_hash(photo.id, photo.phash)
    dedup.index_photo_hash(other.id, other.phash)
    assert dedup.find_near_hashes(12345) == [(photo.id, 0), (other.id, 3)]
    assert dedup.find_near_hashes(12345, exclude_photo_ids=[photo.id]) == [(other.id, 3)]
    dedup.unindex_photo(other.id)
    assert dedup.find_near_hashes(12345) == [(photo.id, 0)]


def test_resaved_half_size_copy_is_caught_and_twenty_other_photos_are_not():
    from app.media.processing import process_photo

    original_image = street_photo(1000)
    original = process_photo(encode(original_image, "JPEG", quality=90)).phash
    half = original_image.resize((original_image.width // 2, original_image.height // 2), Image.Resampling.BILINEAR)
    copy = process_photo(encode(half, "JPEG", quality=40)).phash
    assert hamming(original, copy) <= dedup.DEFAULT_DISTANCE
    others = [process_photo(encode(street_photo(2000 + i), "JPEG", quality=85)).phash for i in range(20)]
    assert all(hamming(original, h) > dedup.DEFAULT_DISTANCE for h in others)
