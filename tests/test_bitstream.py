"""The learned-codec container: header round trip, validation and corruption errors."""
from __future__ import annotations

import struct

import pytest

from rdbench.codecs.base import CodecError
from rdbench.codecs.bitstream import (
    FORMAT_VERSION,
    MAGIC,
    BitstreamError,
    Header,
    header_nbytes,
    pack,
    unpack,
)

HEADER = Header(
    codec="bmshj2018-hyperprior",
    quality=3.0,
    height=512,
    width=768,
    padded_height=512,
    padded_width=768,
    shape=(8, 12),
    tag=b"\x01\x02\x03\x04",
)
STRINGS = [b"\x00\xffy-latents" * 50, b"z", b""]


def test_round_trip():
    data = pack(HEADER, STRINGS)
    header, strings = unpack(data)
    assert header == HEADER
    assert strings == STRINGS
    assert data.startswith(MAGIC + bytes([FORMAT_VERSION]))
    assert header_nbytes(data) == len(data) - sum(map(len, STRINGS))
    assert header_nbytes(data) < 60  # small: ~0.001 bpp on a Kodak image


def test_round_trip_large_values_and_unicode_name():
    h = Header("codec-é", 0.1, 100_000, 3, 100_032, 64, shape=(0, 2**40), tag=b"")
    big = b"x" * 70_000  # multi-byte varint length
    header, strings = unpack(pack(h, [big]))
    assert header == h and header.quality == 0.1
    assert strings == [big]


def test_no_strings():
    h, s = unpack(pack(HEADER, []))
    assert h == HEADER and s == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"codec": ""},
        {"padded_height": 500},  # smaller than the image
        {"width": 0},
        {"quality": float("nan")},
        {"tag": b"x" * 256},
        {"shape": (-1,)},
    ],
)
def test_invalid_header_fields(kwargs):
    fields = dict(HEADER.__dict__) | kwargs
    with pytest.raises(ValueError):
        Header(**fields)


def test_error_is_valueerror_and_codecerror():
    assert issubclass(BitstreamError, ValueError)
    assert issubclass(BitstreamError, CodecError)


def test_bad_magic():
    data = pack(HEADER, STRINGS)
    with pytest.raises(BitstreamError, match="magic"):
        unpack(b"JFIF" + data[4:])
    with pytest.raises(BitstreamError, match="magic|truncated"):
        unpack(b"")


def test_unknown_version():
    data = bytearray(pack(HEADER, STRINGS))
    data[len(MAGIC)] = FORMAT_VERSION + 1
    with pytest.raises(BitstreamError, match="version"):
        unpack(bytes(data))


def test_every_truncation_is_detected():
    data = pack(HEADER, [b"abc", b"defg"])
    for n in range(len(data)):
        with pytest.raises(BitstreamError, match="truncated|corrupt|magic"):
            unpack(data[:n])


def test_trailing_bytes_detected():
    with pytest.raises(BitstreamError, match="unexpected byte"):
        unpack(pack(HEADER, STRINGS) + b"\x00")


def test_corrupt_header_values():
    data = bytearray(pack(HEADER, [b"abc"]))
    # the height varint follows magic, version, name, tag and the float64 quality
    pos = len(MAGIC) + 1 + 1 + len(HEADER.codec) + 1 + len(HEADER.tag) + 8
    assert struct.unpack("<d", bytes(data[pos - 8 : pos]))[0] == 3.0
    data[pos : pos + 2] = b"\x00\x00"  # height 0 (and the width's first byte)
    with pytest.raises(BitstreamError):
        unpack(bytes(data))


def test_not_bytes():
    with pytest.raises(BitstreamError):
        unpack("RDBS")  # type: ignore[arg-type]
