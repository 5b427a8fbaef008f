"""rdbench.download: the one download-and-verify stack and mirror convention of datasets and
weights, against a local HTTP server (no network)."""
from __future__ import annotations

import hashlib
import os

import pytest

try:
    from tests._http import serve
except ImportError:  # tests/ is not a package
    from _http import serve
from rdbench import download
from rdbench.codecs.weights import ENV_MIRROR_DEPRECATED, RemoteFile, WeightsIntegrityError
from rdbench.datasets import catalog, fetch
from rdbench.datasets.catalog import CatalogEntry, Checksum, SourceFile


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch, tmp_path):
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    monkeypatch.delenv(ENV_MIRROR_DEPRECATED, raising=False)
    monkeypatch.setenv("RDBENCH_WEIGHTS_ROOT", str(tmp_path / "weights"))


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    return root


def _put(root, relpath: str, data: bytes) -> None:
    (root / relpath).parent.mkdir(parents=True, exist_ok=True)
    (root / relpath).write_bytes(data)


def _weights_name(data: bytes) -> str:
    return f"tiny-{hashlib.sha256(data).hexdigest()[:8]}.pth.tar"


def test_split_credentials():
    assert download.split_credentials("https://u:p%40ss@host:8080/x/") == ("https://host:8080/x/", ("u", "p@ss"))
    assert download.split_credentials("https://host/x/") == ("https://host/x/", None)


def test_mirror_url(monkeypatch):
    url = "https://publisher.invalid/models/v1/a.pth"
    assert download.mirror_url(url, "a.pth") == url
    assert download.mirror_url(url, "a.pth", "http://m/{folder}/", folder="lpips") == "http://m/lpips/a.pth"
    assert download.mirror_url(url, "/x/a.pth", "http://m/{dataset}", folder="kodak") == "http://m/kodak/x/a.pth"
    monkeypatch.setenv(download.MIRROR_ENV, "http://env-mirror/ ")
    assert download.mirror_url(url, "a.pth") == "http://env-mirror/a.pth"
    assert download.mirror_url(url, "a.pth", "") == url  # an empty argument means no mirror


def test_download_and_checksum_mismatch_names_the_file(tmp_path, served):
    data = os.urandom(50_000)
    _put(served, "d/file.bin", data)
    out = tmp_path / "out" / "file.bin"
    with serve(served) as srv:
        assert download.download(srv.url + "d/file.bin", out, retries=0) is False
    assert out.read_bytes() == data
    assert not out.with_name("file.bin.part").exists()
    digests = download.verify_file(out, {"md5": hashlib.md5(data).hexdigest()}, size=len(data))
    assert digests["sha256"] == hashlib.sha256(data).hexdigest()
    wrong = "0" * 64
    with pytest.raises(download.ChecksumMismatchError) as info:
        download.verify_file(out, {"sha256": wrong}, name="d/file.bin")
    assert str(info.value) == f"d/file.bin: sha256 mismatch: expected {wrong}, got {digests['sha256']}"
    assert (info.value.filename, info.value.expected) == ("d/file.bin", wrong)
    with pytest.raises(download.ChecksumMismatchError, match=r"file.bin: size mismatch: expected 1 bytes, got 50,000"):
        download.verify_file(out, size=1)
    assert download.digest_matches(digests["sha256"], digests["sha256"][:8].upper())
    assert not download.digest_matches(digests["sha256"], digests["sha256"][:7])  # too short to mean anything


def test_http_errors_fail_fast_without_credentials(tmp_path, served):
    with serve(served, credentials=("alice", "s3cret")) as srv:
        url = srv.url.replace("http://", "http://alice:wrong@") + "nope.bin"
        with pytest.raises(download.DownloadError) as info:
            download.download(url, tmp_path / "nope.bin", retries=3)
    assert len(srv.requests) == 1 and "401" in str(info.value)
    assert "nope.bin: download failed" in str(info.value) and "wrong" not in str(info.value)


def test_one_mirror_for_a_dataset_and_a_weights_file(tmp_path, served, monkeypatch):
    dataset_file, weights_file = os.urandom(20_000), os.urandom(30_000)
    name = _weights_name(weights_file)
    _put(served, "t-mirrored/sub/a.bin", dataset_file)
    _put(served, f"somecodec/{name}", weights_file)
    entry = CatalogEntry("t-mirrored", "test", (SourceFile(
        "https://upstream.invalid/data/", "sub/a.bin", size=len(dataset_file),
        checksum=Checksum("sha256", hashlib.sha256(dataset_file).hexdigest())),), "test", "https://example.invalid")
    catalog.register(entry, replace=True)
    remote = RemoteFile.from_url(f"https://weights.invalid/v1/{name}", "somecodec")
    try:
        with serve(served) as srv:
            monkeypatch.setenv(download.MIRROR_ENV, srv.url + "{folder}/")
            record = fetch.fetch_dataset("t-mirrored", tmp_path / "data", progressbar=False)
            path = remote.fetch(download=True)
    finally:
        catalog.unregister("t-mirrored")
    assert srv.paths_requested() == ["t-mirrored/sub/a.bin", f"somecodec/{name}"]
    assert record.files[0].verified_by == "catalog sha256"
    assert path == tmp_path / "weights" / "somecodec" / name and path.read_bytes() == weights_file
    assert os.listdir(path.parent) == [name]


def test_deprecated_weights_mirror_still_works(tmp_path, served, monkeypatch):
    data = os.urandom(10_000)
    name = _weights_name(data)
    _put(served, name, data)
    with serve(served) as srv:
        monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:9/unused/")
        monkeypatch.setenv(ENV_MIRROR_DEPRECATED, srv.url)
        with pytest.warns(DeprecationWarning, match=download.MIRROR_ENV):
            path = RemoteFile.from_url(f"https://weights.invalid/{name}", "c").fetch(download=True)
    assert srv.paths_requested() == [name] and path.read_bytes() == data


def test_weights_download_resumes_and_mismatch_is_a_checksum_error(tmp_path, served, monkeypatch):
    data = os.urandom(200_000)
    name = _weights_name(data)
    _put(served, name, data)
    remote = RemoteFile.from_url(f"https://weights.invalid/{name}", "c")
    with serve(served, cut_after={name: [70_000]}) as srv:
        monkeypatch.setenv(download.MIRROR_ENV, srv.url)
        assert remote.fetch(download=True).read_bytes() == data
        assert srv.requests == [(name, None, 200), (name, "bytes=70000-", 206)]
        bad = RemoteFile(f"https://weights.invalid/{name}", "d", "0123abcd")
        with pytest.raises(WeightsIntegrityError) as info:
            bad.fetch(download=True)
    assert isinstance(info.value, download.ChecksumMismatchError)
    assert f"{name}: SHA-256 mismatch: expected 0123abcd, got {hashlib.sha256(data).hexdigest()}" in str(info.value)
    assert "downloaded from http://127.0.0.1" in str(info.value)
    assert not (tmp_path / "weights" / "d" / name).exists()
    staged = [p.name for p in (tmp_path / "weights" / ".incoming").rglob("*") if p.is_file()]
    assert sorted(staged) == [f"{name}.lock", f"{name}.lock"]  # no partial or unverified file left


def test_dataset_checksum_error_is_both_kinds():
    exc = fetch.ChecksumMismatchError("a.bin", "md5", "x", "y")
    assert isinstance(exc, fetch.FetchError) and isinstance(exc, download.ChecksumMismatchError)
    assert str(exc) == "a.bin: md5 mismatch: expected x, got y"
