"""``report.html``: one self-contained page (inline CSS, PNG plots embedded as data URIs, no script,
no network asset). Results come first: warnings, the curves and summary tables, BD-rates, the plots
(with what the grey reference curves are, per dataset), the errors and the per-image outliers; the
run configuration and environment come last, folded in a ``<details>`` element. Codecs are shown
by their display name, the full spec in the cell's ``title``. Every piece of text coming from data
is escaped with ``html.escape``.
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import math
from html import escape
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from rdbench.metrics.registry import METRICS, columns

from .runs import RunInfo

MAX_ERROR_ROWS = 500
OUTLIERS_PER_CODEC = 3

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em auto;
       max-width: 1400px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; }
h3 { margin-top: 1.2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em 0; }
th, td { border: 1px solid #d0d0d0; padding: 2px 6px; vertical-align: top; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
.note { color: #555; font-size: 0.9em; }
.warn { color: #a33; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
figcaption { font-size: 0.85em; color: #555; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: 0.95em; }
nav a { margin-right: 1em; }
details#runs { margin-top: 1.8em; border-top: 1px solid #ccc; padding-top: 0.4em; }
details#runs > summary { font-size: 1.5em; font-weight: bold; cursor: pointer; }
td[title] { text-decoration: underline dotted #999; }
"""

#: Summary columns left out of the HTML table when the run did not compute them (metric registry).
OPTIONAL_COLUMNS = tuple(c.name for m in METRICS.values() if not m.contract for c in m.columns)
# How each known column is formatted: number of decimals ("g" = significant digits for times).
FORMATS = {
    "quality": "q",
    "bpp": 4, "bpp_estimated": 4, "bpp_min": 4, "bpp_max": 4,
    **{c.name: c.digits for c in columns()},
    **{c.pooled: c.digits for c in columns() if c.pooled},
    "kid_std": "g",
    "encode_s": "g", "decode_s": "g",
    "bd_rate_percent": 2, "bd_metric": 3,
    "delta_psnr": 3,
}


def esc(value) -> str:
    return escape(str(value), quote=True)


def format_value(value, column: str = "") -> str:
    """Text of one cell: empty for null/NaN, ∞ for infinities, column-specific precision."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        fmt = FORMATS.get(column)
        if fmt == "q":
            return f"{v:g}"
        if fmt == "g":
            return f"{v:.4g}"
        if isinstance(fmt, int):
            return f"{v:.{fmt}f}"
        return f"{v:.6g}"
    return str(value)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


SPEC_COLUMNS = ("codec", "anchor")  # cells holding a codec spec: shown by display name


def html_table(df: pd.DataFrame, table_id: str | None = None, columns: Sequence[str] | None = None,
               headers: Mapping[str, str] | None = None, names: Mapping[str, str] | None = None) -> str:
    """An escaped HTML table of ``df`` (all or the given columns).

    With ``names`` (spec → display name), the cells of :data:`SPEC_COLUMNS` show the display name
    and carry the full spec in their ``title``.
    """
    columns = list(columns) if columns is not None else list(df.columns)
    headers = headers or {}
    names = names or {}
    id_attr = f' id="{esc(table_id)}"' if table_id else ""
    out = [f"<table{id_attr}>", "<thead><tr>"]
    out += [f"<th>{esc(headers.get(c, c))}</th>" for c in columns]
    out.append("</tr></thead><tbody>")
    numeric = {c: _is_numeric(df[c]) for c in columns}
    for row in df[columns].itertuples(index=False, name=None):
        cells = []
        for c, v in zip(columns, row):
            cls = ' class="num"' if numeric[c] else ""
            if c in SPEC_COLUMNS and isinstance(v, str) and names.get(v, v) != v:
                cells.append(f'<td title="{esc(v)}">{esc(names[v])}</td>')
                continue
            cells.append(f"<td{cls}>{esc(format_value(v, c))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _flatten(obj, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as (dotted key, text) pairs; lists and scalars as compact JSON/text."""
    items: list[tuple[str, str]] = []
    if isinstance(obj, Mapping) and obj:
        for k, v in obj.items():
            items += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        if isinstance(obj, str):
            text = obj
        else:
            try:
                text = json.dumps(obj, ensure_ascii=False, default=str)
            except (TypeError, ValueError):
                text = repr(obj)
        items.append((prefix or "(value)", text))
    return items


def runs_section(runs: Iterable[RunInfo]) -> str:
    runs = list(runs)
    out = ['<details id="runs">',
           f"<summary>Run configuration and environment ({len(runs)} run folder{'s' if len(runs) != 1 else ''})"
           "</summary>",
           '<p class="note">Each folder\'s run.json: every parameter, software versions, device, times.</p>']
    for run in runs:
        out.append(f"<h3>{esc(run.name)}</h3>")
        out.append(f'<p class="note">folder: <code>{esc(run.path)}</code></p>')
        if run.note:
            out.append(f'<p class="warn">{esc(run.note)}</p>')
        pairs = _flatten(run.config)
        if run.config:
            out.append('<table class="runjson"><thead><tr><th>key</th><th>value</th></tr></thead><tbody>')
            for k, v in pairs:
                out.append(f"<tr><td><code>{esc(k)}</code></td><td><pre>{esc(v)}</pre></td></tr>")
            out.append("</tbody></table>")
    out.append("</details>")
    return "\n".join(out)


def outliers(results: pd.DataFrame, per_codec: int = OUTLIERS_PER_CODEC) -> pd.DataFrame:
    """Per (dataset, codec), the images whose PSNR falls furthest below the mean at their quality.

    Ranking by the gap to the mean of the same (dataset, codec, quality) finds the images a codec
    handles worst, rather than simply listing its lowest quality setting.
    """
    cols = ["dataset", "codec", "quality", "image_id", "height", "width", "bpp", "psnr_rgb", "delta_psnr",
            "ms_ssim_db", "roundtrip_ok"]
    if results.empty:
        return pd.DataFrame(columns=cols)
    r = results[np.isfinite(results["psnr_rgb"].astype(float))].copy()
    if r.empty:
        return pd.DataFrame(columns=cols)
    mean = r.groupby(["dataset", "codec", "quality"])["psnr_rgb"].transform("mean")
    r["delta_psnr"] = r["psnr_rgb"] - mean
    r = r.sort_values(["dataset", "codec", "delta_psnr", "quality", "image_id"])
    return r.groupby(["dataset", "codec"], sort=True).head(per_codec)[cols].reset_index(drop=True)


def _data_uri_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def plots_section(plots: Mapping[str, Mapping[str, Sequence[Path]]], out_dir: Path,
                  reference_notes: Mapping[str, str] | None = None) -> str:
    titles = {c.name: f"Rate–{c.short or c.name}" for c in columns() if c.plot} | {"time": "Encode/decode time"}
    reference_notes = reference_notes or {}
    out = ['<h2 id="plots">Plots</h2>']
    if not plots:
        out.append('<p class="note">No results, so no plots.</p>')
    for dataset, entry in plots.items():
        out.append(f"<h3>{esc(dataset)}</h3>")
        if dataset in reference_notes:
            out.append(f'<p class="note reference-note">{esc(reference_notes[dataset])}</p>')
        for kind, paths in entry.items():
            png = next((p for p in paths if p.suffix == ".png"), None)
            if png is None:
                continue
            links = " · ".join(
                f'<a href="{esc(_relative(p, out_dir))}">{esc(p.suffix[1:].upper())}</a>' for p in paths
            )
            alt = f"{titles.get(kind, kind)}, {dataset}"
            out.append(
                f'<figure><img src="{_data_uri_png(png)}" alt="{esc(alt)}" width="900">'
                f"<figcaption>{esc(titles.get(kind, kind))} — files: {links}</figcaption></figure>"
            )
    return "\n".join(out)


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def errors_section(errors: pd.DataFrame, names: Mapping[str, str] | None = None) -> str:
    out = ['<h2 id="errors">Errors</h2>']
    if errors.empty:
        out.append('<p class="note">No errors were recorded.</p>')
        return "\n".join(out)
    counts = (
        errors.groupby(["dataset", "codec", "stage", "error_type"], dropna=False)
        .size().rename("count").reset_index()
        .sort_values(["dataset", "codec", "stage", "error_type"])
    )
    out.append(f"<p>{len(errors)} failed (image, codec, quality) attempts. An empty quality marks a failure "
               "before any quality was tried (such as an unreadable image); in summary.csv it counts "
               "towards every quality of that codec.</p>")
    out.append(html_table(counts, "errors-by-type", names=names))
    shown = errors.sort_values(["dataset", "codec", "quality", "image_id"], na_position="first")
    if len(shown) > MAX_ERROR_ROWS:
        out.append(f'<p class="note">Showing the first {MAX_ERROR_ROWS} of {len(shown)} errors; '
                   "all of them are in errors/*.parquet.</p>")
        shown = shown.head(MAX_ERROR_ROWS)
    cols = ["dataset", "image_id", "codec", "quality", "stage", "error_type", "message", "run_id"]
    out.append(html_table(shown, "errors-table", [c for c in cols if c in shown], names=names))
    return "\n".join(out)


def render_report(
    runs: Sequence[RunInfo],
    results: pd.DataFrame,
    errors: pd.DataFrame,
    summary: pd.DataFrame,
    bd: pd.DataFrame,
    plots: Mapping[str, Mapping[str, Sequence[Path]]],
    out_dir: str | Path,
    anchor: str = "jpeg",
    reference: Sequence[str] = (),
    notes: Sequence[str] = (),
    set_metrics: pd.DataFrame | None = None,
    curves: pd.DataFrame | None = None,
    reference_notes: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    """The report page as a string.

    ``notes``: warnings shown at the top. ``set_metrics``: the rows of set_metrics.csv, if any.
    ``curves``: the per-curve table (:func:`rdbench.reports.checks.curves_table`).
    ``reference_notes``: per dataset, what the grey curves are (or why there are none); shown
    under the dataset's plots. ``names``: codec display names by spec. ``reference`` (the selection
    as asked for) is kept for callers; what was drawn is in ``reference_notes``.
    """
    out_dir = Path(out_dir)
    names = dict(names or {})
    run_names = ", ".join(r.name for r in runs)
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>rdbench report — {esc(run_names)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>rdbench report — {esc(run_names)}</h1>",
        f'<p class="note">Generated {esc(generated)} from {len(runs)} run folder(s): '
        f"{len(results)} result rows, {len(errors)} error rows, "
        f"{summary['dataset'].nunique() if len(summary) else 0} dataset(s), "
        f"{summary['codec'].nunique() if len(summary) else 0} codec spec(s).</p>",
        '<nav><a href="#summary">Summary</a><a href="#bd-rate">BD-rate</a><a href="#plots">Plots</a>'
        '<a href="#errors">Errors</a><a href="#outliers">Outliers</a><a href="#runs">Configuration</a></nav>',
    ]
    if notes:
        parts.append('<div id="warnings">')
        for note in notes:
            parts.append(f'<p class="warn">⚠ {esc(note)}</p>')
        parts.append("</div>")

    parts.append('<h2 id="summary">Summary</h2>')
    if curves is not None and len(curves):
        parts.append('<h3 id="curves">Curves</h3>')
        parts.append(
            '<p class="note">One row per (dataset, codec) curve. n_images: the images the curve has results for; '
            "n_images_every_point: those with a result at every quality point; n_images_bd: the images its "
            "BD-rate against the anchor was computed over (shared with the anchor at every point of both "
            "curves; empty for the anchor itself). label: what plots and tables call the codec; codec: its "
            "full spec.</p>"
        )
        parts.append(html_table(curves, "curves-table"))
    parts.append(
        '<p class="note">One row per (dataset, codec, quality); n_images is the number of images that point '
        "averages (means over them, nulls ignored), except psnr_rgb_pooled: the PSNR of the squared error "
        "summed over the set. bpp counts the whole bitstream. Times are seconds per image. Also in summary.csv "
        "(full codec specs).</p>"
    )
    # Optional metrics the run did not compute would only be empty columns.
    shown = [c for c in summary.columns if c not in OPTIONAL_COLUMNS or summary[c].notna().any()]
    parts.append(html_table(summary, "summary-table", shown, names=names) if len(summary) else
                 '<p id="summary-table">No results.</p>')
    if set_metrics is not None and len(set_metrics):
        parts.append('<h3 id="set-metrics">FID and KID per set</h3>')
        parts.append(
            '<p class="note">Set-level: over the 256×256 patches of every reconstruction of the (dataset, codec, '
            "quality) against the same patches of the originals (an aligned grid plus one shifted by half a "
            "patch; images below 256 px have none and count as skipped). With few patches FID is biased "
            "upwards: compare codecs on the same set. Also in set_metrics.csv.</p>"
        )
        parts.append(html_table(set_metrics, "set-metrics-table", names=names))

    parts.append('<h2 id="bd-rate">BD-rate</h2>')
    anchor_shown = names.get(anchor, anchor)
    if str(anchor).startswith("ref:"):
        sources = sorted(set(bd["anchor_source"].astype(str))) if "anchor_source" in bd and len(bd) else []
        against = (f"Against the published curve <code>{esc(anchor)}</code> ({esc('; '.join(sources))}), "
                   "measured by others on their own software versions: each codec's curve is its mean over its "
                   "n_images images, the published one a mean over the set its table names. Negative bd_rate_percent: ")
    else:
        against = (f"Against the anchor codec <code>{esc(anchor_shown)}</code>, like for like: each row "
                   "is computed over the n_images images that the codec and the anchor both have at every quality "
                   "point, both curves recomputed as means over exactly those images. Negative bd_rate_percent: ")
    parts.append(
        f"<p class=\"note\">{against}"
        "fewer bits than the anchor at equal quality (integrated over the overlapping metric range); "
        "bd_metric: quality gain in dB at equal rate over the overlapping bpp range [bpp_min, bpp_max]. "
        "Empty values come with a reason. Also in bd_rate.csv (full codec specs).</p>"
    )
    bd_columns = [c for c in bd.columns if c != "anchor_source"]  # said once, in the note above
    if "n_images" in bd_columns and "anchor" in bd_columns:  # shown next to the codecs it is about
        bd_columns.remove("n_images")
        bd_columns.insert(bd_columns.index("anchor") + 1, "n_images")
    parts.append(html_table(bd, "bd-rate-table", bd_columns, names=names) if len(bd) else
                 '<p id="bd-rate-table">No codec to compare with the anchor.</p>')

    parts.append(plots_section(plots, out_dir, reference_notes))

    parts.append(errors_section(errors, names))

    parts.append('<h2 id="outliers">Per-image outliers</h2>')
    parts.append(
        f'<p class="note">For each codec, the {OUTLIERS_PER_CODEC} images whose PSNR falls furthest below '
        "the codec's mean PSNR at the same quality (delta_psnr, dB).</p>"
    )
    out_tab = outliers(results)
    parts.append(html_table(out_tab, "outliers-table", names=names) if len(out_tab) else
                 '<p id="outliers-table">No results.</p>')
    if len(results) and "roundtrip_ok" in results and (~results["roundtrip_ok"].astype(bool)).any():
        bad = results[~results["roundtrip_ok"].astype(bool)]
        parts.append(f'<h3 class="warn">Round-trip mismatches ({len(bad)})</h3>')
        parts.append('<p class="note">A second, independent decode of the same bytes gave a different image.</p>')
        parts.append(html_table(bad, "roundtrip-table",
                                ["dataset", "codec", "quality", "image_id", "bpp", "psnr_rgb", "device"], names=names))

    parts.append(runs_section(runs))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
