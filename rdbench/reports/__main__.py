"""``python -m rdbench.reports RUN_DIR [RUN_DIR…] [--out DIR] [--anchor jpeg] [--reference LIST]
[--reference-dataset NAME] | --list-references``

Rebuilds summary.csv, bd_rate.csv, plots/ and report.html from existing run folders (nothing is
re-encoded or re-measured). With several run folders their rows are merged and --out is required;
each set's FID/KID (set_metrics.csv) comes from the last folder that has it. Lists are written as
JSON (``'["a", "b"]'``, as RunBenchmark takes them) or comma-separated (``a,b``).
"""
from __future__ import annotations

import argparse
import json
import sys

from .bdrate import DEFAULT_ANCHOR


def parse_list(text: str) -> list[str]:
    """A list given as JSON (``["a", "b"]`` or ``"a"``) or comma-separated (``a,b``); ValueError if
    it looks like JSON but is not a list of strings."""
    text = (text or "").strip()
    if not text:
        return []
    if text[0] in '["':
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {text!r} ({exc})") from None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a JSON list of strings, got {text!r}")
        return [v.strip() for v in value if v.strip()]
    return [s.strip() for s in text.split(",") if s.strip()]


def _run_datasets(run_dirs) -> list[str]:
    """The dataset specs the run folders hold results or errors for (the dataset column only)."""
    from pathlib import Path

    import pyarrow.parquet as pq

    datasets: set[str] = set()
    for run_dir in run_dirs:
        for sub in ("results", "errors"):
            for path in sorted(Path(run_dir, sub).glob("*.parquet")):
                datasets |= {str(d) for d in pq.read_table(path, columns=["dataset"]).column(0).unique().to_pylist()}
    return sorted(datasets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rdbench.reports",
        description="Rebuild the tables, plots and HTML report of existing rdbench run folders "
                    "(several folders are merged). Lists: JSON or comma-separated.",
    )
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run folder(s) holding results/*.parquet")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: the run folder; required for several)")
    parser.add_argument("--anchor", default=DEFAULT_ANCHOR,
                        help="codec name (or full spec) BD-rates are measured against, or ref:SLUG for a published "
                             "curve, e.g. ref:vtm on Kodak (default: %(default)s)")
    parser.add_argument("--reference", default="", metavar="LIST",
                        help="published curves to overlay in grey: method slugs as a JSON list or comma-separated, "
                             "or all; --list-references prints the slugs")
    parser.add_argument("--reference-dataset", default="", metavar="NAME",
                        help="the published table (kodak, clic2020-professional, clic2020-mobile) for datasets "
                             "that are not recognised as one by name or by their files' content")
    parser.add_argument("--list-references", "--list-reference", dest="list_references", action="store_true",
                        help="print the reference slugs, the tables holding each, and exit")
    args = parser.parse_args(argv)

    # Imported here so that --help stays fast.
    from .build import build_report
    from .reference import check_reference, list_references

    if args.list_references:
        for slug, tables, label in list_references():
            print(f"{slug}\t{','.join(tables)}\t{label}")
        return 0
    if not args.run_dirs:
        parser.error("at least one RUN_DIR is required")
    if len(args.run_dirs) > 1 and not args.out:
        parser.error("--out is required when several run folders are merged")
    try:
        reference = parse_list(args.reference)
    except ValueError as exc:
        parser.error(f"--reference: {exc}")
    try:
        if reference:  # refused before anything is written, as a run refuses it before any work
            check_reference(reference, _run_datasets(args.run_dirs), args.reference_dataset)
        path = build_report(args.run_dirs, out_dir=args.out, anchor=args.anchor, reference=reference,
                            reference_dataset=args.reference_dataset)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
