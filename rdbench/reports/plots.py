"""Rate-distortion and timing plots (matplotlib, Agg; no pyplot global state is touched).

Per dataset, into ``<out>/plots/``:

* ``rd_psnr_rgb_<dataset>.png/.svg`` and ``rd_ms_ssim_db_<dataset>.png/.svg``: one line per codec
  spec with markers; classical codecs dashed, learned codecs solid (the codec's family,
  :func:`rdbench.codecs.family`); optional published reference curves in grey (reference
  MS-SSIM is converted to dB for the dB plot).
* ``rd_lpips_<dataset>``, ``rd_fid_<dataset>``, ``rd_kid_<dataset>``: rate–perception plots (lower is
  better), drawn only when the run computed that metric (``--metrics``).
* ``time_<dataset>.png/.svg``: mean encode and decode time per image versus bpp, log-log.

Legends name codecs by their display name (``label=``, else the spec shortened; see
:mod:`rdbench.reports.labels`) and, when a plot's curves average different numbers of images, add
each curve's count (``n=…``). Colours and styles stay keyed by the full spec.

``<dataset>`` is the dataset name when it only holds letters, digits, ``.``, ``_`` and ``-``;
other names (``folder:/data/x``) are made safe and get a short hash (see :func:`file_slug`).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rdbench.codecs import family
from rdbench.metrics.registry import contract_plots, optional_plots

from .labels import display_names
from .reference import load_reference

#: Rate–quality plots of every report, and those drawn when the run computed the metric
#: (metric registry), by summary column → axis label.
RD_METRICS = {c.name: c.label for c in contract_plots()}
OPTIONAL_METRICS = {c.name: c.label for c in optional_plots()}
FIGSIZE = (7.0, 4.4)  # inches; fits a paper column pair at 100 %
DPI = 150
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
REF_STYLES = (("-", "."), ("--", "x"), (":", "+"), ("-.", "1"))
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def file_slug(dataset: str) -> str:
    """A file-name-safe form of a dataset name (unchanged when already safe)."""
    dataset = str(dataset)
    if _SAFE.match(dataset):
        return dataset
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("._")[:60] or "dataset"
    return f"{cleaned}-{hashlib.sha1(dataset.encode()).hexdigest()[:8]}"


def codec_styles(codecs: Sequence[str]) -> dict[str, dict]:
    """Stable colour/marker/line style per codec spec, shared by all plots of a report."""
    codecs = sorted({str(c) for c in codecs})
    palette = _palette(len(codecs))
    styles = {}
    for i, spec in enumerate(codecs):
        styles[spec] = {
            "color": palette[i],
            "marker": MARKERS[i % len(MARKERS)],
            "linestyle": "--" if family(spec) == "classical" else "-",
        }
    return styles


def _palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _new_figure(ncols: int = 1, figsize=FIGSIZE):
    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    # The tight bounding box, computed once for both formats (``bbox_inches="tight"`` would draw
    # the figure an extra time per file to find it).
    bbox = fig.get_tightbbox(fig.canvas.get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
    paths = []
    for ext in ("png", "svg"):
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, format=ext, dpi=DPI, bbox_inches=bbox, metadata=_metadata(ext))
        paths.append(path)
    return paths


def _metadata(ext: str) -> dict:
    # Reproducible files: no creation date / software version stamped in.
    if ext == "svg":
        return {"Date": None, "Creator": None}
    return {"Software": None}


def _legend(ax, n_entries: int) -> None:
    if n_entries == 0:
        return
    ncol = 1 if n_entries <= 16 else 2
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small" if n_entries <= 16 else "x-small",
              frameon=False, ncol=ncol, borderaxespad=0.0)


def _limits(values: np.ndarray, log: bool = False) -> tuple[float, float] | None:
    values = values[np.isfinite(values)]
    if log:
        values = values[values > 0]
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    if log:
        return lo / 1.25, hi * 1.25
    pad = (hi - lo) * 0.06 or max(abs(hi) * 0.05, 0.05)
    return lo - pad, hi + pad


def _image_counts(data: pd.DataFrame) -> dict[str, int]:
    """Spec → the most images any point of its curve averages."""
    return {str(c): int(n) for c, n in data.groupby(data["codec"].astype(str))["n_images"].max().items()}


def curve_labels(data: pd.DataFrame, names: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """Legend text per spec of one dataset's summary rows, and the plot's image-count caption."""
    names = names or display_names(data["codec"].astype(str).unique())
    counts = _image_counts(data)
    if not counts:
        return {}, "0 images"
    lo, hi = min(counts.values()), max(counts.values())
    if lo == hi:
        return {s: names.get(s, s) for s in counts}, f"{hi} image{'s' if hi != 1 else ''}"
    return {s: f"{names.get(s, s)} (n={n})" for s, n in counts.items()}, f"{lo}–{hi} images per curve"


def plot_rd(
    summary: pd.DataFrame,
    dataset: str,
    metric: str,
    out_dir: str | Path,
    reference: Sequence[str] | str | None = (),
    styles: dict[str, dict] | None = None,
    names: dict[str, str] | None = None,
    reference_table: str | None = "",
    drawn: set[str] | None = None,
) -> list[Path]:
    """One R-D plot (PNG and SVG) of ``metric`` for ``dataset``; returns the files written.

    ``names``: legend names by spec (default: display names). ``reference_table``: the published
    table to overlay from ("" = by the dataset's name, None = none); the slugs of the reference
    curves actually drawn are added to ``drawn``.
    """
    labels = RD_METRICS | OPTIONAL_METRICS
    if metric not in labels:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(labels)}")
    data = summary[(summary["dataset"].astype(str) == str(dataset)) & (summary["n_images"] > 0)]
    styles = styles or codec_styles(data["codec"].unique())
    legend, caption = curve_labels(data, names)
    fig, (ax,) = _new_figure()
    n_entries = 0
    for spec in sorted(data["codec"].astype(str).unique()):
        curve = data[data["codec"].astype(str) == spec].sort_values("bpp")
        ok = np.isfinite(curve["bpp"]) & np.isfinite(curve[metric])
        if not ok.any():
            continue
        st = styles.get(spec) or codec_styles([spec])[spec]
        ax.plot(curve["bpp"][ok], curve[metric][ok], label=legend.get(spec, spec), color=st["color"],
                marker=st["marker"], linestyle=st["linestyle"], linewidth=1.6, markersize=4.5, zorder=3)
        n_entries += 1
    xlim = _limits(data["bpp"].to_numpy(dtype=float))
    ylim = _limits(data[metric].to_numpy(dtype=float))

    ref = load_reference(dataset, reference, reference_table)
    greys = ("0.35", "0.55", "0.7")
    for i, (method, curve) in enumerate(ref.groupby("method", sort=True) if metric in ref else ()):
        curve = curve.sort_values("bpp")
        ok = np.isfinite(curve["bpp"]) & np.isfinite(curve[metric])
        if not ok.any():
            continue
        ls, mk = REF_STYLES[i % len(REF_STYLES)]
        ax.plot(curve["bpp"][ok], curve[metric][ok], label=f"[ref] {curve['label'].iloc[0]}",
                color=greys[(i // len(REF_STYLES)) % len(greys)], linestyle=ls, marker=mk,
                linewidth=1.0, markersize=3.5, zorder=2)
        n_entries += 1
        if drawn is not None:
            drawn.add(str(method))

    # Frame our own data; reference curves are clipped to it rather than stretching the axes.
    if xlim:
        ax.set_xlim(max(0.0, xlim[0]), xlim[1])
    if ylim:
        ax.set_ylim(*ylim)
    if n_entries == 0:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xlabel("Rate [bits per pixel]")
    ax.set_ylabel(labels[metric])
    ax.set_title(f"{dataset} — {caption}", fontsize="medium")
    ax.grid(True, which="major", alpha=0.35)
    _legend(ax, n_entries)
    paths = _save(fig, Path(out_dir), f"rd_{metric}_{file_slug(dataset)}")
    return paths


def plot_times(
    summary: pd.DataFrame,
    dataset: str,
    out_dir: str | Path,
    styles: dict[str, dict] | None = None,
    names: dict[str, str] | None = None,
) -> list[Path]:
    """Encode and decode time per image versus bpp (log-log) for ``dataset``."""
    data = summary[(summary["dataset"].astype(str) == str(dataset)) & (summary["n_images"] > 0)]
    styles = styles or codec_styles(data["codec"].unique())
    legend, _ = curve_labels(data, names)
    fig, axes = _new_figure(ncols=2, figsize=(10.0, 4.0))
    n_entries = 0
    for ax, column, title in zip(axes, ("encode_s", "decode_s"), ("Encode", "Decode")):
        any_data = False
        for spec in sorted(data["codec"].astype(str).unique()):
            curve = data[data["codec"].astype(str) == spec].sort_values("bpp")
            ok = (curve["bpp"] > 0) & (curve[column] > 0) & np.isfinite(curve[column])
            if not ok.any():
                continue
            st = styles.get(spec) or codec_styles([spec])[spec]
            ax.plot(curve["bpp"][ok], curve[column][ok],
                    label=legend.get(spec, spec) if column == "encode_s" else None,
                    color=st["color"], marker=st["marker"], linestyle=st["linestyle"], linewidth=1.4,
                    markersize=4)
            any_data = True
            n_entries += column == "encode_s"
        if any_data:
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.4")
        ax.set_xlabel("Rate [bits per pixel]")
        ax.set_ylabel(f"{title} time per image [s]")
        ax.set_title(f"{title} — {dataset}", fontsize="medium")
        ax.grid(True, which="major", alpha=0.35)
    if n_entries:
        handles, labels = axes[0].get_legend_handles_labels()
        axes[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
                        frameon=False, borderaxespad=0.0)
    fig.tight_layout()
    return _save(fig, Path(out_dir), f"time_{file_slug(dataset)}")


def make_plots(
    summary: pd.DataFrame,
    out_dir: str | Path,
    reference: Sequence[str] | str | None = (),
    reference_tables: Mapping[str, str | None] | None = None,
    drawn: dict[str, set[str]] | None = None,
) -> dict[str, dict[str, list[Path]]]:
    """All plots of all datasets into ``out_dir``: {dataset: {"psnr_rgb"|"ms_ssim_db"|…|"time": [png, svg]}}.

    ``reference_tables``: the published table per dataset (see :func:`plot_rd`; a dataset left out
    goes by its name). ``drawn`` receives, per dataset, the reference slugs drawn on any plot.
    """
    out_dir = Path(out_dir)
    styles = codec_styles(summary["codec"].astype(str).unique()) if len(summary) else {}
    names = display_names(summary["codec"].astype(str).unique()) if len(summary) else {}
    reference_tables = reference_tables or {}
    written: dict[str, dict[str, list[Path]]] = {}
    for dataset in sorted(summary["dataset"].astype(str).unique()):
        entry = {}
        table = reference_tables.get(dataset, "")
        seen: set[str] = set()
        rows = summary[summary["dataset"].astype(str) == dataset]
        metrics = list(RD_METRICS) + [m for m in OPTIONAL_METRICS
                                      if m in rows and np.isfinite(rows[m].to_numpy(dtype=float)).any()]
        for metric in metrics:
            entry[metric] = plot_rd(summary, dataset, metric, out_dir, reference, styles, names, table, seen)
        entry["time"] = plot_times(summary, dataset, out_dir, styles, names)
        written[dataset] = entry
        if drawn is not None:
            drawn[dataset] = seen
    return written
