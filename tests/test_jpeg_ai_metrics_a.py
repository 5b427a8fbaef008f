"""VIF, FSIM, IW-SSIM and NLPD (JPEG AI's metrics, part A) against independent implementations.

Pairs: crops of the bundled photographs and their JPEG (Pillow, quality 20) reconstructions.
References, and the tolerance each is held to (the float64 Kodak figures are in docs/metrics.md):

- VIF: ``piq.vif_p`` in float64 (the library rdbench's separable version replaces; 1e-12) and
  sewar's ``vifp`` (an independent numpy port of ``vifp_mscale.m``; 1e-6, its flat-window guard
  differs: ε 1e-10 instead of 1e-8).
- FSIM: pyiqa's ``fsim`` (derived from piq's; 1e-6, float32 YIQ weights) and piqa's ``FSIM`` (an
  independent implementation; 5e-5: its own filter construction and I/Q weights).
- IW-SSIM: no package besides piq implements it (pyiqa has none); the reference is Wang & Li's
  published algorithm written out below in numpy/scipy (1e-10).
- NLPD: pyiqa's ``NLPD`` run in float64 on the same plane (2e-8: its constants are float32).

Tests needing a reference package skip when it is not installed. piq is a dependency and piqa is in
the ``test`` extra; pyiqa is not (it brings transformers, timm, OpenCV and more), nor sewar
(``pip install pyiqa sewar`` for the rest).
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from rdbench.metrics import ImageTooSmallError
from rdbench.metrics.fsim import FSIM_MIN_SIZE, fsim
from rdbench.metrics.iwssim import IWSSIM_MIN_SIZE, iw_ssim
from rdbench.metrics.nlpd import NLPD_MIN_SIZE, nlpd
from rdbench.metrics.registry import METRICS
from rdbench.metrics.vif import VIF_MIN_SIZE, vif
from rdbench.metrics.yuv import y709_plane

# (photo, rows, columns): 176×208 crops, large enough for IW-SSIM's 161 px.
CROPS = [("astronaut", slice(40, 216), slice(60, 268)),
         ("coffee", slice(100, 276), slice(250, 458)),
         ("chelsea", slice(60, 236), slice(120, 328))]


def jpeg(image: np.ndarray, quality: int = 20) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.fixture(scope="module")
def pairs(photos) -> list[tuple[np.ndarray, np.ndarray]]:
    """(original crop, its JPEG q20 reconstruction) for each crop."""
    out = []
    for name, rows, cols in CROPS:
        crop = np.ascontiguousarray(photos[name][rows, cols])
        out.append((crop, jpeg(crop)))
    return out


def plane(image: np.ndarray) -> np.ndarray:
    """The 8-bit BT.709 luma the three luma metrics use, as float64."""
    return y709_plane(image).astype(np.float64)


def gray_tensor(image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
    """(1, 1, H, W) float64 tensor of the BT.709 luma, times ``scale``."""
    return torch.from_numpy(plane(image) * scale)[None, None]


def rgb_tensor(image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
    return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float64) * scale)[None]


# --- VIF -----------------------------------------------------------------------------------------

def test_vif_equals_piq_vif_p_in_float64_on_bt709_luma(pairs):
    import piq

    for original, decoded in pairs:
        expected = float(piq.vif_p(gray_tensor(decoded), gray_tensor(original), data_range=255.0))
        assert vif(original, decoded) == pytest.approx(expected, abs=1e-12)
        assert 0.0 < vif(original, decoded) < 1.0


def test_vif_agrees_with_sewar_vifp(pairs):
    sewar = pytest.importorskip("sewar.full_ref")
    for original, decoded in pairs:
        assert vif(original, decoded) == pytest.approx(sewar.vifp(plane(original), plane(decoded)), abs=1e-6)


# --- FSIM ----------------------------------------------------------------------------------------

def test_fsim_agrees_with_pyiqa(pairs):
    pytest.importorskip("pyiqa")
    from pyiqa.archs.fsim_arch import fsim as reference

    for original, decoded in pairs:
        expected = float(reference(rgb_tensor(decoded, 1 / 255), rgb_tensor(original, 1 / 255), chromatic=True))
        assert fsim(original, decoded) == pytest.approx(expected, abs=1e-6)
        assert 0.0 < fsim(original, decoded) < 1.0


def test_fsim_agrees_with_piqa(pairs):
    piqa = pytest.importorskip("piqa")
    reference = piqa.FSIM(chromatic=True).double()
    for original, decoded in pairs:
        expected = float(reference(rgb_tensor(decoded, 1 / 255), rgb_tensor(original, 1 / 255)))
        assert fsim(original, decoded) == pytest.approx(expected, abs=5e-5)


# --- IW-SSIM -------------------------------------------------------------------------------------
# Wang & Li (2011), "Information content weighting for perceptual image quality assessment", and
# their iwssim.m (with matlabPyrTools), written out independently of piq: scipy filtering instead of
# torch convolutions, explicit loops over the GSM neighbourhood, numpy linear algebra.

_BINOM5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16 * np.sqrt(2)  # matlabPyrTools' 'binom5'
_SCALE_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def _reduce(image):
    """buildLpyr's corrDn: 'reflect1' edges (mirror without repeating the edge), keep even samples."""
    from scipy.ndimage import correlate1d

    out = correlate1d(image, _BINOM5, axis=1, mode="mirror")[:, ::2]
    return correlate1d(out, _BINOM5, axis=0, mode="mirror")[::2, :]


def _expand(low, shape):
    """buildLpyr's upConv: zeros between the samples, then the same filter with 'reflect1' edges."""
    from scipy.ndimage import correlate1d

    wide = np.zeros((low.shape[0], shape[1]))
    wide[:, ::2] = low
    wide = correlate1d(wide, _BINOM5, axis=1, mode="mirror")
    tall = np.zeros(shape)
    tall[::2, :] = wide
    return correlate1d(tall, _BINOM5, axis=0, mode="mirror")


def _laplacian_pyramid(image, levels=5):
    bands, current = [], image
    for _ in range(levels - 1):
        low = _reduce(current)
        bands.append(current - _expand(low, current.shape))
        current = low
    return [*bands, current]


def _gaussian_11():
    x = np.arange(11) - 5.0
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    return g / g.sum()


def _filter_valid(image, window):
    from scipy.signal import correlate2d

    return correlate2d(image, window, mode="valid")


def _ssim_maps(x, y):
    """SSIM and contrast–structure maps, 11×11 Gaussian, valid filtering, peak 255 (x: reference)."""
    w = _gaussian_11()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _filter_valid(x, w), _filter_valid(y, w)
    vx = np.maximum(_filter_valid(x * x, w) - mx * mx, 0)
    vy = np.maximum(_filter_valid(y * y, w) - my * my, 0)
    cxy = _filter_valid(x * y, w) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    return (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs, cs


def _enlarge2(image):
    """iwssim.m's imenlarge2: bilinear ×4 − 3, edges extrapolated linearly, then every second sample."""
    h, w = image.shape
    big = torch.nn.functional.interpolate(torch.from_numpy(image)[None, None], size=(4 * h - 3, 4 * w - 3),
                                          mode="bilinear", align_corners=False)[0, 0].numpy()
    out = np.zeros((4 * h - 1, 4 * w - 1))
    out[1:-1, 1:-1] = big
    out[0, :] = 2 * out[1, :] - out[2, :]
    out[-1, :] = 2 * out[-2, :] - out[-3, :]
    out[:, 0] = 2 * out[:, 1] - out[:, 2]
    out[:, -1] = 2 * out[:, -2] - out[:, -3]
    return out[::2, ::2]


def _information_weights(ref, dist, parent, sigma_nsq=0.4):
    """iwssim.m's info_content_weight_map over the valid 3×3 blocks (ref: reference band)."""
    from scipy.ndimage import correlate

    def local(a):  # 3×3 means, zero outside, centred; summed directly (uniform_filter's running sums
        return correlate(a, np.full((3, 3), 1 / 9), mode="constant")  # lose the tiny variances of flat bands)

    mr, md = local(ref), local(dist)
    vr = np.maximum(local(ref * ref) - mr * mr, 0)
    vd = np.maximum(local(dist * dist) - md * md, 0)
    cov = local(ref * dist) - mr * md
    eps = np.finfo(np.float64).eps
    g = cov / (vr + eps)
    vv = vd - g * cov
    g[vr < eps] = 0
    vv[vr < eps] = vd[vr < eps]
    g[vd < eps] = 0
    vv[vd < eps] = 0
    h, w = ref.shape
    # Neighbourhood vectors: the 3×3 block of the reference band (and its parent's sample).
    columns = [ref[1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx].ravel() for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    if parent is not None:
        columns.append(_enlarge2(parent)[:h, :w][1:-1, 1:-1].ravel())
    Y = np.stack(columns, axis=1)
    n = Y.shape[1]
    cov_u = Y.T @ Y / Y.shape[0]
    eigvals, eigvecs = np.linalg.eigh(cov_u)
    positive = np.where(eigvals > 0, eigvals, 0.0)
    eigvals = positive * eigvals.sum() / (positive.sum() if positive.sum() else 1.0)
    cov_u = eigvecs @ np.diag(eigvals) @ eigvecs.T
    ss = np.sum((Y @ np.linalg.inv(cov_u)) * Y, axis=1) / n
    g, vv = g[1:-1, 1:-1].ravel(), vv[1:-1, 1:-1].ravel()
    info = np.sum(np.log2(1 + ((vv + (1 + g * g) * sigma_nsq)[:, None] * ss[:, None] * eigvals[None, :]
                               + sigma_nsq * vv[:, None]) / sigma_nsq**2), axis=1)
    info[info < eps] = 0
    return info.reshape(h - 2, w - 2)


def reference_iw_ssim(ref: np.ndarray, dist: np.ndarray) -> float:
    """IW-SSIM of two float64 planes (0–255), 5 levels, parent band for the three finest."""
    pr, pd = _laplacian_pyramid(ref), _laplacian_pyramid(dist)
    pooled = []
    for s in range(5):
        ssim_map, cs_map = _ssim_maps(pr[s], pd[s])
        if s == 4:
            pooled.append(ssim_map.mean())
            continue
        weights = _information_weights(pr[s], pd[s], pr[s + 1] if s < 3 else None)
        weights = weights[4:-4, 4:-4]  # the blocks whose centres are SSIM's valid window centres
        pooled.append(np.sum(cs_map * weights) / np.sum(weights))
    weights = _SCALE_WEIGHTS / _SCALE_WEIGHTS.sum()
    return float(np.prod(np.abs(np.array(pooled)) ** weights))


def test_iw_ssim_agrees_with_the_published_algorithm(pairs):
    for original, decoded in pairs:
        expected = reference_iw_ssim(plane(original), plane(decoded))
        assert iw_ssim(original, decoded) == pytest.approx(expected, abs=1e-10)
        assert 0.0 < iw_ssim(original, decoded) < 1.0


# --- NLPD ----------------------------------------------------------------------------------------

def test_nlpd_agrees_with_pyiqa(pairs):
    pytest.importorskip("pyiqa")
    from pyiqa.archs.nlpd_arch import NLPD

    # pyiqa's NLPD takes the Y of YIQ from RGB: a grey image of rdbench's plane has exactly that Y.
    reference = NLPD(channels=1, test_y_channel=True).double()
    for original, decoded in pairs:
        def grey(image):
            return gray_tensor(image, 1 / 255).repeat(1, 3, 1, 1)

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = float(reference(grey(decoded), grey(original)))
        assert nlpd(original, decoded) == pytest.approx(expected, abs=2e-8)
        assert nlpd(original, decoded) > 0.0


# --- all four ------------------------------------------------------------------------------------

FUNCTIONS = {"vif": (vif, VIF_MIN_SIZE), "fsim": (fsim, FSIM_MIN_SIZE), "iw_ssim": (iw_ssim, IWSSIM_MIN_SIZE),
             "nlpd": (nlpd, NLPD_MIN_SIZE)}


def test_identical_images_give_the_perfect_value(pairs):
    original, _ = pairs[0]
    assert vif(original, original) == pytest.approx(1.0, abs=1e-7)  # vifp_mscale.m's ε guards: 1 − ~3e-9
    assert fsim(original, original) == pytest.approx(1.0, abs=1e-12)
    assert iw_ssim(original, original) == pytest.approx(1.0, abs=1e-12)
    assert nlpd(original, original) == 0.0


def test_more_bits_score_better(pairs):
    original, _ = pairs[1]
    low, high = jpeg(original, 20), jpeg(original, 80)
    for name, (function, _) in FUNCTIONS.items():
        better = function(original, high) > function(original, low)
        assert better == METRICS[name].columns[0].higher_is_better, name


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_images_below_the_minimum_size_are_refused(pairs, name):
    function, minimum = FUNCTIONS[name]
    original, decoded = pairs[0]
    assert np.isfinite(function(original[:minimum, :minimum], decoded[:minimum, :minimum]))
    for shape in ((minimum - 1, minimum), (minimum, minimum - 1)):
        with pytest.raises(ImageTooSmallError):
            function(original[:shape[0], :shape[1]], decoded[:shape[0], :shape[1]])
    with pytest.raises(ValueError):
        function(original, decoded[:-1])


def test_registry_entries_follow_ssim():
    names = list(METRICS)
    start = names.index("ssim") + 1
    assert names[start:start + 4] == ["vif", "fsim", "iw_ssim", "nlpd"]
    assert [METRICS[n].columns[0].higher_is_better for n in names[start:start + 4]] == [True, True, True, False]
    for name, (function, _) in FUNCTIONS.items():
        assert METRICS[name].level == "image" and METRICS[name].columns[0].plot
        tiny = np.zeros((5, 5, 3), np.uint8)  # below every minimum: a null, not an error
        assert METRICS[name].load()(tiny, tiny) == {name: None}


def test_the_four_metrics_through_a_run(tmp_path, photos):
    import pandas as pd

    from rdbench.run import RunConfig, run_benchmark

    for name, rows, cols in CROPS[:2]:
        Image.fromarray(photos[name][rows, cols]).save(tmp_path / f"{name}.png")
    config = RunConfig(datasets=(f"folder:{tmp_path}",), codecs=("jpeg",), qualities={"jpeg": (20, 80)},
                       metrics=("psnr_rgb", "vif", "fsim", "iw_ssim", "nlpd"), output_root=str(tmp_path / "out"),
                       run_name="jpeg-ai-a")
    run_benchmark(config)
    run = tmp_path / "out" / "jpeg-ai-a"
    results = pd.read_parquet(run / "results")
    assert results[["vif", "fsim", "iw_ssim", "nlpd"]].notna().all().all()
    summary = pd.read_csv(run / "summary.csv")
    for name in ("vif", "fsim", "iw_ssim"):
        assert summary[name].is_monotonic_increasing, name
    assert summary["nlpd"].is_monotonic_decreasing
    for name in ("vif", "fsim", "iw_ssim", "nlpd"):
        assert list((run / "plots").glob(f"rd_{name}_*.png")), name
