"""Codecs by spec: ``get_codec("jpeg:subsampling=444")``; ``available()`` lists the names.

See :mod:`rdbench.codecs.base` for the interface and the registry, :mod:`rdbench.codecs.learned`
and :mod:`rdbench.codecs.compressai_model` for learned codecs (and for evaluating your own model).
"""
from rdbench.codecs.base import (
    BUILTIN,
    CLASSICAL,
    Codec,
    CodecError,
    CodecSpecError,
    Encoded,
    QualityError,
    display_name,
    Family,
    Param,
    available,
    family,
    get_codec,
    known,
    parse_spec,
    register,
)

__all__ = [
    "BUILTIN",
    "CLASSICAL",
    "Codec",
    "CodecError",
    "CodecSpecError",
    "QualityError",
    "display_name",
    "Encoded",
    "Family",
    "Param",
    "available",
    "family",
    "get_codec",
    "known",
    "parse_spec",
    "register",
]
