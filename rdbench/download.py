"""Download a file and verify it: the one stack behind dataset and model-weights downloads.

- **Mirrors.** ``$RDBENCH_MIRROR`` (or a ``mirror`` argument) is a base URL that stands in for
  every publisher: a file is fetched from ``<mirror>/<its path below the publisher's base URL>``
  (a catalog source's ``path``, e.g. ``kodim01.png``; a weights file's name). ``{folder}`` in the
  mirror becomes the file's group, for mirrors that keep one folder per group: the dataset's
  name, or the weights' sub-folder (``compressai``, ``lpips``…). ``{dataset}`` is the older
  spelling of ``{folder}``. See :func:`mirror_url`.
- **Credentials.** A URL may carry ``user:password@``; :func:`download` removes them and sends
  them as HTTP basic auth, so they never appear in logs or messages. Without them, requests reads
  ``~/.netrc``.
- **Resume.** HTTP(S) downloads go through :class:`ResumableHTTPDownloader`: bytes land in
  ``<output>.part``, which survives failed attempts and runs and is continued with a ``Range``
  request. pooch retries network errors; an error retrying cannot fix (404, 401…) fails at once.
- **Verification.** :func:`verify_file` checks size and checksums (md5, sha256, or a sha256
  prefix) in one read; :class:`ChecksumMismatchError` names the file, the expected and the
  actual value.

Callers decide what to verify against and where a verified file goes (:mod:`rdbench.datasets.fetch`,
:mod:`rdbench.codecs.weights`).
"""
from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from rdbench.files import file_digests, file_lock, write_text_atomic

__all__ = [
    "MIRROR_ENV",
    "TRUST_FILE",
    "ChecksumMismatchError",
    "DownloadError",
    "ResumableHTTPDownloader",
    "digest_matches",
    "download",
    "mirror_url",
    "read_trusted",
    "record_trusted",
    "split_credentials",
    "verify_file",
]

log = logging.getLogger(__name__)

#: Environment variable holding the base URL of a mirror for every download (datasets and weights).
MIRROR_ENV = "RDBENCH_MIRROR"

#: Trust-on-first-use records: ``sha256sum`` format, one line per file name, next to the files.
TRUST_FILE = "TRUSTED-SHA256SUMS"

#: The shortest digest prefix accepted as an expected checksum (``torch.hub`` file names carry 8).
MIN_PREFIX = 8

OnBytes = Callable[[int, int | None], None]


class DownloadError(Exception):
    """A file could not be downloaded."""


class ChecksumMismatchError(DownloadError):
    """A file's size or checksum is not the expected one."""

    def __init__(self, filename: str, what: str, expected: str, actual: str, detail: str = ""):
        self.filename, self.what, self.expected, self.actual = filename, what, expected, actual
        self.detail = detail
        msg = f"{filename}: {what} mismatch: expected {expected}, got {actual}"
        super().__init__(msg + (f". {detail}" if detail else ""))


class _FatalHTTPError(RuntimeError):
    """An HTTP error that retrying cannot fix (404, 401, 403…); pooch does not retry it."""


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------


def mirror_url(url: str, relpath: str, mirror: str | None = None, *, folder: str = "") -> str:
    """The URL to download a file from.

    ``url`` is the publisher's URL and ``relpath`` the file's path below the publisher's base
    URL. With a mirror (``mirror``, else ``$RDBENCH_MIRROR``; an empty string means none) the
    result is ``<mirror>/<relpath>``, with ``{folder}`` (or ``{dataset}``) in the mirror replaced
    by ``folder``.
    """
    base = (mirror if mirror is not None else os.environ.get(MIRROR_ENV, "")).strip()
    if not base:
        return url
    base = base.replace("{folder}", folder).replace("{dataset}", folder)
    return base.rstrip("/") + "/" + relpath.lstrip("/")


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """Remove ``user:password@`` from a URL; return the clean URL and the (user, password)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    auth = (urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or ""))
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), auth


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(start, total) from a ``Content-Range: bytes a-b/total`` (or ``bytes */total``) header."""
    if not value or not value.startswith("bytes "):
        return None, None
    spec, _, total = value[6:].partition("/")
    start = spec.split("-", 1)[0]
    return (int(start) if start.isdigit() else None), (int(total) if total.isdigit() else None)


class ResumableHTTPDownloader:
    """A pooch downloader that continues ``partial`` with HTTP Range requests.

    ``partial`` persists across failed attempts (and runs); on success it is moved onto pooch's
    output file. ``resumed`` tells whether any bytes came from an earlier attempt. A server that
    ignores the range, or answers a range that does not continue the partial file, restarts it
    from zero. ``progressbar`` follows pooch: ``True`` draws a tqdm bar; an object with
    ``total``, ``update``, ``reset`` and ``close`` is driven instead. ``on_bytes(done, total)``
    is called as data arrives (total may be None).
    """

    def __init__(self, partial: str | os.PathLike, *, progressbar=False, auth=None, timeout=(30, 60),
                 chunk_size: int = 1 << 20, desc: str = "", on_bytes: OnBytes | None = None):
        self.partial = Path(partial)
        self.progressbar = progressbar
        self.auth = auth
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.desc = desc
        self.on_bytes = on_bytes
        self.resumed = False

    def __call__(self, url, output_file, pooch, check_only=False):
        import requests

        if check_only:
            r = requests.head(url, timeout=self.timeout, allow_redirects=True, auth=self.auth)
            return r.status_code == 200
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # at most one restart from zero
            if self._attempt(requests, url):
                os.replace(self.partial, output_file)
                return None
        raise requests.exceptions.ConnectionError(f"could not download {url} (range handling failed)")

    def _attempt(self, requests, url) -> bool:
        """One request; True when ``partial`` is complete, False to restart from zero."""
        have = self.partial.stat().st_size if self.partial.exists() else 0
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout, auth=self.auth) as r:
            if r.status_code == 416 and have:
                _, total = _content_range(r.headers.get("Content-Range"))
                if total == have:
                    self.resumed = True
                    return True
                self.partial.unlink()
                return False
            if 400 <= r.status_code < 500 and r.status_code not in (408, 425, 429):
                raise _FatalHTTPError(f"HTTP {r.status_code} {r.reason} for {url}")
            r.raise_for_status()
            if have and r.status_code == 206:
                start, _ = _content_range(r.headers.get("Content-Range"))
                if start != have:
                    self.partial.unlink()
                    return False
                mode = "ab"
                self.resumed = True
                log.info("resuming %s at byte %d", self.desc or url, have)
            else:
                mode, have = "wb", 0  # no partial, or the server ignored the range: restart
            length = r.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            bar = self._bar(total, have)
            done = have
            try:
                with open(self.partial, mode) as f:
                    for chunk in self._chunks(requests, r):
                        f.write(chunk)
                        done += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                        if self.on_bytes is not None:
                            self.on_bytes(done, total)
            finally:
                if bar is not None:
                    bar.close() if self.progressbar is True else bar.reset()
            if total is not None and done != total:
                raise requests.exceptions.ConnectionError(
                    f"connection closed after {done} of {total} bytes of {url}")
        return True

    def _chunks(self, requests, r) -> Iterator[bytes]:
        """Body chunks as they arrive (``read1``), so an interrupted transfer keeps every byte
        received before the break; transport errors surface as requests' ConnectionError, which
        pooch retries."""
        import urllib3

        try:
            while True:
                data = r.raw.read1(self.chunk_size, decode_content=True)
                if not data:
                    return
                yield data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.exceptions.ConnectionError(f"transfer interrupted: {exc}") from exc

    def _bar(self, total, initial):
        if self.progressbar is True:
            from tqdm.auto import tqdm

            return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=self.desc or None, leave=True)
        if self.progressbar:
            self.progressbar.total = total
            if initial:
                self.progressbar.update(initial)
            return self.progressbar
        return None


def download(url: str, output: str | os.PathLike, *, name: str = "", retries: int = 3, progressbar=False,
             on_bytes: OnBytes | None = None, timeout=(30, 60)) -> bool:
    """Download ``url`` to ``output`` with pooch; return whether an earlier partial download was
    continued.

    Credentials in the URL are sent as basic auth, never shown. HTTP(S) downloads resume from
    ``<output>.part`` (kept when this fails, so running again continues it); other schemes (ftp,
    sftp) use pooch's own downloaders. Network errors are retried ``retries`` times. Failures
    raise :class:`DownloadError` naming ``name`` (default: the output's file name) and the URL
    without credentials. Nothing is verified here: see :func:`verify_file`.
    """
    import pooch
    import requests

    output = Path(output)
    name = name or output.name
    url, auth = split_credentials(url)
    output.unlink(missing_ok=True)  # a previous run stopped between download and verification
    partial = output.with_name(output.name + ".part")
    if urllib.parse.urlsplit(url).scheme.lower() in ("http", "https"):
        downloader = ResumableHTTPDownloader(partial, progressbar=progressbar, auth=auth, timeout=timeout,
                                             desc=Path(name).name, on_bytes=on_bytes)
    else:
        try:
            downloader = pooch.downloaders.choose_downloader(url, progressbar=progressbar)
        except ValueError as exc:
            raise DownloadError(f"{name}: cannot download {url}: {exc}") from None
    repo = pooch.create(path=output.parent, base_url=url.rsplit("/", 1)[0] + "/", registry={output.name: None},
                        urls={output.name: url}, retry_if_failed=retries)
    try:
        repo.fetch(output.name, downloader=downloader)
    except _FatalHTTPError as exc:
        raise DownloadError(f"{name}: download failed: {exc}") from None
    except requests.exceptions.RequestException as exc:
        resume = "; run again to resume" if partial.exists() else ""
        raise DownloadError(f"{name}: download from {url} failed after {retries + 1} attempts: {exc}{resume}") from exc
    return getattr(downloader, "resumed", False)


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def digest_matches(actual: str, expected: str) -> bool:
    """Whether hex digest ``actual`` is ``expected`` or starts with it (a prefix of ≥ 8 digits)."""
    expected = expected.lower()
    return len(expected) >= MIN_PREFIX and actual.lower().startswith(expected)


def verify_file(path: str | os.PathLike, checksums: Mapping[str, str] | None = None, *, size: int | None = None,
                name: str = "", also: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """Check a file's ``size`` and ``checksums`` (algorithm → hex digest or prefix); return its
    digests for those algorithms and ``also``, computed in one read.

    Raises :class:`ChecksumMismatchError` naming ``name`` (default: the path).
    """
    name = name or str(path)
    checksums = dict(checksums or {})
    actual_size = os.path.getsize(path)
    if size is not None and actual_size != size:
        raise ChecksumMismatchError(name, "size", f"{size:,} bytes", f"{actual_size:,} bytes")
    digests = file_digests(path, [*also, *checksums])
    for algorithm, expected in checksums.items():
        if not digest_matches(digests[algorithm], expected):
            raise ChecksumMismatchError(name, algorithm, expected, digests[algorithm])
    return digests


# --------------------------------------------------------------------------------------------
# Trust on first use (files whose publisher gives no checksum)
# --------------------------------------------------------------------------------------------


def read_trusted(trust_file: str | os.PathLike) -> dict[str, str]:
    """File name → sha256 recorded in ``trust_file`` (``sha256sum`` format); empty when absent."""
    trusted: dict[str, str] = {}
    try:
        text = Path(trust_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return trusted
    for line in text.splitlines():
        digest, sep, fname = line.strip().partition("  ")
        if sep and len(digest) == 64:
            trusted[fname] = digest
    return trusted


def record_trusted(trust_file: str | os.PathLike, filename: str, digest: str) -> None:
    """Record ``filename``'s sha256 in ``trust_file`` (under a lock, rewritten atomically), so
    that later downloads of it are checked against this first one."""
    path = Path(trust_file)
    with file_lock(path.with_name(".trust.lock")):
        trusted = read_trusted(path)
        trusted[filename] = digest
        write_text_atomic(path, "".join(f"{d}  {f}\n" for f, d in sorted(trusted.items())))
