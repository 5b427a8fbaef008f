"""Safe extraction, conversion to RGB PNG, manifests and load_prepared (no network)."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:
    from tests._http import serve
except ImportError:  # tests/ is not a package
    from _http import serve
from rdbench.datasets import catalog, get_dataset
from rdbench.datasets.base import DatasetError
from rdbench.datasets.catalog import CatalogEntry, Checksum, SourceFile
from rdbench.datasets.extract import ArchiveError, UnsafeArchiveError, iter_extract, safe_extract
from rdbench.datasets.fetch import fetch_dataset, trusted_sha256
from rdbench.datasets.prepare import load_prepared, manifest_path, prepare_dataset, verify_prepared
from rdbench.images import load_image

BASE = "https://upstream.invalid/"


# ---------------------------------------------------------------------------- archive builders


def _png(array: np.ndarray) -> bytes:
    """PNG bytes; uint8 (H, W) is 8-bit grayscale, uint16 (H, W) 16-bit grayscale."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return path


def _tar(path: Path, members: dict[str, bytes], links: list[tuple[str, str, bytes]] = (), mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return path


# ---------------------------------------------------------------------------- safe extraction


def _assert_nothing_escaped(tmp_path: Path) -> None:
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize("name", ["/tmp/evil.txt", "../evil.txt", "ok/../../evil.txt", "..\\evil.txt", "C:/evil.txt"])
def test_zip_with_escaping_member_is_rejected(tmp_path, name):
    archive = _zip(tmp_path / "bad.zip", {"fine.png": b"x", name: b"evil"})
    with pytest.raises(UnsafeArchiveError, match="refusing to extract") as info:
        safe_extract(archive, tmp_path / "out")
    assert "bad.zip" in str(info.value)
    _assert_nothing_escaped(tmp_path)


@pytest.mark.parametrize("name", ["/evil.txt", "../evil.txt", "a/../../evil.txt"])
def test_tar_with_escaping_member_is_rejected(tmp_path, name):
    archive = _tar(tmp_path / "bad.tar.gz", {"fine.png": b"x", name: b"evil"})
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        safe_extract(archive, tmp_path / "out")
    _assert_nothing_escaped(tmp_path)


@pytest.mark.parametrize("link, target", [
    ("link", "/etc"), ("link", "../.."), ("a/link", "../../outside"), ("a/b/link", "../../../x"),
])
def test_tar_symlink_pointing_outside_is_rejected(tmp_path, link, target):
    archive = _tar(tmp_path / "sym.tar", {}, [(link, target, tarfile.SYMTYPE), ], mode="w")
    with pytest.raises(UnsafeArchiveError, match="symlink"):
        safe_extract(archive, tmp_path / "out")


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside", "a/../../outside"])
def test_tar_hardlink_pointing_outside_is_rejected(tmp_path, target):
    archive = _tar(tmp_path / "hard.tar", {"a/x.png": b"x"}, [("h.png", target, tarfile.LNKTYPE)], mode="w")
    with pytest.raises(UnsafeArchiveError, match="hard link"):
        safe_extract(archive, tmp_path / "out")


def test_symlink_then_write_through_it_is_impossible(tmp_path):
    # Classic two-step attack: a link to a folder outside, then a file "through" the link.
    archive = _tar(tmp_path / "two.tar", {}, [("d", str(tmp_path), tarfile.SYMTYPE)], mode="w")
    with tarfile.open(archive, "a") as tf:
        info = tarfile.TarInfo("d/evil.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, tmp_path / "out")
    _assert_nothing_escaped(tmp_path)


def test_zip_symlink_outside_is_rejected_inside_is_skipped(tmp_path):
    bad = _zip(tmp_path / "bad.zip", {"a.png": b"x"}, symlinks={"l": "../../etc/passwd"})
    with pytest.raises(UnsafeArchiveError, match="symlink"):
        safe_extract(bad, tmp_path / "out1")
    ok = _zip(tmp_path / "ok.zip", {"d/a.png": b"x"}, symlinks={"d/l.png": "a.png"})
    written = safe_extract(ok, tmp_path / "out2")
    assert [p.relative_to(tmp_path / "out2").as_posix() for p in written] == ["d/a.png"]
    assert not (tmp_path / "out2" / "d" / "l.png").exists()


def test_links_inside_are_skipped_and_junk_is_ignored(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", {
        "set/a.png": b"a", "set/._a.png": b"meta", "__MACOSX/set/._a.png": b"meta",
        "set/.DS_Store": b"x", "set/Thumbs.db": b"x", "./set/b.png": b"b",
    }, [("set/l.png", "a.png", tarfile.SYMTYPE), ("set/h.png", "set/a.png", tarfile.LNKTYPE)])
    written = safe_extract(archive, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["set/a.png", "set/b.png"]
    assert not any(p.is_symlink() for p in (tmp_path / "out").rglob("*"))


def test_include_filter_and_nested_archives(tmp_path):
    inner_a = io.BytesIO()
    with tarfile.open(fileobj=inner_a, mode="w") as tf:
        for n in ("n01_1.JPEG", "n01_2.JPEG", "notes.txt"):
            info = tarfile.TarInfo(n)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
    inner_b = io.BytesIO()
    with tarfile.open(fileobj=inner_b, mode="w") as tf:
        info = tarfile.TarInfo("../escape.JPEG")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    outer = _tar(tmp_path / "outer.tar", {"n01.tar": inner_a.getvalue()}, mode="w")
    got = list(iter_extract(outer, tmp_path / "out", include=lambda r: r.endswith(".JPEG"), nested=True))
    assert [m.relpath for m in got] == ["n01/n01_1.JPEG", "n01/n01_2.JPEG"]
    assert got[0].member == "n01.tar!n01_1.JPEG"
    assert not list((tmp_path / "out").rglob("*.tar"))  # inner archive deleted after use
    bad = _tar(tmp_path / "outer2.tar", {"n02.tar": inner_b.getvalue()}, mode="w")
    with pytest.raises(UnsafeArchiveError, match="n02.tar"):
        list(iter_extract(bad, tmp_path / "out2", nested=True))


def test_not_an_archive(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"definitely not a zip")
    with pytest.raises(ArchiveError, match="not a zip or tar"):
        safe_extract(tmp_path / "x.zip", tmp_path / "out")


# ---------------------------------------------------------------------------- end-to-end preparation


@pytest.fixture
def register(monkeypatch):
    added = []

    def _register(entry: CatalogEntry) -> CatalogEntry:
        catalog.register(entry, replace=True)
        added.append(entry.name)
        return entry

    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    yield _register
    for name in added:
        catalog.unregister(name)


def _zip_entry(name: str, archive: Path, **kw) -> CatalogEntry:
    data = archive.read_bytes()
    source = SourceFile(BASE, archive.name, size=len(data),
                        checksum=Checksum("sha256", hashlib.sha256(data).hexdigest(), "test"))
    kw.setdefault("members", "set/")
    kw.setdefault("extensions", (".png", ".jpg"))
    return CatalogEntry(name, f"test {name}", (source,), "test licence", "https://example.invalid", **kw)


@pytest.fixture
def mixed_zip(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (16, 12), dtype=np.uint8)
    deep = (np.arange(8 * 10, dtype=np.uint16).reshape(8, 10) * 257)  # 16-bit: v*257 -> v
    members = {
        "set/rgb.png": _png(rgb),
        "set/gray.png": _png(gray),
        "set/deep.png": _png(deep),
        "set/sub/photo.jpg": _jpeg(rgb),
        "set/corrupt.png": b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,
        "set/._rgb.png": b"AppleDouble",
        "__MACOSX/set/._gray.png": b"AppleDouble",
        "set/readme.txt": b"not an image",
        "other/outside.png": _png(rgb),
    }
    # IHDR bit depth and colour type: 8-bit gray, 16-bit gray, 8-bit RGB.
    assert members["set/gray.png"][24:26] == bytes([8, 0])
    assert members["set/deep.png"][24:26] == bytes([16, 0])
    assert members["set/rgb.png"][24:26] == bytes([8, 2])
    archive = _zip(tmp_path / "mixed.zip", members)
    return archive, {"rgb": rgb, "gray": gray, "deep": deep}


def test_zip_dataset_end_to_end(tmp_path, register, mixed_zip):
    archive, arrays = mixed_zip
    register(_zip_entry("t-mixed", archive, image_count=5))
    data_root = tmp_path / "data"
    with serve(archive.parent) as srv:
        fetch_dataset("t-mixed", data_root, mirror=srv.url, progressbar=False)
    calls = []
    manifest = prepare_dataset("t-mixed", data_root, workers=2, progress=lambda f, m: calls.append((f, m)))

    assert [im.image_id for im in manifest.images] == ["deep", "gray", "rgb", "sub/photo"]
    assert [(e.image_id, e.member) for e in manifest.errors] == [("corrupt", "set/corrupt.png")]
    assert "corrupt" in manifest.errors[0].reason or "not a recognised" in manifest.errors[0].reason
    assert manifest.warnings == []  # 4 images + 1 error == image_count
    assert calls[-1][0] == 1.0

    root = data_root / "prepared" / "t-mixed"
    on_disk = json.loads((root / "manifest.json").read_text())
    assert on_disk["format"] == "rdbench-prepared-dataset" and on_disk["version"] == 1
    assert on_disk["sources"][0]["filename"] == "mixed.zip" and on_disk["sources"][0]["verified_by"] == "catalog sha256"
    by_id = {im["image_id"]: im for im in on_disk["images"]}
    assert by_id["sub/photo"]["path"] == "images/sub/photo.png"
    assert by_id["gray"]["source"] == "mixed.zip" and by_id["gray"]["member"] == "set/gray.png"
    for im in on_disk["images"]:
        png = root / im["path"]
        assert hashlib.sha256(png.read_bytes()).hexdigest() == im["sha256"]
        with Image.open(png) as pil:
            assert pil.format == "PNG" and pil.mode == "RGB" and pil.size == (im["width"], im["height"])
    assert np.array_equal(load_image(root / "images/rgb.png"), arrays["rgb"])
    gray = load_image(root / "images/gray.png")
    assert gray.shape == (16, 12, 3) and np.array_equal(gray[..., 1], arrays["gray"])
    deep = load_image(root / "images/deep.png")
    assert deep.shape == (8, 10, 3) and np.array_equal(deep[..., 0], (arrays["deep"] // 257).astype(np.uint8))
    # Nothing but images and the manifest: no raw extraction left, no staging folders.
    assert sorted(p.name for p in root.iterdir()) == ["images", "manifest.json"]
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".t-mixed.")]

    ds = load_prepared("t-mixed", data_root)
    assert [r.image_id for r in ds.images] == ["deep", "gray", "rgb", "sub/photo"]
    assert ds.spec == "t-mixed" and all(Path(r.path).is_file() and Path(r.path).is_absolute() for r in ds.images)
    assert get_dataset("t-mixed", data_root=data_root).images == ds.images
    assert verify_prepared("t-mixed", data_root) == []


def test_image_count_mismatch_is_a_warning_and_reprepare_replaces(tmp_path, register, mixed_zip):
    archive, _ = mixed_zip
    register(_zip_entry("t-count", archive, image_count=7))
    with serve(archive.parent) as srv:
        fetch_dataset("t-count", tmp_path, mirror=srv.url, progressbar=False)
    manifest = prepare_dataset("t-count", tmp_path, workers=1)
    assert manifest.warnings == ["expected 7 images, found 5"]
    stray = tmp_path / "prepared" / "t-count" / "images" / "stray.png"
    stray.write_bytes(b"x")
    prepare_dataset("t-count", tmp_path, workers=1)
    assert not stray.exists()


def test_no_images_found_fails_without_output(tmp_path, register, mixed_zip):
    archive, _ = mixed_zip
    register(_zip_entry("t-empty", archive, members="nothing-here/"))
    with serve(archive.parent) as srv:
        fetch_dataset("t-empty", tmp_path, mirror=srv.url, progressbar=False)
    with pytest.raises(DatasetError, match="no usable images found under 'nothing-here/'"):
        prepare_dataset("t-empty", tmp_path, workers=1)
    assert not manifest_path(tmp_path, "t-empty").exists()
    assert [p.name for p in (tmp_path / "prepared").iterdir()] == [".locks"]


def test_malicious_archive_fails_preparation_cleanly(tmp_path, register):
    archive = _zip(tmp_path / "evil.zip", {"set/a.png": _png(np.zeros((4, 4, 3), np.uint8)), "../evil.txt": b"x"})
    register(_zip_entry("t-evil", archive))
    with serve(archive.parent) as srv:
        fetch_dataset("t-evil", tmp_path / "data", mirror=srv.url, progressbar=False)
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./evil\.txt'"):
        prepare_dataset("t-evil", tmp_path / "data", workers=1)
    assert not manifest_path(tmp_path / "data", "t-evil").exists()
    assert [p.name for p in (tmp_path / "data" / "prepared").iterdir()] == [".locks"]
    _assert_nothing_escaped(tmp_path / "data")


def test_bsds_style_tgz_layout(tmp_path, register):
    rng = np.random.default_rng(1)
    members = {f"BSR/BSDS500/data/images/{split}/{i}.jpg": _jpeg(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8))
               for split, i in (("train", 1), ("val", 2), ("test", 3))}
    members["BSR/BSDS500/data/images/train/Thumbs.db"] = b"x"
    members["BSR/BSDS500/data/groundTruth/train/1.mat"] = b"x"
    archive = _tar(tmp_path / "BSR_bsds500.tgz", members)
    bsds = catalog.get_entry("bsds500")
    data = archive.read_bytes()
    source = SourceFile(BASE, archive.name, size=len(data), checksum=Checksum("sha256", hashlib.sha256(data).hexdigest()))
    register(CatalogEntry("t-bsds", bsds.title, (source,), bsds.licence, bsds.homepage, image_count=3,
                          members=bsds.members, extensions=bsds.extensions))
    with serve(tmp_path) as srv:
        fetch_dataset("t-bsds", tmp_path / "data", mirror=srv.url, progressbar=False)
    manifest = prepare_dataset("t-bsds", tmp_path / "data", workers=1)
    assert [im.image_id for im in manifest.images] == ["test/3", "train/1", "val/2"]
    assert [(im.height, im.width) for im in manifest.images] == [(6, 9)] * 3


def test_changed_download_is_refused(tmp_path, register, mixed_zip):
    archive, _ = mixed_zip
    register(_zip_entry("t-changed", archive))
    with serve(archive.parent) as srv:
        fetch_dataset("t-changed", tmp_path, mirror=srv.url, progressbar=False)
    (tmp_path / "downloads" / "mixed.zip").write_bytes(b"tampered")
    with pytest.raises(DatasetError, match="changed after it was verified"):
        prepare_dataset("t-changed", tmp_path, workers=1)


# ---------------------------------------------------------------------------- load_prepared errors


def test_unknown_name_lists_known_specs(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_prepared("no-such-dataset", tmp_path)
    msg = str(info.value)
    for word in ("no-such-dataset", "sample", "folder:PATH", "glob:PATTERN", "kodak", "cityscapes-leftimg8bit-val"):
        assert word in msg
    with pytest.raises(DatasetError, match="unknown dataset"):
        get_dataset("no-such-dataset", data_root=tmp_path)


def test_unprepared_dataset_says_how_to_prepare(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_prepared("kodak", tmp_path)
    msg = str(info.value)
    assert "not prepared" in msg
    assert "luigi --module pipelines PrepareDataset --name kodak --local-scheduler" in msg
    assert f"--data-root {tmp_path}" in msg


def test_incomplete_or_corrupt_prepared_dataset(tmp_path, register, mixed_zip):
    archive, _ = mixed_zip
    register(_zip_entry("t-incomplete", archive))
    with serve(archive.parent) as srv:
        fetch_dataset("t-incomplete", tmp_path, mirror=srv.url, progressbar=False)
    prepare_dataset("t-incomplete", tmp_path, workers=1)
    root = tmp_path / "prepared" / "t-incomplete"
    (root / "images" / "rgb.png").write_bytes(b"changed")
    assert verify_prepared("t-incomplete", tmp_path) == [f"rgb: {root / 'images/rgb.png'} does not match its recorded sha256"]
    (root / "images" / "rgb.png").unlink()
    with pytest.raises(DatasetError, match="incomplete: 1 image file"):
        load_prepared("t-incomplete", tmp_path)
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="corrupt"):
        load_prepared("t-incomplete", tmp_path)


# ---------------------------------------------------------------------------- Tecnick and DIV2K


def test_tecnick_takes_the_rgb_originals_at_any_depth_and_trusts_on_first_use(tmp_path, monkeypatch):
    """The catalogued ``tecnick`` entry, served from 127.0.0.1: only RGB/RGB_OR_1200x1200 images are
    taken, whatever the archive's top folder; its unpublished checksum is recorded, then enforced."""
    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    rng = np.random.default_rng(2)
    originals = {f"RGB_OR_1200x1200_{i:03d}": rng.integers(0, 256, (12, 12, 3), dtype=np.uint8) for i in (1, 2)}
    members = {f"testimages/RGB/RGB_OR_1200x1200/{name}.png": _png(a) for name, a in originals.items()}
    members["testimages/RGB/RGB_R02_0600x0600/RGB_R02_0600x0600_001.png"] = _png(originals["RGB_OR_1200x1200_001"][::2, ::2])
    members["testimages/GRAY/GRAY_OR_1200x1200/GRAY_OR_1200x1200_001.png"] = _png(originals["RGB_OR_1200x1200_001"][..., 0])
    served = tmp_path / "srv" / "testimages.zip"
    served.mkdir(parents=True)
    _zip(served / "download", members)  # SourceForge's download URL ends in .../testimages.zip/download
    data_root = tmp_path / "data"
    with serve(tmp_path / "srv") as srv:
        fetch_dataset("tecnick", data_root, mirror=srv.url, progressbar=False)
    manifest = prepare_dataset("tecnick", data_root, workers=1)
    assert [im.image_id for im in manifest.images] == sorted(originals)
    assert manifest.warnings == ["expected 100 images, found 2"]
    for image in load_prepared("tecnick", data_root).images:
        assert np.array_equal(load_image(image.path), originals[image.image_id])
    assert trusted_sha256(data_root, "tecnick_testimages.zip") == hashlib.sha256((served / "download").read_bytes()).hexdigest()

    # a different file at the same URL is refused against the recorded digest
    (data_root / "downloads" / "tecnick_testimages.zip").unlink()
    _zip(served / "download", {**members, "testimages/RGB/RGB_OR_1200x1200/extra.png": _png(originals["RGB_OR_1200x1200_002"])})
    with serve(tmp_path / "srv") as srv, pytest.raises(DatasetError, match="sha256"):
        fetch_dataset("tecnick", data_root, mirror=srv.url, progressbar=False)


def test_div2k_entries_carry_the_published_checksums():
    valid, train = catalog.get_entry("div2k-valid"), catalog.get_entry("div2k-train")
    assert (valid.image_count, train.image_count) == (100, 800)
    assert valid.sources[0].url == "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip"
    assert valid.sources[0].size == 448993893 and valid.sources[0].checksum.algorithm == "sha256"
    assert valid.selects("DIV2K_valid_HR/0801.png") and not valid.selects("DIV2K_train_HR/0001.png")
    assert valid.image_relpath("DIV2K_valid_HR/0801.png") == "0801.png"
