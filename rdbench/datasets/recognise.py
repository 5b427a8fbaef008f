"""Recognise a ``folder:``/``glob:`` dataset as a catalogued set by the bytes of its files.

A folder holding exactly the files of a catalogued set whose images are published one file at a
time with a checksum (Kodak: 24 PNGs, sha256 each) *is* that set, whatever its path; reports use
this to draw the set's published reference curves. Only catalog entries made of individual image
files with checksums can be recognised (archive-based sets such as CLIC have no per-image hashes).

Cost: listing the folder, then nothing more unless its image count equals a candidate set's; then
file sizes are compared, and only when every size matches are the files hashed (Kodak: 15 MB).
Results are cached per (path, size, mtime) listing.
"""
from __future__ import annotations

import os
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from rdbench.datasets.catalog import CATALOG, CatalogEntry, is_catalogued
from rdbench.files import file_digests

__all__ = ["dataset_files", "recognise_dataset", "recognisable_sets"]


def recognisable_sets() -> dict[str, CatalogEntry]:
    """Catalog entries that can be recognised by content: every source an image file (no archive)
    with a checksum, one per image."""
    out = {}
    for name, entry in CATALOG.items():
        if entry.has_archives or not entry.sources:
            continue
        if any(s.checksum is None for s in entry.sources):
            continue
        if entry.image_count is not None and entry.image_count != len(entry.sources):
            continue
        out[name] = entry
    return out


def dataset_files(spec: str) -> list[str] | None:
    """The image files of a ``folder:``/``glob:`` spec (as the run lists them), or None when the
    spec is of another kind or cannot be listed here (folder missing, pattern matching nothing)."""
    from rdbench.datasets.base import DatasetError
    from rdbench.datasets.local import folder_dataset, glob_dataset

    kind, _, arg = str(spec).partition(":")
    if not arg or kind not in ("folder", "glob"):
        return None
    try:
        ds = folder_dataset(arg, spec) if kind == "folder" else glob_dataset(arg, spec)
    except (DatasetError, OSError):
        return None
    return [ref.path for ref in ds.images]


def recognise_dataset(spec: str, files: Sequence[str | os.PathLike] | None = None) -> str | None:
    """The catalog name of the set ``spec``'s files are byte-identical to, or None.

    ``spec`` that is itself a catalog name is that set. For ``folder:``/``glob:`` specs ``files``
    are the dataset's image files (listed from the spec when None). A set is recognised when the
    files are exactly its files: the same number, and the same multiset of checksums; file names
    do not matter. Unreadable files make the answer None.
    """
    spec = str(spec)
    if is_catalogued(spec):
        return spec
    if files is None:
        files = dataset_files(spec)
        if files is None:
            return None
    try:
        listing = tuple(sorted((str(Path(f).resolve()), *_stat(f)) for f in files))
    except OSError:
        return None
    return _recognise(listing)


def _stat(path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


@lru_cache(maxsize=64)
def _recognise(listing: tuple[tuple[str, int, int], ...]) -> str | None:
    candidates = {n: e for n, e in recognisable_sets().items() if len(e.sources) == len(listing)}
    if not candidates:
        return None  # the usual case for a big folder: nothing is read
    sizes = Counter(size for _, size, _ in listing)
    digests: dict[str, list[str]] = {}
    for name, entry in sorted(candidates.items()):
        if any(s.size is None for s in entry.sources):
            pass  # no sizes published: go by the checksums alone
        elif Counter(s.size for s in entry.sources) != sizes:
            continue
        algorithm = entry.sources[0].checksum.algorithm
        if any(s.checksum.algorithm != algorithm for s in entry.sources):
            continue
        if algorithm not in digests:
            try:
                digests[algorithm] = [file_digests(p, (algorithm,))[algorithm] for p, _, _ in listing]
            except OSError:
                return None
        if Counter(digests[algorithm]) == Counter(s.checksum.value for s in entry.sources):
            return name
    return None
