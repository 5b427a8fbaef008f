"""Obtain and verify a catalog dataset's source files under ``<data_root>/downloads/``.

Transfers go through :mod:`rdbench.download`. Nothing is used before it is verified: a download
lands in ``.incoming/``, its size and checksum (catalogued, or trust-on-first-use) are checked, and
only then is it moved into ``downloads/``; a file that fails goes to ``.quarantine/``
(:class:`ChecksumMismatchError`). ``login`` datasets are placed by the user
(:class:`ManualDownloadRequired` says where). Folder layout: docs/datasets.md, section Fetching
and verification.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from rdbench import download
from rdbench.datasets.base import DatasetError
from rdbench.datasets.catalog import CatalogEntry, SourceFile, get_entry, mirror_url, prepare_command
from rdbench.datasets.manifest import MANIFEST_NAME, read_manifest
from rdbench.files import file_lock, write_json_atomic

__all__ = [
    "ChecksumMismatchError",
    "FetchError",
    "FetchRecord",
    "FetchedFile",
    "ManualDownloadRequired",
    "TRUST_FILE",
    "check_unchanged",
    "downloads_dir",
    "fetch_dataset",
    "fetch_source",
    "read_stamp",
    "stamp_is_current",
    "stamp_path",
]

log = logging.getLogger(__name__)

#: Trust-on-first-use sha256 records (``sha256sum`` format, paths relative to downloads/).
TRUST_FILE = download.TRUST_FILE

Progress = Callable[[float, str], None]


class FetchError(DatasetError):
    """A source file could not be obtained."""


class ChecksumMismatchError(download.ChecksumMismatchError, FetchError):
    """A source file's size or checksum is not the expected one."""


class ManualDownloadRequired(FetchError):
    """A ``login`` dataset's file has not been placed in the downloads folder."""


# --------------------------------------------------------------------------------------------
# Paths, stamps and trust records
# --------------------------------------------------------------------------------------------


def downloads_dir(data_root: str | os.PathLike) -> Path:
    return Path(data_root) / "downloads"


def stamp_path(data_root: str | os.PathLike, name: str) -> Path:
    return downloads_dir(data_root) / ".verified" / f"{name}.json"


@dataclass(frozen=True)
class FetchedFile:
    """A verified source file: where it is (relative to downloads/), what it hashes to and how
    it was verified."""

    filename: str
    url: str
    size: int
    sha256: str
    checksum: dict | None
    verified_by: str
    mtime_ns: int

    def source_record(self) -> dict:
        d = asdict(self)
        d.pop("mtime_ns")
        return d


@dataclass(frozen=True)
class FetchRecord:
    name: str
    files: tuple[FetchedFile, ...]
    created: str = ""

    def to_json(self) -> dict:
        return {"dataset": self.name, "created": self.created, "files": [asdict(f) for f in self.files]}

    @classmethod
    def from_json(cls, d: dict) -> "FetchRecord":
        return cls(d["dataset"], tuple(FetchedFile(**f) for f in d["files"]), d.get("created", ""))


def read_stamp(data_root: str | os.PathLike, name: str) -> FetchRecord:
    path = stamp_path(data_root, name)
    try:
        import json

        with open(path, encoding="utf-8") as f:
            return FetchRecord.from_json(json.load(f))
    except FileNotFoundError:
        raise FetchError(f"{name}: its downloads have not been verified yet ({path} is missing)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"{name}: verification stamp {path} is corrupt ({exc})") from exc


def check_unchanged(record: FetchRecord, data_root: str | os.PathLike) -> None:
    """Raise FetchError when a verified file is gone or was modified since verification."""
    root = downloads_dir(data_root)
    for f in record.files:
        p = root / f.filename
        try:
            st = p.stat()
        except FileNotFoundError:
            raise FetchError(f"{record.name}: verified download {p} has disappeared; fetch it again") from None
        if st.st_size != f.size or st.st_mtime_ns != f.mtime_ns:
            raise FetchError(f"{record.name}: {p} changed after it was verified; fetch it again")


def stamp_is_current(data_root: str | os.PathLike, name: str) -> bool:
    """True when the dataset's files were verified and are unchanged since (no hashing)."""
    try:
        record = read_stamp(data_root, name)
        check_unchanged(record, data_root)
    except FetchError:
        return False
    # The catalog may have changed since (a new file, a corrected checksum): verify again then.
    expected = {s.filename: _checksum_dict(s) for s in get_entry(name).sources}
    return {f.filename: f.checksum for f in record.files} == expected


def _checksum_dict(source: SourceFile) -> dict | None:
    c = source.checksum
    return None if c is None else {"algorithm": c.algorithm, "value": c.value}


def _read_trust(path: Path) -> dict[str, str]:
    return download.read_trusted(path)


def trusted_sha256(data_root: str | os.PathLike, filename: str) -> str | None:
    """The sha256 recorded at a file's first download, if any (trust store, then manifests)."""
    digest = _read_trust(downloads_dir(data_root) / TRUST_FILE).get(filename)
    if digest:
        return digest
    from rdbench.datasets.catalog import CATALOG

    for entry in CATALOG.values():
        if not any(s.filename == filename for s in entry.sources):
            continue
        mpath = Path(data_root) / "prepared" / entry.name / MANIFEST_NAME
        if not mpath.is_file():
            continue
        try:
            for src in read_manifest(mpath).sources:
                if src.filename == filename:
                    return src.sha256
        except DatasetError:
            continue
    return None


def _record_trust(data_root: str | os.PathLike, filename: str, digest: str) -> None:
    download.record_trusted(downloads_dir(data_root) / TRUST_FILE, filename, digest)


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def _verify(path: Path, source: SourceFile, trusted: str | None) -> tuple[str, str]:
    """Check size and checksum of ``path``; return (sha256, how it was verified)."""
    checksums = {source.checksum.algorithm: source.checksum.value} if source.checksum else None
    sha256 = download.verify_file(path, checksums, size=source.size, name=source.filename)["sha256"]
    if source.checksum is not None:
        return sha256, f"catalog {source.checksum.algorithm}"
    if trusted is not None:
        if sha256 != trusted:
            raise ChecksumMismatchError(
                source.filename, "sha256 (trusted on first use)", trusted, sha256,
                "The catalog publishes no checksum for this file; the expected value was recorded at its "
                "first download. If the upstream file legitimately changed, delete its line from "
                f"downloads/{TRUST_FILE} and delete the prepared/<dataset>/ folders built from it, then run again")
        return sha256, "trust on first use (matches the recorded sha256)"
    return sha256, "trust on first use (sha256 recorded at this download)"


def _quarantine(path: Path, downloads: Path, filename: str) -> Path:
    qdir = downloads / ".quarantine"
    qdir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    dest = qdir / f"{filename.replace('/', '__')}.{stamp}-{uuid.uuid4().hex[:6]}"
    shutil.move(str(path), dest)
    return dest


def _manual_message(entry: CatalogEntry, source: SourceFile, dest: Path, data_root) -> str:
    lines = [
        f"{entry.name} needs {source.filename} ({source.describe_size()}), which can only be downloaded "
        f"after logging in; rdbench does not download it for you.",
        f"  Where to get it: {entry.homepage}",
    ]
    if entry.instructions:
        lines.append(f"  How: {entry.instructions}")
    lines.append(f"  Where to put it: {dest.resolve()}")
    if source.checksum is not None:
        lines.append(f"  It will be verified against the {source.checksum.algorithm} {source.checksum.value}.")
    lines.append(f"  Licence: {entry.licence}")
    lines.append(f"  Then run again: {prepare_command(entry.name, data_root)}")
    return "\n".join(lines)


def fetch_source(entry: CatalogEntry, source: SourceFile, data_root: str | os.PathLike, *,
                 mirror: str | None = None, progressbar=True, retries: int = 3,
                 on_bytes: Callable[[int, int | None], None] | None = None) -> FetchedFile:
    """Make ``downloads/<source.filename>`` present and verified; return its record."""
    downloads = downloads_dir(data_root)
    dest = downloads / source.filename
    raw_url = mirror_url(entry, source, mirror)
    url = download.split_credentials(raw_url)[0]  # for messages; download() sends the credentials
    trusted = trusted_sha256(data_root, source.filename) if source.checksum is None else None

    def finish(path: Path, sha256: str, how: str) -> FetchedFile:
        if source.checksum is None and trusted is None:
            _record_trust(data_root, source.filename, sha256)
        st = path.stat()
        return FetchedFile(source.filename, source.url, st.st_size, sha256, _checksum_dict(source), how,
                           st.st_mtime_ns)

    with file_lock(downloads / ".locks" / (source.filename.replace("/", "__") + ".lock")):
        if dest.is_file():
            try:
                sha, how = _verify(dest, source, trusted)
                log.info("%s: %s present and verified (%s)", entry.name, source.filename, how)
                return finish(dest, sha, how)
            except download.ChecksumMismatchError as exc:
                moved = _quarantine(dest, downloads, source.filename)
                if entry.access != "open":
                    note = f"The file was moved to {moved}; download it again.\n" + _manual_message(entry, source, dest, data_root)
                    raise ChecksumMismatchError(exc.filename, exc.what, exc.expected, exc.actual,
                                                f"{exc.detail}. {note}" if exc.detail else note) from None
                log.warning("%s: existing %s failed verification (%s); moved to %s, downloading again",
                            entry.name, source.filename, exc, moved)
        if entry.access != "open":
            raise ManualDownloadRequired(_manual_message(entry, source, dest, data_root))

        staging = downloads / ".incoming"
        for attempt in range(2):
            log.info("%s: downloading %s from %s", entry.name, source.filename, url)
            path = staging / source.filename
            try:
                resumed = download.download(raw_url, path, name=source.filename, retries=retries,
                                            progressbar=progressbar, on_bytes=on_bytes)
            except download.DownloadError as exc:
                raise FetchError(str(exc)) from exc
            try:
                sha, how = _verify(path, source, trusted)
            except download.ChecksumMismatchError as exc:
                if resumed and attempt == 0:
                    log.warning("%s: resumed download of %s failed verification (%s); downloading it again "
                                "from the start", entry.name, source.filename, exc)
                    path.unlink()
                    continue
                moved = _quarantine(path, downloads, source.filename)
                note = f"Downloaded from {url}; the file was moved to {moved} and not used"
                raise ChecksumMismatchError(exc.filename, exc.what, exc.expected, exc.actual,
                                            f"{exc.detail}. {note}" if exc.detail else note) from None
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            log.info("%s: %s downloaded and verified (%s)", entry.name, source.filename, how)
            return finish(dest, sha, how)
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_dataset(name: str, data_root: str | os.PathLike, *, mirror: str | None = None, progressbar=True,
                  retries: int = 3, progress: Progress | None = None) -> FetchRecord:
    """Fetch and verify every source file of dataset ``name``; write and return its stamp."""
    entry = get_entry(name)
    n = len(entry.sources)
    files = []
    for i, source in enumerate(entry.sources):
        last = [0.0]

        def on_bytes(done, total, i=i, source=source, last=last):
            now = time.monotonic()
            if progress is not None and total and now - last[0] > 1.0:
                last[0] = now
                progress((i + done / total) / n, f"downloading {source.filename}: {done:,}/{total:,} bytes")

        if progress is not None:
            progress(i / n, f"fetching and verifying {source.filename} ({i + 1}/{n}, {source.describe_size()})")
        files.append(fetch_source(entry, source, data_root, mirror=mirror, progressbar=progressbar,
                                  retries=retries, on_bytes=on_bytes))
    record = FetchRecord(name, tuple(files), datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    write_json_atomic(stamp_path(data_root, name), record.to_json(), indent=1, sort_keys=False, ensure_ascii=False)
    if progress is not None:
        progress(1.0, f"{n} file(s) verified")
    return record
