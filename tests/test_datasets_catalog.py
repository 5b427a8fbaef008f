"""The dataset catalog: required entries, well-formed sources, Kodak hashes, mirrors, registry."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from rdbench.datasets import catalog
from rdbench.datasets.base import DatasetError
from rdbench.datasets.catalog import CatalogEntry, Checksum, SourceFile

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

REQUIRED = [
    "kodak",
    "clic2020-professional-valid", "clic2020-mobile-valid",
    "clic2020-professional-test", "clic2020-mobile-test",
    "clic2020-professional-train", "clic2020-mobile-train",
    "clic2021-test", "clic2022-valid", "clic2022-test", "clic2024-valid", "clic2024-test",
    "cityscapes-leftimg8bit-train", "cityscapes-leftimg8bit-val", "cityscapes-leftimg8bit-test",
    "imagenet-train", "imagenet-val",
    "bsds500",
]


def test_required_entries_present():
    names = catalog.catalog_names()
    assert names == sorted(names)
    for name in REQUIRED:
        assert catalog.is_catalogued(name), name
    assert not catalog.is_catalogued("sample")
    assert not catalog.is_catalogued("folder:x")


@pytest.mark.parametrize("name", REQUIRED)
def test_entry_is_well_formed(name):
    e = catalog.get_entry(name)
    assert e.name == name and e.title and e.licence and e.homepage.startswith(("http://", "https://"))
    assert e.access in catalog.ACCESS_KINDS
    for s in e.sources:
        assert s.url.startswith(("http://", "https://")), s.url
        assert not s.filename.startswith("/") and ".." not in s.filename.split("/")
        if s.checksum is not None:
            assert s.checksum.algorithm in ("sha256", "md5") and s.checksum.origin
        else:
            # No published checksum: trust on first use must be said in the notes.
            assert "trust" in (e.notes + e.instructions).lower() or e.access == "login", name
        if s.size is None:
            assert s.size_hint or "unknown" in e.notes.lower() or e.access == "login", name
    if e.access == "login":
        assert e.instructions, name
    if e.has_archives:
        assert all(s.is_archive for s in e.sources)
    assert dataclasses.is_dataclass(e)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.name = "other"  # type: ignore[misc]


def test_known_facts():
    kodak = catalog.get_entry("kodak")
    assert kodak.image_count == 24 and len(kodak.sources) == 24
    assert kodak.sources[0].url == "http://r0k.us/graphics/kodak/kodak/kodim01.png"
    assert sum(s.size for s in kodak.sources) == 15_394_305
    assert catalog.get_entry("clic2020-professional-valid").image_count == 41
    assert catalog.get_entry("clic2020-mobile-valid").image_count == 61
    assert catalog.get_entry("clic2020-mobile-valid").members == "valid/"
    assert catalog.get_entry("cityscapes-leftimg8bit-val").members == "leftImg8bit/val/"
    assert catalog.get_entry("cityscapes-leftimg8bit-train").image_count == 2975
    assert catalog.get_entry("imagenet-val").sources[0].size == 6_744_924_160
    assert catalog.get_entry("imagenet-train").nested_archives
    for name in ("cityscapes-leftimg8bit-val", "imagenet-val", "imagenet-train"):
        assert catalog.get_entry(name).access == "login"
    # The three Cityscapes splits share one archive (downloaded/verified once).
    files = {catalog.get_entry(f"cityscapes-leftimg8bit-{s}").sources[0].filename for s in ("train", "val", "test")}
    assert files == {"leftImg8bit_trainvaltest.zip"}
    clic21 = catalog.get_entry("clic2021-test").sources[0]
    assert clic21.checksum.algorithm == "md5" and len(clic21.checksum.value) == 32
    assert catalog.get_entry("clic2022-valid").sources[0].checksum is None


@pytest.mark.skipif(not (SHARED / "kodak" / "SHA256SUMS").is_file(), reason="../shared/kodak is absent")
def test_kodak_hashes_match_shared_sums():
    sums = {}
    for line in (SHARED / "kodak" / "SHA256SUMS").read_text().splitlines():
        digest, fname = line.split()
        sums[fname] = digest
    for s in catalog.get_entry("kodak").sources:
        fname = Path(s.path).name
        assert s.checksum.value == sums[fname]
        assert s.size == (SHARED / "kodak" / fname).stat().st_size


def test_bsds500_layout_matches_shared_copy():
    e = catalog.get_entry("bsds500")
    assert e.image_count == 500
    assert e.selects("BSR/BSDS500/data/images/train/100075.jpg")
    assert not e.selects("BSR/BSDS500/data/images/train/Thumbs.db")
    assert not e.selects("BSR/BSDS500/data/groundTruth/train/100075.mat")
    assert e.image_relpath("BSR/BSDS500/data/images/train/100075.jpg") == "train/100075.jpg"
    shared = SHARED / "train-images" / "bsds500"
    if shared.is_dir():
        assert len(list(shared.rglob("*.jpg"))) == e.image_count


def test_mirror_url(monkeypatch):
    e = catalog.get_entry("clic2020-mobile-test")
    s = e.sources[0]
    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    assert catalog.mirror_url(e, s) == s.url
    assert catalog.mirror_url(e, s, "http://127.0.0.1:9/m/") == "http://127.0.0.1:9/m/test/CLIC2020Mobile_test.zip"
    assert catalog.mirror_url(e, s, "http://h/{dataset}") == "http://h/clic2020-mobile-test/test/CLIC2020Mobile_test.zip"
    monkeypatch.setenv(catalog.MIRROR_ENV, "https://mirror.example/data")
    assert catalog.mirror_url(e, s) == "https://mirror.example/data/test/CLIC2020Mobile_test.zip"
    kodak = catalog.get_entry("kodak")
    assert catalog.mirror_url(kodak, kodak.sources[4]) == "https://mirror.example/data/kodim05.png"


def test_validation_of_entries():
    with pytest.raises(ValueError, match="algorithm"):
        Checksum("sha1", "0" * 40)
    with pytest.raises(ValueError, match="malformed"):
        Checksum("sha256", "abc")
    with pytest.raises(ValueError, match="relative"):
        SourceFile("http://x/", "a.zip", filename="../a.zip")
    with pytest.raises(ValueError, match="access"):
        CatalogEntry("x", "x", (SourceFile("http://x/", "a.zip"),), "l", "http://x", access="ftp")
    assert SourceFile("http://x/", "dir/a.tar.gz").is_archive
    assert not SourceFile("http://x/", "a.png").is_archive


def test_register_and_unknown_names():
    entry = CatalogEntry("tmp-test-entry", "t", (SourceFile("http://x/", "a.zip"),), "l", "http://x")
    catalog.register(entry)
    try:
        assert catalog.is_catalogued("tmp-test-entry")
        assert "tmp-test-entry" in catalog.catalog_names()
        with pytest.raises(ValueError, match="already"):
            catalog.register(entry)
        catalog.register(entry, replace=True)
    finally:
        catalog.unregister("tmp-test-entry")
    assert not catalog.is_catalogued("tmp-test-entry")
    with pytest.raises(ValueError, match="invalid dataset name"):
        catalog.register(dataclasses.replace(entry, name="Bad Name"))
    with pytest.raises(DatasetError) as info:
        catalog.get_entry("no-such-set")
    msg = str(info.value)
    for word in ("sample", "folder:PATH", "glob:PATTERN", "kodak", "clic2020-professional-valid"):
        assert word in msg
    with pytest.raises(TypeError):
        catalog.CATALOG["x"] = entry  # read-only view


def test_checksums_are_lowercase_hex_and_unique_per_file():
    seen: dict[str, str] = {}
    for e in catalog.entries():
        for s in e.sources:
            if s.checksum is not None:
                assert re.fullmatch("[0-9a-f]+", s.checksum.value)
                # A file shared by entries must carry the same checksum everywhere.
                assert seen.setdefault(s.filename, s.checksum.value) == s.checksum.value
