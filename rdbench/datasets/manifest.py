"""The prepared-dataset manifest and small file utilities shared by fetch and prepare.

A prepared dataset is ``<data_root>/prepared/<name>/`` holding ``images/…/*.png`` (uint8 RGB) and
``manifest.json`` (sources, images sorted by ``image_id``, errors, warnings; its keys are in
docs/datasets.md, section Prepared datasets). JSON files are written atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rdbench.datasets.base import DatasetError

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "Manifest",
    "PreparedImage",
    "PreparationError",
    "SourceRecord",
    "file_digests",
    "read_manifest",
    "sha256_file",
    "write_json_atomic",
]

MANIFEST_FORMAT = "rdbench-prepared-dataset"
MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"

_CHUNK = 1 << 20


def file_digests(path: str | os.PathLike, algorithms: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a file for each algorithm, computed in one pass."""
    hashers = {a: hashlib.new(a) for a in dict.fromkeys(algorithms)}
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def sha256_file(path: str | os.PathLike) -> str:
    return file_digests(path)["sha256"]


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` via a temporary sibling and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=indent, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


@dataclass(frozen=True)
class SourceRecord:
    """A verified download that a prepared dataset was built from."""

    filename: str
    url: str
    size: int
    sha256: str
    checksum: dict | None  # {"algorithm": ..., "value": ...} from the catalog, or None
    verified_by: str


@dataclass(frozen=True)
class PreparedImage:
    image_id: str
    path: str
    height: int
    width: int
    sha256: str
    num_bytes: int
    source: str
    member: str | None = None


@dataclass(frozen=True)
class PreparationError:
    image_id: str
    source: str
    member: str | None
    reason: str


@dataclass
class Manifest:
    name: str
    title: str = ""
    licence: str = ""
    homepage: str = ""
    created: str = ""
    rdbench_version: str = ""
    sources: list[SourceRecord] = field(default_factory=list)
    images: list[PreparedImage] = field(default_factory=list)
    errors: list[PreparationError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        d["images"] = sorted(d["images"], key=lambda r: r["image_id"])
        d["errors"] = sorted(d["errors"], key=lambda r: (r["image_id"], r["source"], r["member"] or ""))
        return {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, **d}

    @classmethod
    def from_json(cls, d: dict) -> "Manifest":
        if d.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"not an rdbench manifest (format={d.get('format')!r})")
        if d.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported manifest version {d.get('version')!r} (expected {MANIFEST_VERSION})")
        return cls(
            name=d["name"],
            title=d.get("title", ""),
            licence=d.get("licence", ""),
            homepage=d.get("homepage", ""),
            created=d.get("created", ""),
            rdbench_version=d.get("rdbench_version", ""),
            sources=[SourceRecord(**s) for s in d.get("sources", [])],
            images=[PreparedImage(**i) for i in d["images"]],
            errors=[PreparationError(**e) for e in d.get("errors", [])],
            warnings=list(d.get("warnings", [])),
        )

    def write(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(path, self.to_json())


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate a manifest; a corrupt or foreign file raises DatasetError."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return Manifest.from_json(json.load(f))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"prepared-dataset manifest {path} is unreadable or corrupt ({exc}); "
                           "delete its folder and prepare the dataset again") from exc
