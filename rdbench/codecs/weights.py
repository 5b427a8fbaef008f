"""Model weights: the local cache, integrity checks, downloads and checkpoint loading.

Shared by every learned codec. Published weights live under the *weights root*
(``weights_root=`` parameter, else ``$RDBENCH_WEIGHTS_ROOT``, else ``codecs/`` in the working
directory) as ``<root>/<subdir>/<filename>``, e.g. ``codecs/compressai/mbt2018-mean-3-723404a8.pth.tar``.

- A :class:`RemoteFile` names one published file: its URL, the cache sub-folder and the
  expected SHA-256 (the full digest or a prefix; CompressAI and ``torch.hub`` put the first
  8 hex digits in the file name, ``<name>-<sha256 prefix>.pth.tar``).
- :meth:`RemoteFile.fetch` returns the cached path after checking the hash, downloading it
  first when it is missing with :func:`rdbench.download.download` (resumed from
  ``<root>/.incoming/<subdir>/<filename>.part``). ``$RDBENCH_MIRROR`` (a base URL, shared with
  the datasets; see :mod:`rdbench.download`) replaces the publisher's: the file is fetched from
  ``<mirror>/<filename>``, ``{folder}`` in the mirror becoming ``<subdir>``. The older
  ``$RDBENCH_WEIGHTS_MIRROR`` is still read for weights, before ``$RDBENCH_MIRROR`` (deprecated).
  ``$RDBENCH_WEIGHTS_DOWNLOAD=0`` forbids downloads. A missing file that cannot be fetched raises
  :class:`WeightsUnavailableError` saying where to get it and where to put it; a file whose
  content does not match its hash raises :class:`WeightsIntegrityError`. Nothing unverified is
  ever loaded.
- :func:`load_state_dict` reads a checkpoint with ``torch.load(weights_only=True)`` (no code
  execution from pickles), accepts plain state dicts as well as training checkpoints that
  nest one (``{"state_dict": ..., "epoch": ..., "optimizer": ...}``), and strips the
  ``module.`` prefix ``DataParallel`` adds.
"""
from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rdbench import download as _download
from rdbench.files import file_lock, sha256_file

__all__ = [
    "DEFAULT_WEIGHTS_ROOT",
    "CheckpointError",
    "RemoteFile",
    "WeightsError",
    "WeightsIntegrityError",
    "WeightsUnavailableError",
    "downloads_enabled",
    "extract_state_dict",
    "hash_prefix",
    "load_state_dict",
    "sha256sum",
    "verify_file",
    "weights_root",
]

DEFAULT_WEIGHTS_ROOT = "codecs"
ENV_ROOT = "RDBENCH_WEIGHTS_ROOT"
#: The mirror variable weights read (the one shared with datasets).
ENV_MIRROR = _download.MIRROR_ENV
#: Deprecated: the weights-only mirror variable, read before ``ENV_MIRROR``.
ENV_MIRROR_DEPRECATED = "RDBENCH_WEIGHTS_MIRROR"
ENV_DOWNLOAD = "RDBENCH_WEIGHTS_DOWNLOAD"

#: Keys under which training scripts nest the model's state dict, in the order tried.
NESTED_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "network", "model")

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9.]+$")


class WeightsError(Exception):
    """Model weights could not be provided."""


class WeightsUnavailableError(WeightsError):
    """The weights are not cached and could not be downloaded (offline, or downloads disabled)."""


class WeightsIntegrityError(WeightsError, _download.ChecksumMismatchError):
    """A weights file's SHA-256 does not match the hash it is published with."""


class CheckpointError(WeightsError):
    """A checkpoint file is missing, unreadable, or not a state dict of tensors."""


def weights_root(root: str | os.PathLike | None = None) -> Path:
    """The weights root: ``root`` if given (non-empty), else ``$RDBENCH_WEIGHTS_ROOT``, else ``codecs``."""
    return Path(root or os.environ.get(ENV_ROOT) or DEFAULT_WEIGHTS_ROOT)


def downloads_enabled(download: bool | None = None) -> bool:
    """``download`` if given, else False only when ``$RDBENCH_WEIGHTS_DOWNLOAD`` is 0/false/no/off."""
    if download is not None:
        return download
    return os.environ.get(ENV_DOWNLOAD, "1").strip().lower() not in ("0", "false", "no", "off")


def hash_prefix(filename: str) -> str | None:
    """The SHA-256 prefix a ``<name>-<hex>.<ext>`` file name carries (≥ 8 hex digits), or None."""
    m = _HASH_IN_NAME.search(Path(filename).name)
    return m.group(1) if m else None


_sha_cache: dict[tuple[str, int, int], str] = {}
_sha_lock = threading.Lock()


def sha256sum(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file, memoised on path, size and modification time (weights are
    verified at every load; a large file is read once per process)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _sha_lock:
        if key in _sha_cache:
            return _sha_cache[key]
    digest = sha256_file(p)
    with _sha_lock:
        _sha_cache[key] = digest
    return digest


def verify_file(path: str | os.PathLike, expected: str, *, source: str = "") -> str:
    """Check that the SHA-256 of ``path`` starts with ``expected`` (≥ 8 hex digits); returns the
    full digest. Raises :class:`WeightsIntegrityError`."""
    digest = sha256sum(path)
    if not _download.digest_matches(digest, expected):
        where = f" (downloaded from {source})" if source else ""
        raise WeightsIntegrityError(
            str(path), "SHA-256", expected, digest,
            f"The weights file{where} is corrupt, truncated or not the published one; delete it and fetch it again")
    return digest


@dataclass(frozen=True)
class RemoteFile:
    """One published weights file: where it comes from, where it is cached, its hash."""

    url: str
    subdir: str
    sha256: str

    @classmethod
    def from_url(cls, url: str, subdir: str) -> "RemoteFile":
        """For files whose name carries their hash prefix (``<name>-<sha256 prefix>.pth.tar``)."""
        prefix = hash_prefix(_url_filename(url))
        if prefix is None:
            raise ValueError(f"{url}: the file name carries no SHA-256 prefix; give sha256 explicitly")
        return cls(url, subdir, prefix)

    @property
    def filename(self) -> str:
        return _url_filename(self.url)

    def local_path(self, root: str | os.PathLike | None = None) -> Path:
        return weights_root(root) / self.subdir / self.filename

    def source_url(self) -> str:
        """The URL to download from: the publisher's, or ``<mirror>/<filename>`` (see the module docstring)."""
        mirror = os.environ.get(ENV_MIRROR_DEPRECATED, "").strip() or None
        if mirror is not None:
            warnings.warn(f"{ENV_MIRROR_DEPRECATED} is deprecated; set {ENV_MIRROR} instead", DeprecationWarning,
                          stacklevel=2)
        return _download.mirror_url(self.url, self.filename, mirror, folder=self.subdir)

    def is_cached(self, root: str | os.PathLike | None = None) -> bool:
        """Whether the file is present (cheap: the hash is checked when it is fetched)."""
        return self.local_path(root).is_file()

    def fetch(self, root: str | os.PathLike | None = None, *, download: bool | None = None) -> Path:
        """The verified local path, downloading the file first if it is not cached."""
        path = self.local_path(root)
        if path.is_file():
            verify_file(path, self.sha256)
            return path
        if not downloads_enabled(download):
            raise WeightsUnavailableError(self._missing(path, f"downloads are disabled ({ENV_DOWNLOAD}=0)"))
        source = self.source_url()
        shown = _download.split_credentials(source)[0]
        staging = weights_root(root) / ".incoming" / self.subdir / self.filename
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            staging.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WeightsUnavailableError(self._missing(path, f"cannot create {exc.filename}: {exc}")) from exc
        with file_lock(staging.with_name(staging.name + ".lock")):
            if path.is_file():  # fetched by another process or thread meanwhile
                verify_file(path, self.sha256)
                return path
            try:
                _download.download(source, staging, retries=1)
            except (_download.DownloadError, OSError) as exc:
                raise WeightsUnavailableError(self._missing(path, f"download from {shown} failed: {exc}")) from exc
            try:
                verify_file(staging, self.sha256, source=shown)
            except WeightsIntegrityError:
                staging.unlink()
                raise
            os.replace(staging, path)
        return path

    def _missing(self, path: Path, reason: str) -> str:
        return (
            f"weights file {self.filename} is not cached and {reason}. "
            f"Download it from {self.url} and save it as {path} "
            f"(or set {ENV_ROOT} / the codec's weights_root= parameter to a folder that has "
            f"{self.subdir}/{self.filename}, or {ENV_MIRROR} to a server that has it)."
        )


def _url_filename(url: str) -> str:
    name = Path(urlsplit(url).path).name
    if not name:
        raise ValueError(f"URL {url!r} does not end in a file name")
    return name


# -- checkpoints ---------------------------------------------------------------------------


def load_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint safely and return the model's state dict (tensors by parameter name).

    Accepts a plain state dict or a training checkpoint nesting one under ``state_dict``
    (CompressAI's ``examples/train.py``), ``model_state_dict``, ``network`` or ``model``.
    Strips a ``module.`` prefix (``DataParallel``). Raises :class:`CheckpointError`.
    """
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint file not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {p} is not a plain state dict: torch.load(weights_only=True) refused it "
            f"({first}). Save the model's state_dict() (tensors only) instead of a pickled object."
        ) from exc
    except Exception as exc:  # zip/EOF/format errors
        raise CheckpointError(f"checkpoint {p} cannot be read by torch.load: {type(exc).__name__}: {exc}") from exc
    return extract_state_dict(obj, source=str(p))


def extract_state_dict(obj: Any, *, source: str = "checkpoint") -> dict[str, Any]:
    """The model state dict inside a loaded checkpoint object (see :func:`load_state_dict`)."""
    import torch

    if isinstance(obj, Mapping):
        for key in NESTED_STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{source} holds a {type(obj).__name__}, not a state dict (a mapping of parameter names to tensors)"
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{source} is not a state dict of tensors: entries {', '.join(map(repr, bad[:5]))} "
            f"are not tensors (top-level keys: {', '.join(map(str, list(obj)[:8]))})"
        )
    prefix = "module."
    if all(k.startswith(prefix) for k in obj):
        return {k[len(prefix) :]: v for k, v in obj.items()}
    return dict(obj)
