"""Turn a catalog dataset's verified downloads into ``<data_root>/prepared/<name>/``.

Every selected image (single files, or archive members under the entry's ``members`` prefix,
extracted safely one at a time) is loaded with :func:`rdbench.images.load_image` — grayscale,
16-bit, palette, CMYK… become uint8 RGB — and written as PNG under ``images/``; an image id is
the file's path below the prefix without its extension (``kodim01``, ``aachen/aachen_000000_000019
_leftImg8bit``). Files that fail to load are listed in the manifest's ``errors`` with the reason.
The folder is built beside the destination and swapped into place, with ``manifest.json`` written
last, so a prepared dataset is either complete or absent.

:func:`load_prepared` is what ``rdbench.datasets.get_dataset`` calls for catalog names.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from rdbench.datasets.base import Dataset, DatasetError, ImageRef
from rdbench.datasets.catalog import (
    CatalogEntry,
    catalog_names,
    get_entry,
    is_catalogued,
    known_specs_message,
    prepare_command,
)
from rdbench.datasets.extract import iter_extract
from rdbench.datasets.fetch import FetchRecord, check_unchanged, downloads_dir, read_stamp
from rdbench.datasets.manifest import (
    MANIFEST_NAME,
    Manifest,
    PreparationError,
    PreparedImage,
    SourceRecord,
    read_manifest,
)
from rdbench.files import file_lock, sha256_file

__all__ = [
    "catalog_names",
    "is_catalogued",
    "load_prepared",
    "manifest_path",
    "prepare_dataset",
    "prepared_dir",
    "verify_prepared",
]

log = logging.getLogger(__name__)

Progress = Callable[[float | None, str], None]

_DEFAULT_DATA_ROOT = "datasets"


def prepared_dir(data_root: str | os.PathLike, name: str) -> Path:
    return Path(data_root) / "prepared" / name


def manifest_path(data_root: str | os.PathLike, name: str) -> Path:
    return prepared_dir(data_root, name) / MANIFEST_NAME


def load_prepared(name: str, data_root: str | os.PathLike = _DEFAULT_DATA_ROOT) -> Dataset:
    """The prepared dataset ``name`` under ``data_root``: its PNGs in image-id order.

    Unknown names and datasets that have not been prepared raise :class:`DatasetError` saying
    what is known and how to prepare.
    """
    if not is_catalogued(name):
        raise DatasetError(f"unknown dataset {name!r}; {known_specs_message()}")
    mpath = manifest_path(data_root, name)
    if not mpath.is_file():
        raise DatasetError(
            f"dataset {name!r} is not prepared (no {mpath}); run `{prepare_command(name, data_root)}` "
            "to download, verify and prepare it")
    manifest = read_manifest(mpath)
    root = mpath.parent.resolve()
    images = sorted(manifest.images, key=lambda im: im.image_id)
    refs = tuple(ImageRef(im.image_id, str(root / im.path)) for im in images)
    missing = [r.path for r in refs if not os.path.isfile(r.path)]
    if missing:
        raise DatasetError(
            f"prepared dataset {name!r} under {root} is incomplete: {len(missing)} image file(s) are missing "
            f"(first: {missing[0]}); delete {root} and run `{prepare_command(name, data_root)}` again")
    return Dataset(name, refs, root=str(root))


def verify_prepared(name: str, data_root: str | os.PathLike = _DEFAULT_DATA_ROOT) -> list[str]:
    """Re-hash every prepared PNG; return the problems found (empty when all match)."""
    mpath = manifest_path(data_root, name)
    manifest = read_manifest(mpath)
    problems = []
    for im in manifest.images:
        p = mpath.parent / im.path
        if not p.is_file():
            problems.append(f"{im.image_id}: {p} is missing")
        elif sha256_file(p) != im.sha256:
            problems.append(f"{im.image_id}: {p} does not match its recorded sha256")
    return problems


# --------------------------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------------------------


def _convert(src: str, dst: str, delete_src: bool) -> tuple:
    """Load ``src`` as RGB and write it as PNG to ``dst`` (runs in a worker process).

    Returns ``("ok", height, width, sha256, num_bytes)`` or ``("error", reason)``. Only load
    failures are per-image errors; a failure to write the PNG (disk full…) propagates.
    """
    from rdbench.images import ImageLoadError, load_image, save_png

    try:
        image = load_image(src)
    except ImageLoadError as exc:
        return ("error", exc.cause)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this image's error
        return ("error", f"{type(exc).__name__}: {exc}")
    finally:
        if delete_src:
            Path(src).unlink(missing_ok=True)
    save_png(image, dst)
    return ("ok", int(image.shape[0]), int(image.shape[1]), sha256_file(dst), os.path.getsize(dst))


class _Item:
    __slots__ = ("image_id", "src", "source", "member", "delete_src")

    def __init__(self, image_id: str, src: Path, source: str, member: str | None, delete_src: bool):
        self.image_id, self.src, self.source, self.member, self.delete_src = image_id, src, source, member, delete_src


def _image_id(relpath: str) -> str:
    p = PurePosixPath(relpath)
    return p.with_suffix("").as_posix() if p.suffix else p.as_posix()


def _items(entry: CatalogEntry, data_root: Path, raw_dir: Path) -> Iterator[_Item]:
    downloads = downloads_dir(data_root)
    for i, source in enumerate(entry.sources):
        path = downloads / source.filename
        if not source.is_archive:
            rel = PurePosixPath(source.path).name
            if rel.lower().endswith(entry.extensions):
                yield _Item(_image_id(rel), path, source.filename, None, False)
            continue
        for m in iter_extract(path, raw_dir / str(i), include=entry.selects, nested=entry.nested_archives):
            yield _Item(_image_id(entry.image_relpath(m.relpath)), m.path, source.filename, m.member, True)


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("rdbench")
    except Exception:  # noqa: BLE001 - not installed (running from a checkout)
        return "unknown"


def prepare_dataset(name: str, data_root: str | os.PathLike, *, record: FetchRecord | None = None,
                    workers: int = 0, progress: Progress | None = None) -> Manifest:
    """Build ``prepared/<name>/`` from the verified downloads (see :func:`fetch.fetch_dataset`).

    ``record`` defaults to the dataset's verification stamp; files changed since verification
    are refused. ``workers`` conversion processes (0: one per core, up to 8; 1: in-process).
    ``progress(fraction or None, message)`` is called as images are done. Returns the manifest.
    """
    entry = get_entry(name)
    data_root = Path(data_root)
    if record is None:
        record = read_stamp(data_root, name)
    check_unchanged(record, data_root)
    by_name = {f.filename: f for f in record.files}
    missing = [s.filename for s in entry.sources if s.filename not in by_name]
    if missing:
        raise DatasetError(f"{name}: not verified yet: {', '.join(missing)}; fetch the dataset first")

    out = prepared_dir(data_root, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.parent / ".locks" / f"{name}.lock"):
        for stale in out.parent.glob(f".{name}.staging-*"):  # left by an interrupted run
            shutil.rmtree(stale, ignore_errors=True)
        staging = out.parent / f".{name}.staging-{uuid.uuid4().hex[:8]}"
        try:
            manifest = _build(entry, data_root, staging, record, workers or _default_workers(), progress)
            manifest.write(staging / MANIFEST_NAME)
            old = None
            if out.exists():
                old = out.parent / f".{name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(out, old)
            os.replace(staging, out)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    log.info("%s: %d images prepared, %d errors, in %s", name, len(manifest.images), len(manifest.errors), out)
    return manifest


def _build(entry: CatalogEntry, data_root: Path, staging: Path, record: FetchRecord, workers: int,
           progress: Progress | None) -> Manifest:
    images_dir = staging / "images"
    raw_dir = staging / "raw"
    images_dir.mkdir(parents=True)
    expected = entry.image_count if entry.image_count is not None or entry.has_archives else len(entry.sources)
    manifest = Manifest(
        name=entry.name, title=entry.title, licence=entry.licence, homepage=entry.homepage,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), rdbench_version=_version(),
        sources=[SourceRecord(**f.source_record()) for f in record.files],
    )
    seen: dict[str, str] = {}
    done = 0
    last_report = 0.0

    def report(force: bool = False) -> None:
        nonlocal last_report
        now = time.monotonic()
        if progress is None or (not force and now - last_report < 0.5):
            return
        last_report = now
        frac = min(done / expected, 1.0) if expected else None
        progress(frac, f"{entry.name}: {done}{f'/{expected}' if expected else ''} images converted, "
                       f"{len(manifest.errors)} errors")

    def collect(item: _Item, result: tuple) -> None:
        nonlocal done
        done += 1
        if result[0] == "ok":
            _, h, w, sha, nbytes = result
            manifest.images.append(PreparedImage(item.image_id, f"images/{item.image_id}.png", h, w, sha, nbytes,
                                                 item.source, item.member))
        else:
            log.warning("%s: %s (%s) cannot be loaded: %s", entry.name, item.member or item.source,
                        item.image_id, result[1])
            manifest.errors.append(PreparationError(item.image_id, item.source, item.member, result[1]))
        report()

    def accept(item: _Item) -> bool:
        where = f"{item.source}:{item.member}" if item.member else item.source
        if item.image_id in seen:
            manifest.errors.append(PreparationError(
                item.image_id, item.source, item.member, f"duplicate image id (already taken by {seen[item.image_id]})"))
            if item.delete_src:
                item.src.unlink(missing_ok=True)
            return False
        seen[item.image_id] = where
        return True

    report(force=True)
    if workers <= 1:
        for item in _items(entry, data_root, raw_dir):
            if accept(item):
                collect(item, _convert(str(item.src), str(images_dir / f"{item.image_id}.png"), item.delete_src))
    else:
        with cf.ProcessPoolExecutor(max_workers=workers) as pool:
            pending: dict[cf.Future, _Item] = {}
            for item in _items(entry, data_root, raw_dir):
                if not accept(item):
                    continue
                fut = pool.submit(_convert, str(item.src), str(images_dir / f"{item.image_id}.png"), item.delete_src)
                pending[fut] = item
                if len(pending) >= 4 * workers:  # bound the extracted-but-unconverted files on disk
                    finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for f in finished:
                        collect(pending.pop(f), f.result())
            for f in cf.as_completed(list(pending)):
                collect(pending.pop(f), f.result())
    shutil.rmtree(raw_dir, ignore_errors=True)
    report(force=True)

    if not manifest.images:
        where = f" under {entry.members!r}" if entry.members else ""
        raise DatasetError(
            f"{entry.name}: no usable images found{where} in {', '.join(s.filename for s in entry.sources)} "
            f"({len(manifest.errors)} failed to load); the archive layout may have changed")
    total = len(manifest.images) + len(manifest.errors)
    if entry.image_count is not None and total != entry.image_count:
        msg = f"expected {entry.image_count} images, found {total}"
        log.warning("%s: %s", entry.name, msg)
        manifest.warnings.append(msg)
    manifest.images.sort(key=lambda im: im.image_id)
    return manifest
