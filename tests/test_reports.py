"""End-to-end tests of rdbench.reports on synthetic but realistic run folders (real Parquet files
written with the contract schemas), including a headless-Chromium check of report.html."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rdbench.reports import build_report, load_runs, read_summary
from rdbench.reports.__main__ import main as cli_main
from rdbench.reports.bdrate import BD_COLUMNS
from rdbench.reports.html import esc
from rdbench.reports.plots import file_slug
from rdbench.reports.summary import SUMMARY_COLUMNS
from rdbench.run.schema import ERRORS_SCHEMA, RESULTS_SCHEMA

# ---------------------------------------------------------------------------------------------
# Synthetic run folders
# ---------------------------------------------------------------------------------------------

IMAGES = {  # image_id: (height, width, difficulty)
    "kodim01": (512, 768, 1.3),
    "kodim02": (768, 512, 0.8),
    "tiny": (96, 128, 1.0),  # below MS-SSIM's minimum size: ms_ssim is null
}
# codec spec: (rate factor vs jpeg at equal quality, quality ladder, learned?)
CODECS = {
    "jpeg": (1.0, [10, 30, 50, 70, 90], False),
    "webp": (0.75, [10, 30, 50, 70, 90], False),
    "balle2018": (0.55, [1, 2, 3, 4, 5], True),
}
HOSTILE = '<script>alert("x")</script> & co'


def _rows(dataset: str, codec: str, run_id: str, skip=()) -> list[dict]:
    factor, ladder, learned = CODECS[codec]
    rows = []
    for qi, q in enumerate(ladder):
        for image_id, (h, w, k) in IMAGES.items():
            if (codec, image_id, q) in skip:
                continue
            x = 0.15 * 2.0 ** (qi * 0.9)  # "effective" rate: the R-D law is in terms of it
            bpp = factor * k * x
            num_bytes = int(round(bpp * h * w / 8))
            bpp = num_bytes * 8 / (h * w)
            psnr = 33.0 + 4.0 * math.log2(bpp / (factor * k) / 0.5) - 3.0 * (k - 1.0)
            db = 15.0 + 3.5 * math.log2(bpp / (factor * k) / 0.5)
            tiny = image_id == "tiny"
            rows.append(
                {
                    "dataset": dataset,
                    "image_id": image_id,
                    "codec": codec,
                    "codec_version": "test-1.0",
                    "quality": float(q),
                    "height": h,
                    "width": w,
                    "num_bytes": num_bytes,
                    "bpp": bpp,
                    "bpp_estimated": bpp * 0.98 if learned else None,
                    "psnr_rgb": psnr,
                    "psnr_y": psnr + 0.6,
                    "ms_ssim_rgb": None if tiny else 1.0 - 10 ** (-db / 10),
                    "ms_ssim_db": None if tiny else db,
                    "encode_s": (0.25 if learned else 0.004) * (1 + bpp),
                    "decode_s": (0.3 if learned else 0.002) * (1 + bpp),
                    "device": "cuda:0" if learned else "cpu",
                    "roundtrip_ok": not (codec == "balle2018" and image_id == "tiny" and qi == 4),
                    "run_id": run_id,
                }
            )
    return rows


def write_run(run_dir: Path, dataset: str, codecs, errors=(), skip=(), run_json: dict | None = None,
              shards: int = 2) -> Path:
    """A run folder with results split over ``shards`` Parquet files, errors and run.json."""
    run_id = run_dir.name
    rows = [r for c in codecs for r in _rows(dataset, c, run_id, skip)]
    (run_dir / "results").mkdir(parents=True)
    for i in range(shards):
        part = rows[i::shards]
        pq.write_table(pa.Table.from_pylist(part, schema=RESULTS_SCHEMA),
                       run_dir / "results" / f"results-{i:05d}-of-{shards:05d}.parquet")
    if errors:
        (run_dir / "errors").mkdir()
        err = [dict(e, run_id=run_id) for e in errors]
        pq.write_table(pa.Table.from_pylist(err, schema=ERRORS_SCHEMA), run_dir / "errors" / "errors-0.parquet")
    config = run_json if run_json is not None else {
        "config": {"datasets": [dataset], "codecs": list(codecs), "num_workers": 2},
        "versions": {"rdbench": "0.1.0", "Pillow": "12.0.0"},
        "device": "cpu",
        "start": "2025-01-01T00:00:00Z",
        "end": "2025-01-01T00:05:00Z",
        "git_revision": "abc123",
    }
    (run_dir / "run.json").write_text(json.dumps(config))
    return run_dir


CLASSICAL_ERRORS = [
    # a load failure: null quality, counts for every jpeg quality
    {"dataset": "kodak", "image_id": "broken", "codec": "jpeg", "quality": None, "stage": "load",
     "error_type": "ImageLoadError", "message": "truncated file " + HOSTILE},
    # an encode failure at one quality (that result row is absent)
    {"dataset": "kodak", "image_id": "kodim02", "codec": "webp", "quality": 90.0, "stage": "encode",
     "error_type": "OSError", "message": "encoder error -2"},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    classical = write_run(root / "classical", "kodak", ["jpeg", "webp"], errors=CLASSICAL_ERRORS,
                          skip={("webp", "kodim02", 90)})
    learned = write_run(root / "learned", "kodak", ["balle2018"],
                        run_json={"note": HOSTILE, "nested": {"a": [1, 2], "b": None}})
    return {"root": root, "classical": classical, "learned": learned}


@pytest.fixture(scope="module")
def merged_report(runs) -> Path:
    out = runs["root"] / "merged"
    return build_report([runs["classical"], runs["learned"]], out_dir=out,
                        reference=["jpeg-pillow", "bmshj2018-hyperprior-mse", "toderici2017-rnn-tfc"])


# ---------------------------------------------------------------------------------------------
# Loading and summary from real Parquet files
# ---------------------------------------------------------------------------------------------


def test_load_runs_merges_and_keeps_types(runs):
    data = load_runs([runs["classical"], runs["learned"]])
    assert len(data.results) == 3 * 5 * 3 - 1
    assert set(data.results["codec"]) == {"jpeg", "webp", "balle2018"}
    assert len(data.errors) == 2
    assert data.errors["quality"].isna().sum() == 1
    assert [r.name for r in data.runs] == ["classical", "learned"]
    assert data.runs[1].config["note"] == HOSTILE


def test_duplicate_rows_from_later_run_win(runs, tmp_path):
    again = write_run(tmp_path / "again", "kodak", ["webp"])
    data = load_runs([runs["classical"], again])
    webp = data.results[data.results["codec"] == "webp"]
    assert len(webp) == 15  # 14 from the first run, replaced by / completed with the 15 of the second
    assert set(webp["run_id"]) == {"again"}
    assert data.n_duplicates_dropped == 14


def test_summary_csv(merged_report):
    s = read_summary(merged_report.parent / "summary.csv")
    assert list(s.columns) == SUMMARY_COLUMNS
    assert len(s) == 15
    jpeg = s[s["codec"] == "jpeg"]
    assert (jpeg["n_images"] == 3).all()
    assert (jpeg["n_errors"] == 1).all()  # the null-quality load error counts for every quality
    webp = s[s["codec"] == "webp"].set_index("quality")
    assert webp.loc[90.0, "n_images"] == 2 and webp.loc[90.0, "n_errors"] == 1
    assert webp.loc[50.0, "n_errors"] == 0
    assert (s[s["codec"] == "balle2018"]["n_errors"] == 0).all()
    # psnr_y is a mean over all 3 images; ms_ssim over the 2 where it is not null.
    data = load_runs([merged_report.parent.parent / "classical"]).results
    rows = data[(data["codec"] == "jpeg") & (data["quality"] == 50.0)]
    row = s[(s["codec"] == "jpeg") & (s["quality"] == 50.0)].iloc[0]
    assert row["psnr_y"] == pytest.approx(rows["psnr_y"].mean())
    assert row["ms_ssim_db"] == pytest.approx(rows["ms_ssim_db"].dropna().mean())
    assert rows["ms_ssim_db"].notna().sum() == 2
    # pooled PSNR: weighted by pixels, below the arithmetic mean PSNR for an uneven set
    mse = 255.0**2 * 10 ** (-rows["psnr_rgb"] / 10)
    px = rows["height"].astype(float) * rows["width"] * 3
    expected = 10 * np.log10(255.0**2 / ((mse * px).sum() / px.sum()))
    assert row["psnr_rgb_pooled"] == pytest.approx(expected, abs=1e-9)
    assert row["psnr_rgb_pooled"] < row["psnr_rgb"]


def test_bd_rate_csv(merged_report):
    bd = pd.read_csv(merged_report.parent / "bd_rate.csv", keep_default_na=False, na_values=[""])
    assert list(bd.columns) == BD_COLUMNS
    assert set(bd["codec"]) == {"webp", "balle2018"}
    assert set(bd["metric"]) == {"psnr_rgb", "ms_ssim_db"}
    assert (bd["anchor"] == "jpeg").all()
    assert (bd["interpolation"] == "pchip").all()
    b = bd[(bd["codec"] == "balle2018") & (bd["metric"] == "psnr_rgb")].iloc[0]
    # same law at 0.55x the rate (up to byte rounding and the mix of images)
    assert b["bd_rate_percent"] == pytest.approx(-45.0, abs=1.5)
    assert b["bd_metric"] > 0
    assert b["reason"] != b["reason"] or b["reason"] == ""  # NaN (empty) or ""
    assert b["n_points"] == 5
    assert 0 < b["bpp_min"] < b["bpp_max"]


def test_plots_written(merged_report):
    plots = merged_report.parent / "plots"
    names = {p.name for p in plots.iterdir()}
    for stem in ("rd_psnr_rgb_kodak", "rd_ms_ssim_db_kodak", "time_kodak"):
        assert f"{stem}.png" in names and f"{stem}.svg" in names
        assert (plots / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (plots / "rd_psnr_rgb_kodak.svg").read_text()
    assert "balle2018" in svg and "[ref]" in svg


def test_html_is_self_contained_and_escaped(merged_report):
    html = merged_report.read_text(encoding="utf-8")
    for table_id in ("summary-table", "bd-rate-table", "errors-table", "errors-by-type", "outliers-table",
                     "roundtrip-table"):
        assert f'id="{table_id}"' in html
    assert html.count('src="data:image/png;base64,') == 3
    assert "<script" not in html  # the hostile strings are escaped, and the report has no script
    assert esc(HOSTILE) in html
    assert "ImageLoadError" in html and "encoder error -2" in html
    assert "git_revision" in html and "nested.a" in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate element ids"
    # no external assets
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_html_results_first_configuration_folded_last(merged_report):
    html = merged_report.read_text(encoding="utf-8")
    order = [html.index(marker) for marker in ('id="summary"', 'id="summary-table"', 'id="bd-rate-table"',
                                               'id="plots"', 'id="errors"', '<details id="runs">')]
    assert order == sorted(order)
    details = html[html.index('<details id="runs">'):html.index("</details>")]
    assert "<summary>Run configuration and environment (2 run folders)</summary>" in details
    assert 'class="runjson"' in details and "git_revision" in details
    assert html.count('class="runjson"') == details.count('class="runjson"')  # no configuration outside it


def test_grey_curve_note_names_what_was_drawn(merged_report):
    html = merged_report.read_text(encoding="utf-8")
    notes = re.findall(r'<p class="note reference-note">(.*?)</p>', html, re.S)
    assert len(notes) == 1 and notes[0].startswith("Grey curves: published figures from the kodak table")
    for slug in ("jpeg-pillow", "bmshj2018-hyperprior-mse", "toderici2017-rnn-tfc"):
        assert f"({slug})" in notes[0]
    assert "vtm" not in notes[0] and "Kodak images" in notes[0]


def test_legends_and_tables_use_display_names(tmp_path):
    from rdbench.reports.plots import plot_rd

    long_spec = "bmshj2018-hyperprior:checkpoint=/very/long/path/to/my/experiments/q{quality}.pth.tar"
    rows = [{"dataset": "d", "codec": c, "quality": float(q), "n_images": 2, "bpp": 0.2 * q * f,
             "psnr_rgb": 28 + 2 * q} for c, f in ((long_spec, 0.8), ("jpeg", 1.0)) for q in range(1, 5)]
    svg = next(p for p in plot_rd(pd.DataFrame(rows), "d", "psnr_rgb", tmp_path) if p.suffix == ".svg")
    text = svg.read_text()
    assert "bmshj2018-hyperprior:checkpoint=…/q{quality}.pth.tar" in text and "/very/long" not in text
    from rdbench.reports.html import html_table

    table = html_table(pd.DataFrame({"codec": [long_spec]}), names={long_spec: "short"})
    assert f'<td title="{esc(long_spec)}">short</td>' in table


def test_file_slug():
    assert file_slug("clic2020-professional-valid") == "clic2020-professional-valid"
    a, b = file_slug("folder:/data/a b"), file_slug("folder:/data/a_b")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", a) and a != b


def test_single_run_defaults_to_run_folder(runs, tmp_path):
    run = shutil.copytree(runs["classical"], tmp_path / "one")
    path = build_report([run], anchor="webp")
    assert path == run / "report.html" and path.is_file()
    bd = pd.read_csv(run / "bd_rate.csv")
    assert set(bd["codec"]) == {"jpeg"} and (bd["anchor"] == "webp").all()
    # jpeg needs more bits than webp
    assert (bd.loc[bd["metric"] == "psnr_rgb", "bd_rate_percent"] > 0).all()


def test_several_runs_need_out_dir(runs):
    with pytest.raises(ValueError, match="out_dir"):
        build_report([runs["classical"], runs["learned"]])


def test_unknown_reference_slug(runs, tmp_path):
    with pytest.raises(ValueError, match="Known:.*jpeg-pillow"):
        build_report([runs["classical"]], out_dir=tmp_path, reference=["no-such-method"])
    assert not (tmp_path / "summary.csv").exists()  # validated before anything is written


def test_empty_run(tmp_path):
    run = tmp_path / "empty"
    (run / "results").mkdir(parents=True)
    path = build_report([run])
    assert path.is_file()
    assert list(pd.read_csv(run / "summary.csv").columns) == SUMMARY_COLUMNS
    assert list(pd.read_csv(run / "bd_rate.csv").columns) == BD_COLUMNS
    assert "run.json is missing" in path.read_text()


def test_only_errors_for_a_codec(tmp_path):
    run = write_run(tmp_path / "r", "sample", ["jpeg"], errors=[
        {"dataset": "sample", "image_id": "a", "codec": "avif", "quality": None, "stage": "load",
         "error_type": "ImageLoadError", "message": "bad"},
        {"dataset": "sample", "image_id": "a", "codec": "jpeg", "quality": 42.0, "stage": "encode",
         "error_type": "RuntimeError", "message": "boom"},
    ])
    build_report([run])
    s = read_summary(run / "summary.csv")
    avif = s[s["codec"] == "avif"]
    assert len(avif) == 1 and np.isnan(avif["quality"].iloc[0]) and avif["n_errors"].iloc[0] == 1
    q42 = s[(s["codec"] == "jpeg") & (s["quality"] == 42.0)].iloc[0]
    assert q42["n_images"] == 0 and q42["n_errors"] == 1 and np.isnan(q42["bpp"])
    bd = pd.read_csv(run / "bd_rate.csv")
    assert bd[bd["codec"] == "avif"]["reason"].str.contains("too few points").all()


def test_cli(runs, tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main([str(runs["classical"]), str(runs["learned"]), "--out", str(out),
                     "--anchor", "webp", "--reference", "all"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    bd = pd.read_csv(out / "bd_rate.csv")
    assert set(bd["codec"]) == {"jpeg", "balle2018"}
    with pytest.raises(SystemExit):
        cli_main([str(runs["classical"]), str(runs["learned"])])  # --out missing
    with pytest.raises(SystemExit):
        cli_main([str(runs["classical"]), "--out", str(out), "--reference", "nope"])
    assert "unknown reference method" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    for flag in ("--list-references", "--list-reference"):
        proc = subprocess.run([sys.executable, "-m", "rdbench.reports", flag],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        lines = {line.split("\t")[0]: line.split("\t") for line in proc.stdout.splitlines()}
        assert lines["jpeg-pillow"][1] == "kodak,clic2020-professional,clic2020-mobile"
        assert lines["toderici2017-rnn-tfc"][1] == "kodak"


# ---------------------------------------------------------------------------------------------
# Headless Chromium: every image loads, the tables are there
# ---------------------------------------------------------------------------------------------

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

CHECK_SCRIPT = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var result = {
    images: imgs.map(function (i) { return {complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}; }),
    tables: Array.prototype.map.call(document.querySelectorAll("table[id]"), function (t) {
      return {id: t.id, rows: t.tBodies.length ? t.tBodies[0].rows.length : 0};
    })
  };
  var details = document.getElementById("runs");
  var runjson = details ? details.querySelector("table.runjson") : null;
  result.layout = {
    summary_top: document.getElementById("summary-table").getBoundingClientRect().top,
    details_top: details ? details.getBoundingClientRect().top : -1,
    details_open: details ? details.open : null,
    runjson_rendered: runjson ? (runjson.checkVisibility ? runjson.checkVisibility()
                                                         : runjson.getClientRects().length > 0) : null,
    details_height: details ? details.getBoundingClientRect().height : -1
  };
  var pre = document.createElement("pre");
  pre.id = "rdbench-check";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
"""


def _chromium() -> str | None:
    for c in CHROMIUM_CANDIDATES:
        if Path(c).exists():
            return c
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(merged_report, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    # The report itself carries no test hook: the check script is injected into a copy of it.
    html = merged_report.read_text(encoding="utf-8")
    assert "</body>" in html
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000", "--dump-dom", probe.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r'<pre id="rdbench-check">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"check script did not run; stderr: {proc.stderr[-2000:]}"
    result = json.loads(match.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    assert len(result["images"]) == 3
    for img in result["images"]:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, result["images"]
    tables = {t["id"]: t["rows"] for t in result["tables"]}
    # results first; the configuration last, folded (not rendered until opened)
    layout = result["layout"]
    assert 0 < layout["summary_top"] < layout["details_top"], layout
    assert layout["details_open"] is False and layout["runjson_rendered"] is False, layout
    assert 0 < layout["details_height"] < 100, layout  # one line: the <summary>
    assert tables["curves-table"] == 3
    assert tables["summary-table"] == 15
    assert tables["bd-rate-table"] == 4
    assert tables["errors-table"] == 2
    assert tables["roundtrip-table"] == 1
    assert tables["outliers-table"] > 0
