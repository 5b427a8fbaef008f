"""Files written whole or not at all, and their SHA-256: one implementation for every package.

A killed process must never leave a half-written file that looks complete (a run folder's shard,
a dataset manifest, a training checkpoint, a report). Every writer therefore writes a hidden
temporary sibling and moves it into place. Paths may be local or fsspec URLs (``memory://``,
``gs://``…); local paths use ``os.replace``, which is atomic on POSIX.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "sha256_file", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]

_CHUNK = 1 << 20


def _is_url(path: str | os.PathLike) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary local path to write; moved onto ``path`` when the block succeeds, removed if not.

    For writers that want a file name rather than bytes (``torch.save``, ``Figure.savefig``).
    """
    path = Path(str(path).removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` (a local path or an fsspec URL) via a temporary sibling and a move."""
    if not _is_url(path):
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return
    import fsspec  # only object stores need it

    fs, p = fsspec.core.url_to_fs(str(path))
    directory, name = p.rsplit("/", 1)
    fs.makedirs(directory, exist_ok=True)
    tmp = f"{directory}/.{name}.tmp-{uuid.uuid4().hex[:8]}"
    with fs.open(tmp, "wb") as f:
        f.write(data)
    fs.mv(tmp, p)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = True) -> None:
    """``obj`` as JSON (values JSON cannot hold are written as ``str``), atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=str)
    write_text_atomic(path, text + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a local file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
