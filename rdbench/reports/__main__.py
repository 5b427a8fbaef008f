"""``python -m rdbench.reports RUN_DIR [RUN_DIR…] [--out DIR] [--anchor jpeg] [--reference slug,slug|all]``

Rebuilds summary.csv, bd_rate.csv, plots/ and report.html from existing run folders (nothing is
re-encoded or re-measured). With several run folders their rows are merged and --out is required;
each set's FID/KID (set_metrics.csv) comes from the last folder that has it.
"""
from __future__ import annotations

import argparse
import sys

from .bdrate import DEFAULT_ANCHOR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rdbench.reports",
        description="Rebuild the tables, plots and HTML report of existing rdbench run folders.",
    )
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run folder(s) holding results/*.parquet")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: the run folder; required for several)")
    parser.add_argument("--anchor", default=DEFAULT_ANCHOR,
                        help="codec name (or full spec) BD-rates are measured against (default: %(default)s)")
    parser.add_argument("--reference", default="", metavar="SLUG,SLUG|all",
                        help="published curves to overlay in grey: comma-separated method slugs, or 'all'; "
                             "--list-reference prints the slugs")
    parser.add_argument("--list-reference", action="store_true", help="print the known reference slugs and exit")
    args = parser.parse_args(argv)

    # Imported here so that --help stays fast.
    from .build import build_report
    from .reference import known_methods

    if args.list_reference:
        print("\n".join(known_methods()))
        return 0
    if not args.run_dirs:
        parser.error("at least one RUN_DIR is required")
    if len(args.run_dirs) > 1 and not args.out:
        parser.error("--out is required when several run folders are merged")
    reference = [s.strip() for s in args.reference.split(",") if s.strip()]
    try:
        path = build_report(args.run_dirs, out_dir=args.out, anchor=args.anchor, reference=reference)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
