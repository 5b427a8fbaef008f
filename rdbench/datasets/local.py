"""Datasets that are already on disk: ``folder:PATH`` and ``glob:PATTERN``.

Files are listed recursively in a stable (sorted, POSIX-path) order; an image's id is its
path relative to the root, so ids stay the same wherever the folder is mounted.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path

from rdbench.datasets.base import Dataset, DatasetError, ImageRef

#: Extensions treated as images when listing a folder (case-insensitive). Anything that
#: carries one of them is listed even if it later fails to load: a broken file is an
#: error row, never a silent omission.
IMAGE_EXTENSIONS = frozenset(
    ".png .jpg .jpeg .jfif .bmp .tif .tiff .webp .ppm .pgm .pbm .pnm .gif .tga .jp2 .j2k .avif .heic .heif".split()
)


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.parts)


def folder_dataset(path: str | os.PathLike, spec: str | None = None) -> Dataset:
    """Every image file under ``path``, recursively; hidden files and ``__MACOSX`` skipped."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset folder {str(root)!r} does not exist or is not a directory")
    refs = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not _is_hidden(rel):
            refs.append(ImageRef(rel.as_posix(), str(p)))
    refs.sort(key=lambda r: r.image_id)
    return Dataset(spec or f"folder:{path}", tuple(refs), root=str(root))


def glob_dataset(pattern: str, spec: str | None = None) -> Dataset:
    """Every file matching ``pattern`` (``**`` recurses); ids are relative to the pattern's fixed prefix."""
    paths = sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p))
    if not paths:
        raise DatasetError(f"glob pattern {pattern!r} matches no files")
    root = Path(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths]))
    refs = tuple(ImageRef(Path(os.path.abspath(p)).relative_to(root).as_posix(), p) for p in paths)
    return Dataset(spec or f"glob:{pattern}", refs, root=str(root))
