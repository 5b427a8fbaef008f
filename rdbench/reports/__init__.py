"""Reports of a benchmark run: summary.csv, bd_rate.csv, plots/ and a self-contained report.html.

Entry point for the pipeline and for users::

    from rdbench.reports import build_report
    build_report(["reports/my-run"])                      # writes into the run folder
    build_report(["reports/a", "reports/b"], out_dir="reports/a+b", anchor="jpeg",
                 reference=["bmshj2018-hyperprior-mse"])

or ``python -m rdbench.reports RUN_DIR [RUN_DIR…] [--out DIR] [--anchor jpeg] [--reference slug,…|all]``.
"""
from __future__ import annotations

from .bdrate import BD_COLUMNS, BD_METRICS, bd_compare, codec_name, compute_bd_rates, select_anchor, write_bd_rate
from .build import build_report
from .html import render_report
from .plots import make_plots, plot_rd, plot_times
from .reference import known_methods, load_reference
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
    "codec_name",
    "compute_bd_rates",
    "known_methods",
    "load_reference",
    "load_runs",
    "make_plots",
    "plot_rd",
    "plot_times",
    "pooled_psnr",
    "read_set_metrics",
    "read_summary",
    "render_report",
    "select_anchor",
    "summarize",
    "write_bd_rate",
    "write_summary",
]
