"""FetchDataset / PrepareDataset / PrepareDatasets through Luigi, against a local HTTP server."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import luigi
import numpy as np
import pytest
from luigi.execution_summary import LuigiStatusCode
from PIL import Image

from pipelines.datasets import FetchDataset, PrepareDataset, PrepareDatasets
from rdbench.datasets import catalog, get_dataset
from rdbench.datasets.base import DatasetError
from rdbench.datasets.catalog import CatalogEntry, Checksum, SourceFile
from rdbench.datasets.prepare import manifest_path

try:
    from tests._http import serve
except ImportError:  # tests/ is not a package
    from _http import serve

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
KODAK = SHARED / "kodak"
needs_kodak = pytest.mark.skipif(not (KODAK / "kodim01.png").is_file(), reason=f"real Kodak images not found at {KODAK}")

OK = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
FAILURES: list[str] = []


@FetchDataset.event_handler(luigi.Event.FAILURE)
def _record_failure(task, exception):
    FAILURES.append(f"{task.task_id}: {exception}")


def _build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


@pytest.fixture
def register(monkeypatch):
    added = []

    def _register(entry: CatalogEntry) -> CatalogEntry:
        catalog.register(entry, replace=True)
        added.append(entry.name)
        return entry

    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    FAILURES.clear()
    yield _register
    for name in added:
        catalog.unregister(name)


@needs_kodak
def test_prepare_kodak_end_to_end(tmp_path, register, monkeypatch):
    data_root = tmp_path / "data"
    with serve(KODAK) as srv:
        monkeypatch.setenv(catalog.MIRROR_ENV, srv.url)
        result = _build(PrepareDataset(name="kodak", data_root=str(data_root), num_workers=2))
        assert result.status in OK, result.summary_text
        assert sorted(srv.paths_requested()) == [f"kodim{i:02d}.png" for i in range(1, 25)]

        manifest = json.loads(manifest_path(data_root, "kodak").read_text())
        assert manifest["name"] == "kodak" and manifest["errors"] == [] and manifest["warnings"] == []
        images = manifest["images"]
        assert [im["image_id"] for im in images] == [f"kodim{i:02d}" for i in range(1, 25)]
        portrait = {"kodim04", "kodim09", "kodim10", "kodim17", "kodim18", "kodim19"}
        for im in images:
            assert (im["height"], im["width"]) == ((768, 512) if im["image_id"] in portrait else (512, 768))
            png = data_root / "prepared" / "kodak" / im["path"]
            assert hashlib.sha256(png.read_bytes()).hexdigest() == im["sha256"]
        # The originals are 8-bit RGB PNGs: the prepared pixels are identical.
        with Image.open(KODAK / "kodim07.png") as a, Image.open(data_root / "prepared/kodak/images/kodim07.png") as b:
            assert np.array_equal(np.asarray(a), np.asarray(b))
        assert {s["verified_by"] for s in manifest["sources"]} == {"catalog sha256"}
        assert manifest["sources"][0]["url"] == "http://r0k.us/graphics/kodak/kodak/kodim01.png"

        ds = get_dataset("kodak", data_root=data_root)
        assert len(ds) == 24 and ds.images[0].image_id == "kodim01"

        # Complete: a second run neither downloads nor rewrites anything.
        mtime = manifest_path(data_root, "kodak").stat().st_mtime_ns
        result = _build(PrepareDataset(name="kodak", data_root=str(data_root)))
        assert result.status in OK and len(srv.requests) == 24
        assert manifest_path(data_root, "kodak").stat().st_mtime_ns == mtime


@needs_kodak
def test_checksum_mismatch_fails_the_task(tmp_path, register):
    kodak = catalog.get_entry("kodak")
    register(dataclasses.replace(kodak, name="kodak-two", sources=kodak.sources[:2], image_count=2))
    altered = bytearray((KODAK / "kodim02.png").read_bytes())
    altered[-100] ^= 0x01
    with serve(KODAK, overrides={"kodim02.png": bytes(altered)}) as srv:
        result = _build(PrepareDataset(name="kodak-two", data_root=str(tmp_path), mirror=srv.url))
    assert result.status == LuigiStatusCode.FAILED
    assert not manifest_path(tmp_path, "kodak-two").exists()
    assert not (tmp_path / "downloads/kodak/kodim02.png").exists()
    assert (tmp_path / "downloads/kodak/kodim01.png").exists()
    [failure] = FAILURES
    assert "kodak/kodim02.png: sha256 mismatch" in failure
    assert kodak.sources[1].checksum.value in failure and hashlib.sha256(altered).hexdigest() in failure


def _tiny_zip(path: Path, n: int) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(np.full((4, 6, 3), 40 * i, np.uint8)).save(buf, format="PNG")
            zf.writestr(f"imgs/{i}.png", buf.getvalue())
    return path


def _zip_entry(name: str, archive: Path, n: int) -> CatalogEntry:
    data = archive.read_bytes()
    src = SourceFile("https://upstream.invalid/", archive.name, size=len(data),
                     checksum=Checksum("sha256", hashlib.sha256(data).hexdigest()))
    return CatalogEntry(name, name, (src,), "test licence", "https://example.invalid", image_count=n, members="imgs/")


def test_prepare_datasets_wrapper_from_the_command_line(tmp_path, register):
    (tmp_path / "srv").mkdir()
    register(_zip_entry("t-one", _tiny_zip(tmp_path / "srv" / "one.zip", 2), 2))
    register(_zip_entry("t-two", _tiny_zip(tmp_path / "srv" / "two.zip", 3), 3))
    data_root = tmp_path / "data"
    with serve(tmp_path / "srv") as srv:
        result = luigi.run(["PrepareDatasets", "--names", '["t-one", "t-two"]', "--data-root", str(data_root),
                            "--mirror", srv.url, "--num-workers", "1", "--log-level", "WARNING"],
                           local_scheduler=True, detailed_summary=True)
    assert result.status in OK, result.summary_text
    assert len(get_dataset("t-one", data_root=data_root)) == 2
    assert [r.image_id for r in get_dataset("t-two", data_root=data_root).images] == ["0", "1", "2"]
    # Luigi considers the wrapper complete now.
    assert PrepareDatasets(names=["t-one", "t-two"], data_root=str(data_root)).complete()


def test_data_root_defaults_to_config(tmp_path, register):
    (tmp_path / "srv").mkdir()
    register(_zip_entry("t-cfg", _tiny_zip(tmp_path / "srv" / "cfg.zip", 1), 1))
    config = luigi.configuration.get_config()
    if not config.has_section("rdbench"):
        config.add_section("rdbench")
    previous = config.get("rdbench", "data_root", None)
    config.set("rdbench", "data_root", str(tmp_path / "configured"))
    try:
        with serve(tmp_path / "srv") as srv:
            task = PrepareDataset(name="t-cfg", mirror=srv.url, num_workers=1)
            assert task.output().path == str(tmp_path / "configured" / "prepared" / "t-cfg" / "manifest.json")
            assert _build(task).status in OK
    finally:
        if previous is None:
            config.remove_option("rdbench", "data_root")
        else:
            config.set("rdbench", "data_root", previous)
    assert manifest_path(tmp_path / "configured", "t-cfg").is_file()


def test_tasks_run_outside_a_worker(tmp_path, register):
    """Progress reporting is guarded: run() works where Luigi injected no callbacks."""
    (tmp_path / "srv").mkdir()
    register(_zip_entry("t-direct", _tiny_zip(tmp_path / "srv" / "d.zip", 2), 2))
    with serve(tmp_path / "srv") as srv:
        fetch = FetchDataset(name="t-direct", data_root=str(tmp_path / "data"), mirror=srv.url)
        assert not fetch.complete()
        fetch.run()
        assert fetch.complete() and fetch.output().exists()
    prepare = PrepareDataset(name="t-direct", data_root=str(tmp_path / "data"), num_workers=1)
    prepare.run()
    assert prepare.complete()
    # Deleting a download makes the fetch incomplete again (but not the prepared dataset).
    (tmp_path / "data" / "downloads" / "d.zip").unlink()
    assert not fetch.complete() and prepare.complete()


def test_login_dataset_failure_explains_manual_placement(tmp_path, register):
    data = b"archive bytes"
    src = SourceFile("https://upstream.invalid/", "manual.zip", size=len(data),
                     checksum=Checksum("sha256", hashlib.sha256(data).hexdigest()))
    register(CatalogEntry("t-manual", "t", (src,), "licence", "https://example.invalid/login", access="login",
                          instructions="Log in and download manual.zip."))
    assert FetchDataset(name="t-manual", data_root=str(tmp_path)).process_resources() == {}
    result = _build(PrepareDataset(name="t-manual", data_root=str(tmp_path)))
    assert result.status == LuigiStatusCode.FAILED
    [failure] = FAILURES
    assert "https://example.invalid/login" in failure and str((tmp_path / "downloads" / "manual.zip").resolve()) in failure


def test_unknown_and_local_names_are_refused():
    with pytest.raises(DatasetError, match="unknown dataset 'nope'.*sample, folder:PATH, glob:PATTERN"):
        PrepareDataset(name="nope")
    with pytest.raises(DatasetError, match="needs no preparation"):
        PrepareDataset(name="sample")
    assert FetchDataset(name="kodak").process_resources() == {"rdbench_download": 1}
