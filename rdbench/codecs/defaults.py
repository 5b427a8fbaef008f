"""The default codec set of a benchmark run: what runs here without downloading anything."""
from __future__ import annotations

import logging

from rdbench.codecs.base import CLASSICAL, LEARNED_ZOO, available, get_codec

log = logging.getLogger(__name__)

#: Learned codecs that ship their weights inside rdbench (always in the default set).
SHIPPED = ("rdbench-small",)


def default_codec_specs() -> tuple[list[str], dict[str, str]]:
    """The classical codecs, the shipped learned ones, and every zoo codec whose weights are cached.

    Returns the specs and, for each codec left out, the reason (logged, and recorded in
    run.json by the pipeline).
    """
    names = set(available())
    specs, left_out = [], {}
    for name in CLASSICAL + SHIPPED + LEARNED_ZOO:
        if name not in names:
            left_out[name] = "its library or module is not importable here"
            continue
        codec = get_codec(name)
        check = getattr(codec, "weights_available", None)
        if callable(check) and not check():
            left_out[name] = "pretrained weights are not in the weights root (see WeightsUnavailableError)"
            continue
        specs.append(codec.spec)
    for name, reason in left_out.items():
        log.info("rdbench: default codec set leaves out %s: %s", name, reason)
    return specs, left_out
