"""Published rate-distortion figures shipped as package data (``reference/*.csv``, see its README).

They are plotted as grey overlays; nothing here was measured by rdbench. Which file serves which
dataset:

* ``kodak.csv`` (plus the Kodak curves in ``toderici2017-rnn.csv`` and ``hific.csv``) → dataset ``kodak``
* ``clic2020-professional.csv`` → datasets whose name starts with ``clic2020-professional``
* ``clic2020-mobile.csv`` → datasets whose name starts with ``clic2020-mobile``

Note that the CLIC figures are means over the CLIC2020 *test* sets, so a ``-valid`` run is
compared with a different image set. Methods are selected by their slug (the ``method`` column);
``["all"]`` selects every curve available for the dataset.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

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


def reference_set_for(dataset: str) -> str | None:
    """Which reference table covers ``dataset`` (``kodak``, ``clic2020-…``), or None."""
    dataset = str(dataset)
    if dataset == "kodak":
        return "kodak"
    for prefix in ("clic2020-professional", "clic2020-mobile"):
        if dataset.startswith(prefix):
            return prefix
    return None


def known_methods() -> list[str]:
    """Every method slug in the reference tables, sorted."""
    slugs: set[str] = set()
    for key in REFERENCE_SETS:
        slugs |= set(_table(key)["method"])
    return sorted(slugs)


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


def load_reference(dataset: str, reference: Sequence[str] | str | None) -> pd.DataFrame:
    """The selected reference points for ``dataset`` (columns REFERENCE_COLUMNS).

    Slugs absent from the dataset's table are skipped; a dataset without a table gives no rows.
    """
    selection = normalize_selection(reference)
    key = reference_set_for(dataset)
    if not selection or key is None:
        return pd.DataFrame(columns=REFERENCE_COLUMNS)
    table = _table(key)
    if selection != ["all"]:
        table = table[table["method"].isin(selection)]
    return table.sort_values(["method", "bpp"]).reset_index(drop=True)
