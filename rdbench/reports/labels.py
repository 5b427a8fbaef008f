"""What plots and HTML tables call a codec spec: :func:`rdbench.codecs.display_name`, made unique.

Files (summary.csv, bd_rate.csv) keep the full specs; colours and line styles stay keyed by them.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from rdbench.codecs import display_name


def display_names(specs: Iterable[str]) -> dict[str, str]:
    """Spec → display name (its ``label=``, else the spec shortened). Specs whose display names
    would coincide keep their full spec, so that no two curves share a legend entry."""
    specs = sorted({str(s) for s in specs})
    names = {s: display_name(s) for s in specs}
    counts = Counter(names.values())
    return {s: (n if counts[n] == 1 else s) for s, n in names.items()}
