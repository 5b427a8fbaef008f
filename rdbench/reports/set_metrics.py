"""``set_metrics.csv``: the set-level metrics (FID, KID) of a run, one row per (dataset, codec, quality).

Columns::

    dataset, codec, quality, n_images, n_images_skipped, n_patches, fid, kid, kid_std, kid_patches

``n_images`` counts the reconstructions that entered the set (failed items are in ``errors/``
instead), ``n_images_skipped`` those among them with a side below the 256 px patch (no patch, so no
part in FID/KID), ``n_patches`` the patches per side, ``kid_patches`` the patches KID was computed
from (all of them up to 4000; see :mod:`rdbench.metrics.setlevel`). ``fid``, ``kid`` and
``kid_std`` are empty where a set has fewer than 2 patches. ``summary.csv`` repeats ``fid`` and
``kid`` beside the per-image means.
"""
from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

SET_METRICS_FILE = "set_metrics.csv"
SET_METRICS_COLUMNS = ["dataset", "codec", "quality", "n_images", "n_images_skipped", "n_patches",
                       "fid", "kid", "kid_std", "kid_patches"]
KEYS = ["dataset", "codec", "quality"]


def set_metrics_table(sets: Iterable[tuple[tuple[str, str, float], dict]]) -> pd.DataFrame:
    """The table of ``((dataset, codec, quality), SetStats.result())`` pairs, sorted by key."""
    rows = [{"dataset": d, "codec": c, "quality": float(q), **result} for (d, c, q), result in sets]
    table = pd.DataFrame(rows, columns=SET_METRICS_COLUMNS)
    for column in ("fid", "kid", "kid_std", "quality"):
        table[column] = table[column].astype("float64")
    for column in ("n_images", "n_images_skipped", "n_patches", "kid_patches"):
        table[column] = table[column].astype("int64")
    return table.sort_values(KEYS, kind="stable").reset_index(drop=True)


def set_metrics_csv(sets: Iterable[tuple[tuple[str, str, float], dict]]) -> bytes:
    """``set_metrics.csv``'s bytes (see the module docstring)."""
    buffer = io.StringIO()
    set_metrics_table(sets).to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def read_set_metrics(path: str | Path) -> pd.DataFrame:
    """Read a ``set_metrics.csv``; a missing file (a run without FID/KID) gives an empty table."""
    path = Path(path)
    if not path.is_file():
        return set_metrics_table([])
    table = pd.read_csv(path, dtype={"dataset": str, "codec": str}, keep_default_na=False, na_values=[""])
    missing = [c for c in SET_METRICS_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: not a set_metrics.csv (missing columns {', '.join(missing)})")
    return table[SET_METRICS_COLUMNS]
