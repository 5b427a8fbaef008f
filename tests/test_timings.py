"""Honest timings: model loading and first-call warm-up stay out of encode_s/decode_s and go to run.json."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rdbench.codecs import base
from rdbench.datasets import get_dataset
from rdbench.run import RunConfig, run_benchmark
from rdbench.run.benchmark import evaluate_shards, finish_run, prepare_run
from rdbench.run.ladder import WARMUP_SIDE, warm_up
from rdbench.run.plan import plan_shards
from rdbench.run.shard import MAX_WARMUP_TRIES, ShardEvaluator
from tests import slow_codecs

LOAD_S = 1.0  # each quality's model load sleeps this long
FAST = 0.5  # an item's encode_s or decode_s must stay well below LOAD_S


@pytest.fixture(autouse=True)
def codecs(monkeypatch):
    for cls in slow_codecs.CODECS:
        monkeypatch.setitem(base._registered, cls.name, cls)


@pytest.fixture
def three_images(tmp_path, photos) -> Path:
    """Three equal-size 72×88 crops (larger than the warm-up crop, equal shapes batch together)."""
    out = tmp_path / "three"
    out.mkdir()
    for name in ("astronaut", "coffee", "rocket"):
        Image.fromarray(photos[name][:72, :88]).save(out / f"{name}.png")
    return out


def _results(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "results")


def test_a_slow_model_load_is_not_in_any_items_timings(three_images, tmp_path):
    """Acceptance: a codec whose model load sleeps 1 s per quality, through run_benchmark."""
    spec = f"{slow_codecs.SlowLoad.name}:load_s={LOAD_S}"
    config = RunConfig(datasets=[f"folder:{three_images}"], codecs=[spec], metrics=["psnr_rgb"],
                       images_per_shard=2, output_root=str(tmp_path / "out"), run_name="slow", device="cpu")
    run_benchmark(config)
    run = tmp_path / "out" / "slow"
    rows = _results(run)
    assert len(rows) == 3 * 2 and sorted(rows.quality.unique()) == [1.0, 2.0]
    assert rows.encode_s.max() < FAST and rows.decode_s.max() < FAST, rows[["quality", "encode_s", "decode_s"]]
    info = json.loads((run / "run.json").read_text())
    counters = info["counters"]
    # Both qualities loaded once each (one worker), untimed, and counted as warm-up.
    assert counters["time_prepare_ms"] >= 2 * LOAD_S * 1000
    assert counters["time_warmup_ms"] >= counters["time_prepare_ms"]
    assert counters["warmups"] == 2 and counters["warmups_failed"] == 0
    timing = info["timing"]
    assert timing["clock"].startswith("time.perf_counter")
    assert "synchronize" in timing["device_synchronisation"]
    assert f"{WARMUP_SIDE}x{WARMUP_SIDE}" in timing["warmup"]
    assert timing["warmup_s"] >= 2 * LOAD_S and timing["prepare_s"] >= 2 * LOAD_S
    assert timing["torch_threads_per_worker"] and all(n >= 1 for n in timing["torch_threads_per_worker"])


@pytest.mark.parametrize(("spec", "batch_size"), [
    (f"{slow_codecs.SlowLoad.name}:load=first-call", 1),  # prepare is a no-op: the warm-up encode loads
    (slow_codecs.SlowFirstCall.name, 1),  # a plain Codec, default prepare
    (slow_codecs.SlowLoadProgressive.name, 1),  # the ladder path
    (slow_codecs.SlowLoadBatched.name, 3),  # the batch path
])
def test_every_path_is_warmed_up_before_it_is_timed(three_images, tmp_path, spec, batch_size):
    config = RunConfig(datasets=[f"folder:{three_images}"], codecs=[spec], metrics=["psnr_rgb"], device="cpu",
                       batch_size=batch_size, images_per_shard=3, output_root=str(tmp_path), run_name="paths")
    prepared = prepare_run(config)
    before = slow_codecs.SlowLoadBatched.batch_calls
    counters = evaluate_shards(prepared)
    info = finish_run(prepared, counters, 0.0)
    rows = _results(tmp_path / "paths")
    assert len(rows) == 6 and rows.roundtrip_ok.all()
    assert rows.encode_s.max() < FAST and rows.decode_s.max() < FAST, rows[["quality", "encode_s", "decode_s"]]
    assert counters["time_warmup_ms"] >= LOAD_S * 1000 and info["timing"]["warmup_s"] >= LOAD_S
    assert counters["warmups_failed"] == 0
    if batch_size > 1:  # warmed up through compress_batch, then timed through it: one call per quality each
        assert slow_codecs.SlowLoadBatched.batch_calls - before == 2 * 2


def test_warm_up_never_raises_and_reports_what_failed(photos):
    image = photos["coffee"][:80, :96]
    broken = base.get_codec(f"{slow_codecs.SlowLoad.name}:load_s=0,fail=prepare")
    done = warm_up(broken, [image], [1, 2])
    assert done.warmed == [] and set(done.failed) == {1.0, 2.0}
    assert done.failed[1.0].startswith("prepare: RuntimeError")
    small = base.get_codec(f"{slow_codecs.SlowLoad.name}:load_s=0,fail=small")
    done = warm_up(small, [image], [1, 2])
    assert done.warmed == [] and done.failed[2.0].startswith("coding: CodecError")
    assert small.loads == 2  # prepare loaded both models before the crop was refused
    progressive = base.get_codec(f"{slow_codecs.SlowLoadProgressive.name}:load_s=0,fail=small")
    assert set(warm_up(progressive, [image], [1, 2]).failed) == {1.0, 2.0}
    unknown = base.get_codec(f"{slow_codecs.SlowLoad.name}:load_s=0")
    done = warm_up(unknown, [image], [1, 7])  # quality 7 does not exist: prepare refuses it
    assert done.warmed == [1.0] and done.failed[7.0].startswith("prepare: ValueError")


@pytest.mark.parametrize("fail", ["prepare", "small"])
def test_a_failed_warm_up_does_not_fail_the_item(three_images, fail, caplog):
    spec = f"{slow_codecs.SlowLoad.name}:load_s=0,fail={fail}"
    dataset = get_dataset(f"folder:{three_images}")
    shards = plan_shards([dataset], {spec: [1, 2]}, images_per_shard=3)
    evaluator = ShardEvaluator("r", metrics=["psnr_rgb"])
    outcome = evaluator.evaluate(shards[0])
    assert outcome.errors == [] and len(outcome.rows) == 3 * 2
    assert all(np.isfinite(r["psnr_rgb"]) and r["psnr_rgb"] > 20 for r in outcome.rows)
    # Retried before each later item of the pair, up to MAX_WARMUP_TRIES, then given up.
    assert outcome.warmups == 0 and outcome.warmups_failed == 2 * min(3, MAX_WARMUP_TRIES)
    assert "warm-up of" in caplog.text and "its items are evaluated anyway" in caplog.text
    again = evaluator.evaluate(shards[0])
    assert again.errors == [] and again.warmups_failed == 2 * max(0, MAX_WARMUP_TRIES - 3)


def test_an_item_that_fails_still_fails_on_its_own_stage(photos, tmp_path):
    """A codec that cannot code the item: the warm-up's failure adds nothing; the item's own encode fails."""
    Image.fromarray(photos["coffee"][:48, :64]).save(tmp_path / "small.png")  # ≤ 64 px: refused
    spec = f"{slow_codecs.SlowLoad.name}:load_s=0,fail=small"
    shards = plan_shards([get_dataset(f"folder:{tmp_path}")], {spec: [1, 2]})
    outcome = ShardEvaluator("r", metrics=["psnr_rgb"]).evaluate(shards[0])
    assert outcome.rows == []
    assert [(e["quality"], e["stage"], e["error_type"]) for e in outcome.errors] == [
        (1.0, "encode", "CodecError"), (2.0, "encode", "CodecError")]
