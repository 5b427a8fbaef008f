"""The plumbing of FID/KID through a run: features/<shard>.npz, set_metrics.csv, the summary,
the rate–perception plots. (The end-to-end agreement with torch-fidelity is in test_pipeline.py.)"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rdbench.run import folder as runfolder
from rdbench.metrics.perceptual import MetricWeightsUnavailableError
from rdbench.metrics.setlevel import SetStats
from rdbench.metrics.shardfeatures import ShardFeatures
from rdbench.reports import build_report
from rdbench.reports.runs import load_runs
from rdbench.reports.set_metrics import SET_METRICS_COLUMNS, read_set_metrics, set_metrics_csv
from rdbench.reports.summary import SUMMARY_COLUMNS, summarize
from rdbench.run.schema import RESULTS_SCHEMA


def features(n: int, seed: int, d: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


def test_shard_features_file_round_trip_and_set_elements():
    shard = ShardFeatures(dim=8)
    shard.add_original("kodak", "a", features(2, 0))
    shard.add_original("kodak", "b", features(0, 1))  # an image below the patch size
    shard.add_reconstruction("kodak", "a", "jpeg", 50, features(2, 2))
    shard.add_reconstruction("kodak", "a", "jpeg", 90, features(2, 3))
    shard.add_reconstruction("kodak", "b", "jpeg", 50, features(0, 4))
    back = ShardFeatures.from_bytes(shard.to_bytes())
    assert len(back) == 3
    elements = list(back.set_elements())
    assert [key for key, _ in elements] == [("kodak", "jpeg", 50.0), ("kodak", "jpeg", 90.0), ("kodak", "jpeg", 50.0)]
    first = elements[0][1]
    assert first.key == "kodak/a"
    np.testing.assert_array_equal(first.real, features(2, 0))
    np.testing.assert_array_equal(first.fake, features(2, 2))
    assert elements[2][1].real.shape == (0, 8)


def test_shard_features_refuse_inconsistent_input():
    shard = ShardFeatures(dim=8)
    with pytest.raises(KeyError, match="kodak/a: add the original"):
        shard.add_reconstruction("kodak", "a", "jpeg", 50, features(2, 0))
    shard.add_original("kodak", "a", features(2, 0))
    with pytest.raises(ValueError, match="3 reconstruction patches for 2 original"):
        shard.add_reconstruction("kodak", "a", "jpeg", 50, features(3, 0))
    with pytest.raises(ValueError, match=r"expected \(n, 8\)"):
        shard.add_original("kodak", "c", features(2, 0, d=4))
    with pytest.raises(ValueError, match="shard-7.npz: not a readable rdbench features file"):
        ShardFeatures.from_bytes(b"PK\x03\x04 garbage", source="shard-7.npz")


def test_features_are_written_before_the_results_that_complete_a_shard(tmp_path):
    run = str(tmp_path / "run")
    runfolder.write_shard(run, "shard-00000", [], [], ShardFeatures(dim=8).to_bytes())
    assert runfolder.completed_shards(run) == {"shard-00000"}
    assert runfolder.feature_files(run) == [str(tmp_path / "run" / "features" / "shard-00000.npz")]
    # Written under a temporary name and moved into place: no temporary file is left behind.
    assert not list((tmp_path / "run" / "features").glob(".*"))
    mem = "memory://rdbench-test-features/run"
    runfolder.write_shard(mem, "shard-00001", [], [], ShardFeatures(dim=8).to_bytes())
    assert runfolder.feature_files(mem) == ["memory:///rdbench-test-features/run/features/shard-00001.npz"]
    assert len(ShardFeatures.from_bytes(runfolder.read_bytes(runfolder.feature_files(mem)[0]))) == 0


def set_result(fid: float | None, kid: float | None = 0.01) -> dict:
    return {"n_images": 2, "n_images_skipped": 0, "n_patches": 16, "fid": fid, "kid": kid, "kid_std": 0.0,
            "kid_patches": 16}


def results_rows(codec: str, qualities, run_id: str = "r") -> pd.DataFrame:
    rows = [{"dataset": "kodak", "image_id": f"img{i}", "codec": codec, "codec_version": "1", "quality": float(q),
             "height": 512, "width": 768, "num_bytes": int(1000 * q), "bpp": q / 50, "bpp_estimated": None,
             "psnr_rgb": 25.0 + q / 10, "psnr_y": None, "ms_ssim_rgb": None, "ms_ssim_db": None,
             "lpips": 0.5 - q / 200, "encode_s": 0.1, "decode_s": 0.1, "device": "cpu", "roundtrip_ok": True,
             "run_id": run_id} for q in qualities for i in range(2)]
    return pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA).to_pandas()


def test_summary_takes_fid_and_kid_from_the_set_metrics(tmp_path):
    (tmp_path / "set_metrics.csv").write_bytes(set_metrics_csv(
        [(("kodak", "jpeg", 90.0), set_result(2.5)), (("kodak", "jpeg", 10.0), set_result(40.0, 0.2)),
         (("kodak", "jpeg", 50.0), set_result(None, None))]))
    sets = read_set_metrics(tmp_path / "set_metrics.csv")
    assert list(sets.columns) == SET_METRICS_COLUMNS and sets.quality.tolist() == [10.0, 50.0, 90.0]
    summary = summarize(results_rows("jpeg", [10, 50, 90]), None, sets)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary.fid.tolist()[::2] == [40.0, 2.5] and np.isnan(summary.fid[1])
    assert summary.kid.tolist()[0] == 0.2
    # Without set metrics the columns exist and are empty.
    assert summarize(results_rows("jpeg", [10]), None).fid.isna().all()
    assert read_set_metrics(tmp_path / "absent.csv").empty


def write_run(run_dir, codec, qualities, fid_by_quality) -> None:
    (run_dir / "results").mkdir(parents=True)
    pa_table = pa.Table.from_pandas(results_rows(codec, qualities, run_dir.name), schema=RESULTS_SCHEMA,
                                    preserve_index=False)
    import pyarrow.parquet as pq

    pq.write_table(pa_table, run_dir / "results" / "shard-00000.parquet")
    if fid_by_quality:
        (run_dir / "set_metrics.csv").write_bytes(set_metrics_csv(
            [(("kodak", codec, float(q)), set_result(fid)) for q, fid in fid_by_quality.items()]))


def test_report_draws_rate_perception_plots_and_merges_runs(tmp_path):
    write_run(tmp_path / "a", "jpeg", [10, 50, 90], {10: 40.0, 50: 9.0, 90: 2.0})
    write_run(tmp_path / "b", "webp", [10, 50, 90], {10: 30.0, 50: 7.0, 90: 1.0})
    write_run(tmp_path / "c", "avif", [10, 50], {})  # a run without FID/KID
    report = build_report([tmp_path / "a", tmp_path / "b", tmp_path / "c"], out_dir=tmp_path / "merged")
    plots = {p.name for p in (tmp_path / "merged" / "plots").glob("*.png")}
    assert {"rd_lpips_kodak.png", "rd_fid_kodak.png", "rd_kid_kodak.png"} <= plots
    summary = pd.read_csv(tmp_path / "merged" / "summary.csv")
    assert summary.set_index(["codec", "quality"]).fid.loc[("webp", 50.0)] == 7.0
    assert summary[summary.codec == "avif"].fid.isna().all()
    html = report.read_text()
    assert "Rate–FID" in html and "Rate–LPIPS" in html and "<th>fid</th>" in html
    assert 'id="set-metrics-table"' in html and "<th>n_patches</th>" in html
    assert len(load_runs([tmp_path / "a", tmp_path / "b"]).set_metrics) == 6

    # A run without any perceptual metric shows no such plot and no empty column.
    write_run(tmp_path / "d", "jpeg", [10, 90], {})
    plain = tmp_path / "d"
    results = pd.read_parquet(plain / "results")
    results["lpips"] = None
    results.to_parquet(plain / "results" / "shard-00000.parquet")
    html = build_report(plain).read_text()
    assert "Rate–FID" not in html and "Rate–LPIPS" not in html and "<th>fid</th>" not in html and "set-metrics" not in html


def test_asking_for_fid_without_weights_fails_the_run_before_any_work(tmp_path, small_folder, monkeypatch):
    from tests.test_pipeline import run_benchmark

    monkeypatch.setenv("RDBENCH_WEIGHTS_ROOT", str(tmp_path / "weights"))
    monkeypatch.setenv("RDBENCH_WEIGHTS_DOWNLOAD", "0")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("RDBENCH_INCEPTION_WEIGHTS", raising=False)
    from rdbench.run import ConfigError

    with pytest.raises(ConfigError, match="--metrics: .*weights-inception-2015-12-05-6726825d.pth"):
        run_benchmark(datasets=[f"folder:{small_folder}"], codecs=["jpeg"], qualities={"jpeg": [50]},
                      metrics=["psnr_rgb", "fid"], output_root=str(tmp_path / "out"), run_name="nofid",
                      num_workers=1)
    assert not (tmp_path / "out" / "nofid" / "results").exists()
    with pytest.raises(MetricWeightsUnavailableError, match="weights-inception-2015-12-05-6726825d.pth"):
        from rdbench.metrics.perceptual import require_metric_weights

        require_metric_weights(["fid"])


def test_set_stats_of_a_shard_file_match_direct_accumulation():
    shard = ShardFeatures(dim=8)
    direct = SetStats()
    for i in range(6):
        real, fake = features(3, i), features(3, 100 + i)
        shard.add_original("d", f"img{i}", real)
        shard.add_reconstruction("d", f"img{i}", "jpeg", 50, fake)
        direct.add(f"d/img{i}", real, fake)
    via_file = SetStats()
    for _, element in ShardFeatures.from_bytes(shard.to_bytes()).set_elements():
        via_file.add(element.key, element.real, element.fake)
    assert via_file.result(subsets=5, subset_size=10) == direct.result(subsets=5, subset_size=10)


def test_a_set_metric_not_asked_for_is_left_empty():
    from pipelines.beam.set_metrics import SetStatsCombineFn

    stats = SetStats()
    for i in range(4):
        stats.add(f"d/img{i}", features(3, i), features(3, 50 + i))
    only_fid = SetStatsCombineFn(metrics=["fid"]).extract_output(stats)
    only_kid = SetStatsCombineFn(metrics=["kid"]).extract_output(stats)
    both = SetStatsCombineFn().extract_output(stats)
    assert only_fid["fid"] == both["fid"] and only_fid["kid"] is None and only_fid["kid_std"] is None
    assert only_kid["kid"] == both["kid"] and only_kid["fid"] is None
    assert both["fid"] > 0 and both["kid"] is not None
    table = read_set_metrics_bytes(set_metrics_csv([(("d", "jpeg", 50.0), only_fid)]))
    assert table.kid.isna().all() and table.fid.notna().all()


def read_set_metrics_bytes(data: bytes) -> pd.DataFrame:
    import io

    return pd.read_csv(io.BytesIO(data))
