"""rdbench.metrics: PSNR, PSNR-Y and MS-SSIM against hand computations and pytorch_msssim (float64)."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rdbench.metrics import (
    MS_SSIM_MIN_SIZE,
    ImageTooSmallError,
    ms_ssim,
    ms_ssim_db,
    mse,
    psnr,
    psnr_from_mse,
    psnr_y,
)

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "kodak"
TOLERANCE = 1e-5  # the contract; in practice the two float64 computations agree to ~1e-14


def reference_ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch_msssim in float64, the reference definition.

    Run single-threaded: its many small multi-threaded ops crawl on a busy machine.
    """
    from pytorch_msssim import ms_ssim as reference

    def tensor(image):
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].double()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return float(reference(tensor(a), tensor(b), data_range=255, size_average=True))
    finally:
        torch.set_num_threads(threads)


def jpeg_copy(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def kodak(name: str) -> np.ndarray:
    path = KODAK / f"{name}.png"
    if not path.is_file():
        pytest.skip(f"real Kodak images not found at {KODAK}")
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


# --- PSNR --------------------------------------------------------------------------------------

def test_psnr_hand_computed():
    a = np.zeros((2, 2, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 3  # squared error 9
    b[1, 1, 2] = 255  # squared error 65025 (no uint8 wrap-around)
    expected_mse = (9 + 65025) / 12
    assert mse(a, b) == pytest.approx(expected_mse, rel=1e-15)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / expected_mse), rel=1e-13)
    assert psnr(b, a) == psnr(a, b)


def test_psnr_of_identical_images_is_infinite(astronaut):
    assert mse(astronaut, astronaut) == 0.0
    assert psnr(astronaut, astronaut) == math.inf
    assert psnr_y(astronaut, astronaut) == math.inf
    assert psnr_from_mse(0.0) == math.inf


def test_psnr_y_matches_direct_float64_computation(astronaut):
    distorted = jpeg_copy(astronaut, 40)

    def y(image):
        rgb = image.astype(np.float64)
        return 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255

    expected = 10 * np.log10(255**2 / np.mean((y(astronaut) - y(distorted)) ** 2))
    assert psnr_y(astronaut, distorted) == pytest.approx(expected, abs=1e-9)
    # Luma hides chroma error: a colour shift of equal luma has a far higher PSNR-Y than PSNR.
    assert psnr_y(astronaut, distorted) != pytest.approx(psnr(astronaut, distorted), abs=0.1)


def test_psnr_pooled_from_mse(astronaut):
    distorted = jpeg_copy(astronaut, 30)
    assert psnr_from_mse(mse(astronaut, distorted)) == psnr(astronaut, distorted)


# --- MS-SSIM against pytorch_msssim ---------------------------------------------------------------

@pytest.mark.parametrize("quality", [10, 40, 90])
def test_ms_ssim_matches_pytorch_msssim_on_astronaut(astronaut, quality):
    distorted = jpeg_copy(astronaut, quality)
    value = ms_ssim(astronaut, distorted)
    assert value == pytest.approx(reference_ms_ssim(astronaut, distorted), abs=TOLERANCE)
    assert 0.5 < value < 1.0


@pytest.mark.parametrize("name, quality", [("kodim01", 20), ("kodim13", 50), ("kodim23", 90)])
def test_ms_ssim_matches_pytorch_msssim_on_kodak(name, quality):
    image = kodak(name)
    distorted = jpeg_copy(image, quality)
    assert ms_ssim(image, distorted) == pytest.approx(reference_ms_ssim(image, distorted), abs=TOLERANCE)


@pytest.mark.parametrize("height, width", [(197, 163), (161, 161), (163, 322), (255, 171)])
def test_ms_ssim_matches_pytorch_msssim_on_odd_sizes(astronaut, height, width):
    image = np.ascontiguousarray(astronaut[17 : 17 + height, 31 : 31 + width])
    distorted = jpeg_copy(image, 25)
    assert ms_ssim(image, distorted) == pytest.approx(reference_ms_ssim(image, distorted), abs=TOLERANCE)


def test_ms_ssim_is_symmetric_and_thread_count_independent(astronaut):
    distorted = jpeg_copy(astronaut, 30)
    value = ms_ssim(astronaut, distorted, threads=1)
    assert ms_ssim(astronaut, distorted, threads=3) == pytest.approx(value, abs=1e-15)
    assert ms_ssim(distorted, astronaut) == pytest.approx(value, abs=1e-15)


def test_ms_ssim_leaves_the_callers_torch_threads_alone(astronaut):
    before = torch.get_num_threads()
    ms_ssim(astronaut, jpeg_copy(astronaut, 50), threads=2)
    assert torch.get_num_threads() == before


def test_ms_ssim_matches_pytorch_msssim_on_all_kodak_pairs():
    """The accuracy claim of docs/metrics.md: float32 ms_ssim within 1e-5 of the float64 reference
    (measured ≤ 1.3e-7) on all 24 Kodak images at JPEG q 20–50; the float64 path within 1e-12."""
    from rdbench.metrics.msssim import ms_ssim_plane

    paths = sorted(KODAK.glob("kodim*.png"))
    if len(paths) < 24:
        pytest.skip(f"the 24 Kodak images are not at {KODAK}")
    for index, path in enumerate(paths):
        image = np.asarray(Image.open(path).convert("RGB"))
        distorted = jpeg_copy(image, (20, 30, 40, 50)[index % 4])
        expected = reference_ms_ssim(image, distorted)
        assert ms_ssim(image, distorted) == pytest.approx(expected, abs=TOLERANCE), path.name
        if index % 8 == 0:  # the float64 path (ms_ssim_plane), per channel, on a few of them
            planes = [ms_ssim_plane(image[..., c], distorted[..., c]) for c in range(3)]
            assert float(np.mean(planes)) == pytest.approx(expected, abs=1e-12), path.name


def test_gaussian_window_is_pytorch_msssims_bit_for_bit():
    from pytorch_msssim.ssim import _fspecial_gauss_1d

    from rdbench.metrics.msssim import WIN_SIGMA, WIN_SIZE, gaussian_window

    reference = _fspecial_gauss_1d(WIN_SIZE, WIN_SIGMA).flatten().numpy()
    assert np.array_equal(np.array(gaussian_window(), dtype=np.float32), reference)
    assert np.array_equal(np.array(gaussian_window()), reference.astype(np.float64))


def test_ms_ssim_imports_no_torch():
    """MS-SSIM (and SSIM, which shares its window) work in a process without torch."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from rdbench.metrics import ms_ssim; from rdbench.metrics.ssim import ssim; "
            "a = np.random.default_rng(0).integers(0, 256, (170, 180, 3), dtype=np.uint8); "
            "b = np.clip(a.astype(int) + 9, 0, 255).astype(np.uint8); "
            "print(0 < ms_ssim(a, b) < 1, 0 < ssim(a, b) < 1, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["True", "True", "False"], out.stderr


def test_ms_ssim_restores_opencv_threads(astronaut):
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        ms_ssim(astronaut, jpeg_copy(astronaut, 50), threads=2)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)


def test_ms_ssim_of_identical_images_is_one(astronaut):
    assert ms_ssim(astronaut, astronaut) == pytest.approx(1.0, abs=1e-15)
    assert ms_ssim_db(1.0) == math.inf


def test_ms_ssim_db():
    assert ms_ssim_db(0.99) == pytest.approx(20.0)
    assert ms_ssim_db(0.9) == pytest.approx(10.0)
    assert ms_ssim_db(0.0) == 0.0


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width", [(160, 400), (400, 160), (32, 32)])
def test_ms_ssim_rejects_too_small_images(height, width):
    image = np.zeros((height, width, 3), dtype=np.uint8)
    with pytest.raises(ImageTooSmallError, match=rf"{width}x{height}.*{MS_SSIM_MIN_SIZE}"):
        ms_ssim(image, image)
    assert issubclass(ImageTooSmallError, ValueError)
    assert MS_SSIM_MIN_SIZE == 161


def test_smallest_accepted_size_works():
    image = np.full((161, 161, 3), 100, dtype=np.uint8)
    assert ms_ssim(image, image) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", [psnr, psnr_y, mse, ms_ssim])
def test_mismatched_inputs_raise(metric):
    a = np.zeros((200, 200, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        metric(a, np.zeros((200, 199, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        metric(a, a.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        metric(a[..., 0], a[..., 0])
