"""Reading run folders: ``results/*.parquet``, ``errors/*.parquet`` and ``run.json``.

Several run folders can be merged (e.g. a classical run and a learned run): their rows are
concatenated. Should two folders hold a result for the same (dataset, image_id, codec, quality),
the one from the folder listed last wins, so re-running a part of a benchmark into a new folder and
listing it after the old one replaces the old numbers instead of counting the image twice. The
set-level metrics (``set_metrics.csv``: FID, KID) are per run and cannot be pooled across runs: a
(dataset, codec, quality) present in several folders takes the values of the folder listed last.

Each folder's :class:`RunInfo` also records which images it holds per dataset (results and errors),
so that :mod:`rdbench.reports.checks` can warn when merged folders cover different image sets.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rdbench.run.schema import ERRORS_SCHEMA, RESULTS_SCHEMA

from .set_metrics import KEYS as SET_KEYS
from .set_metrics import SET_METRICS_FILE, read_set_metrics, set_metrics_table

RESULT_KEY = ["dataset", "image_id", "codec", "quality"]


@dataclass
class RunInfo:
    """One run folder: its path and the (free-form) content of its ``run.json``."""

    path: Path
    config: dict = field(default_factory=dict)
    note: str = ""  # why ``config`` is empty or partial, if it is
    images: dict[str, frozenset[str]] = field(default_factory=dict)  # dataset → image ids (results, errors)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def configuration(self) -> dict:
        """run.json's ``configuration`` (older files: ``config``), or {}."""
        value = self.config.get("configuration", self.config.get("config", {}))
        return value if isinstance(value, dict) else {}

    @property
    def packages(self) -> dict:
        """run.json's ``environment.packages`` (older files: ``versions``), or {}."""
        env = self.config.get("environment")
        value = env.get("packages") if isinstance(env, dict) else self.config.get("versions", {})
        return value if isinstance(value, dict) else {}


@dataclass
class RunData:
    """The merged rows of one or more run folders."""

    results: pd.DataFrame
    errors: pd.DataFrame
    runs: list[RunInfo]
    n_duplicates_dropped: int = 0
    set_metrics: pd.DataFrame = field(default_factory=lambda: set_metrics_table([]))


def _conform(table: pa.Table, schema: pa.Schema, source: Path) -> pa.Table:
    """Select and cast ``table`` to ``schema``; nullable columns a writer left out become nulls."""
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table.column(f.name).cast(f.type))
        elif f.nullable:
            columns.append(pa.nulls(table.num_rows, type=f.type))
        else:
            raise ValueError(f"{source}: required column {f.name!r} is missing")
    return pa.Table.from_arrays(columns, schema=schema)


def read_parquet_folder(folder: Path, schema: pa.Schema) -> pd.DataFrame:
    """All ``*.parquet`` files directly under ``folder`` as one DataFrame with ``schema``'s columns.

    A missing folder, or one with no files, gives an empty frame with the right columns.
    """
    tables = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.parquet")):
            tables.append(_conform(pq.read_table(path), schema, path))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return table.to_pandas()


def read_run_json(run_dir: Path) -> RunInfo:
    path = run_dir / "run.json"
    if not path.is_file():
        return RunInfo(run_dir, {}, "run.json is missing")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return RunInfo(run_dir, {}, f"run.json could not be read: {exc}")
    if not isinstance(content, dict):
        return RunInfo(run_dir, {"run.json": content}, "run.json is not a JSON object")
    return RunInfo(run_dir, content)


def load_runs(run_dirs: Iterable[str | Path]) -> RunData:
    """Read and merge run folders (see the module docstring for how duplicates are resolved)."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("no run folder given")
    results, errors, set_metrics, runs = [], [], [], []
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run folder not found: {run_dir}")
        res = read_parquet_folder(run_dir / "results", RESULTS_SCHEMA)
        err = read_parquet_folder(run_dir / "errors", ERRORS_SCHEMA)
        results.append(res)
        errors.append(err)
        set_metrics.append(read_set_metrics(run_dir / SET_METRICS_FILE))
        info = read_run_json(run_dir)
        both = pd.concat([res[["dataset", "image_id"]], err[["dataset", "image_id"]]], ignore_index=True)
        info.images = {str(d): frozenset(g.astype(str)) for d, g in both.groupby("dataset")["image_id"]}
        runs.append(info)
    res = pd.concat(results, ignore_index=True) if len(results) > 1 else results[0]
    err = pd.concat(errors, ignore_index=True) if len(errors) > 1 else errors[0]
    sets = pd.concat(set_metrics, ignore_index=True) if len(set_metrics) > 1 else set_metrics[0]
    sets = sets.drop_duplicates(subset=SET_KEYS, keep="last").reset_index(drop=True)
    n_before = len(res)
    res = res.drop_duplicates(subset=RESULT_KEY, keep="last").reset_index(drop=True)
    return RunData(res, err, runs, n_before - len(res), sets)
