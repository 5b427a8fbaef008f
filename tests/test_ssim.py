"""Single-scale SSIM: one module plus one registry entry, and it flows through a whole run."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rdbench.metrics import ImageTooSmallError
from rdbench.metrics.registry import METRICS
from rdbench.metrics.ssim import ssim


def jpeg_pair(seed: int, shape=(67, 90, 3), quality: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random image and its real JPEG reconstruction."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0] // 8 + 1, shape[1] // 8 + 1, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(small).resize(shape[1::-1], Image.BICUBIC))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return image, np.asarray(Image.open(buffer).convert("RGB"))


@pytest.mark.parametrize("seed", range(4))
def test_ssim_equals_pytorch_msssim_in_float64(seed):
    from pytorch_msssim import ssim as reference

    a, b = jpeg_pair(seed)
    as_tensor = lambda x: torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float64))  # noqa: E731
    expected = float(reference(as_tensor(a), as_tensor(b), data_range=255, size_average=True))
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)
    assert ssim(a, b) < 1.0


def test_ssim_of_identical_images_is_one_and_tiny_images_are_refused():
    a, _ = jpeg_pair(7)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ImageTooSmallError):
        ssim(a[:10], a[:10])


def test_ssim_through_a_run_gives_a_results_column_a_summary_column_and_a_plot(tmp_path):
    from rdbench.run import RunConfig, run_benchmark

    for i in range(2):
        Image.fromarray(jpeg_pair(i, shape=(40, 56, 3))[0]).save(tmp_path / f"img{i}.png")
    config = RunConfig(datasets=(f"folder:{tmp_path}",), codecs=("jpeg",), qualities={"jpeg": (30, 80)},
                       metrics=("psnr_rgb", "ssim"), output_root=str(tmp_path / "out"), run_name="ssim")
    report = run_benchmark(config)
    run = tmp_path / "out" / "ssim"
    results = pd.read_parquet(run / "results")
    assert METRICS["ssim"].level == "image"
    assert results["ssim"].between(0, 1).all() and results["ssim"].notna().all()
    assert results["ms_ssim_rgb"].isna().all()  # not asked for
    summary = pd.read_csv(run / "summary.csv")
    assert summary["ssim"].is_monotonic_increasing  # more bits, closer to the original
    assert list((run / "plots").glob("rd_ssim_*.png"))
    assert "Rate–SSIM" in open(report, encoding="utf-8").read()
