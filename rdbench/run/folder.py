"""The run folder on disk or an object store: shard files, atomic writes, run.json.

Paths go through fsspec, so an output root may be a local folder, ``file:///…``, ``memory://…``
(tests), or ``gs://…`` / ``s3://…`` where gcsfs / s3fs are installed. Every file is written
under a temporary name and moved into place, so a killed run never leaves a half-written file
that looks complete; a shard counts as done exactly when its results file exists.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from rdbench.files import write_bytes_atomic, write_json_atomic
from rdbench.run.schema import ERRORS_SCHEMA, RESULTS_SCHEMA

__all__ = [
    "count_rows",
    "completed_shards",
    "exists",
    "feature_files",
    "is_local",
    "join",
    "local_copy",
    "read_bytes",
    "read_json",
    "shard_results_path",
    "worker_id",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_shard",
]


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _fs(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return fsspec.core.url_to_fs(path)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts]) if "://" in base else os.path.join(base, *parts)


def exists(path: str) -> bool:
    fs, p = _fs(path)
    return fs.exists(p)


def read_json(path: str) -> Any:
    fs, p = _fs(path)
    with fs.open(p, "rb") as f:
        return json.loads(f.read().decode())


def worker_id() -> str:
    """``host:pid`` of the process writing a shard (kept in the file's metadata, for provenance)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _parquet_bytes(rows: Sequence[dict], schema: pa.Schema) -> bytes:
    schema = schema.with_metadata({"rdbench.worker": worker_id()})
    table = pa.Table.from_pylist(list(rows), schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def shard_results_path(run_dir: str, shard_name: str) -> str:
    return join(run_dir, "results", f"{shard_name}.parquet")


def write_shard(run_dir: str, shard_name: str, rows: Sequence[dict], errors: Sequence[dict],
                features: bytes | None = None) -> None:
    """Write one shard: features (if any), errors, then results, which marks the shard complete.

    A run killed between the writes redoes the shard and overwrites the same features and
    errors files, so nothing is doubled. ``features``: the shard's FID/KID patch features
    (:mod:`rdbench.metrics.shardfeatures`), when the run computes set-level metrics.
    """
    if features is not None:
        write_bytes_atomic(join(run_dir, "features", f"{shard_name}.npz"), features)
    errors_path = join(run_dir, "errors", f"{shard_name}.parquet")
    if errors:
        write_bytes_atomic(errors_path, _parquet_bytes(errors, ERRORS_SCHEMA))
    elif exists(errors_path):
        fs, p = _fs(errors_path)
        fs.rm(p)
    write_bytes_atomic(shard_results_path(run_dir, shard_name), _parquet_bytes(rows, RESULTS_SCHEMA))


def _shard_files(run_dir: str, kind: str, suffix: str = ".parquet") -> list[str]:
    """Shard files of ``results``, ``errors`` or ``features`` (temporary files excluded), as fs paths."""
    fs, p = _fs(join(run_dir, kind))
    if not fs.exists(p):
        return []
    return sorted(f for f in fs.glob(f"{p}/shard-*{suffix}") if not f.rsplit("/", 1)[-1].startswith("."))


def feature_files(run_dir: str) -> list[str]:
    """URLs (or local paths) of the run's ``features/<shard>.npz`` files, in shard order."""
    fs, _ = _fs(run_dir)
    return [fs.unstrip_protocol(f) if "://" in run_dir else f for f in _shard_files(run_dir, "features", ".npz")]


def read_bytes(path: str) -> bytes:
    fs, p = _fs(path)
    with fs.open(p, "rb") as f:
        return f.read()


def completed_shards(run_dir: str) -> set[str]:
    """Names of the shards whose results file exists."""
    return {f.rsplit("/", 1)[-1].removesuffix(".parquet") for f in _shard_files(run_dir, "results")}


def count_rows(run_dir: str, kind: str) -> int:
    """Rows in ``results`` or ``errors`` shard files, read from the Parquet footers only."""
    fs, _ = _fs(run_dir)
    total = 0
    for f in _shard_files(run_dir, kind):
        with fs.open(f, "rb") as fh:
            total += pq.ParquetFile(fh).metadata.num_rows
    return total


@contextlib.contextmanager
def local_copy(run_dir: str, inputs: Sequence[str] = ("results", "errors", "run.json")) -> Iterator[str]:
    """A local folder holding ``run_dir``'s ``inputs``; files written there are uploaded back.

    For tools that only work on local files (pandas, matplotlib). A local run folder is
    yielded as it is.
    """
    if is_local(run_dir):
        yield run_dir.removeprefix("file://")
        return
    fs, remote = _fs(run_dir)
    with tempfile.TemporaryDirectory(prefix="rdbench-") as tmp:
        for name in inputs:
            if fs.exists(f"{remote}/{name}"):
                fs.get(f"{remote}/{name}", os.path.join(tmp, name), recursive=True)
        before = {p for p in Path(tmp).rglob("*") if p.is_file()}
        yield tmp
        for p in sorted(Path(tmp).rglob("*")):
            if p.is_file() and p not in before:
                write_bytes_atomic(join(run_dir, *p.relative_to(tmp).parts), p.read_bytes())
