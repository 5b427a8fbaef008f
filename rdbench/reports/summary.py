"""``summary.csv``: one row per (dataset, codec, quality) — means over images, pooled PSNR, set metrics.

Columns and rules (nulls ignored in means, null-quality errors counted for every quality, rows for
errors-only points): docs/contracts.md, section summary.csv. The metric columns come from the metric
registry: the contract's before the timings, the others after them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rdbench.metrics.registry import METRICS, columns

def _metric_columns(contract: bool) -> list[str]:
    """Summary columns of the registry's metrics (each with its pooled form after it)."""
    out = []
    for metric in METRICS.values():
        if metric.contract == contract:
            for column in metric.columns:
                out += [column.name] + ([column.pooled] if column.pooled else [])
    return out


#: Contract metrics come before the timings, the other metrics after them (see the docstring).
SUMMARY_COLUMNS = ["dataset", "codec", "quality", "n_images", "n_errors", "bpp", *_metric_columns(True),
                   "encode_s", "decode_s", *_metric_columns(False)]
SET_COLUMNS = [c.name for c in columns("set")]  # from set_metrics.csv, not means over images
MEAN_COLUMNS = ["bpp", *(c.name for c in columns("image")), "encode_s", "decode_s"]
POOLED_COLUMNS = {c.pooled: c.name for c in columns("image") if c.pooled}  # pooled PSNR → its per-image column
KEYS = ["dataset", "codec", "quality"]


def mse_from_psnr(psnr: np.ndarray | pd.Series, peak: float = 255.0) -> np.ndarray:
    """The MSE a PSNR stands for; an infinite PSNR (identical images) is a zero error."""
    psnr = np.asarray(psnr, dtype=np.float64)
    with np.errstate(over="ignore"):
        mse = peak**2 * np.power(10.0, -psnr / 10.0)
    return np.where(np.isposinf(psnr), 0.0, mse)


def pooled_psnr(psnr, height, width, peak: float = 255.0) -> float:
    """PSNR of the summed squared error over a set of images, from their per-image PSNRs.

    Images with a null (NaN) PSNR are left out; an empty set gives NaN, a zero error +inf.
    """
    psnr = np.asarray(psnr, dtype=np.float64)
    samples = np.asarray(height, dtype=np.float64) * np.asarray(width, dtype=np.float64) * 3.0
    ok = ~np.isnan(psnr)
    if not ok.any():
        return float("nan")
    sse = float(np.sum(mse_from_psnr(psnr[ok], peak) * samples[ok]))
    n = float(np.sum(samples[ok]))
    if sse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak**2 / (sse / n)))


def summarize(results: pd.DataFrame, errors: pd.DataFrame | None = None,
              set_metrics: pd.DataFrame | None = None) -> pd.DataFrame:
    """The summary table (see the module docstring) from RESULTS_SCHEMA and ERRORS_SCHEMA rows,
    and the set-level metrics of ``set_metrics.csv`` when there are any."""
    if errors is None:
        errors = pd.DataFrame(columns=KEYS)

    if len(results):
        grouped = results.groupby(KEYS, sort=False)
        agg = grouped[MEAN_COLUMNS].mean()
        agg["n_images"] = grouped["image_id"].nunique()
        for pooled, column in POOLED_COLUMNS.items():
            agg[pooled] = grouped[[column, "height", "width"]].apply(
                lambda g, c=column: pooled_psnr(g[c], g["height"], g["width"]))
        agg = agg.reset_index()
    else:
        agg = pd.DataFrame(columns=KEYS + MEAN_COLUMNS + ["n_images", *POOLED_COLUMNS])

    # Error counts: per quality, and per (dataset, codec) for the null-quality rows.
    err_q = errors[errors["quality"].notna()] if len(errors) else errors
    err_null = errors[errors["quality"].isna()] if len(errors) else errors
    per_quality = err_q.groupby(KEYS).size() if len(err_q) else pd.Series(dtype="int64")
    per_codec = err_null.groupby(["dataset", "codec"]).size() if len(err_null) else pd.Series(dtype="int64")

    # Every (dataset, codec, quality) seen in results or in quality-bearing errors gets a row.
    keys = set(map(tuple, agg[KEYS].itertuples(index=False, name=None)))
    keys |= set(per_quality.index) if len(per_quality) else set()
    codecs_with_quality = {(d, c) for d, c, _ in keys}
    for d, c in per_codec.index if len(per_codec) else ():
        if (d, c) not in codecs_with_quality:
            keys.add((d, c, float("nan")))
    if not keys:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in SUMMARY_COLUMNS})

    table = pd.DataFrame(sorted(keys, key=_sort_key), columns=KEYS)
    table["quality"] = table["quality"].astype("float64")
    table = table.merge(agg, on=KEYS, how="left")
    table["n_images"] = table["n_images"].fillna(0).astype("int64")

    def count_errors(row) -> int:
        n = 0
        if not np.isnan(row.quality):
            n += int(per_quality.get((row.dataset, row.codec, row.quality), 0))
        n += int(per_codec.get((row.dataset, row.codec), 0))
        return n

    table["n_errors"] = [count_errors(r) for r in table.itertuples(index=False)]
    table["n_errors"] = table["n_errors"].astype("int64")
    if set_metrics is not None and len(set_metrics):
        sets = set_metrics[KEYS + SET_COLUMNS].astype({"quality": "float64"})
        table = table.merge(sets, on=KEYS, how="left")
    else:
        table[SET_COLUMNS] = np.nan
    for c in MEAN_COLUMNS + list(POOLED_COLUMNS) + SET_COLUMNS:
        table[c] = table[c].astype("float64")
    return table[SUMMARY_COLUMNS]


def _sort_key(key: tuple) -> tuple:
    d, c, q = key
    return (str(d), str(c), np.isnan(q), 0.0 if np.isnan(q) else q)


def _dtype(column: str) -> str:
    if column in ("dataset", "codec"):
        return "object"
    if column in ("n_images", "n_errors"):
        return "int64"
    return "float64"


def write_summary(results: pd.DataFrame, errors: pd.DataFrame | None, path: str | Path,
                  set_metrics: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute the summary and write it as CSV to ``path``; returns the table."""
    table = summarize(results, errors, set_metrics)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


def read_summary(path: str | Path) -> pd.DataFrame:
    """Read a ``summary.csv`` back (the inverse of :func:`write_summary`)."""
    return pd.read_csv(path, dtype={"dataset": str, "codec": str}, keep_default_na=False,
                       na_values=[""])
