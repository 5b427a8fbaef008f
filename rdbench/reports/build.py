"""``build_report``: run folder(s) → summary.csv, bd_rate.csv, plots/, report.html."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from rdbench.files import write_text_atomic

from .bdrate import DEFAULT_ANCHOR, write_bd_rate
from .html import render_report
from .plots import make_plots
from .reference import normalize_selection
from .runs import load_runs
from .summary import write_summary


def build_report(
    run_dirs: Sequence[str | Path] | str | Path,
    out_dir: str | Path | None = None,
    anchor: str = DEFAULT_ANCHOR,
    reference: Sequence[str] | str = (),
) -> Path:
    """Rebuild the tables, plots and HTML report of existing run folder(s); returns report.html's path.

    ``out_dir`` defaults to the run folder and is required when several folders are merged (their
    rows are concatenated; see :mod:`rdbench.reports.runs`). ``reference`` selects published curves
    to overlay (slugs, ``["all"]`` or empty); an unknown slug raises ValueError before anything is
    written. Nothing is recomputed from images: only the Parquet rows are read.
    """
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("no run folder given")
    if out_dir is None:
        if len(run_dirs) != 1:
            raise ValueError("out_dir is required when merging several run folders")
        out_dir = run_dirs[0]
    out_dir = Path(out_dir)
    selection = normalize_selection(reference)

    data = load_runs(run_dirs)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = write_summary(data.results, data.errors, out_dir / "summary.csv", data.set_metrics)
    bd = write_bd_rate(summary, out_dir / "bd_rate.csv", anchor=anchor)
    plots = make_plots(summary, out_dir / "plots", selection)

    notes = []
    if data.n_duplicates_dropped:
        notes.append(
            f"{data.n_duplicates_dropped} result row(s) appeared in more than one run folder; "
            "the row from the folder listed last was kept."
        )
    html = render_report(data.runs, data.results, data.errors, summary, bd, plots, out_dir,
                         anchor=anchor, reference=selection, notes=notes, set_metrics=data.set_metrics)
    path = out_dir / "report.html"
    write_text_atomic(path, html)
    return path
