"""The default codec set of a benchmark run: what runs here without downloading anything.

It is read off the codec classes: every built-in codec (in :data:`~rdbench.codecs.base.BUILTIN`
order) whose class sets ``in_default_set`` and whose weights, if it has any, are here.
"""
from __future__ import annotations

import logging

from rdbench.codecs.base import BUILTIN, get_codec

log = logging.getLogger(__name__)


def default_codec_specs() -> tuple[list[str], dict[str, str]]:
    """The specs of the default codec set, and for each codec left out, the reason.

    Today: the classical codecs, ``rdbench-small`` (its weights ship with rdbench) and every
    CompressAI zoo codec whose weights are cached. The reasons are logged, and recorded in
    run.json by the pipeline.
    """
    specs, left_out = [], {}
    for name in BUILTIN:
        try:
            codec = get_codec(name)
        except ImportError:
            left_out[name] = "its library or module is not importable here"
            continue
        if not codec.in_default_set:
            continue
        if not codec.weights_available():
            left_out[name] = "pretrained weights are not in the weights root (see WeightsUnavailableError)"
            continue
        specs.append(codec.spec)
    for name, reason in left_out.items():
        log.info("rdbench: default codec set leaves out %s: %s", name, reason)
    return specs, left_out
