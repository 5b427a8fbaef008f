"""The run folder on disk (or an object store): shard files, atomic writes, run.json.

Paths go through Beam's ``FileSystems`` so an output root such as ``gs://bucket/reports``
works as well as a local folder. Every file is written under a temporary name and renamed
into place, so a killed run never leaves a half-written file that looks complete; a shard
counts as done exactly when its results file exists.
"""
from __future__ import annotations

import io
import json
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from rdbench.schema import ERRORS_SCHEMA, RESULTS_SCHEMA

__all__ = [
    "join",
    "exists",
    "write_bytes_atomic",
    "write_json_atomic",
    "read_json",
    "write_shard",
    "completed_shards",
    "shard_results_path",
]


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and a rename."""
    directory, name = FileSystems.split(path)
    if not FileSystems.exists(directory):
        try:
            FileSystems.mkdirs(directory)
        except OSError:  # created meanwhile by another worker
            pass
    tmp = join(directory, f".{name}.tmp-{uuid.uuid4().hex[:8]}")
    with FileSystems.create(tmp) as f:
        f.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def write_json_atomic(path: str, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json(path: str) -> Any:
    with FileSystems.open(path) as f:
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


def write_shard(run_dir: str, shard_name: str, rows: Sequence[dict], errors: Sequence[dict]) -> None:
    """Write one shard: errors first, then results, which marks the shard complete.

    A run killed between the two writes redoes the shard and overwrites the same errors
    file, so nothing is doubled.
    """
    errors_path = join(run_dir, "errors", f"{shard_name}.parquet")
    if errors:
        write_bytes_atomic(errors_path, _parquet_bytes(errors, ERRORS_SCHEMA))
    elif FileSystems.exists(errors_path):
        FileSystems.delete([errors_path])
    write_bytes_atomic(shard_results_path(run_dir, shard_name), _parquet_bytes(rows, RESULTS_SCHEMA))


def count_rows(run_dir: str, kind: str) -> int:
    """Rows in ``results`` or ``errors`` shard files, read from the Parquet footers only."""
    try:
        matches = FileSystems.match([join(run_dir, kind, "shard-*.parquet")])[0].metadata_list
    except Exception:  # noqa: BLE001 - no folder, no rows
        return 0
    total = 0
    for m in matches:
        with FileSystems.open(m.path) as f:
            total += pq.ParquetFile(io.BytesIO(f.read())).metadata.num_rows
    return total


def completed_shards(run_dir: str) -> set[str]:
    """Names of the shards whose results file exists (temporary files excluded)."""
    pattern = join(run_dir, "results", "shard-*.parquet")
    try:
        matches = FileSystems.match([pattern])[0].metadata_list
    except Exception:  # noqa: BLE001 - a missing folder means nothing is complete
        return set()
    names = set()
    for m in matches:
        base = FileSystems.split(m.path)[1]
        if not base.startswith("."):
            names.add(base.removesuffix(".parquet"))
    return names
