"""Files written whole or not at all, and their digests: one implementation for every package.

A killed process must never leave a half-written file that looks complete (a run folder's shard,
a dataset manifest, a training checkpoint, a report). Every writer therefore writes a hidden
temporary sibling and moves it into place. Paths may be local or fsspec URLs (``memory://``,
``gs://``…); local files are flushed to disk (``fsync``) and then moved with ``os.replace``,
which is atomic on POSIX, so a power cut leaves the old file or the new one, never an empty one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "file_digests",
    "file_lock",
    "sha256_file",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

_CHUNK = 1 << 20


def _is_url(path: str | os.PathLike) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary local path to write; synced and moved onto ``path`` when the block succeeds,
    removed if it raises.

    For writers that want a file name rather than bytes (``torch.save``, ``Figure.savefig``, a
    ``csv`` writer on the opened file).
    """
    path = Path(str(path).removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def file_lock(lock_path: str | os.PathLike) -> Iterator[None]:
    """An exclusive advisory lock (POSIX ``flock``) on ``lock_path``, created if needed, so that
    concurrent processes and threads do not download or build the same file at once."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: no locking
        yield
        return
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
    try:
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, p)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """``text`` as UTF-8, atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = True,
                      ensure_ascii: bool = True) -> None:
    """``obj`` as JSON plus a final newline (values JSON cannot hold are written as ``str``), atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=str)
    write_text_atomic(path, text + "\n")


def file_digests(path: str | os.PathLike, algorithms: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a local file for each ``hashlib`` algorithm, computed in one pass over it."""
    hashers = {a: hashlib.new(a) for a in dict.fromkeys(algorithms)}
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a local file."""
    return file_digests(path)["sha256"]
