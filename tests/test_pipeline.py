"""RunBenchmark end to end: the real Luigi tasks driving the real Beam job (FnApiRunner)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import luigi
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipelines import RunBenchmark
from rdbench.run.schema import ERRORS_SCHEMA, RESULTS_SCHEMA

REPO = Path(__file__).resolve().parents[1]


def run_benchmark(**params) -> luigi.execution_summary.LuigiRunResult:
    result = luigi.build([RunBenchmark(**params)], local_scheduler=True, detailed_summary=True)
    return result


def read_dir(path: Path, schema) -> pd.DataFrame:
    files = sorted(path.glob("*.parquet"))
    if not files:
        return pd.DataFrame(columns=schema.names)
    for f in files:
        assert pq.read_schema(f).equals(schema, check_metadata=False), f
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_end_to_end_two_worker_processes(tmp_path, small_folder):
    result = run_benchmark(
        datasets=[f"folder:{small_folder}"], codecs=["jpeg", "webp:method=2"],
        qualities={"jpeg": [20, 80], "webp": [30, 70]}, output_root=str(tmp_path / "out"),
        run_name="e2e", num_workers=2, images_per_shard=1)
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    run = tmp_path / "out" / "e2e"
    rows = read_dir(run / "results", RESULTS_SCHEMA)
    assert len(rows) == 3 * 2 * 2
    assert not (run / "errors").exists() or read_dir(run / "errors", ERRORS_SCHEMA).empty
    assert sorted(rows.image_id.unique()) == ["astronaut.png", "coffee.png", "sub/rocket.png"]
    assert set(rows.codec) == {"jpeg", "webp:method=2"}
    assert (rows.bpp == rows.num_bytes * 8 / (rows.height * rows.width)).all()
    assert rows.roundtrip_ok.all() and rows.bpp_estimated.isna().all()
    assert ((rows.psnr_rgb > 20) & (rows.psnr_rgb < 50)).all()
    assert ((rows.ms_ssim_rgb > 0.8) & (rows.ms_ssim_rgb < 1)).all()
    assert np.allclose(rows.ms_ssim_db, -10 * np.log10(1 - rows.ms_ssim_rgb))
    # higher quality → more bits, per image and codec
    for _, g in rows.groupby(["image_id", "codec"]):
        assert g.sort_values("quality").num_bytes.is_monotonic_increasing
    info = json.loads((run / "run.json").read_text())
    assert info["counters"]["items_ok"] == 12 and info["plan"]["n_shards"] == 3
    assert {"torch", "apache-beam", "luigi", "Pillow"} <= set(info["environment"]["packages"])
    assert "libjpeg-turbo" in info["environment"]["codecs"]["jpeg"]
    for name in ("summary.csv", "bd_rate.csv", "report.html", "plots/rd_psnr_rgb_" ):
        assert any(p.as_posix().endswith(name) or name in p.as_posix() for p in run.rglob("*")), name
    summary = pd.read_csv(run / "summary.csv")
    assert len(summary) == 4 and (summary.n_images == 3).all()

    # A second run of the same configuration finds everything done and does nothing.
    again = run_benchmark(
        datasets=[f"folder:{small_folder}"], codecs=["jpeg", "webp:method=2"],
        qualities={"jpeg": [20, 80], "webp": [30, 70]}, output_root=str(tmp_path / "out"),
        run_name="e2e", num_workers=2, images_per_shard=1)
    assert again.status == luigi.execution_summary.LuigiStatusCode.SUCCESS_WITH_RETRY or \
        "complete" in again.summary_text or again.status.name == "SUCCESS"


def _bad_and_odd_folder(root: Path, photos) -> dict[str, str]:
    """Write bad and odd inputs; return image id → expected outcome ("ok" or the error stage)."""
    root.mkdir()
    photo = photos["chelsea"]
    expected = {}
    (root / "zero.png").write_bytes(b"")
    Image.fromarray(photo).save(root / "full.png")
    data = (root / "full.png").read_bytes()
    (root / "full.png").unlink()
    (root / "truncated.png").write_bytes(data[: len(data) // 3])
    (root / "text.png").write_text("not an image")
    Image.new("1", (15000, 15000)).save(root / "bomb.png")  # 225 Mpx: over Pillow's limit
    expected.update({"zero.png": "load", "truncated.png": "load", "text.png": "load", "bomb.png": "load"})
    wide = (photo[:, :, 0].astype(np.uint16) * 257)
    Image.fromarray(wide).save(root / "sixteen.png")
    Image.fromarray(photo[:, :, 1]).save(root / "gray.png")
    Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)]), "RGBA").save(root / "rgba.png")
    Image.fromarray(photo).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    Image.fromarray(photo[:1, :1]).save(root / "one.png")
    Image.fromarray(photo[:61, :97]).save(root / "odd.png")
    expected.update({k: "ok" for k in ("sixteen.png", "gray.png", "rgba.png", "cmyk.jpg", "one.png", "odd.png")})
    return expected


def test_every_bad_or_odd_input_lands_in_exactly_one_place(tmp_path, photos):
    expected = _bad_and_odd_folder(tmp_path / "mixed", photos)
    result = run_benchmark(
        datasets=[f"folder:{tmp_path / 'mixed'}"], codecs=["jpeg", "webp"],
        qualities={"jpeg": [50], "webp": [50]}, output_root=str(tmp_path / "out"), run_name="mixed",
        num_workers=2, beam_options="--direct_running_mode=multi_threading")
    assert result.status.name == "SUCCESS", result.summary_text
    run = tmp_path / "out" / "mixed"
    rows = read_dir(run / "results", RESULTS_SCHEMA)
    errors = read_dir(run / "errors", ERRORS_SCHEMA)
    for image_id, outcome in expected.items():
        for codec in ("jpeg", "webp"):
            n_ok = ((rows.image_id == image_id) & (rows.codec == codec)).sum()
            err = errors[(errors.image_id == image_id) & (errors.codec == codec)]
            if outcome == "ok":
                assert (n_ok, len(err)) == (1, 0), (image_id, codec, err.message.tolist())
            else:
                assert (n_ok, len(err)) == (0, 1), (image_id, codec)
                assert err.stage.iloc[0] == outcome and image_id in err.message.iloc[0]
    assert errors[errors.image_id == "bomb.png"].message.str.contains("decompression bomb").all()
    assert errors[errors.image_id == "zero.png"].message.str.contains("empty file").all()
    tiny = rows[rows.image_id.isin(["one.png", "odd.png"])]
    assert tiny.ms_ssim_rgb.isna().all() and tiny.psnr_rgb.notna().all()
    info = json.loads((run / "run.json").read_text())
    assert info["counters"]["items_failed"] == 8 and info["counters"]["errors_load"] == 8


def test_strict_turns_item_errors_into_a_failed_run(tmp_path, photos):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "zero.png").write_bytes(b"")
    Image.fromarray(photos["chelsea"]).save(folder / "ok.png")
    result = run_benchmark(
        datasets=[f"folder:{folder}"], codecs=["jpeg"], qualities={"jpeg": [50]},
        output_root=str(tmp_path / "out"), run_name="strict", strict=True, num_workers=1)
    assert result.status.name == "FAILED"
    assert (tmp_path / "out" / "strict" / "errors").is_dir()  # what was computed is kept


def test_killed_run_resumes_without_duplicates_or_gaps(tmp_path, photos):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(8):
        name = list(photos)[i % len(photos)]
        Image.fromarray(photos[name][: 200 + 8 * i, : 240]).save(folder / f"img{i:02d}.png")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "luigi", "--module", "pipelines", "RunBenchmark", "--local-scheduler",
           "--datasets", json.dumps([f"folder:{folder}"]), "--codecs", '["jpeg2000", "jpeg"]',
           "--qualities", '{"jpeg2000": [30, 34, 38], "jpeg": [50]}',
           "--output-root", str(out), "--run-name", "killed", "--num-workers", "1",
           "--images-per-shard", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "killed" / "results"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(results.glob("shard-*.parquet"))) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_ino for p in results.glob("shard-*.parquet")}
    assert 2 <= len(done_before) < 8, f"kill came too late or too early: {sorted(done_before)}"

    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = read_dir(results, RESULTS_SCHEMA)
    keys = rows[["image_id", "codec", "quality"]].apply(tuple, axis=1)
    assert len(rows) == 8 * 4 and keys.is_unique  # exactly one row per work item
    for name, inode in done_before.items():  # finished shards were not redone
        assert (results / name).stat().st_ino == inode
    info = json.loads((out / "killed" / "run.json").read_text())
    assert info["plan"]["shards_resumed"] == len(done_before)
    assert (out / "killed" / "report.html").is_file()


def test_batched_codec_path_runs_on_cpu_like_the_gpu_path(tmp_path, photos):
    """The GPU batching code (equal-shape buckets, one model per worker) exercised on the CPU."""
    folder = tmp_path / "mixed-shapes"
    folder.mkdir()
    for i, name in enumerate(["astronaut", "coffee", "rocket"]):
        Image.fromarray(photos[name][:64, :96]).save(folder / f"a{i}.png")
    Image.fromarray(photos["chelsea"][:96, :64]).save(folder / "portrait.png")
    spec = "bmshj2018-factorized:weights=random"
    batched = run_benchmark(datasets=[f"folder:{folder}"], codecs=[spec], qualities={"bmshj2018-factorized": [1, 2]},
                            output_root=str(tmp_path / "out"), run_name="batched", num_workers=1, batch_size=4,
                            device="cpu")
    single = run_benchmark(datasets=[f"folder:{folder}"], codecs=[spec], qualities={"bmshj2018-factorized": [1, 2]},
                           output_root=str(tmp_path / "out"), run_name="single", num_workers=1, batch_size=1,
                           device="cpu")
    assert batched.status.name == single.status.name == "SUCCESS"
    a = read_dir(tmp_path / "out" / "batched" / "results", RESULTS_SCHEMA)
    b = read_dir(tmp_path / "out" / "single" / "results", RESULTS_SCHEMA)
    assert len(a) == 8 and a.roundtrip_ok.all() and a.bpp_estimated.notna().all()
    assert "UNTRAINED" in a.codec_version.iloc[0]
    key = ["image_id", "quality"]
    cols = ["num_bytes", "psnr_rgb", "height", "width"]
    merged = a.sort_values(key)[key + cols].reset_index(drop=True).compare(b.sort_values(key)[key + cols].reset_index(drop=True))
    assert merged.empty, merged  # batching changes no number


def test_lpips_metric_through_the_pipeline_equals_the_lpips_package(tmp_path, small_folder, monkeypatch,
                                                                    lpips_reference):
    """--metrics adds LPIPS per image, computed on 2 workers; with user-supplied weights files (random
    weights the test made) every value equals the lpips package's own on the same images."""
    from rdbench.codecs import get_codec
    from rdbench.images import load_image
    from tests.conftest import reference_lpips

    model, backbone, linear = lpips_reference
    monkeypatch.setenv("RDBENCH_LPIPS_BACKBONE", str(backbone))
    monkeypatch.setenv("RDBENCH_LPIPS_LINEAR", str(linear))
    result = run_benchmark(datasets=[f"folder:{small_folder}"], codecs=["jpeg"], qualities={"jpeg": [30, 70]},
                           metrics=["psnr_rgb", "lpips"], output_root=str(tmp_path / "out"), run_name="lp",
                           num_workers=2, images_per_shard=1)
    assert result.status.name == "SUCCESS", result.summary_text
    rows = read_dir(tmp_path / "out" / "lp" / "results", RESULTS_SCHEMA)
    assert len(rows) == 6 and rows.ms_ssim_rgb.isna().all() and rows.psnr_y.isna().all()
    jpeg = get_codec("jpeg")
    for row in rows.itertuples():
        image = load_image(small_folder / row.image_id)
        expected = reference_lpips(model, image, jpeg.decode(jpeg.encode(image, row.quality)))
        assert abs(row.lpips - expected) < 1e-6, (row.image_id, row.quality, row.lpips, expected)
    summary = pd.read_csv(tmp_path / "out" / "lp" / "summary.csv")
    assert summary.lpips.notna().all()
    assert summary.sort_values("quality").lpips.is_monotonic_decreasing  # more bits, closer


def test_fid_and_kid_through_the_pipeline_equal_torch_fidelity(tmp_path, photos, inception_weights, monkeypatch):
    """--metrics fid,kid: features written per shard on 2 workers, combined per set by a second Beam
    job; the figures equal torch-fidelity's own calculate_metrics on the same patches and weights."""
    torch_fidelity = pytest.importorskip("torch_fidelity")
    from rdbench.codecs import get_codec
    from rdbench.metrics.setlevel import extract_patches

    folder = tmp_path / "images"
    folder.mkdir()
    crops = {"astronaut.png": photos["astronaut"][:384, 64:448],  # 2 patches (aligned + shifted)
             "coffee.png": photos["coffee"][16:400, 100:484],  # 2 patches
             "chelsea.png": photos["chelsea"],  # 300×451: 1 patch
             "small.png": photos["rocket"][:176, :208]}  # below 256 px: no patch, skipped
    for name, crop in crops.items():
        Image.fromarray(np.ascontiguousarray(crop)).save(folder / name)
    (folder / "broken.png").write_bytes(b"not a png")
    monkeypatch.setenv("RDBENCH_INCEPTION_WEIGHTS", str(inception_weights))  # user-supplied weights
    result = run_benchmark(datasets=[f"folder:{folder}"], codecs=["jpeg"], qualities={"jpeg": [10, 60]},
                           metrics=["psnr_rgb", "fid", "kid"], output_root=str(tmp_path / "out"),
                           run_name="fid", num_workers=2, images_per_shard=2)
    assert result.status.name == "SUCCESS", result.summary_text
    run = tmp_path / "out" / "fid"
    assert len(list((run / "features").glob("shard-*.npz"))) == 3  # one per shard, beside its results
    assert read_dir(run / "errors", ERRORS_SCHEMA).image_id.unique().tolist() == ["broken.png"]
    sets = pd.read_csv(run / "set_metrics.csv").set_index("quality")
    assert sets.n_images.tolist() == [4, 4] and sets.n_images_skipped.tolist() == [1, 1]
    assert sets.n_patches.tolist() == [5, 5] and sets.kid_patches.tolist() == [5, 5]

    # The reference: torch-fidelity on folders of the same patches (originals vs JPEG reconstructions).
    jpeg = get_codec("jpeg")
    for quality in (10, 60):
        real_dir, fake_dir = tmp_path / f"real{quality}", tmp_path / f"fake{quality}"
        real_dir.mkdir(), fake_dir.mkdir()
        for name, crop in crops.items():
            crop = np.ascontiguousarray(crop)
            decoded = jpeg.decode(jpeg.encode(crop, quality))
            for i, (a, b) in enumerate(zip(extract_patches(crop), extract_patches(decoded))):
                Image.fromarray(a).save(real_dir / f"{name}-{i}.png")
                Image.fromarray(b).save(fake_dir / f"{name}-{i}.png")
        theirs = torch_fidelity.calculate_metrics(
            input1=str(fake_dir), input2=str(real_dir), cuda=False, fid=True, kid=True, kid_subset_size=5,
            feature_extractor_weights_path=str(inception_weights), cache=False, verbose=False)
        ours = sets.loc[float(quality)]
        assert abs(ours.fid - theirs["frechet_inception_distance"]) < 1e-3, (ours.fid, theirs)
        # torch-fidelity's KID kernel runs in float32 here (its features' dtype); rdbench's in float64.
        assert ours.kid == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-5)
        assert theirs["frechet_inception_distance"] > 0.01  # a real difference, not a trivial zero
    summary = pd.read_csv(run / "summary.csv").set_index("quality")
    assert np.allclose(summary.fid, sets.fid) and np.allclose(summary.kid, sets.kid)
    assert sets.fid.loc[10.0] > sets.fid.loc[60.0]  # fewer bits, less realistic
    assert any(p.name.startswith("rd_fid_") for p in (run / "plots").glob("*.png"))
    assert "Rate–FID" in (run / "report.html").read_text()

    # A run killed after a shard's features but before its results resumes with that shard redone
    # (its features file overwritten, not doubled) and the same figures.
    for name in ("results/shard-00001.parquet", "_EVALUATED", "set_metrics.csv", "report.html"):
        (run / name).unlink()
    again = run_benchmark(datasets=[f"folder:{folder}"], codecs=["jpeg"], qualities={"jpeg": [10, 60]},
                          metrics=["psnr_rgb", "fid", "kid"], output_root=str(tmp_path / "out"),
                          run_name="fid", num_workers=1, images_per_shard=2)
    assert again.status.name == "SUCCESS", again.summary_text
    assert json.loads((run / "run.json").read_text())["plan"]["shards_resumed"] == 2
    assert len(list((run / "features").glob("*.npz"))) == 3
    resumed = pd.read_csv(run / "set_metrics.csv").set_index("quality")
    pd.testing.assert_frame_equal(resumed, sets)


def test_hific_checkpoint_in_the_published_layout_through_the_pipeline(tmp_path, photos):
    """A synthetic checkpoint with the published key layout (a narrow variant: 16 latent channels,
    one residual block, so the test stays light) runs through RunBenchmark with roundtrip_ok."""
    from tests import hific_checkpoint as hc

    hc.write_checkpoint(tmp_path / "hific_low.pt", "low", compact=True, latent_channels=16, n_residual_blocks=1)
    folder = tmp_path / "img"
    folder.mkdir()
    Image.fromarray(photos["astronaut"][:64, :96]).save(folder / "a.png")
    result = run_benchmark(datasets=[f"folder:{folder}"], codecs=[f"hific:checkpoint={tmp_path}/hific_{{quality}}.pt"],
                           qualities={"hific": [1]}, output_root=str(tmp_path / "out"), run_name="hific",
                           num_workers=1)
    assert result.status.name == "SUCCESS", result.summary_text
    rows = read_dir(tmp_path / "out" / "hific" / "results", RESULTS_SCHEMA)
    assert len(rows) == 1 and rows.roundtrip_ok.all() and rows.bpp_estimated.notna().all()
    assert (rows.num_bytes > 0).all()
