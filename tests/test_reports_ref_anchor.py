"""``--anchor ref:SLUG``: BD-rates of a run's codecs against a published curve.

The figures must equal the ``bjontegaard`` package's on the same points; a slug that a dataset's
table lacks is refused before anything is written or computed.
"""
from __future__ import annotations

import re

import bjontegaard
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rdbench.reports import build_report, compute_bd_rates
from rdbench.reports.__main__ import main as cli_main
from rdbench.reports.reference import check_reference_anchor, reference_curve
from rdbench.run import ConfigError, RunConfig, run_benchmark


def _summary(dataset: str, codec: str, bpp, psnr, ms_ssim_db, n_images: int = 24) -> pd.DataFrame:
    return pd.DataFrame({"dataset": dataset, "codec": codec, "quality": np.arange(len(bpp), dtype=float),
                         "n_images": n_images, "bpp": bpp, "psnr_rgb": psnr, "ms_ssim_db": ms_ssim_db})


def test_bd_rate_against_a_published_curve_equals_the_bjontegaard_package():
    vtm = reference_curve("kodak", "vtm")
    # a made-up codec: 12 % more bits than VTM for the same quality, plus some wobble
    bpp = vtm["bpp"].to_numpy() * 1.12 * (1 + 0.01 * np.sin(np.arange(len(vtm))))
    summary = _summary("kodak", "mycodec", bpp, vtm["psnr_rgb"] - 0.05, vtm["ms_ssim_db"])
    table = compute_bd_rates(summary, anchor="ref:vtm")

    row = table[(table["metric"] == "psnr_rgb")].iloc[0]
    expected = bjontegaard.bd_rate(vtm["bpp"], vtm["psnr_rgb"], bpp, vtm["psnr_rgb"] - 0.05, method="pchip",
                                   require_matching_points=False, min_overlap=0)
    assert row["bd_rate_percent"] == pytest.approx(expected, abs=1e-9)
    assert row["bd_rate_percent"] > 12  # more bits and a little less PSNR
    expected_psnr = bjontegaard.bd_psnr(vtm["bpp"], vtm["psnr_rgb"], bpp, vtm["psnr_rgb"] - 0.05, method="pchip",
                                        require_matching_points=False, min_overlap=0)
    assert row["bd_metric"] == pytest.approx(expected_psnr, abs=1e-9)
    assert row["anchor"] == "ref:vtm" and row["n_images"] == 24
    assert "kodak table, method vtm" in row["anchor_source"] and "InterDigitalInc/CompressAI" in row["anchor_source"]
    assert "24 Kodak images" in row["anchor_source"]

    ms = table[(table["metric"] == "ms_ssim_db")].iloc[0]
    assert ms["reason"] == "" or pd.isna(ms["reason"])
    assert ms["bd_rate_percent"] == pytest.approx(
        bjontegaard.bd_rate(vtm["bpp"], vtm["ms_ssim_db"], bpp, vtm["ms_ssim_db"], method="pchip",
                            require_matching_points=False, min_overlap=0), abs=1e-9)


def test_a_metric_the_published_table_lacks_gets_a_reason():
    vtm = reference_curve("kodak", "vtm")
    summary = _summary("kodak", "mycodec", vtm["bpp"] * 0.9, vtm["psnr_rgb"], vtm["ms_ssim_db"])
    summary["vif"] = np.linspace(0.3, 0.9, len(summary))
    table = compute_bd_rates(summary, anchor="ref:vtm", metrics=["psnr_rgb", "vif"])
    vif = table[table["metric"] == "vif"].iloc[0]
    assert np.isnan(vif["bd_rate_percent"]) and "has no vif values" in vif["reason"]
    assert table[table["metric"] == "psnr_rgb"].iloc[0]["bd_rate_percent"] == pytest.approx(-10.0, abs=1e-6)


def test_unknown_or_absent_published_curves_are_refused_in_one_line():
    check_reference_anchor("jpeg", ["sample"])  # a codec anchor: not this check's business
    check_reference_anchor("ref:vtm", ["kodak"])
    check_reference_anchor("ref:vtm", ["sample"], "kodak")
    cases = [
        (("ref:no-such-curve", ["kodak"]), "unknown published curve 'ref:no-such-curve'"),
        (("ref:vtm", ["sample"]), "dataset 'sample' has no published table"),
        (("ref:paper-elic2022-mse", ["clic2020-mobile-valid"]),
         "the clic2020-mobile table (dataset 'clic2020-mobile-valid') has no curve 'paper-elic2022-mse'"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)) as exc:
            check_reference_anchor(*args)
        assert "\n" not in str(exc.value)


def test_a_run_refuses_a_published_anchor_its_dataset_has_no_curve_of(tmp_path):
    config = RunConfig(datasets=["sample"], codecs=["jpeg"], anchor="ref:vtm", output_root=str(tmp_path))
    with pytest.raises(ConfigError, match=r"^--anchor: 'ref:vtm': dataset 'sample' has no published table"):
        config.validate()
    RunConfig(datasets=["sample"], codecs=["jpeg"], anchor="ref:vtm", reference_dataset="kodak",
              output_root=str(tmp_path)).validate()
    assert not any(tmp_path.iterdir())


def test_a_real_run_against_a_published_jpeg_curve(tmp_path, photos):
    """JPEG and WebP on two crops against CompressAI's published Pillow-JPEG Kodak curve."""
    images = tmp_path / "images"
    images.mkdir()
    for name in ("astronaut", "coffee"):
        Image.fromarray(photos[name][40:216, 60:268]).save(images / f"{name}.png")
    ladder = [10, 30, 50, 70, 90]
    config = RunConfig(datasets=[f"folder:{images}"], codecs=["jpeg", "webp"], qualities={"jpeg": ladder, "webp": ladder},
                       anchor="ref:jpeg-pillow", reference_dataset="kodak", output_root=str(tmp_path / "runs"),
                       run_name="r", num_workers=1)
    run_benchmark(config)
    run = tmp_path / "runs" / "r"
    bd = pd.read_csv(run / "bd_rate.csv", keep_default_na=False, na_values=[""])
    assert set(bd["codec"]) == {"jpeg", "webp"}  # every codec of the run, none is the anchor
    assert set(bd["anchor"]) == {"ref:jpeg-pillow"}
    summary = pd.read_csv(run / "summary.csv")
    ref = reference_curve("kodak", "jpeg-pillow")
    for codec in ("jpeg", "webp"):
        mine = summary[summary["codec"] == codec]
        got = bd[(bd["codec"] == codec) & (bd["metric"] == "psnr_rgb")].iloc[0]
        assert got["n_images"] == 2
        assert got["bd_rate_percent"] == pytest.approx(bjontegaard.bd_rate(
            ref["bpp"], ref["psnr_rgb"], mine["bpp"], mine["psnr_rgb"], method="pchip",
            require_matching_points=False, min_overlap=0), abs=1e-6)
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "Against the published curve <code>ref:jpeg-pillow</code>" in html

    # the reports CLI rebuilds against another published curve, and refuses an unknown one unwritten
    assert cli_main([str(run), "--out", str(tmp_path / "vs-vtm"), "--anchor", "ref:vtm",
                     "--reference-dataset", "kodak"]) == 0
    assert set(pd.read_csv(tmp_path / "vs-vtm" / "bd_rate.csv")["anchor"]) == {"ref:vtm"}
    with pytest.raises(SystemExit):
        cli_main([str(run), "--out", str(tmp_path / "refused"), "--anchor", "ref:nope"])
    assert not (tmp_path / "refused").exists()
