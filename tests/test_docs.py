"""docs/contracts.md states the contracts; these tests keep it equal to the code."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from rdbench.run.schema import ERRORS_SCHEMA, RESULTS_SCHEMA, STAGES

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "docs" / "contracts.md"
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def table_under(heading: str, path: Path = CONTRACTS) -> list[list[str]]:
    """The body rows of the first table after the Markdown heading ``heading`` (exact text)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line.lstrip("#").strip() == heading and line.startswith("#")]
    assert starts, f"{path.name}: no heading {heading!r}"
    rows: list[list[str]] = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append([c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]])
        elif rows:
            break
    assert len(rows) > 2, f"{path.name}: no table under {heading!r}"
    return rows[2:]  # without the header and the |---| line


def _name(cell: str) -> str:
    return cell.strip("`")


def _csv_type(dtype) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "string"
    raise AssertionError(f"unexpected dtype {dtype}")


@pytest.mark.parametrize(("heading", "schema"), [("`results/*.parquet`", RESULTS_SCHEMA),
                                                  ("`errors/*.parquet`", ERRORS_SCHEMA)])
def test_parquet_tables_equal_the_schemas(heading, schema):
    documented = [(_name(r[0]), r[1], r[2]) for r in table_under(heading)]
    actual = [(f.name, str(f.type), "yes" if f.nullable else "no") for f in schema]
    assert documented == actual


def test_error_stages():
    assert [_name(r[0]) for r in table_under("Error stages")] == list(STAGES)


def _csv_tables():
    from rdbench.reports.bdrate import BD_COLUMNS, compute_bd_rates
    from rdbench.reports.set_metrics import SET_METRICS_COLUMNS, set_metrics_table
    from rdbench.reports.summary import SUMMARY_COLUMNS, summarize

    summary = summarize(RESULTS_SCHEMA.empty_table().to_pandas())
    return {
        "`summary.csv`": (SUMMARY_COLUMNS, summary),
        "`bd_rate.csv`": (BD_COLUMNS, compute_bd_rates(summary)),
        "`set_metrics.csv`": (SET_METRICS_COLUMNS, set_metrics_table([])),
    }


@pytest.mark.parametrize("heading", ["`summary.csv`", "`bd_rate.csv`", "`set_metrics.csv`"])
def test_csv_tables_equal_the_column_lists(heading):
    columns, empty = _csv_tables()[heading]
    rows = table_under(heading)
    assert [_name(r[0]) for r in rows] == list(columns)
    assert list(empty.columns) == list(columns)
    assert [r[1] for r in rows] == [_csv_type(empty[c].dtype) for c in columns]


def test_quality_scales_equal_the_codecs_ladders():
    from rdbench.codecs import get_codec
    from rdbench.codecs.base import BUILTIN

    rows = table_under("Quality scales")
    documented = {_name(r[0]): [float(q) for q in r[2].split(",")] for r in rows}
    assert sorted(documented) == sorted(BUILTIN)  # the built-ins (other tests register codecs at run time)
    for name, ladder in documented.items():
        assert ladder == get_codec(name).default_qualities(), name


def test_runbenchmark_parameters_are_documented():
    from pipelines import RunBenchmark

    documented = [_name(r[0]) for r in table_under("`RunBenchmark` parameters")]
    actual = ["--" + name.replace("_", "-") for name, _ in RunBenchmark.get_params()]
    assert sorted(documented) == sorted(actual)


_SCANNED = ("README.md", "docs", "rdbench", "pipelines", "benchmarks", "tests")


def _files():
    for entry in _SCANNED:
        path = ROOT / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts:
                    yield f


def test_no_reference_to_the_external_design_document():
    needle = ("DESIGN" + ".md").encode()  # spelled so that this file does not match itself
    offenders = [str(f.relative_to(ROOT)) for f in _files() if needle in f.read_bytes()]
    assert offenders == []


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file."""
    headings = [line.lstrip("#").strip() for line in path.read_text(encoding="utf-8").splitlines()
                if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))])
def test_relative_links_resolve(page):
    path = ROOT / page
    missing = []
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        file, _, anchor = target.partition("#")
        linked = path.parent / file if file else path
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            missing.append(target)
    assert missing == []
