"""The default codec set of a benchmark run."""
from __future__ import annotations

import logging

from rdbench.codecs.base import CLASSICAL, available

log = logging.getLogger(__name__)


def default_codec_specs() -> list[str]:
    """The classical codecs whose libraries import here.

    Learned codecs join the default set only when their weights are available locally;
    the ones left out are logged.
    """
    names = set(available())
    specs = [name for name in CLASSICAL if name in names]
    missing = sorted(set(CLASSICAL) - names)
    if missing:
        log.warning("rdbench: classical codecs left out (library not importable): %s", ", ".join(missing))
    return specs
