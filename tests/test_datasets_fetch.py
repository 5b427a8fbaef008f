"""Fetching and verifying source files against a local HTTP server (no network)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

try:
    from tests._http import serve
except ImportError:  # tests/ is not a package
    from _http import serve
from rdbench.datasets import catalog, fetch
from rdbench.datasets.catalog import CatalogEntry, Checksum, SourceFile

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BASE = "https://upstream.invalid/data/"  # never contacted: every test uses a mirror


@pytest.fixture
def register(monkeypatch):
    """Register temporary catalog entries for one test."""
    added = []

    def _register(entry: CatalogEntry) -> CatalogEntry:
        catalog.register(entry, replace=True)
        added.append(entry.name)
        return entry

    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    yield _register
    for name in added:
        catalog.unregister(name)


@pytest.fixture
def files(tmp_path):
    """A served folder with two pseudo-random payloads."""
    root = tmp_path / "srv"
    root.mkdir()
    payloads = {"a.bin": os.urandom(300_000), "sub/b.bin": os.urandom(120_000)}
    for name, data in payloads.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root, payloads


def _source(path: str, data: bytes | None, algorithm: str | None = "sha256", **kw) -> SourceFile:
    checksum = None
    if algorithm is not None and data is not None:
        checksum = Checksum(algorithm, hashlib.new(algorithm, data).hexdigest(), "test")
    return SourceFile(BASE, path, size=None if data is None else len(data), checksum=checksum, **kw)


def _entry(name: str, *sources: SourceFile, **kw) -> CatalogEntry:
    return CatalogEntry(name, f"test {name}", tuple(sources), "test licence", "https://example.invalid/home", **kw)


def test_fetch_writes_verified_files_and_stamp(tmp_path, files, register):
    root, payloads = files
    register(_entry("t-fetch", _source("a.bin", payloads["a.bin"]),
                    _source("sub/b.bin", payloads["sub/b.bin"], "md5", filename="t/b.bin")))
    data_root = tmp_path / "data"
    with serve(root) as srv:
        record = fetch.fetch_dataset("t-fetch", data_root, mirror=srv.url, progressbar=False)
        assert srv.paths_requested() == ["a.bin", "sub/b.bin"]
        assert (data_root / "downloads" / "a.bin").read_bytes() == payloads["a.bin"]
        assert (data_root / "downloads" / "t" / "b.bin").read_bytes() == payloads["sub/b.bin"]
        assert [f.verified_by for f in record.files] == ["catalog sha256", "catalog md5"]
        assert record.files[1].sha256 == hashlib.sha256(payloads["sub/b.bin"]).hexdigest()
        assert fetch.stamp_is_current(data_root, "t-fetch")
        stamp = json.loads(fetch.stamp_path(data_root, "t-fetch").read_text())
        assert stamp["files"][0]["url"] == BASE + "a.bin"  # canonical URL recorded, not the mirror
        # Second run: verified in place, nothing downloaded.
        fetch.fetch_dataset("t-fetch", data_root, mirror=srv.url, progressbar=False)
        assert len(srv.requests) == 2
    assert not list((data_root / "downloads" / ".incoming").rglob("*.part"))
    # A modified download makes the stamp stale.
    os.utime(data_root / "downloads" / "a.bin", ns=(1, 1))
    assert not fetch.stamp_is_current(data_root, "t-fetch")


@pytest.mark.skipif(not (SHARED / "kodak").is_dir(), reason="../shared/kodak is absent")
def test_kodak_files_verify_against_catalog(tmp_path, register):
    kodak = catalog.get_entry("kodak")
    register(dataclasses.replace(kodak, name="kodak-mini", sources=kodak.sources[:3], image_count=3))
    with serve(SHARED / "kodak") as srv:
        record = fetch.fetch_dataset("kodak-mini", tmp_path, mirror=srv.url, progressbar=False)
    assert [f.filename for f in record.files] == ["kodak/kodim01.png", "kodak/kodim02.png", "kodak/kodim03.png"]
    assert (tmp_path / "downloads/kodak/kodim02.png").stat().st_size == 617995


def test_checksum_mismatch_is_quarantined_with_clear_message(tmp_path, files, register):
    root, payloads = files
    src = _source("a.bin", payloads["a.bin"])
    register(_entry("t-bad", src))
    altered = bytearray(payloads["a.bin"])
    altered[1000] ^= 0xFF
    with serve(root, overrides={"a.bin": bytes(altered)}) as srv:
        with pytest.raises(fetch.ChecksumMismatchError) as info:
            fetch.fetch_dataset("t-bad", tmp_path, mirror=srv.url, progressbar=False, retries=0)
    msg = str(info.value)
    actual = hashlib.sha256(altered).hexdigest()
    assert "a.bin" in msg and src.checksum.value in msg and actual in msg and "sha256" in msg
    assert "quarantine" in msg
    assert not (tmp_path / "downloads" / "a.bin").exists()
    quarantined = list((tmp_path / "downloads" / ".quarantine").iterdir())
    assert len(quarantined) == 1 and quarantined[0].read_bytes() == bytes(altered)
    assert not fetch.stamp_path(tmp_path, "t-bad").exists()


def test_size_mismatch_is_reported(tmp_path, files, register):
    root, payloads = files
    register(_entry("t-size", SourceFile(BASE, "a.bin", size=len(payloads["a.bin"]) + 1)))
    with serve(root) as srv, pytest.raises(fetch.ChecksumMismatchError, match="a.bin: size mismatch: expected 300,001 bytes, got 300,000 bytes"):
        fetch.fetch_dataset("t-size", tmp_path, mirror=srv.url, progressbar=False)


def test_interrupted_download_is_resumed(tmp_path, files, register):
    root, payloads = files
    register(_entry("t-resume", _source("a.bin", payloads["a.bin"])))
    with serve(root, cut_after={"a.bin": [100_000]}) as srv:
        record = fetch.fetch_dataset("t-resume", tmp_path, mirror=srv.url, progressbar=False, retries=2)
    assert srv.requests == [("a.bin", None, 200), ("a.bin", "bytes=100000-", 206)]
    assert (tmp_path / "downloads" / "a.bin").read_bytes() == payloads["a.bin"]
    assert record.files[0].verified_by == "catalog sha256"


def test_partial_from_previous_run_is_continued(tmp_path, files, register):
    root, payloads = files
    register(_entry("t-part", _source("a.bin", payloads["a.bin"])))
    part = tmp_path / "downloads" / ".incoming" / "a.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payloads["a.bin"][:123_456])
    with serve(root) as srv:
        fetch.fetch_dataset("t-part", tmp_path, mirror=srv.url, progressbar=False)
    assert srv.requests == [("a.bin", "bytes=123456-", 206)]
    assert (tmp_path / "downloads" / "a.bin").read_bytes() == payloads["a.bin"]
    assert not part.exists()


def test_corrupt_partial_is_restarted_from_zero(tmp_path, files, register):
    root, payloads = files
    register(_entry("t-corrupt-part", _source("a.bin", payloads["a.bin"])))
    part = tmp_path / "downloads" / ".incoming" / "a.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 50_000)  # not the file's first bytes
    with serve(root) as srv:
        fetch.fetch_dataset("t-corrupt-part", tmp_path, mirror=srv.url, progressbar=False)
    assert srv.requests == [("a.bin", "bytes=50000-", 206), ("a.bin", None, 200)]
    assert (tmp_path / "downloads" / "a.bin").read_bytes() == payloads["a.bin"]


def test_server_ignoring_range_restarts_cleanly(tmp_path, files, register):
    root, payloads = files
    register(_entry("t-norange", _source("a.bin", payloads["a.bin"])))
    part = tmp_path / "downloads" / ".incoming" / "a.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payloads["a.bin"][:1000])
    with serve(root, ignore_range=True) as srv:
        fetch.fetch_dataset("t-norange", tmp_path, mirror=srv.url, progressbar=False)
    assert srv.requests == [("a.bin", "bytes=1000-", 200)]
    assert (tmp_path / "downloads" / "a.bin").read_bytes() == payloads["a.bin"]


def test_complete_partial_answered_416_is_used(tmp_path, files, register):
    root, payloads = files
    register(_entry("t-416", _source("a.bin", payloads["a.bin"])))
    part = tmp_path / "downloads" / ".incoming" / "a.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payloads["a.bin"])
    with serve(root) as srv:
        fetch.fetch_dataset("t-416", tmp_path, mirror=srv.url, progressbar=False)
    assert srv.requests == [("a.bin", "bytes=300000-", 416)]
    assert (tmp_path / "downloads" / "a.bin").read_bytes() == payloads["a.bin"]


def test_missing_file_fails_fast_without_retries(tmp_path, files, register):
    root, _ = files
    register(_entry("t-404", SourceFile(BASE, "nope.bin")))
    with serve(root) as srv, pytest.raises(fetch.FetchError, match="nope.bin: download failed: HTTP 404"):
        fetch.fetch_dataset("t-404", tmp_path, mirror=srv.url, progressbar=False, retries=3)
    assert len(srv.requests) == 1


def test_trust_on_first_use(tmp_path, files, register):
    root, payloads = files
    register(_entry("t-tofu", SourceFile(BASE, "a.bin"), notes="trust on first use"))
    with serve(root) as srv:
        record = fetch.fetch_dataset("t-tofu", tmp_path, mirror=srv.url, progressbar=False)
        digest = hashlib.sha256(payloads["a.bin"]).hexdigest()
        assert record.files[0].sha256 == digest
        assert "recorded at this download" in record.files[0].verified_by
        trust = (tmp_path / "downloads" / fetch.TRUST_FILE).read_text()
        assert trust == f"{digest}  a.bin\n"
        # Later run, file present: verified against the record.
        record = fetch.fetch_dataset("t-tofu", tmp_path, mirror=srv.url, progressbar=False)
        assert "matches the recorded" in record.files[0].verified_by
        # Upstream changes: a fresh download no longer matches the recorded hash.
        (tmp_path / "downloads" / "a.bin").unlink()
        srv.overrides["a.bin"] = b"something else"
        with pytest.raises(fetch.ChecksumMismatchError) as info:
            fetch.fetch_dataset("t-tofu", tmp_path, mirror=srv.url, progressbar=False)
    msg = str(info.value)
    assert "trusted on first use" in msg and digest in msg and hashlib.sha256(b"something else").hexdigest() in msg
    assert fetch.TRUST_FILE in msg


def test_corrupted_existing_download_is_replaced(tmp_path, files, register):
    root, payloads = files
    register(_entry("t-replace", _source("a.bin", payloads["a.bin"])))
    dest = tmp_path / "downloads" / "a.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"garbage")
    with serve(root) as srv:
        fetch.fetch_dataset("t-replace", tmp_path, mirror=srv.url, progressbar=False)
    assert dest.read_bytes() == payloads["a.bin"]
    assert [p.read_bytes() for p in (tmp_path / "downloads" / ".quarantine").iterdir()] == [b"garbage"]


def test_login_dataset_needs_manual_placement(tmp_path, register):
    data = os.urandom(5000)
    src = _source("archive.tar", data, "md5")
    register(_entry("t-login", src, access="login", instructions="Log in at the site and download archive.tar."))
    dest = tmp_path / "downloads" / "archive.tar"
    with pytest.raises(fetch.ManualDownloadRequired) as info:
        fetch.fetch_dataset("t-login", tmp_path, progressbar=False)
    msg = str(info.value)
    assert "archive.tar" in msg and "https://example.invalid/home" in msg and str(dest.resolve()) in msg
    assert "log" in msg.lower() and "PrepareDataset --name t-login" in msg

    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data[:-1] + b"x")
    with pytest.raises(fetch.ChecksumMismatchError, match="archive.tar: size mismatch|archive.tar: md5 mismatch") as info:
        fetch.fetch_dataset("t-login", tmp_path, progressbar=False)
    assert "Where to put it" in str(info.value) and not dest.exists()

    dest.write_bytes(data)
    record = fetch.fetch_dataset("t-login", tmp_path, progressbar=False)
    assert record.files[0].verified_by == "catalog md5"
    assert fetch.stamp_is_current(tmp_path, "t-login")


def test_credentials_are_sent_but_never_recorded(tmp_path, files, register, caplog):
    root, payloads = files
    register(_entry("t-auth", _source("a.bin", payloads["a.bin"])))
    secret = "s3cr3t-p4ss"
    caplog.set_level(logging.DEBUG)
    with serve(root, credentials=("alice", secret)) as srv:
        mirror = srv.url.replace("http://", f"http://alice:{secret}@")
        record = fetch.fetch_dataset("t-auth", tmp_path, mirror=mirror, progressbar=False)
        assert srv.requests == [("a.bin", None, 200)] and srv.auth_headers[0].startswith("Basic ")
        # Wrong password: a clear failure that does not echo the password either.
        with pytest.raises(fetch.FetchError) as info:
            fetch.fetch_dataset("t-auth", tmp_path / "other", mirror=mirror.replace(secret, "wrong-pw"),
                                progressbar=False)
    assert "401" in str(info.value) and "wrong-pw" not in str(info.value)
    assert record.files[0].sha256 == hashlib.sha256(payloads["a.bin"]).hexdigest()
    assert secret not in caplog.text and "alice" not in caplog.text
    for p in tmp_path.rglob("*"):
        if p.is_file() and p.suffix in (".json", "") and p.stat().st_size < 100_000:
            assert secret.encode() not in p.read_bytes(), p


def test_stamp_goes_stale_when_the_catalog_checksum_changes(tmp_path, files, register):
    root, payloads = files
    entry = register(_entry("t-recat", _source("a.bin", payloads["a.bin"], "md5")))
    with serve(root) as srv:
        fetch.fetch_dataset("t-recat", tmp_path, mirror=srv.url, progressbar=False)
    assert fetch.stamp_is_current(tmp_path, "t-recat")
    register(dataclasses.replace(entry, sources=(_source("a.bin", payloads["a.bin"], "sha256"),)))
    assert not fetch.stamp_is_current(tmp_path, "t-recat")
    record = fetch.fetch_dataset("t-recat", tmp_path, progressbar=False)  # verified in place, no download
    assert record.files[0].verified_by == "catalog sha256"
    assert fetch.stamp_is_current(tmp_path, "t-recat")
