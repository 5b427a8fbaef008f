"""Published rate-distortion figures shipped as package data (``reference/*.csv``, see its README).

They are plotted as grey overlays; nothing here was measured by rdbench. Which file serves which
dataset:

* ``kodak.csv`` (plus the Kodak curves in ``toderici2017-rnn.csv`` and ``hific.csv``) → dataset ``kodak``
* ``clic2020-professional.csv`` → datasets whose name starts with ``clic2020-professional``
* ``clic2020-mobile.csv`` → datasets whose name starts with ``clic2020-mobile``

A ``folder:``/``glob:`` dataset gets the table of the catalogued set its files are byte-identical
to (:func:`rdbench.datasets.recognise.recognise_dataset`; Kodak by its sha256 list), and any other
dataset the table named by ``reference_dataset`` (``--reference-dataset``), unchecked.
:func:`reference_plan` says per dataset which table applies, why, and which selected methods it
holds; the report's note lists exactly those. :func:`check_reference` refuses, before a run does
any work, a selection that could draw nothing.

Note that the CLIC figures are means over the CLIC2020 *test* sets, so a ``-valid`` run is
compared with a different image set. Methods are selected by their slug (the ``method`` column);
``["all"]`` selects every curve available for the dataset.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from rdbench.datasets.recognise import recognise_dataset

REFERENCE_COLUMNS = ["method", "label", "source", "point", "bpp", "psnr_rgb", "ms_ssim_rgb", "ms_ssim_db", "note"]

# Extra Kodak curves stored in their own file formats.
TODERICI_SLUG = "toderici2017-rnn-tfc"
HIFIC_SLUG = "hific-tfc"


def _read(name: str) -> pd.DataFrame:
    path = resources.files("rdbench.reports").joinpath("reference", name)
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def ms_ssim_to_db(ms_ssim) -> np.ndarray:
    """−10·log10(1 − MS-SSIM); 1 maps to +inf."""
    x = np.asarray(ms_ssim, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return -10.0 * np.log10(1.0 - x)


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["ms_ssim_db"] = ms_ssim_to_db(df["ms_ssim_rgb"])
    for c in REFERENCE_COLUMNS:
        if c not in df:
            df[c] = np.nan
    return df[REFERENCE_COLUMNS].reset_index(drop=True)


def _toderici() -> pd.DataFrame:
    t = _read("toderici2017-rnn.csv")
    return pd.DataFrame(
        {
            "method": TODERICI_SLUG,
            "label": "Toderici 2017 RNN (CVPR) [TFC]",
            "source": "tensorflow/compression",
            "point": t["iteration"] + 1,
            "bpp": t["tfc_kodak_bpp"],
            "psnr_rgb": t["tfc_kodak_psnr_rgb"],
            "ms_ssim_rgb": t["tfc_kodak_ms_ssim_rgb"],
            "note": "toderici2017-rnn.csv tfc_kodak_* columns",
        }
    )


def _hific_kodak() -> pd.DataFrame:
    h = _read("hific.csv")
    h = h[(h["kind"] == "measured") & (h["dataset"] == "kodak")].sort_values("bpp")
    return pd.DataFrame(
        {
            "method": HIFIC_SLUG,
            "label": "HiFiC (paper figures; colour space unstated) [TFC]",
            "source": "tensorflow/compression",
            "point": np.arange(1, len(h) + 1),
            "bpp": h["bpp"].to_numpy(),
            "psnr_rgb": h["psnr"].to_numpy(),
            "ms_ssim_rgb": h["ms_ssim"].to_numpy(),
            "note": "hific.csv measured rows, dataset kodak",
        }
    )


@lru_cache(maxsize=None)
def _table(key: str) -> pd.DataFrame:
    if key == "kodak":
        return _finish(pd.concat([_read("kodak.csv"), _toderici(), _hific_kodak()], ignore_index=True))
    return _finish(_read(f"{key}.csv"))


REFERENCE_SETS = ("kodak", "clic2020-professional", "clic2020-mobile")
#: What each table's figures are means over (for the report's note), and how many images that is.
REFERENCE_IMAGES = {
    "kodak": "the 24 Kodak images",
    "clic2020-professional": "the 250 CLIC2020 professional test images",
    "clic2020-mobile": "the 178 CLIC2020 mobile test images",
}
REFERENCE_IMAGE_COUNTS = {"kodak": 24, "clic2020-professional": 250, "clic2020-mobile": 178}


def reference_set_for(dataset: str) -> str | None:
    """Which reference table covers ``dataset`` by its name (``kodak``, ``clic2020-…``), or None."""
    dataset = str(dataset)
    if dataset == "kodak":
        return "kodak"
    for prefix in ("clic2020-professional", "clic2020-mobile"):
        if dataset.startswith(prefix):
            return prefix
    return None


def resolve_reference_dataset(name: str) -> str:
    """The table a ``reference_dataset`` value names: a table name or a dataset name it covers
    (``clic2020-professional-valid`` → ``clic2020-professional``); "" stays "". Raises ValueError."""
    name = str(name or "").strip()
    if not name:
        return ""
    key = reference_set_for(name)
    if key is None:
        raise ValueError(
            f"unknown reference dataset {name!r}: published tables exist for {', '.join(REFERENCE_SETS)}"
        )
    return key


def methods_in(table: str) -> list[str]:
    """The method slugs of one reference table, sorted."""
    return sorted(set(_table(table)["method"]))


def method_labels(table: str) -> dict[str, str]:
    """Slug → legend label of one reference table's methods."""
    return {str(k): str(v) for k, v in _table(table).groupby("method")["label"].first().items()}


def known_methods() -> list[str]:
    """Every method slug in the reference tables, sorted."""
    slugs: set[str] = set()
    for key in REFERENCE_SETS:
        slugs |= set(_table(key)["method"])
    return sorted(slugs)


def list_references() -> list[tuple[str, list[str], str]]:
    """(slug, the tables that hold it, its legend label) for every known method, sorted by slug."""
    out: dict[str, tuple[list[str], str]] = {}
    for key in REFERENCE_SETS:
        for method, label in _table(key).groupby("method", sort=True)["label"].first().items():
            tables, first = out.get(method, ([], str(label)))
            out[method] = ([*tables, key], first)
    return [(slug, tables, label) for slug, (tables, label) in sorted(out.items())]


def normalize_selection(reference: Iterable[str] | str | None) -> list[str]:
    """Validate a selection: a list of slugs, ``["all"]``, or empty.

    A comma-separated string is accepted too. Raises ValueError naming the known slugs when one is
    unknown.
    """
    if reference is None:
        return []
    if isinstance(reference, str):
        reference = reference.split(",")
    items = [str(s).strip() for s in reference if str(s).strip()]
    if "all" in items:
        return ["all"]
    known = known_methods()
    unknown = [s for s in items if s not in known]
    if unknown:
        raise ValueError(
            f"unknown reference method(s): {', '.join(unknown)}. Known: all, {', '.join(known)}"
        )
    return list(dict.fromkeys(items))


@dataclass
class ReferenceChoice:
    """Which published table serves one dataset of a report, and why.

    ``how``: ``name`` (the dataset is that catalogued set), ``content`` (its files are
    byte-identical to ``recognised``), ``option`` (``reference_dataset`` names the table), or ""
    (no table; ``table`` is None). ``methods``: the selected slugs that table holds.
    """

    dataset: str
    table: str | None
    how: str = ""
    recognised: str = ""
    methods: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # selected slugs the table does not hold

    def describe(self) -> str:
        """Why this table applies (or why none does), one clause."""
        if self.table is None:
            return (f"no published table for this dataset (tables exist for {', '.join(REFERENCE_SETS)}; "
                    "--reference-dataset NAME applies one to a copy of such a set)")
        if self.how == "name":
            why = f"the dataset is {self.table}" if self.dataset == self.table else \
                f"the {self.table} table covers dataset {self.dataset}"
        elif self.how == "content":
            why = f"its files are byte-identical to the catalogued {self.recognised} set"
        else:
            why = f"--reference-dataset {self.table} (the images were not checked against that set)"
        return f"{why}; published figures are means over {REFERENCE_IMAGES.get(self.table, self.table)}"


def table_for(dataset: str, reference_dataset: str = "",
              files: Sequence[str] | None = None) -> tuple[str | None, str, str]:
    """(table, how, recognised set) for one dataset: by its name, by its files' content, or by
    ``reference_dataset`` (see :class:`ReferenceChoice`); (None, "", "") when none applies."""
    key = reference_set_for(dataset)
    if key is not None:
        return key, "name", ""
    recognised = recognise_dataset(dataset, files) if str(dataset).startswith(("folder:", "glob:")) else None
    if recognised:
        key = reference_set_for(recognised)
        if key is not None:
            return key, "content", recognised
    option = resolve_reference_dataset(reference_dataset)
    if option:
        return option, "option", ""
    return None, "", ""


def reference_plan(datasets: Iterable[str], reference: Sequence[str] | str | None,
                   reference_dataset: str = "") -> dict[str, ReferenceChoice]:
    """Per dataset, the table that applies and the selected methods it holds (empty selection:
    no methods). Raises ValueError for an unknown slug or reference dataset."""
    selection = normalize_selection(reference)
    resolve_reference_dataset(reference_dataset)
    plan = {}
    for dataset in dict.fromkeys(str(d) for d in datasets):
        table, how, recognised = table_for(dataset, reference_dataset)
        choice = ReferenceChoice(dataset, table, how, recognised)
        if table is not None and selection:
            available = methods_in(table)
            wanted = available if selection == ["all"] else selection
            choice.methods = [m for m in wanted if m in available]
            choice.missing = [m for m in wanted if m not in available]
        elif selection and selection != ["all"]:
            choice.missing = list(selection)
        plan[dataset] = choice
    return plan


def check_reference(selection: Sequence[str] | str | None, datasets: Sequence[str],
                    reference_dataset: str = "") -> None:
    """Refuse a reference selection that cannot be drawn, with a one-line ValueError.

    Refused: an unknown slug; an unknown ``reference_dataset``; a non-empty selection when none of
    ``datasets`` has a published table (by name, by content, or through ``reference_dataset``);
    a slug that none of the datasets' tables holds. Folder datasets are listed (and hashed only
    when their image count matches a catalogued set's).
    """
    plan = reference_plan(datasets, selection, reference_dataset)
    chosen = normalize_selection(selection)
    if not chosen:
        return
    tables = sorted({c.table for c in plan.values() if c.table is not None})
    names = ", ".join(str(d) for d in datasets) or "(none)"
    if not tables:
        raise ValueError(
            f"reference curves were asked for, but no dataset of the run ({names}) has a published table "
            f"(tables exist for {', '.join(REFERENCE_SETS)}; set reference_dataset / --reference-dataset to one of "
            "them if a dataset is a copy of such a set)"
        )
    if chosen == ["all"]:
        return
    drawable = {m for c in plan.values() for m in c.methods}
    absent = [s for s in chosen if s not in drawable]
    if absent:
        holders = {slug: tables_ for slug, tables_, _ in list_references()}
        detail = "; ".join(f"{s} is in {', '.join(holders.get(s, [])) or 'no table'}" for s in absent)
        raise ValueError(
            f"no published curve of reference method(s) {', '.join(absent)} for the run's dataset(s) "
            f"{names} (tables that apply: {', '.join(tables)}; {detail})"
        )


#: An anchor written ``ref:SLUG`` is the published curve SLUG rather than a codec of the run.
REFERENCE_ANCHOR_PREFIX = "ref:"


def reference_anchor_slug(anchor: str) -> str | None:
    """The published method an anchor names (``ref:vtm`` → ``vtm``), or None for a codec anchor."""
    anchor = str(anchor).strip()
    if not anchor.startswith(REFERENCE_ANCHOR_PREFIX):
        return None
    return anchor[len(REFERENCE_ANCHOR_PREFIX):].strip()


def reference_curve(table: str, slug: str) -> pd.DataFrame:
    """One published curve (columns REFERENCE_COLUMNS), sorted by bpp; empty when the table lacks it."""
    rows = _table(table)
    return rows[rows["method"] == slug].sort_values("bpp").reset_index(drop=True)


def describe_curve(table: str, slug: str) -> str:
    """Where a published anchor curve comes from, for bd_rate.csv's ``anchor_source``."""
    curve = reference_curve(table, slug)
    label = str(curve["label"].iloc[0]) if len(curve) else slug
    source = str(curve["source"].iloc[0]) if len(curve) else "?"
    return (f"published: {table} table, method {slug} ({label}; {source}), "
            f"means over {REFERENCE_IMAGES.get(table, table)}")


def check_reference_anchor(anchor: str, datasets: Sequence[str], reference_dataset: str = "") -> None:
    """Refuse, with a one-line ValueError, a ``ref:SLUG`` anchor that some dataset has no curve of.

    Each dataset needs a published table (by name, by content, or through ``reference_dataset``)
    holding SLUG. A codec anchor passes unchecked.
    """
    slug = reference_anchor_slug(anchor)
    if slug is None:
        return
    known = known_methods()
    if slug not in known:
        raise ValueError(f"unknown published curve {anchor!r}; give ref:SLUG with SLUG one of: {', '.join(known)}")
    resolve_reference_dataset(reference_dataset)
    for dataset in datasets:
        table, _, _ = table_for(str(dataset), reference_dataset)
        if table is None:
            raise ValueError(f"{anchor!r}: dataset {dataset!r} has no published table (tables exist for "
                             f"{', '.join(REFERENCE_SETS)}; --reference-dataset NAME applies one to a copy of such a set)")
        if slug not in methods_in(table):
            raise ValueError(f"{anchor!r}: the {table} table (dataset {dataset!r}) has no curve {slug!r}")


def load_reference(dataset: str, reference: Sequence[str] | str | None, table: str | None = "") -> pd.DataFrame:
    """The selected reference points for ``dataset`` (columns REFERENCE_COLUMNS).

    ``table``: the reference table to use; "" (default) picks it by the dataset's name, None means
    none. Slugs absent from the table are skipped; no table gives no rows.
    """
    selection = normalize_selection(reference)
    key = reference_set_for(dataset) if table == "" else table
    if not selection or key is None:
        return pd.DataFrame(columns=REFERENCE_COLUMNS)
    rows = _table(key)
    if selection != ["all"]:
        rows = rows[rows["method"].isin(selection)]
    return rows.sort_values(["method", "bpp"]).reset_index(drop=True)
