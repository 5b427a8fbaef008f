"""The prepared-dataset manifest and small file utilities shared by fetch and prepare.

A prepared dataset is ``<data_root>/prepared/<name>/`` holding ``images/…/*.png`` (uint8 RGB) and
``manifest.json`` (sources, images sorted by ``image_id``, errors, warnings; its keys are in
docs/datasets.md, section Prepared datasets). JSON files are written atomically.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rdbench.datasets.base import DatasetError
from rdbench.files import write_json_atomic

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "Manifest",
    "PreparedImage",
    "PreparationError",
    "SourceRecord",
    "read_manifest",
]

MANIFEST_FORMAT = "rdbench-prepared-dataset"
MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"


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
        """Write the manifest atomically; returns its path."""
        write_json_atomic(path, self.to_json(), indent=1, sort_keys=False, ensure_ascii=False)
        return Path(path)


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
