"""The small versioned container learned codecs write around their entropy-coded payload.

A learned codec's bitstream must be self-contained: the decoder gets nothing but the bytes
(and its own weights). So every stream carries a header saying which codec and quality made
it, the original and padded image sizes, the latent shape the entropy decoder needs, and the
lengths of the entropy-coded strings that follow. All of it counts towards ``num_bytes``.

Layout (format version 1; integers are unsigned LEB128 varints unless stated)::

    magic            4 bytes  b"RDBS"
    format version   1 byte   (1)
    codec name       1-byte length + UTF-8
    tag              1-byte length + bytes   (codec-defined, e.g. a weights fingerprint)
    quality          8 bytes  IEEE-754 float64, little-endian
    height, width                      original image size
    padded height, padded width        size the network saw
    shape            1-byte count + varints   (e.g. the hyper-latent's H and W)
    strings          varint count + varint length of each, then the strings back to back

For ``bmshj2018-hyperprior`` on a Kodak image the header is 54 bytes (0.0011 bpp).
:func:`unpack` validates everything and raises :class:`BitstreamError` (a ``ValueError`` and
a :class:`~rdbench.codecs.base.CodecError`) on a wrong magic, an unknown version, truncation
or trailing bytes.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from rdbench.codecs.base import CodecError

__all__ = ["MAGIC", "FORMAT_VERSION", "BitstreamError", "Header", "pack", "unpack", "header_nbytes"]

MAGIC = b"RDBS"
FORMAT_VERSION = 1
_MAX_SHORT = 255  # name, tag and shape use a one-byte length


class BitstreamError(CodecError, ValueError):
    """A byte string is not a valid rdbench learned-codec bitstream."""


@dataclass(frozen=True)
class Header:
    """What a decoder needs besides the entropy-coded strings."""

    codec: str
    quality: float
    height: int
    width: int
    padded_height: int
    padded_width: int
    shape: tuple[int, ...] = ()
    tag: bytes = b""

    def __post_init__(self) -> None:
        name = self.codec.encode("utf-8")
        if not name or len(name) > _MAX_SHORT:
            raise ValueError(f"codec name must be 1–{_MAX_SHORT} UTF-8 bytes, got {self.codec!r}")
        if len(self.tag) > _MAX_SHORT:
            raise ValueError(f"tag longer than {_MAX_SHORT} bytes")
        if not math.isfinite(self.quality):
            raise ValueError(f"quality must be finite, got {self.quality!r}")
        sizes = (self.height, self.width, self.padded_height, self.padded_width)
        if any(not isinstance(v, int) or v <= 0 for v in sizes):
            raise ValueError(f"image sizes must be positive integers, got {sizes}")
        if self.padded_height < self.height or self.padded_width < self.width:
            raise ValueError(
                f"padded size {self.padded_height}x{self.padded_width} is smaller than "
                f"the image {self.height}x{self.width}"
            )
        if len(self.shape) > _MAX_SHORT or any(not isinstance(v, int) or v < 0 for v in self.shape):
            raise ValueError(f"shape must be at most {_MAX_SHORT} non-negative integers, got {self.shape}")


def _varint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"cannot encode negative integer {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pack(header: Header, strings: Sequence[bytes]) -> bytes:
    """Serialise ``header`` and the entropy-coded ``strings`` into one self-contained stream."""
    name = header.codec.encode("utf-8")
    parts = [
        MAGIC,
        bytes([FORMAT_VERSION, len(name)]),
        name,
        bytes([len(header.tag)]),
        bytes(header.tag),
        struct.pack("<d", float(header.quality)),
        _varint(header.height),
        _varint(header.width),
        _varint(header.padded_height),
        _varint(header.padded_width),
        bytes([len(header.shape)]),
        *(_varint(v) for v in header.shape),
        _varint(len(strings)),
    ]
    for s in strings:
        if not isinstance(s, (bytes, bytearray, memoryview)):
            raise TypeError(f"strings must be bytes, got {type(s).__name__}")
        parts.append(_varint(len(s)))
    parts.extend(bytes(s) for s in strings)
    return b"".join(parts)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise BitstreamError(
                f"truncated bitstream: {what} needs {n} byte(s) at offset {self.pos}, "
                f"but the stream has {len(self.data)} bytes"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str) -> int:
        value = shift = 0
        while True:
            b = self.byte(what)
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise BitstreamError(f"corrupt bitstream: {what} is not a valid varint")


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    """Parse and validate a stream made by :func:`pack`; returns the header and the strings."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    r = _Reader(bytes(data))
    magic = r.take(len(MAGIC), "the magic number")
    if magic != MAGIC:
        raise BitstreamError(
            f"not an rdbench learned-codec bitstream: magic {magic!r}, expected {MAGIC!r}"
        )
    version = r.byte("the format version")
    if version != FORMAT_VERSION:
        raise BitstreamError(
            f"unsupported bitstream format version {version} (this rdbench reads version {FORMAT_VERSION})"
        )
    try:
        codec = r.take(r.byte("the codec name length"), "the codec name").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BitstreamError(f"corrupt bitstream: codec name is not UTF-8 ({exc})") from exc
    tag = r.take(r.byte("the tag length"), "the tag")
    (quality,) = struct.unpack("<d", r.take(8, "the quality"))
    sizes = [r.varint(what) for what in ("height", "width", "padded height", "padded width")]
    shape = tuple(r.varint("the latent shape") for _ in range(r.byte("the shape length")))
    count = r.varint("the number of strings")
    if count > len(r.data):  # each string needs at least one length byte
        raise BitstreamError(f"corrupt bitstream: claims {count} strings in {len(r.data)} bytes")
    lengths = [r.varint("a string length") for _ in range(count)]
    strings = [r.take(n, f"string {i} of {count}") for i, n in enumerate(lengths)]
    if r.pos != len(r.data):
        raise BitstreamError(
            f"corrupt bitstream: {len(r.data) - r.pos} unexpected byte(s) after the last string"
        )
    try:
        header = Header(codec, quality, *sizes, shape=shape, tag=tag)
    except ValueError as exc:
        raise BitstreamError(f"corrupt bitstream header: {exc}") from exc
    return header, strings


def header_nbytes(data: bytes) -> int:
    """Bytes of ``data`` that are container overhead rather than entropy-coded payload."""
    _, strings = unpack(data)
    return len(data) - sum(len(s) for s in strings)
