"""Reports of a benchmark run: summary.csv, bd_rate.csv, plots/ and a self-contained report.html.

Entry point for the pipeline and for users::

    from rdbench.reports import build_report
    build_report(["reports/my-run"])                      # writes into the run folder
    build_report(["reports/a", "reports/b"], out_dir="reports/a+b", anchor="jpeg",
                 reference=["bmshj2018-hyperprior-mse"], reference_dataset="kodak")

or ``python -m rdbench.reports RUN_DIR [RUN_DIR…] [--out DIR] [--anchor jpeg] [--reference LIST]
[--reference-dataset NAME]`` (``--list-references`` prints the slugs). ``check_reference`` refuses a
reference selection that could draw nothing, before a run starts.
"""
from __future__ import annotations

from .bdrate import BD_COLUMNS, BD_METRICS, bd_compare, codec_name, compute_bd_rates, select_anchor, write_bd_rate
from .build import build_report
from .checks import merge_warnings
from .html import render_report
from .plots import make_plots, plot_rd, plot_times
from .labels import display_names
from .reference import check_reference, known_methods, list_references, load_reference, recognise_dataset
from .runs import RunData, RunInfo, load_runs
from .set_metrics import SET_METRICS_COLUMNS, read_set_metrics
from .summary import SUMMARY_COLUMNS, pooled_psnr, read_summary, summarize, write_summary

__all__ = [
    "BD_COLUMNS",
    "BD_METRICS",
    "RunData",
    "RunInfo",
    "SET_METRICS_COLUMNS",
    "SUMMARY_COLUMNS",
    "bd_compare",
    "build_report",
    "check_reference",
    "codec_name",
    "compute_bd_rates",
    "display_names",
    "known_methods",
    "list_references",
    "load_reference",
    "load_runs",
    "make_plots",
    "merge_warnings",
    "plot_rd",
    "plot_times",
    "pooled_psnr",
    "read_set_metrics",
    "read_summary",
    "recognise_dataset",
    "render_report",
    "select_anchor",
    "summarize",
    "write_bd_rate",
    "write_summary",
]
