import itertools
import statistics

import imagehash
import pytest
from PIL import Image

from app.media.hashing import hamming, phash64, to_signed64, to_unsigned64
from app.media.processing import process_photo
from tests.media.corpus import encode, street_photo

# The dedup threshold moderation should use: at most this many differing bits is "the same photo".
NEAR_DUPLICATE_MAX = 10


@pytest.fixture(scope="module")
def scenes():
    photos = [street_photo(seed) for seed in range(20)]
    return [(photo, process_photo(encode(photo, "JPEG", quality=90)).phash) for photo in photos]


def test_matches_imagehash_phash_bit_for_bit():
    for seed in range(5):
        image = street_photo(seed, (480, 360))
        assert to_unsigned64(phash64(image)) == int(str(imagehash.phash(image)), 16)


def test_signed_64_bit_round_trip_fits_bigint():
    assert to_signed64(2**64 - 1) == -1
    assert to_signed64(2**63) == -(2**63)
    assert to_signed64(2**63 - 1) == 2**63 - 1
    assert to_unsigned64(-1) == 2**64 - 1
    value = phash64(street_photo(3, (320, 240)))
    assert -(2**63) <= value < 2**63


def test_hamming_counts_bits_on_signed_values():
    assert hamming(0, 0) == 0
    assert hamming(-1, 0) == 64
    assert hamming(to_signed64(0b1011), 0b0001) == 2
    assert hamming(-(2**63), 0) == 1


def test_recompressed_at_quality_40_and_halved_stays_within_threshold(scenes):
    distances = []
    for photo, original in scenes:
        half = photo.resize((photo.width // 2, photo.height // 2), Image.Resampling.BILINEAR)
        distances.append(hamming(original, process_photo(encode(half, "JPEG", quality=40)).phash))
    assert max(distances) <= 4, distances


def test_slightly_cropped_copy_stays_within_threshold(scenes):
    distances = []
    for photo, original in scenes:
        w, h = photo.size
        cropped = photo.crop((int(w * 0.02), int(h * 0.02), int(w * 0.98), int(h * 0.98)))
        distances.append(hamming(original, process_photo(encode(cropped, "JPEG", quality=85)).phash))
    assert max(distances) <= NEAR_DUPLICATE_MAX, distances
    assert statistics.median(distances) <= 6, distances


def test_rotated_by_exif_and_by_pixels_hash_the_same(scenes):
    photo, original = scenes[0]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, displayed upright
    sideways = photo.transpose(Image.Transpose.ROTATE_90)
    assert hamming(original, process_photo(encode(sideways, "JPEG", quality=90, exif=exif)).phash) <= 4


def test_different_photos_of_similar_scenes_stay_far(scenes):
    distances = [hamming(a, b) for (_, a), (_, b) in itertools.combinations(scenes, 2)]
    assert min(distances) > NEAR_DUPLICATE_MAX + 2, sorted(distances)[:5]
    assert statistics.mean(distances) >= 26
