"""``bd_rate.csv``: Bjøntegaard deltas of every codec against an anchor codec.

One row per (dataset, codec spec, metric) for ``psnr_rgb`` and ``ms_ssim_db``, with the
``bjontegaard`` package's ``pchip`` interpolation over the overlap of the two curves.
:func:`select_anchor` picks the anchor spec by codec name; an empty value says why in ``reason``.
Columns and rules: docs/contracts.md, section bd_rate.csv.

**Like for like.** Given the per-image results, each codec is compared with the anchor over the
images the two curves share, per curve: an image counts when it has a result at every quality point
of the codec's curve *and* at every point of the anchor's; both curves are then recomputed as means
over exactly those images (``n_images``), so every point of both curves averages the same images.
(Per point would let the image set change along a curve; per curve keeps each curve one set.) A
codec and an anchor that share no image get empty values and a ``reason``. Without results (a
summary table alone) the summary curves are compared as they are and ``n_images`` is the smallest
per-point image count of the two.

**Published anchors.** ``anchor="ref:SLUG"`` (e.g. ``ref:vtm`` on Kodak) compares every codec of
the run with the published curve SLUG of the dataset's reference table
(:mod:`rdbench.reports.reference`), over the overlap, on the metrics that table holds (PSNR-RGB
and MS-SSIM); ``anchor_source`` names the table and curve. The run's curves are its summary means
over all its images, the published ones means over the set the table names: ``n_images`` is the
codec's image count, so a subset shows.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from rdbench.metrics.registry import BD_AVERAGES, column, columns

from .reference import describe_curve, reference_anchor_slug, reference_curve, reference_set_for

BD_COLUMNS = [
    "dataset",
    "codec",
    "anchor",
    "metric",
    "bd_rate_percent",
    "bd_metric",
    "bpp_min",
    "bpp_max",
    "interpolation",
    "n_points",
    "reason",
    "n_images",  # extension after the contract's columns: the images both curves were computed over
    "anchor_source",  # extension: "run" (a codec of the run) or the published table and curve of a ref: anchor
]
BD_METRICS = tuple(c.name for c in columns() if c.bd)  # the metric registry's BD-rate columns
#: The BD-rate columns every table has (the contract's); the others only when the run computed them.
CONTRACT_BD_METRICS = ("psnr_rgb", "ms_ssim_db")


def bd_metrics(summary: pd.DataFrame) -> list[str]:
    """The metrics a summary gets BD-rates for: the contract's, and every other BD column it has values of."""
    return [m for m in BD_METRICS
            if m in CONTRACT_BD_METRICS or (m in summary and summary[m].astype(float).notna().any())]
DEFAULT_ANCHOR = "jpeg"
INTERPOLATION = "pchip"
MIN_POINTS = 4


def codec_name(spec: str) -> str:
    """The codec name of a spec: ``"jpeg:subsampling=444"`` → ``"jpeg"``."""
    return str(spec).split(":", 1)[0].strip()


def select_anchor(specs: Sequence[str], anchor: str) -> str | None:
    """The spec among ``specs`` that serves as anchor (see the module docstring), or None."""
    specs = sorted({str(s) for s in specs})
    if anchor in specs:
        return anchor
    name = codec_name(anchor)
    if name in specs:
        return name
    candidates = [s for s in specs if codec_name(s) == name]
    return candidates[0] if candidates else None


@dataclass
class BDResult:
    bd_rate_percent: float | None
    bd_metric: float | None
    bpp_min: float | None
    bpp_max: float | None
    n_points: int
    reason: str = ""
    interpolation: str = INTERPOLATION


def _clean_curve(bpp, metric) -> tuple[np.ndarray, np.ndarray]:
    bpp = np.asarray(bpp, dtype=np.float64)
    metric = np.asarray(metric, dtype=np.float64)
    ok = np.isfinite(bpp) & np.isfinite(metric) & (bpp > 0)
    pts = np.unique(np.stack([bpp[ok], metric[ok]], axis=1), axis=0)  # drops exact repeats
    return pts[:, 0], pts[:, 1]


def _sorted_by(base: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Both arrays ordered by ``base``; None when ``base`` repeats a value (not a function)."""
    order = np.argsort(base, kind="stable")
    base, other = base[order], other[order]
    if np.any(np.diff(base) <= 0):
        return None
    return base, other


def bd_compare(
    anchor_bpp,
    anchor_metric,
    test_bpp,
    test_metric,
    interpolation: str = INTERPOLATION,
) -> BDResult:
    """BD-rate (percent) and BD-metric of a test curve against an anchor curve.

    Points with a non-finite value or bpp ≤ 0 are ignored. Each curve needs at least
    ``MIN_POINTS`` points and the curves must overlap; otherwise the values are None and
    ``reason`` says why. Never raises for bad data.
    """
    import bjontegaard

    a_r, a_m = _clean_curve(anchor_bpp, anchor_metric)
    t_r, t_m = _clean_curve(test_bpp, test_metric)
    n_points = int(min(len(a_r), len(t_r)))
    res = BDResult(None, None, None, None, n_points, "", interpolation)

    if len(a_r) and len(t_r):
        lo, hi = max(a_r.min(), t_r.min()), min(a_r.max(), t_r.max())
        if hi > lo:
            res.bpp_min, res.bpp_max = float(lo), float(hi)

    problems = []
    if len(a_r) < MIN_POINTS or len(t_r) < MIN_POINTS:
        res.reason = (
            f"too few points: anchor {len(a_r)}, codec {len(t_r)} (at least {MIN_POINTS} needed on each curve)"
        )
        return res
    if res.bpp_min is None:
        res.reason = (
            f"no overlap in bpp: anchor {a_r.min():.4g}–{a_r.max():.4g}, codec {t_r.min():.4g}–{t_r.max():.4g}"
        )
        return res

    # BD-rate: log-rate as a function of the metric, over the metric overlap.
    m_lo, m_hi = max(a_m.min(), t_m.min()), min(a_m.max(), t_m.max())
    a_sorted, t_sorted = _sorted_by(a_m, a_r), _sorted_by(t_m, t_r)
    if not m_hi > m_lo:
        problems.append(
            f"bd_rate: no overlap in metric: anchor {a_m.min():.4g}–{a_m.max():.4g}, "
            f"codec {t_m.min():.4g}–{t_m.max():.4g}"
        )
    elif a_sorted is None or t_sorted is None:
        problems.append("bd_rate: a curve repeats a metric value at different rates")
    else:
        value = _call(bjontegaard.bd_rate, a_sorted[1], a_sorted[0], t_sorted[1], t_sorted[0], interpolation)
        if isinstance(value, str):
            problems.append(f"bd_rate: {value}")
        else:
            res.bd_rate_percent = value

    # BD-metric: the metric as a function of log-rate, over the rate overlap.
    a_sorted, t_sorted = _sorted_by(a_r, a_m), _sorted_by(t_r, t_m)
    if a_sorted is None or t_sorted is None:
        problems.append("bd_metric: a curve repeats a bpp value with different metric values")
    else:
        value = _call(bjontegaard.bd_psnr, a_sorted[0], a_sorted[1], t_sorted[0], t_sorted[1], interpolation)
        if isinstance(value, str):
            problems.append(f"bd_metric: {value}")
        else:
            res.bd_metric = value
    res.reason = "; ".join(problems)
    return res


def _call(fn, rate_a, metric_a, rate_t, metric_t, interpolation) -> float | str:
    """Run a ``bjontegaard`` function; a float, or a string saying why there is none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = fn(
                rate_a, metric_a, rate_t, metric_t,
                method=interpolation, require_matching_points=False, min_overlap=0,
            )
    except Exception as exc:  # the package raises ValueError/AssertionError on degenerate curves
        return f"{type(exc).__name__}: {exc}"
    value = float(value)
    if not math.isfinite(value):
        return "not finite"
    return value


def complete_images(rows: pd.DataFrame) -> set[str]:
    """The image ids of one curve's result rows that have a row at every quality of the curve."""
    if rows.empty:
        return set()
    per_quality = rows.groupby("quality")["image_id"].agg(lambda ids: set(ids.astype(str)))
    return set.intersection(*per_quality.tolist())


def shared_curve(rows: pd.DataFrame, images: set[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One curve recomputed over ``images``: per quality, the mean bpp and metric (nulls ignored,
    as in summary.csv)."""
    rows = rows[rows["image_id"].astype(str).isin(images)]
    cols = ["bpp", *[m for m in metrics if m in rows]]
    return rows.groupby("quality")[cols].mean().reset_index()


def compute_bd_rates(
    summary: pd.DataFrame,
    anchor: str = DEFAULT_ANCHOR,
    metrics: Sequence[str] | None = None,
    interpolation: str = INTERPOLATION,
    results: pd.DataFrame | None = None,
    reference_tables: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """The ``bd_rate.csv`` table (see the module docstring) from a summary table, like for like
    over the shared images when the per-image ``results`` rows are given.

    ``reference_tables`` (dataset → reference table) serves a ``ref:SLUG`` anchor; a dataset not
    in it gets the table of its name.

    ``metrics`` default: :func:`bd_metrics`. A lower-is-better metric (NLPD, LPIPS) is compared on
    its negation, so a negative BD-rate always means fewer bits at equal quality; its ``bd_metric``
    is given back in the metric's own units. The registry's BD averages (JPEG AI's mean over its
    metric set) follow each codec's rows when the run computed any of their metrics.
    """
    metrics = bd_metrics(summary) if metrics is None else list(metrics)
    slug = reference_anchor_slug(anchor)
    if slug is not None:
        rows = _against_reference(summary, slug, reference_tables or {}, metrics, interpolation)
        return _table_of(rows + _averages(rows, metrics, interpolation))
    rows = []
    usable = summary[summary["n_images"] > 0] if "n_images" in summary else summary
    for dataset in sorted(summary["dataset"].astype(str).unique()):
        in_ds = usable[usable["dataset"].astype(str) == dataset]
        specs = sorted(summary.loc[summary["dataset"].astype(str) == dataset, "codec"].astype(str).unique())
        anchor_spec = select_anchor(specs, anchor)
        if results is not None:
            res_ds = results[results["dataset"].astype(str) == dataset]
            by_codec = {str(c): g for c, g in res_ds.groupby(res_ds["codec"].astype(str))}
            anchor_rows = by_codec.get(anchor_spec, res_ds.iloc[:0])
            anchor_images = complete_images(anchor_rows)
        for spec in specs:
            if spec == anchor_spec:
                continue
            test = in_ds[in_ds["codec"].astype(str) == spec]
            results_for_pair = None
            if anchor_spec is not None and results is not None:
                test_rows = by_codec.get(spec, res_ds.iloc[:0])
                test_images = complete_images(test_rows)
                shared = anchor_images & test_images
                results_for_pair = (shared, test_rows, test_images)
                if shared:
                    ref_curve = shared_curve(anchor_rows, shared, metrics)
                    test_curve = shared_curve(test_rows, shared, metrics)
            for metric in metrics:
                sign = 1.0 if column(metric).higher_is_better else -1.0
                n_images = 0
                if anchor_spec is None:
                    res = BDResult(None, None, None, None, 0,
                                   f"anchor {anchor!r} not in dataset {dataset!r}", interpolation)
                elif results_for_pair is None:
                    ref = in_ds[in_ds["codec"].astype(str) == anchor_spec]
                    res = bd_compare(ref["bpp"], sign * ref[metric], test["bpp"], sign * test[metric], interpolation)
                    counts = pd.concat([ref["n_images"], test["n_images"]]) if "n_images" in in_ds else []
                    n_images = int(min(counts)) if len(counts) else 0
                else:
                    shared, test_rows, test_images = results_for_pair
                    if shared:
                        res = bd_compare(ref_curve["bpp"], sign * ref_curve[metric], test_curve["bpp"],
                                         sign * test_curve[metric], interpolation)
                        n_images = len(shared)
                    elif test_rows.empty or anchor_rows.empty:
                        # no results at all on one side: say it as for any curve without points
                        res = bd_compare(anchor_rows["bpp"], anchor_rows[metric] if metric in anchor_rows else [],
                                         test_rows["bpp"], test_rows[metric] if metric in test_rows else [],
                                         interpolation)
                    else:
                        res = BDResult(None, None, None, None, 0, _no_shared_reason(
                            anchor_rows, anchor_images, test_rows, test_images), interpolation)
                rows.append(
                    {
                        "dataset": dataset,
                        "codec": spec,
                        "anchor": anchor_spec if anchor_spec is not None else anchor,
                        "metric": metric,
                        "bd_rate_percent": res.bd_rate_percent,
                        "bd_metric": None if res.bd_metric is None else sign * res.bd_metric,
                        "bpp_min": res.bpp_min,
                        "bpp_max": res.bpp_max,
                        "interpolation": res.interpolation,
                        "n_points": res.n_points,
                        "reason": res.reason,
                        "n_images": n_images,
                        "anchor_source": "run",
                    }
                )
    return _table_of(rows + _averages(rows, metrics, interpolation))


def _table_of(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=BD_COLUMNS)
    for c in ("bd_rate_percent", "bd_metric", "bpp_min", "bpp_max"):
        table[c] = table[c].astype("float64")
    for c in ("n_points", "n_images"):
        table[c] = table[c].astype("int64")
    return table


def _against_reference(summary: pd.DataFrame, slug: str, tables: Mapping[str, str | None],
                       metrics: Sequence[str], interpolation: str) -> list[dict]:
    """bd_rate.csv rows of every codec against the published curve ``slug`` (see the module docstring)."""
    rows = []
    usable = summary[summary["n_images"] > 0] if "n_images" in summary else summary
    for dataset in sorted(summary["dataset"].astype(str).unique()):
        table = tables[dataset] if dataset in tables else reference_set_for(dataset)
        curve = reference_curve(table, slug) if table else pd.DataFrame()
        source = describe_curve(table, slug) if table else "published: no table for this dataset"
        in_ds = usable[usable["dataset"].astype(str) == dataset]
        for spec in sorted(summary.loc[summary["dataset"].astype(str) == dataset, "codec"].astype(str).unique()):
            test = in_ds[in_ds["codec"].astype(str) == spec]
            n_images = int(test["n_images"].min()) if "n_images" in test and len(test) else 0
            for metric in metrics:
                sign = 1.0 if column(metric).higher_is_better else -1.0
                if not table:
                    res = BDResult(None, None, None, None, 0, f"no published table for dataset {dataset!r}",
                                   interpolation)
                elif curve.empty:
                    res = BDResult(None, None, None, None, 0, f"the {table} table has no curve {slug!r}",
                                   interpolation)
                elif metric not in curve or curve[metric].isna().all():
                    res = BDResult(None, None, None, None, 0,
                                   f"the published curve {slug!r} has no {metric} values", interpolation)
                else:
                    res = bd_compare(curve["bpp"], sign * curve[metric], test["bpp"], sign * test[metric],
                                     interpolation)
                rows.append({
                    "dataset": dataset, "codec": spec, "anchor": f"ref:{slug}", "metric": metric,
                    "bd_rate_percent": res.bd_rate_percent,
                    "bd_metric": None if res.bd_metric is None else sign * res.bd_metric,
                    "bpp_min": res.bpp_min, "bpp_max": res.bpp_max, "interpolation": res.interpolation,
                    "n_points": res.n_points, "reason": res.reason, "n_images": n_images,
                    "anchor_source": source,
                })
    return rows


def _averages(rows: list[dict], metrics: Sequence[str], interpolation: str) -> list[dict]:
    """One row per (dataset, codec) for each registry BD average whose metrics the run computed.

    The value is the mean of the codec's BD-rates over the average's metrics; empty, with the
    metrics missing in ``reason``, when any of them has no BD-rate.
    """
    out = []
    for name, averaged in BD_AVERAGES.items():
        if not set(averaged) & (set(metrics) - set(CONTRACT_BD_METRICS)):
            continue
        pairs = dict.fromkeys((r["dataset"], r["codec"], r["anchor"], r["anchor_source"]) for r in rows)
        for dataset, codec, anchor, source in pairs:
            mine = {r["metric"]: r for r in rows if (r["dataset"], r["codec"]) == (dataset, codec)}
            values = {m: mine[m]["bd_rate_percent"] for m in averaged if m in mine}
            missing = [m for m in averaged if values.get(m) is None or not math.isfinite(values[m])]
            out.append({
                "dataset": dataset, "codec": codec, "anchor": anchor, "metric": name,
                "bd_rate_percent": None if missing else float(np.mean(list(values.values()))),
                "bd_metric": None, "bpp_min": None, "bpp_max": None, "interpolation": interpolation,
                "n_points": min((mine[m]["n_points"] for m in values), default=0),
                "reason": (f"mean of the BD-rates over {', '.join(averaged)}" if not missing
                           else f"no mean: no BD-rate for {', '.join(missing)}"),
                "n_images": min((mine[m]["n_images"] for m in values), default=0),
                "anchor_source": source,
            })
    return out


def _no_shared_reason(anchor_rows, anchor_images, test_rows, test_images) -> str:
    def describe(rows, complete):
        n_all = rows["image_id"].nunique()
        if len(complete) == n_all:
            return f"{n_all} image(s)"
        return f"{n_all} image(s), {len(complete)} with a result at every quality"

    return (f"no image in common with the anchor (codec: {describe(test_rows, test_images)}; "
            f"anchor: {describe(anchor_rows, anchor_images)})")


def write_bd_rate(
    summary: pd.DataFrame,
    path: str | Path,
    anchor: str = DEFAULT_ANCHOR,
    interpolation: str = INTERPOLATION,
    results: pd.DataFrame | None = None,
    reference_tables: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """Compute the BD table (like for like when ``results`` are given) and write it as CSV;
    returns the table."""
    table = compute_bd_rates(summary, anchor=anchor, interpolation=interpolation, results=results,
                             reference_tables=reference_tables)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table
