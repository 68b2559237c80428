"""A bounded EXIF reader for the three facts we keep: when, where, which way up.

Pillow's EXIF parser reads every tag of every IFD (and warns on each malformed one); a hostile
64 KB block can hold thousands of entries. This reader visits IFD0, the Exif IFD and the GPS IFD
only, looks at a fixed handful of tags, bounds every read by the block, and never raises.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

# Phones in China rarely write OffsetTimeOriginal; a time without an offset is local time there.
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
MAX_ENTRIES = 512  # per IFD; real cameras write well under 100

_ORIENTATION, _DATETIME, _EXIF_IFD, _GPS_IFD = 0x0112, 0x0132, 0x8769, 0x8825
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED = 0x9003, 0x9004
_OFFSET_TIME_ORIGINAL, _OFFSET_TIME_DIGITIZED, _OFFSET_TIME = 0x9011, 0x9012, 0x9010
_GPS_LAT_REF, _GPS_LAT, _GPS_LNG_REF, _GPS_LNG = 1, 2, 3, 4
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


@dataclass(frozen=True)
class PhotoExif:
    taken_at: datetime | None = None  # aware, UTC
    gps: tuple[float, float] | None = None  # (lat, lng), WGS-84 as EXIF specifies
    orientation: int = 1  # 1..8, as in EXIF; already applied to every copy we make


def read_exif(block: bytes | None, *, now: datetime | None = None) -> PhotoExif:
    """Parse a TIFF-structured EXIF block (no "Exif\\0\\0" prefix). Anything unreadable is None."""
    if not block or len(block) < 8:
        return PhotoExif()
    try:
        reader = _Reader(block)
        ifd0 = reader.ifd(reader.first_ifd_offset())
        exif_ifd = reader.ifd(reader.long(ifd0.get(_EXIF_IFD)))
        gps_ifd = reader.ifd(reader.long(ifd0.get(_GPS_IFD)))
        return PhotoExif(
            taken_at=_taken_at(reader, ifd0, exif_ifd, now or datetime.now(timezone.utc)),
            gps=_gps(reader, gps_ifd),
            orientation=_orientation(reader, ifd0),
        )
    except (struct.error, ValueError, IndexError, OverflowError):
        return PhotoExif()


class _Reader:
    def __init__(self, block: bytes):
        order = block[:2]
        if order not in (b"II", b"MM"):
            raise ValueError("not a TIFF block")
        self.block = block
        self.endian = "<" if order == b"II" else ">"

    def first_ifd_offset(self) -> int:
        magic, offset = struct.unpack(self.endian + "HI", self.block[2:8])
        if magic != 42:
            raise ValueError("bad TIFF magic")
        return offset

    def ifd(self, offset: int | None) -> dict[int, tuple[int, int, int]]:
        """tag -> (type, count, value_offset_position) for one IFD; {} when absent or out of range."""
        if not offset or offset + 2 > len(self.block):
            return {}
        (count,) = struct.unpack(self.endian + "H", self.block[offset:offset + 2])
        entries = {}
        for index in range(min(count, MAX_ENTRIES)):
            start = offset + 2 + 12 * index
            if start + 12 > len(self.block):
                break
            tag, type_, n = struct.unpack(self.endian + "HHI", self.block[start:start + 8])
            entries.setdefault(tag, (type_, n, start + 8))
        return entries

    def _raw(self, entry, max_count: int) -> tuple[int, int, bytes] | None:
        if entry is None:
            return None
        type_, count, where = entry
        size = _TYPE_SIZES.get(type_)
        if size is None or count == 0 or count > max_count:
            return None
        total = size * count
        if total > 4:
            (where,) = struct.unpack(self.endian + "I", self.block[where:where + 4])
        if where + total > len(self.block):
            return None
        return type_, count, self.block[where:where + total]

    def long(self, entry) -> int | None:
        raw = self._raw(entry, 1)
        if raw is None or raw[0] not in (3, 4):
            return None
        return struct.unpack(self.endian + ("H" if raw[0] == 3 else "I"), raw[2])[0]

    def ascii(self, entry, max_count: int = 64) -> str | None:
        raw = self._raw(entry, max_count)
        if raw is None or raw[0] not in (2, 7):
            return None
        return raw[2].split(b"\x00", 1)[0].decode("ascii", "replace").strip()

    def rationals(self, entry, count: int) -> list[float] | None:
        raw = self._raw(entry, count)
        if raw is None or raw[0] not in (5, 10) or raw[1] != count:
            return None
        fmt = self.endian + ("I" if raw[0] == 5 else "i") * (2 * count)
        numbers = struct.unpack(fmt, raw[2])
        values = []
        for numerator, denominator in zip(numbers[::2], numbers[1::2]):
            if denominator == 0:
                return None
            values.append(numerator / denominator)
        return values


def _orientation(reader: _Reader, ifd0) -> int:
    value = reader.long(ifd0.get(_ORIENTATION))
    return value if value in range(1, 9) else 1


def _taken_at(reader: _Reader, ifd0, exif_ifd, now: datetime) -> datetime | None:
    for time_tag, offset_tag, ifd in (
        (_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL, exif_ifd),
        (_DATETIME_DIGITIZED, _OFFSET_TIME_DIGITIZED, exif_ifd),
        (_DATETIME, _OFFSET_TIME, ifd0),
    ):
        local = _parse_exif_time(reader.ascii(ifd.get(time_tag)))
        if local is None:
            continue
        zone = _parse_offset(reader.ascii(exif_ifd.get(offset_tag))) or DEFAULT_ZONE
        taken = local.replace(tzinfo=zone).astimezone(timezone.utc)
        # A camera clock years off or in the future says nothing about when the hazard was seen.
        if taken.year < 2000 or taken > now + timedelta(days=1):
            return None
        return taken
    return None


def _parse_exif_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def _parse_offset(text: str | None):
    if not text or len(text) < 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
    except ValueError:
        return None
    if hours > 14 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def _gps(reader: _Reader, gps_ifd) -> tuple[float, float] | None:
    lat = _degrees(reader.rationals(gps_ifd.get(_GPS_LAT), 3), reader.ascii(gps_ifd.get(_GPS_LAT_REF), 2), "S")
    lng = _degrees(reader.rationals(gps_ifd.get(_GPS_LNG), 3), reader.ascii(gps_ifd.get(_GPS_LNG_REF), 2), "W")
    if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    if lat == 0 and lng == 0:  # "no fix" written as zeros
        return None
    return round(lat, 7), round(lng, 7)


def _degrees(dms: list[float] | None, ref: str | None, negative_ref: str) -> float | None:
    if not dms or any(not math.isfinite(v) or v < 0 for v in dms):
        return None
    value = dms[0] + dms[1] / 60 + dms[2] / 3600
    return -value if (ref or "").upper().startswith(negative_ref) else value
