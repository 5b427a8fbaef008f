"""Safe extraction of zip and tar (plain, gz, bz2, xz) archives.

No member may end up outside the target: absolute or ``..`` names and escaping links raise
:class:`UnsafeArchiveError`; inner links and special files are skipped; rdbench writes every file
itself (``O_NOFOLLOW``, no modes or owners from the archive). :func:`iter_extract` streams one
member at a time, into nested archives too; :func:`safe_extract` extracts everything. The rules:
docs/datasets.md, section Extraction.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from rdbench.datasets.base import DatasetError

__all__ = ["ArchiveError", "ExtractedMember", "UnsafeArchiveError", "iter_extract", "safe_extract", "safe_member_path"]

log = logging.getLogger(__name__)

_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_NESTED_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class ArchiveError(DatasetError):
    """An archive cannot be read (not a zip or tar, or corrupt)."""


class UnsafeArchiveError(ArchiveError):
    """A member would be written outside the target folder."""


@dataclass(frozen=True)
class ExtractedMember:
    """A file written by :func:`iter_extract`.

    ``relpath`` is its posix path relative to the target (for a nested archive
    ``outer-stem/inner-path``); ``member`` names it for humans (``outer.tar!inner-path``);
    ``path`` is where it was written.
    """

    relpath: str
    member: str
    path: Path


def _is_junk(parts: tuple[str, ...]) -> bool:
    return any(p == "__MACOSX" for p in parts) or parts[-1].startswith("._") or parts[-1] in _JUNK_NAMES


def safe_member_path(name: str, archive: str = "archive") -> PurePosixPath | None:
    """Validate an archive member name; return its normalised relative path (None for the root
    or for junk members). Absolute names and ``..`` components raise UnsafeArchiveError."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    parts = tuple(p for p in re.split(r"[\\/]+", name) if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} points outside the target ('..'); refusing to extract")
    if not parts:
        return None
    if _is_junk(parts):
        return None
    return PurePosixPath(*parts)


def _check_link(archive: str, name: str, rel: PurePosixPath, target: str, hard: bool) -> None:
    """Raise when a link's target is absolute or escapes the archive root."""
    kind = "hard link" if hard else "symlink"
    if not target or target.startswith(("/", "\\")) or _DRIVE.match(target):
        raise UnsafeArchiveError(f"{archive}: {kind} {name!r} -> {target!r} points outside the target; refusing to extract")
    base = [] if hard else list(rel.parts[:-1])  # hard links are relative to the archive root
    depth = len(base)
    for part in re.split(r"[\\/]+", target):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                raise UnsafeArchiveError(
                    f"{archive}: {kind} {name!r} -> {target!r} points outside the target; refusing to extract")
        else:
            depth += 1


def _write(dest_root: Path, rel: PurePosixPath, src, archive: str) -> Path:
    """Copy the stream ``src`` to ``dest_root/rel`` without following links."""
    target = dest_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    root = dest_root.resolve()
    parent = target.parent.resolve()
    if parent != root and root not in parent.parents:
        raise UnsafeArchiveError(f"{archive}: member {rel.as_posix()!r} resolves outside the target; refusing to extract")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except OSError as exc:
        raise UnsafeArchiveError(f"{archive}: cannot write member {rel.as_posix()!r} ({exc})") from exc
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return target


def _open_kind(path: Path) -> str:
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, tarfile.TarError):
        pass
    raise ArchiveError(f"{path}: not a zip or tar archive (or corrupt)")


def _iter_zip(path: Path, dest: Path, include, label: str) -> Iterator[tuple[PurePosixPath, str, Path]]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{label}: cannot open zip ({exc})") from exc
    with zf:
        for info in zf.infolist():
            rel = safe_member_path(info.filename, label)
            if rel is None or info.is_dir():
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                _check_link(label, info.filename, rel, zf.read(info).decode("utf-8", "replace"), hard=False)
                log.warning("%s: skipping symlink member %s", label, info.filename)
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # no type bits: a plain file (Windows, Python)
                log.warning("%s: skipping special member %s", label, info.filename)
                continue
            if not include(rel.as_posix()):
                continue
            try:
                with zf.open(info) as src:
                    written = _write(dest, rel, src, label)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                raise ArchiveError(f"{label}: member {info.filename!r} is corrupt ({exc})") from exc
            yield rel, info.filename, written


def _iter_tar(path: Path, dest: Path, include, label: str) -> Iterator[tuple[PurePosixPath, str, Path]]:
    try:
        tf = tarfile.open(path, mode="r|*")  # streaming: one sequential pass, even for .tar.gz
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{label}: cannot open tar ({exc})") from exc
    with tf:
        try:
            for m in tf:
                rel = safe_member_path(m.name, label)
                if rel is None or m.isdir():
                    continue
                if m.issym() or m.islnk():
                    _check_link(label, m.name, rel, m.linkname, hard=m.islnk())
                    log.warning("%s: skipping link member %s -> %s", label, m.name, m.linkname)
                    continue
                if not m.isfile():
                    log.warning("%s: skipping special member %s", label, m.name)
                    continue
                if not include(rel.as_posix()):
                    continue
                src = tf.extractfile(m)
                if src is None:  # pragma: no cover - isfile() members always have data
                    continue
                yield rel, m.name, _write(dest, rel, src, label)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise ArchiveError(f"{label}: corrupt or truncated tar ({exc})") from exc


def _strip_archive_suffix(name: str) -> str:
    for suffix in _NESTED_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def iter_extract(archive: str | os.PathLike, dest: str | os.PathLike, *,
                 include: Callable[[str], bool] | None = None, nested: bool = False,
                 _label: str | None = None, _prefix: str = "") -> Iterator[ExtractedMember]:
    """Extract the members of ``archive`` into ``dest`` one at a time, yielding each file.

    ``include(relpath)`` selects members (all files when None). With ``nested=True``, tar
    archives inside the archive are extracted, their members yielded as
    ``<inner-archive-stem>/<path>`` (and filtered by ``include`` under that name), and the inner
    archive deleted. Every member is validated first (see the module docstring).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    label = _label or str(archive)
    accept = include or (lambda _rel: True)

    def outer_include(rel: str) -> bool:
        full = _prefix + rel
        if nested and rel.lower().endswith(_NESTED_SUFFIXES):
            return True
        return accept(full)

    iterator = _iter_zip if _open_kind(archive) == "zip" else _iter_tar
    for rel, name, path in iterator(archive, dest, outer_include, label):
        relpath = rel.as_posix()
        if nested and relpath.lower().endswith(_NESTED_SUFFIXES):
            inner_prefix = _prefix + _strip_archive_suffix(relpath) + "/"
            inner_dest = dest / "_nested" / _strip_archive_suffix(relpath)
            try:
                for m in iter_extract(path, inner_dest, include=accept, nested=False,
                                      _label=f"{label}!{name}", _prefix=inner_prefix):
                    yield ExtractedMember(m.relpath, f"{name}!{m.member}", m.path)
            finally:
                path.unlink(missing_ok=True)
            continue
        yield ExtractedMember(_prefix + relpath, name, path)


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, *,
                 include: Callable[[str], bool] | None = None) -> list[Path]:
    """Extract every (selected) member of ``archive`` into ``dest``; return the written files."""
    return [m.path for m in iter_extract(archive, dest, include=include)]
