"""BD-rate / BD-metric computation (rdbench.reports.bdrate) and the published reference curves."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rdbench.reports.bdrate import BD_COLUMNS, bd_compare, codec_name, compute_bd_rates, select_anchor
from rdbench.reports.reference import known_methods, load_reference, normalize_selection, reference_set_for

RATES = np.array([0.12, 0.25, 0.5, 1.0, 2.0, 3.1])
PSNR = 24.0 + 4.2 * np.log2(RATES / 0.12) - 0.15 * np.log2(RATES / 0.12) ** 2  # concave, like real curves


@pytest.mark.parametrize("interpolation", ["pchip", "akima"])
@pytest.mark.parametrize("factor", [0.9, 0.5, 1.25])
def test_constant_rate_factor_gives_exactly_that_bd_rate(interpolation, factor):
    res = bd_compare(RATES, PSNR, RATES * factor, PSNR, interpolation=interpolation)
    assert res.reason == ""
    assert res.bd_rate_percent == pytest.approx((factor - 1) * 100, abs=1e-6)
    assert res.interpolation == interpolation
    assert res.n_points == len(RATES)
    assert (res.bd_metric > 0) == (factor < 1)


def test_rate_x09_is_minus_10_percent():
    res = bd_compare(RATES, PSNR, RATES * 0.9, PSNR)
    assert abs(res.bd_rate_percent - (-10.0)) < 1e-6
    # the overlap in bpp is reported
    assert res.bpp_min == pytest.approx(RATES[0])
    assert res.bpp_max == pytest.approx(RATES[-1] * 0.9)


def test_constant_metric_offset_gives_that_bd_metric():
    res = bd_compare(RATES, PSNR, RATES, PSNR + 0.7)
    assert res.bd_metric == pytest.approx(0.7, abs=1e-9)
    assert res.bd_rate_percent < 0


def test_order_of_points_does_not_matter():
    perm = np.array([3, 0, 5, 1, 4, 2])
    a = bd_compare(RATES, PSNR, RATES * 0.8, PSNR + 0.1)
    b = bd_compare(RATES[perm], PSNR[perm], (RATES * 0.8)[::-1], (PSNR + 0.1)[::-1])
    assert a.bd_rate_percent == pytest.approx(b.bd_rate_percent, abs=1e-12)
    assert a.bd_metric == pytest.approx(b.bd_metric, abs=1e-12)


def _ref(method: str) -> pd.DataFrame:
    df = load_reference("kodak", [method])
    assert len(df) > 4, method
    return df


def test_published_webp_vs_jpeg_kodak():
    jpeg, webp = _ref("jpeg-pillow"), _ref("webp-pillow")
    for metric in ("psnr_rgb", "ms_ssim_db"):
        res = bd_compare(jpeg["bpp"], jpeg[metric], webp["bpp"], webp[metric])
        assert res.reason == ""
        # WebP needs clearly fewer bits than JPEG on Kodak (about −36 % PSNR, −23 % MS-SSIM dB)
        assert -50.0 < res.bd_rate_percent < -15.0, (metric, res)
        assert 0.5 < res.bd_metric < 4.0, (metric, res)
    # and the other way round the sign flips
    back = bd_compare(webp["bpp"], webp["psnr_rgb"], jpeg["bpp"], jpeg["psnr_rgb"])
    assert back.bd_rate_percent > 15.0


def test_published_learned_codec_beats_jpeg_by_more_than_webp():
    jpeg, webp, hyper = _ref("jpeg-pillow"), _ref("webp-pillow"), _ref("bmshj2018-hyperprior-mse")
    w = bd_compare(jpeg["bpp"], jpeg["psnr_rgb"], webp["bpp"], webp["psnr_rgb"]).bd_rate_percent
    h = bd_compare(jpeg["bpp"], jpeg["psnr_rgb"], hyper["bpp"], hyper["psnr_rgb"]).bd_rate_percent
    assert -75.0 < h < w < 0


def test_too_few_points():
    res = bd_compare(RATES, PSNR, RATES[:3], PSNR[:3])
    assert res.bd_rate_percent is None and res.bd_metric is None
    assert "too few points" in res.reason and res.n_points == 3


def test_nan_points_are_not_counted():
    psnr = PSNR.copy()
    psnr[[1, 2, 3]] = np.nan
    res = bd_compare(RATES, PSNR, RATES, psnr)
    assert res.bd_rate_percent is None and "too few points" in res.reason


def test_no_overlap():
    res = bd_compare(RATES, PSNR, RATES * 100, PSNR + 30)
    assert res.bd_rate_percent is None and res.bd_metric is None
    assert res.bpp_min is None and res.bpp_max is None
    assert "no overlap" in res.reason


def test_overlap_in_rate_but_not_in_quality():
    res = bd_compare(RATES, PSNR, RATES * 1.5, PSNR + 40)
    assert res.bd_rate_percent is None
    assert res.bd_metric is not None and res.bd_metric > 30
    assert "no overlap in metric" in res.reason


def test_repeated_metric_values_give_a_reason_not_a_crash():
    psnr = PSNR.copy()
    psnr[4] = psnr[3]
    res = bd_compare(RATES, PSNR, RATES, psnr)
    assert res.bd_rate_percent is None and "repeats" in res.reason
    assert res.bd_metric is not None and math.isfinite(res.bd_metric)


def test_codec_name_and_anchor_selection():
    assert codec_name("jpeg:subsampling=444") == "jpeg"
    assert select_anchor(["webp", "jpeg:subsampling=444", "jpeg"], "jpeg") == "jpeg"
    assert select_anchor(["webp", "jpeg:subsampling=444", "jpeg:subsampling=420"], "jpeg") == "jpeg:subsampling=420"
    assert select_anchor(["jpeg", "jpeg:subsampling=444"], "jpeg:subsampling=444") == "jpeg:subsampling=444"
    assert select_anchor(["webp"], "jpeg") is None


def _summary(curves: dict[str, tuple[np.ndarray, np.ndarray]], dataset="kodak") -> pd.DataFrame:
    rows = []
    for codec, (rates, psnr) in curves.items():
        for i, (r, p) in enumerate(zip(rates, psnr)):
            rows.append({"dataset": dataset, "codec": codec, "quality": float(i), "n_images": 2, "n_errors": 0,
                         "bpp": r, "psnr_rgb": p, "ms_ssim_db": p / 2})
    return pd.DataFrame(rows)


def test_compute_bd_rates_table():
    s = _summary({
        "jpeg": (RATES, PSNR),
        "jpeg:subsampling=444": (RATES * 1.1, PSNR),
        "balle2018": (RATES * 0.6, PSNR),
        "tiny": (RATES[:2], PSNR[:2]),
    })
    s = pd.concat([s, _summary({"webp": (RATES, PSNR)}, dataset="sample")])
    bd = compute_bd_rates(s)
    assert list(bd.columns) == BD_COLUMNS
    kodak = bd[bd["dataset"] == "kodak"].set_index(["codec", "metric"])
    assert set(kodak.index.get_level_values(0)) == {"jpeg:subsampling=444", "balle2018", "tiny"}
    assert (kodak["anchor"] == "jpeg").all()
    assert kodak.loc[("balle2018", "psnr_rgb"), "bd_rate_percent"] == pytest.approx(-40.0, abs=1e-6)
    assert kodak.loc[("balle2018", "ms_ssim_db"), "bd_rate_percent"] == pytest.approx(-40.0, abs=1e-6)
    assert kodak.loc[("jpeg:subsampling=444", "psnr_rgb"), "bd_rate_percent"] == pytest.approx(10.0, abs=1e-6)
    assert np.isnan(kodak.loc[("tiny", "psnr_rgb"), "bd_rate_percent"])
    assert "too few points" in kodak.loc[("tiny", "psnr_rgb"), "reason"]
    sample = bd[bd["dataset"] == "sample"]
    assert len(sample) == 2 and sample["reason"].str.contains("anchor 'jpeg' not in dataset").all()
    assert sample["bd_rate_percent"].isna().all()


def test_points_without_images_are_ignored():
    s = _summary({"jpeg": (RATES, PSNR), "webp": (RATES * 0.9, PSNR)})
    s.loc[(s["codec"] == "webp") & (s["quality"] == 0.0), ["n_images", "bpp", "psnr_rgb", "ms_ssim_db"]] = \
        [0, np.nan, np.nan, np.nan]
    bd = compute_bd_rates(s, metrics=["psnr_rgb"])
    assert bd["n_points"].iloc[0] == len(RATES) - 1
    # (not exactly −10 %: the shorter curve interpolates differently near its new end)
    assert bd["bd_rate_percent"].iloc[0] == pytest.approx(-10.0, abs=0.1)


# ---------------------------------------------------------------------------------------------
# Reference curves (package data)
# ---------------------------------------------------------------------------------------------


def test_reference_sets_by_dataset():
    assert reference_set_for("kodak") == "kodak"
    assert reference_set_for("clic2020-professional-valid") == "clic2020-professional"
    assert reference_set_for("clic2020-mobile-test") == "clic2020-mobile"
    assert reference_set_for("sample") is None
    assert load_reference("sample", ["all"]).empty
    assert load_reference("kodak", []).empty


def test_reference_ms_ssim_is_converted_to_db():
    df = load_reference("clic2020-professional-valid", ["jpeg-pillow"])
    assert len(df) == 19
    np.testing.assert_allclose(df["ms_ssim_db"], -10 * np.log10(1 - df["ms_ssim_rgb"]))
    assert df["ms_ssim_db"].between(5, 30).all()


def test_reference_all_and_extra_kodak_curves():
    all_kodak = load_reference("kodak", ["all"])
    assert {"jpeg-pillow", "toderici2017-rnn-tfc", "hific-tfc", "mentzer2018-cvpr-fig1"} <= set(all_kodak["method"])
    tod = load_reference("kodak", ["toderici2017-rnn-tfc"])
    assert len(tod) == 16 and tod["psnr_rgb"].notna().all()
    # a slug that exists for Kodak only is simply absent for CLIC
    assert load_reference("clic2020-mobile", ["paper-elic2022-mse"]).empty


def test_unknown_reference_slug_lists_known_ones():
    with pytest.raises(ValueError) as exc:
        normalize_selection(["jpeg-pillow", "nope"])
    assert "nope" in str(exc.value) and "bmshj2018-hyperprior-mse" in str(exc.value)
    assert normalize_selection("jpeg-pillow, webp-pillow") == ["jpeg-pillow", "webp-pillow"]
    assert normalize_selection(["all", "x"]) == ["all"]
    assert "webp-pillow" in known_methods()


def test_a_lower_is_better_metric_gives_the_same_sign_as_psnr():
    """LPIPS falls as quality rises: a codec needing 30 % fewer bits for the same LPIPS is −30 %."""
    s = _summary({"jpeg": (RATES, PSNR), "webp": (RATES * 0.7, PSNR)})
    s["lpips"] = 1.0 / s["psnr_rgb"]  # decreasing with the rate, same at equal quality
    bd = compute_bd_rates(s, metrics=["psnr_rgb", "lpips"]).set_index("metric")
    assert bd.loc["lpips", "bd_rate_percent"] == pytest.approx(-30.0, abs=1e-6)
    assert bd.loc["psnr_rgb", "bd_rate_percent"] == pytest.approx(-30.0, abs=1e-6)
    assert bd.loc["lpips", "bd_metric"] < 0  # in LPIPS units: lower (better) than the anchor at equal rate


def test_bd_rates_cover_the_contract_metrics_and_those_the_run_computed():
    from rdbench.reports.bdrate import bd_metrics

    s = _summary({"jpeg": (RATES, PSNR)})
    assert bd_metrics(s) == ["psnr_rgb", "ms_ssim_db"]
