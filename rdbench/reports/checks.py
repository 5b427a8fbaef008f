"""What a report must say before anyone reads its numbers: per-curve image counts, and warnings when
merged run folders are not alike (image sets, codec versions, metrics, package versions).

Every warning goes into report.html's notes and to the ``rdbench.reports`` logger.
"""
from __future__ import annotations

import logging
from typing import Sequence

import pandas as pd

from .runs import RunData, RunInfo

log = logging.getLogger("rdbench.reports")

MAX_LISTED = 4  # values listed in one warning before "…"


def _listing(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


def differing_image_sets(runs: Sequence[RunInfo]) -> list[str]:
    """The datasets that several folders hold with different image sets."""
    out = []
    for dataset in sorted({d for r in runs for d in r.images}):
        holders = [r for r in runs if dataset in r.images]
        if len(holders) > 1 and len({r.images[dataset] for r in holders}) > 1:
            out.append(dataset)
    return out


def image_set_warnings(runs: Sequence[RunInfo]) -> list[str]:
    """Per dataset held by several folders: a warning when their image sets differ."""
    out = []
    for dataset in differing_image_sets(runs):
        holders = [r for r in runs if dataset in r.images]
        union = frozenset().union(*(r.images[dataset] for r in holders))
        common = frozenset.intersection(*(r.images[dataset] for r in holders))
        sizes = "; ".join(f"{r.name}: {len(r.images[dataset])}" for r in holders)
        out.append(
            f"The merged run folders cover different images of dataset {dataset} ({sizes} image(s); "
            f"{len(common)} in all of them, {len(union)} in any). Curves from different folders average "
            "different images: BD-rates are computed over the images each codec shares with the anchor "
            "(bd_rate.csv n_images), and the Curves table gives each curve's image count."
        )
    return out


def codec_version_warnings(results: pd.DataFrame) -> list[str]:
    """A warning per (dataset, codec spec) where one quality point's rows carry more than one
    ``codec_version`` (a learned codec's version names its quality level, so versions are compared
    per point)."""
    out = []
    if results.empty or "codec_version" not in results:
        return out
    for (dataset, codec), rows in results.groupby(["dataset", "codec"], sort=True):
        mixed = []
        for quality, point in rows.groupby("quality", sort=True):
            counts = point["codec_version"].astype(str).value_counts()
            if len(counts) > 1:
                mixed.append(f"quality {quality:g}: " + " vs ".join(
                    f"{v!r} ({n} rows)" for v, n in counts.sort_index().items()))
        if mixed:
            out.append(f"Codec {codec} in dataset {dataset} mixes codec versions within a quality point "
                       f"({_listing(mixed, 2)}): those points average results of different software or weights.")
    return out


def configuration_warnings(runs: Sequence[RunInfo]) -> list[str]:
    """Warnings when merged folders' run.json differ in metrics or package versions."""
    out = []
    known = [r for r in runs if r.config]
    missing = [r.name for r in runs if not r.config]
    if len(runs) > 1 and missing:
        out.append(f"run.json is missing or unreadable in {_listing(missing)}: its metric definitions and "
                   "software versions cannot be compared with the other folders'.")
    metrics = {r.name: r.configuration.get("metrics") for r in known if r.configuration.get("metrics") is not None}
    if len({tuple(sorted(map(str, m))) for m in metrics.values()}) > 1:
        desc = "; ".join(f"{name}: {', '.join(map(str, m))}" for name, m in metrics.items())
        out.append(f"The merged runs computed different metrics ({desc}): a metric column is empty for "
                   "the codecs of the runs that did not compute it.")
    packages: dict[str, dict[str, str]] = {}
    for r in known:
        for pkg, version in r.packages.items():
            packages.setdefault(str(pkg), {})[r.name] = str(version)
    differing = []
    for pkg, by_run in sorted(packages.items()):
        if len(set(by_run.values())) > 1:
            differing.append(f"{pkg} " + " vs ".join(f"{v} ({name})" for name, v in by_run.items()))
    if differing:
        out.append("The merged runs used different software versions, which can change codec output and "
                   f"metric values: {'; '.join(differing)}.")
    return out


def merge_warnings(data: RunData) -> list[str]:
    """Every warning about merged folders (none for a single folder, except mixed codec versions)."""
    out = []
    if len(data.runs) > 1:
        out += image_set_warnings(data.runs)
        out += configuration_warnings(data.runs)
    out += codec_version_warnings(data.results)
    return out


def curves_table(results: pd.DataFrame, summary: pd.DataFrame, bd: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """One row per (dataset, codec) curve: its label and spec, points, images, and the images its
    BD-rate against the anchor was computed over."""
    columns = ["dataset", "label", "codec", "points", "n_images", "n_images_every_point", "n_images_bd",
               "n_errors", "codec_version"]
    if summary.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    bd_images = {}
    if len(bd) and "n_images" in bd:
        first = bd.drop_duplicates(["dataset", "codec"])
        bd_images = {(str(d), str(c)): int(n) for d, c, n in first[["dataset", "codec", "n_images"]].itertuples(index=False)}
    by_curve = {(str(d), str(c)): g for (d, c), g in results.groupby(["dataset", "codec"])} if len(results) else {}
    for (dataset, codec), points in summary.groupby(["dataset", "codec"], sort=True):
        key = (str(dataset), str(codec))
        rows_ = by_curve.get(key)
        if rows_ is not None and len(rows_):
            n_all = rows_["image_id"].nunique()
            per_quality = rows_.groupby("quality")["image_id"].agg(lambda s: set(s.astype(str)))
            n_every = len(set.intersection(*per_quality.tolist()))
            versions = _listing(sorted(rows_["codec_version"].astype(str).unique()), 2)
        else:
            n_all = n_every = 0
            versions = ""
        rows.append({
            "dataset": key[0],
            "label": names.get(key[1], key[1]),
            "codec": key[1],
            "points": int((points["n_images"] > 0).sum()),
            "n_images": n_all,
            "n_images_every_point": n_every,
            "n_images_bd": bd_images.get(key, pd.NA),
            "n_errors": int(points["n_errors"].sum()),
            "codec_version": versions,
        })
    table = pd.DataFrame(rows, columns=columns)
    table["n_images_bd"] = table["n_images_bd"].astype("Int64")
    return table


def curve_image_notes(curves: pd.DataFrame, skip: Sequence[str] = ()) -> list[str]:
    """A note per dataset (but those in ``skip``) whose curves cover different numbers of images."""
    out = []
    for dataset, rows in curves.groupby("dataset", sort=True):
        if dataset in skip:
            continue
        counts = rows["n_images"]
        if len(rows) > 1 and counts.nunique() > 1:
            out.append(f"The curves of dataset {dataset} average different numbers of images ({counts.min()} to "
                       f"{counts.max()}; see the Curves table). Legends give each curve's count; BD-rates use the "
                       "images each codec shares with the anchor.")
    return out


def log_warnings(warnings: Sequence[str]) -> None:
    for w in warnings:
        log.warning("%s", w)
