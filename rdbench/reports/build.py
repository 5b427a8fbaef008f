"""``build_report``: run folder(s) → summary.csv, bd_rate.csv, plots/, report.html."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from rdbench.files import write_text_atomic

from .bdrate import DEFAULT_ANCHOR, write_bd_rate
from .checks import curve_image_notes, curves_table, differing_image_sets, log_warnings, merge_warnings
from .html import render_report
from .labels import display_names
from .plots import make_plots
from .reference import (REFERENCE_IMAGE_COUNTS, ReferenceChoice, check_reference_anchor, method_labels,
                        normalize_selection, reference_anchor_slug, reference_plan, resolve_reference_dataset,
                        table_for)
from .runs import load_runs
from .summary import write_summary


def build_report(
    run_dirs: Sequence[str | Path] | str | Path,
    out_dir: str | Path | None = None,
    anchor: str = DEFAULT_ANCHOR,
    reference: Sequence[str] | str = (),
    reference_dataset: str = "",
) -> Path:
    """Rebuild the tables, plots and HTML report of existing run folder(s); returns report.html's path.

    ``out_dir`` defaults to the run folder and is required when several folders are merged (their
    rows are concatenated; see :mod:`rdbench.reports.runs`). BD-rates compare each codec with the
    anchor over the images both share (see :mod:`rdbench.reports.bdrate`); merged folders that
    differ in images, codec versions, metrics or software versions get a warning in the report
    and in the log. ``reference`` selects published curves to overlay (slugs, ``["all"]`` or
    empty); a dataset gets the table of its catalogued name, of the catalogued set its files are
    byte-identical to, or else of ``reference_dataset`` (a table name such as ``kodak``). An
    ``anchor`` written ``ref:SLUG`` is that published curve of the dataset's table. An unknown
    slug, reference dataset or published anchor raises ValueError before anything is written. Nothing is
    recomputed from images: only the Parquet rows are read.
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
    resolve_reference_dataset(reference_dataset)

    data = load_runs(run_dirs)
    reference_tables = None
    if reference_anchor_slug(anchor) is not None:  # a published anchor: refuse one no dataset has, before writing
        in_run = sorted({str(d) for frame in (data.results, data.errors) if "dataset" in frame for d in frame["dataset"]})
        check_reference_anchor(anchor, in_run, reference_dataset)
        reference_tables = {d: table_for(d, reference_dataset)[0] for d in in_run}
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = write_summary(data.results, data.errors, out_dir / "summary.csv", data.set_metrics)
    bd = write_bd_rate(summary, out_dir / "bd_rate.csv", anchor=anchor, results=data.results,
                       reference_tables=reference_tables)
    datasets = sorted(summary["dataset"].astype(str).unique()) if len(summary) else []
    plan = reference_plan(datasets, selection, reference_dataset) if selection else {}
    drawn: dict[str, set[str]] = {}
    plots = make_plots(summary, out_dir / "plots", selection,
                       reference_tables={d: c.table for d, c in plan.items()}, drawn=drawn)

    names = display_names(summary["codec"].astype(str).unique()) if len(summary) else {}
    curves = curves_table(data.results, summary, bd, names)
    warnings = merge_warnings(data)
    reference_notes, reference_warnings = _reference_notes(plan, drawn, summary)
    warnings += reference_warnings
    log_warnings(warnings)
    already = differing_image_sets(data.runs) if len(data.runs) > 1 else []
    notes = list(warnings) + curve_image_notes(curves, skip=already)
    if data.n_duplicates_dropped:
        notes.append(
            f"{data.n_duplicates_dropped} result row(s) appeared in more than one run folder; "
            "the row from the folder listed last was kept."
        )
    html = render_report(data.runs, data.results, data.errors, summary, bd, plots, out_dir,
                         anchor=anchor, reference=selection, notes=notes, set_metrics=data.set_metrics,
                         curves=curves, reference_notes=reference_notes, names=names)
    path = out_dir / "report.html"
    write_text_atomic(path, html)
    return path


def _reference_notes(plan: Mapping[str, ReferenceChoice], drawn: Mapping[str, set[str]],
                     summary) -> tuple[dict[str, str], list[str]]:
    """Per dataset, the note under its plots naming exactly the grey curves drawn (or why none
    was); and a warning per dataset where reference curves were asked for and none was drawn."""
    notes, warnings = {}, []
    for dataset, choice in plan.items():
        methods = sorted(drawn.get(dataset, set()))
        if methods:
            labels = method_labels(choice.table)
            listing = "; ".join(f"{labels.get(m, m)} ({m})" for m in methods)
            text = (f"Grey curves: published figures from the {choice.table} table ({choice.describe()}), "
                    f"measured by others on their own software versions: {listing}.")
            skipped = [m for m in choice.missing] + [m for m in choice.methods if m not in drawn.get(dataset, set())]
            if skipped:
                text += f" Selected but not in this table or without points for these metrics: {', '.join(skipped)}."
            n_run = int(summary.loc[summary["dataset"].astype(str) == dataset, "n_images"].max())
            expected = REFERENCE_IMAGE_COUNTS.get(choice.table)
            if expected and n_run != expected:
                text += (f" This run's curves average at most {n_run} image(s), the published ones "
                         f"{expected}: the comparison is not like for like.")
            notes[dataset] = text
        else:
            if choice.table is None:
                why = choice.describe()
            elif choice.methods:
                why = (f"the {choice.table} table ({choice.describe()}) has no points of the selected "
                       f"method(s) {', '.join(choice.methods)} for these metrics")
            else:
                why = (f"none of the selected method(s) ({', '.join(choice.missing)}) is in the "
                       f"{choice.table} table ({choice.describe()})")
            text = f"No grey (published) curves drawn for {dataset}: {why}."
            notes[dataset] = text
            warnings.append(text)
    return notes, warnings
