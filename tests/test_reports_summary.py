"""summary.csv aggregation (rdbench.reports.summary) on small hand-checked tables."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rdbench.reports.summary import SUMMARY_COLUMNS, pooled_psnr, read_summary, summarize, write_summary
from rdbench.run.schema import ERRORS_SCHEMA, RESULTS_SCHEMA


def _results(rows: list[dict]) -> pd.DataFrame:
    base = {"dataset": "d", "codec": "jpeg", "codec_version": "1", "quality": 50.0, "height": 10, "width": 10,
            "num_bytes": 100, "bpp": 8.0, "bpp_estimated": None, "psnr_rgb": 30.0, "psnr_y": 31.0,
            "ms_ssim_rgb": 0.9, "ms_ssim_db": 10.0, "encode_s": 0.01, "decode_s": 0.02, "device": "cpu",
            "roundtrip_ok": True, "run_id": "r"}
    full = [dict(base, **r) for r in rows]
    return pa.Table.from_pylist(full, schema=RESULTS_SCHEMA).to_pandas()


def _errors(rows: list[dict]) -> pd.DataFrame:
    base = {"dataset": "d", "image_id": "x", "codec": "jpeg", "quality": None, "stage": "load",
            "error_type": "E", "message": "m", "run_id": "r"}
    return pa.Table.from_pylist([dict(base, **r) for r in rows], schema=ERRORS_SCHEMA).to_pandas()


def test_pooled_psnr_by_hand():
    # MSEs 1 and 4 on 10x5x3 = 150 and 10x15x3 = 450 samples: pooled MSE = (150 + 1800) / 600 = 3.25
    psnr = [10 * math.log10(255**2 / 1), 10 * math.log10(255**2 / 4)]
    got = pooled_psnr(psnr, [10, 10], [5, 15])
    assert got == pytest.approx(10 * math.log10(255**2 / 3.25), abs=1e-9)


def test_pooled_psnr_infinite_and_null():
    assert pooled_psnr([np.inf, np.inf], [8, 8], [8, 8]) == math.inf
    one = 10 * math.log10(255**2 / 2.0)
    # a lossless image adds zero error but its pixels: MSE halves
    assert pooled_psnr([one, np.inf], [8, 8], [8, 8]) == pytest.approx(10 * math.log10(255**2 / 1.0))
    assert pooled_psnr([one, np.nan], [8, 8], [8, 8]) == pytest.approx(one)
    assert math.isnan(pooled_psnr([np.nan], [8], [8]))


def test_summarize_means_nulls_and_pooling():
    res = _results([
        {"image_id": "a", "height": 100, "width": 100, "psnr_rgb": 30.0, "ms_ssim_rgb": 0.9, "ms_ssim_db": 10.0,
         "bpp": 1.0},
        {"image_id": "b", "height": 10, "width": 20, "psnr_rgb": 40.0, "ms_ssim_rgb": None, "ms_ssim_db": None,
         "bpp": 2.0},
    ])
    s = summarize(res, _errors([]))
    assert list(s.columns) == SUMMARY_COLUMNS
    row = s.iloc[0]
    assert row["n_images"] == 2 and row["n_errors"] == 0
    assert row["bpp"] == pytest.approx(1.5)
    assert row["psnr_rgb"] == pytest.approx(35.0)
    assert row["ms_ssim_rgb"] == pytest.approx(0.9) and row["ms_ssim_db"] == pytest.approx(10.0)
    mse = np.array([255**2 * 10**-3.0, 255**2 * 10**-4.0])
    px = np.array([100 * 100 * 3, 10 * 20 * 3])
    assert row["psnr_rgb_pooled"] == pytest.approx(10 * np.log10(255**2 / ((mse * px).sum() / px.sum())))


def test_error_counting():
    res = _results([
        {"image_id": "a", "quality": 10.0},
        {"image_id": "a", "quality": 20.0},
        {"image_id": "a", "codec": "webp", "quality": 10.0},
    ])
    err = _errors([
        {"image_id": "bad", "codec": "jpeg", "quality": None},  # load failure: every jpeg quality
        {"image_id": "b", "codec": "jpeg", "quality": 20.0, "stage": "encode"},
        {"image_id": "b", "codec": "jpeg", "quality": 30.0, "stage": "decode"},  # only errors at q=30
        {"image_id": "a", "dataset": "other", "codec": "jpeg", "quality": None},  # other dataset
    ])
    s = summarize(res, err).set_index(["dataset", "codec", "quality"])
    assert s.loc[("d", "jpeg", 10.0), "n_errors"] == 1
    assert s.loc[("d", "jpeg", 20.0), "n_errors"] == 2
    assert s.loc[("d", "jpeg", 30.0), "n_errors"] == 2
    assert s.loc[("d", "jpeg", 30.0), "n_images"] == 0
    assert s.loc[("d", "webp", 10.0), "n_errors"] == 0
    other = s.loc["other"].reset_index()
    assert len(other) == 1 and np.isnan(other["quality"].iloc[0]) and other["n_errors"].iloc[0] == 1


def test_summary_csv_round_trip(tmp_path):
    res = _results([{"image_id": "a", "psnr_rgb": float("inf")}, {"image_id": "b", "quality": 70.0}])
    written = write_summary(res, None, tmp_path / "s" / "summary.csv")
    back = read_summary(tmp_path / "s" / "summary.csv")
    assert list(back.columns) == SUMMARY_COLUMNS
    assert back["psnr_rgb"].iloc[0] == math.inf and back["psnr_rgb_pooled"].iloc[0] == math.inf
    pd.testing.assert_frame_equal(back, written, check_dtype=False)


def test_empty_inputs():
    s = summarize(RESULTS_SCHEMA.empty_table().to_pandas(), ERRORS_SCHEMA.empty_table().to_pandas())
    assert list(s.columns) == SUMMARY_COLUMNS and len(s) == 0
