"""Reports a researcher can trust blindly: merged run folders compared like for like, reference
overlays only where a published table applies (a Kodak copy recognised by its bytes), labels.

Every run folder here is written by real codecs through ``rdbench.run.run_benchmark``.
"""
from __future__ import annotations

import logging
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rdbench.reports import build_report, check_reference, compute_bd_rates, read_summary, recognise_dataset
from rdbench.reports.__main__ import main as cli_main
from rdbench.reports.bdrate import BD_COLUMNS
from rdbench.reports.html import esc
from rdbench.run import RunConfig, run_benchmark

from .conftest import kodak_dir

QUALITIES = [20, 40, 60, 80]


def _crops(folder, photos, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(photos[name][40:216, 60:268]).save(folder / f"{name}.png")


def _run(root, name, spec, codecs, limit=None, **extra):
    ladders = {c.split(":", 1)[0]: QUALITIES for c in codecs}
    config = RunConfig(datasets=[spec], codecs=codecs, qualities=ladders, limit=limit,
                       output_root=str(root / "runs"), run_name=name, num_workers=1, **extra)
    run_benchmark(config)
    return root / "runs" / name


def _bd(folder):
    return pd.read_csv(folder / "bd_rate.csv", keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, photos):
    """One folder of 4 crops; webp on the first 2, jpeg (the anchor) on all 4, both on the first 2."""
    root = tmp_path_factory.mktemp("merge")
    _crops(root / "images", photos, ["astronaut", "chelsea", "coffee", "rocket"])
    spec = f"folder:{root / 'images'}"
    return {
        "root": root,
        "spec": spec,
        "codec": _run(root, "webp-on-2", spec, ["webp"], limit=2),
        "anchor": _run(root, "jpeg-on-4", spec, ["jpeg"]),
        "both": _run(root, "both-on-2", spec, ["jpeg", "webp"], limit=2),
    }


# ---------------------------------------------------------------------------------------------
# Like for like
# ---------------------------------------------------------------------------------------------


def test_merged_bd_rate_equals_the_like_for_like_run(runs, caplog):
    out = runs["root"] / "merged"
    with caplog.at_level(logging.WARNING, logger="rdbench.reports"):
        report = build_report([runs["codec"], runs["anchor"]], out_dir=out)
    merged, like = _bd(out).set_index("metric"), _bd(runs["both"]).set_index("metric")
    assert list(_bd(out).columns) == BD_COLUMNS and BD_COLUMNS[-2:] == ["n_images", "anchor_source"]
    naive = compute_bd_rates(read_summary(out / "summary.csv")).set_index("metric")  # the curves as summarised
    for metric in ("psnr_rgb", "ms_ssim_db"):
        m, l = merged.loc[metric], like.loc[metric]
        assert m["codec"] == "webp" and m["anchor"] == "jpeg"
        assert m["n_images"] == 2 and l["n_images"] == 2
        assert pd.isna(m["reason"])
        assert m["bd_rate_percent"] == pytest.approx(l["bd_rate_percent"], rel=1e-9, abs=1e-9)
        assert m["bd_metric"] == pytest.approx(l["bd_metric"], rel=1e-9, abs=1e-9)
        assert m["n_points"] == l["n_points"] == 4
    # the anchor's 4-image curve against webp's 2-image curve gives another, wrong figure
    assert abs(naive.loc["psnr_rgb", "bd_rate_percent"] - merged.loc["psnr_rgb", "bd_rate_percent"]) > 5.0
    print(f"BD-rate psnr_rgb: mixed {naive.loc['psnr_rgb', 'bd_rate_percent']:+.2f} %, "
          f"like for like {merged.loc['psnr_rgb', 'bd_rate_percent']:+.2f} % "
          f"(run of both on 2 images: {like.loc['psnr_rgb', 'bd_rate_percent']:+.2f} %)")

    html = report.read_text(encoding="utf-8")
    warning = "The merged run folders cover different images of dataset"
    assert warning in html
    assert any(warning in r.getMessage() for r in caplog.records)
    # n_images per curve, said plainly: the Curves table, the BD table, the legends
    curves = re.search(r'<table id="curves-table">(.*?)</table>', html, re.S).group(1)
    rows = {re.findall(r"<td[^>]*>(.*?)</td>", r)[2]: re.findall(r"<td[^>]*>(.*?)</td>", r)
            for r in re.findall(r"<tr>(.*?)</tr>", curves) if "<td" in r}
    assert rows["jpeg"][4] == "4" and rows["webp"][4] == "2" and rows["webp"][6] == "2"
    text = next((out / "plots").glob("rd_psnr_rgb_*.svg")).read_text()
    assert "webp (n=2)" in text and "jpeg (n=4)" in text
    s = read_summary(out / "summary.csv")
    assert set(s.loc[s["codec"] == "webp", "n_images"]) == {2} and set(s.loc[s["codec"] == "jpeg", "n_images"]) == {4}


def test_curves_sharing_no_image_get_an_empty_row_with_a_reason(tmp_path, photos):
    folder = tmp_path / "images"
    _crops(folder, photos, ["astronaut", "chelsea"])
    spec = f"folder:{folder}"
    anchor = _run(tmp_path, "jpeg", spec, ["jpeg"])
    for p in folder.iterdir():
        p.unlink()
    _crops(folder, photos, ["coffee", "rocket"])  # the same dataset spec, other images
    codec = _run(tmp_path, "webp", spec, ["webp"])
    report = build_report([anchor, codec], out_dir=tmp_path / "merged")
    bd = _bd(tmp_path / "merged")
    assert len(bd) == 2 and (bd["n_images"] == 0).all()
    assert bd["bd_rate_percent"].isna().all() and bd["bd_metric"].isna().all()
    assert bd["reason"].str.startswith("no image in common with the anchor").all()
    html = report.read_text(encoding="utf-8")
    assert "no image in common with the anchor" in html
    assert "0 in all of them, 4 in any" in html


def test_a_single_run_is_unchanged_where_every_image_succeeded(runs):
    bd = _bd(runs["both"])
    s = read_summary(runs["both"] / "summary.csv")
    assert (bd["n_images"] == 2).all()
    naive = compute_bd_rates(s)
    np.testing.assert_allclose(bd["bd_rate_percent"], naive["bd_rate_percent"], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Reference overlays
# ---------------------------------------------------------------------------------------------


def _kodak_copy(tmp_path):
    src = kodak_dir()
    files = sorted(src.glob("kodim*.png"))
    if len(files) != 24:
        pytest.skip(f"{src} does not hold the 24 Kodak images")
    copy = tmp_path / "my photos" / "kodak copy"
    copy.mkdir(parents=True)
    for i, f in enumerate(files):
        shutil.copyfile(f, copy / (f"image-{i:02d}.png" if i % 5 == 0 else f.name))  # names do not matter
    return copy


def test_kodak_copy_is_recognised_and_gets_the_kodak_curves(tmp_path):
    copy = _kodak_copy(tmp_path)
    spec = f"folder:{copy}"
    assert recognise_dataset(spec) == "kodak"
    assert recognise_dataset(f"glob:{copy}/*.png") == "kodak"
    check_reference(["jpeg-pillow"], [spec])  # accepted: the folder is Kodak
    run = _run(tmp_path, "kodak-copy", spec, ["jpeg"], limit=2,
               reference=("jpeg-pillow", "bmshj2018-hyperprior-mse"))
    html = (run / "report.html").read_text(encoding="utf-8")
    note = re.search(r'<p class="note reference-note">(.*?)</p>', html, re.S).group(1)
    assert "byte-identical to the catalogued kodak set" in note
    assert "(jpeg-pillow)" in note and "(bmshj2018-hyperprior-mse)" in note
    assert "at most 2 image(s), the published ones 24" in note
    svg = next((run / "plots").glob("rd_psnr_rgb_*.svg")).read_text()
    assert "[ref] JPEG" in svg and "[ref] bmshj2018-hyperprior (MSE)" in svg

    # One byte more and it is not Kodak: the rebuilt report draws and claims nothing.
    with open(copy / "kodim02.png", "ab") as f:
        f.write(b"\0")
    assert recognise_dataset(spec) is None
    out = tmp_path / "rebuilt"
    build_report([run], out_dir=out, reference=["jpeg-pillow"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Grey curves" not in html
    assert "No grey (published) curves drawn for " + esc(spec) in html
    assert "[ref]" not in next((out / "plots").glob("rd_psnr_rgb_*.svg")).read_text()
    with pytest.raises(ValueError, match="no dataset of the run"):
        check_reference(["jpeg-pillow"], [spec])


def test_reference_dataset_applies_a_table_and_says_so(runs):
    out = runs["root"] / "no-table"
    build_report([runs["anchor"]], out_dir=out, reference=["jpeg-pillow", "vtm"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Grey curves" not in html and "no published table for this dataset" in html
    assert "[ref]" not in next((out / "plots").glob("rd_psnr_rgb_*.svg")).read_text()

    out = runs["root"] / "with-table"
    build_report([runs["anchor"]], out_dir=out, reference=["jpeg-pillow"], reference_dataset="kodak")
    html = (out / "report.html").read_text(encoding="utf-8")
    note = re.search(r'<p class="note reference-note">(.*?)</p>', html, re.S).group(1)
    assert note.startswith("Grey curves: published figures from the kodak table")
    assert "--reference-dataset kodak (the images were not checked" in note
    assert "(jpeg-pillow)" in note and "vtm" not in note
    assert "[ref] JPEG" in next((out / "plots").glob("rd_psnr_rgb_*.svg")).read_text()


def test_check_reference_refuses_what_cannot_be_drawn():
    check_reference([], ["sample"])
    check_reference(["all"], ["kodak", "sample"])
    check_reference("jpeg-pillow", ["sample"], "kodak")
    check_reference(["jpeg-pillow"], ["clic2020-professional-valid"])
    cases = [
        ((["no-such-method"], ["kodak"]), "unknown reference method"),
        ((["jpeg-pillow"], ["sample"]), "no dataset of the run"),
        ((["all"], ["sample", "folder:/nonexistent"]), "no dataset of the run"),
        ((["jpeg-pillow"], ["sample"], "imagenet"), "unknown reference dataset 'imagenet'"),
        ((["paper-elic2022-mse"], ["clic2020-mobile-valid"]), "paper-elic2022-mse is in kodak"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)) as exc:
            check_reference(*args)
        assert "\n" not in str(exc.value)


def test_cli_reference_dataset_and_json_lists(runs, tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main([str(runs["anchor"]), "--out", str(out), "--reference", '["jpeg-pillow", "webp-pillow"]',
                     "--reference-dataset", "kodak"]) == 0
    svg = next((out / "plots").glob("rd_psnr_rgb_*.svg")).read_text()
    assert "[ref] JPEG" in svg and "[ref] WebP" in svg
    with pytest.raises(SystemExit):  # nothing could be drawn: refused before anything is written
        cli_main([str(runs["anchor"]), "--out", str(tmp_path / "refused"), "--reference", "jpeg-pillow"])
    assert "no dataset of the run" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    with pytest.raises(SystemExit):
        cli_main([str(runs["anchor"]), "--out", str(tmp_path / "bad"), "--reference", '["jpeg-pillow"'])
    assert "not valid JSON" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def test_labels_in_legends_and_tables(runs, tmp_path):
    labelled = "jpeg:subsampling=444,label=JPEG 4:4:4"
    run = _run(tmp_path, "labels", runs["spec"], ["jpeg", labelled], limit=2)
    s = read_summary(run / "summary.csv")
    spec = next(c for c in s["codec"].unique() if "label=" in c)  # the canonical spec, in full
    assert "subsampling=444" in spec and "JPEG 4:4:4" in spec
    svg = next((run / "plots").glob("rd_psnr_rgb_*.svg")).read_text()
    assert "JPEG 4:4:4" in svg and spec not in svg
    html = (run / "report.html").read_text(encoding="utf-8")
    assert f'<td title="{esc(spec)}">JPEG 4:4:4</td>' in html  # summary, BD, curves: label, full spec on hover
    assert set(_bd(run)["codec"]) == {spec}  # the CSVs keep the full spec
