"""Codecs by spec: ``get_codec("jpeg:subsampling=444")``; ``available()`` lists the names.

See :mod:`rdbench.codecs.base` for the interface and the registry.
"""
from rdbench.codecs.base import (
    CLASSICAL,
    Codec,
    CodecError,
    CodecSpecError,
    Encoded,
    Param,
    available,
    get_codec,
    known,
    parse_spec,
    register,
)

__all__ = [
    "CLASSICAL",
    "Codec",
    "CodecError",
    "CodecSpecError",
    "Encoded",
    "Param",
    "available",
    "get_codec",
    "known",
    "parse_spec",
    "register",
]
