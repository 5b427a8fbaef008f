"""The run core (rdbench.run) on its own: no Luigi, no Beam, small real images and real codecs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rdbench.codecs import Codec, get_codec, register
from rdbench.datasets import get_dataset
from rdbench.run import ConfigError, RunConfig, folder, run_benchmark
from rdbench.run.benchmark import plan_run, prepare_run
from rdbench.run.ladder import Failure, Measurement, MetricSet, evaluate_ladder
from rdbench.run.plan import pending_shards, plan_digest, plan_shards
from rdbench.run.schema import ERRORS_SCHEMA, RESULTS_SCHEMA, STAGES
from rdbench.run.shard import ShardEvaluator, batches


@pytest.fixture
def five_images(tmp_path, photos) -> Path:
    """Five small PNG crops (64×80) of the sample photographs."""
    out = tmp_path / "five"
    out.mkdir()
    for i, (name, image) in enumerate(sorted(photos.items()) + [("astronaut2", photos["astronaut"][100:])]):
        Image.fromarray(image[:64, :80]).save(out / f"{i}-{name}.png")
    return out


# -- RunConfig --------------------------------------------------------------------------------


def test_config_digest_depends_on_what_defines_the_results_only():
    base = RunConfig(datasets=["sample"], codecs=["jpeg", "webp"], qualities={"jpeg": [10, 50]})
    assert base.digest() == RunConfig(datasets=("sample",), codecs=("jpeg", "webp"),
                                      qualities={"jpeg": (10.0, 50.0)}).digest()
    assert base.digest() == RunConfig(datasets=["sample"], codecs=["jpeg", "webp"], qualities={"jpeg": [10, 50]},
                                      output_root="/elsewhere", num_workers=7, runner="DaskRunner").digest()
    assert base.digest() != RunConfig(datasets=["sample"], codecs=["jpeg", "webp"],
                                      qualities={"jpeg": [10, 60]}).digest()
    assert base.digest() != RunConfig(datasets=["sample"], codecs=["jpeg", "webp"], qualities={"jpeg": [10, 50]},
                                      metrics=["psnr_rgb"]).digest()


def test_config_round_trips_through_plain_json_values():
    import json

    config = RunConfig(datasets=["sample"], codecs=["jpeg:subsampling=444"], qualities={"jpeg": [5, 95]},
                       metrics=["psnr_rgb", "ssim"], limit=3, reference=["all"])
    again = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.digest() == config.digest()
    with pytest.raises(ConfigError, match="unknown run parameter.*colour"):
        RunConfig.from_dict({"colour": "red"})


@pytest.mark.parametrize(("params", "names"), [
    ({"metrics": ["psnr", "ms_ssim_rgb"]}, "--metrics: unknown metric 'psnr'"),
    ({"codecs": ["jpge"]}, "--codecs: unknown codec 'jpge'"),
    ({"codecs": ["jpeg:speed=3"]}, "--codecs: codec 'jpeg' does not accept parameter"),
    ({"codecs": ["jpeg"], "qualities": {"webp": [50]}}, "--qualities: codec 'webp' is not in the run; its codecs: jpeg"),
    ({"limit": 0}, "--limit: 0 is not allowed"),
    ({"images_per_shard": -2}, "--images-per-shard: -2"),
    ({"num_workers": -1}, "--num-workers: -1"),
    ({"device": "gpu"}, "--device: unknown device 'gpu'; use auto, cpu, cuda or cuda:N"),
])
def test_config_refuses_a_bad_parameter_naming_it(params, names):
    with pytest.raises(ConfigError) as err:
        RunConfig(**params).validate()
    assert str(err.value).startswith(names)
    assert "\n" not in str(err.value)


def test_the_run_core_imports_neither_luigi_nor_beam_nor_torch():
    code = ("import sys, rdbench.run, rdbench.run.shard, rdbench.metrics.registry; "
            "print(sorted(m for m in ('luigi', 'apache_beam', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- planning -----------------------------------------------------------------------------------


def test_plan_puts_every_image_codec_pair_in_exactly_one_shard(five_images):
    dataset = get_dataset(f"folder:{five_images}")
    shards = plan_shards([dataset], {"jpeg": [10, 50], "webp": [30]}, images_per_shard=2)
    assert [s.name for s in shards] == ["shard-00000", "shard-00001", "shard-00002"]
    pairs = [(u.image_id, u.codec) for s in shards for u in s.units]
    assert len(pairs) == len(set(pairs)) == 5 * 2
    assert {u.codec for u in shards[0].units} == {"jpeg", "webp"}  # a shard holds every codec of its images
    assert [s.n_items for s in shards] == [6, 6, 3]
    assert plan_digest(shards) == plan_digest(plan_shards([dataset], {"jpeg": [10, 50], "webp": [30]}, 2))
    assert plan_digest(shards) != plan_digest(shards, ["lpips"])


def test_plan_run_uses_the_quality_overrides_and_the_codec_ladders(five_images):
    config = RunConfig(datasets=[f"folder:{five_images}"], codecs=["jpeg:subsampling=444", "webp"],
                       qualities={"jpeg": [20, 40]}, limit=3, images_per_shard=3)
    shards = plan_run(config)
    units = [u for s in shards for u in s.units]
    assert len(shards) == 1 and len(units) == 6
    assert {u.qualities for u in units if u.codec == "jpeg:subsampling=444"} == {(20.0, 40.0)}
    assert {u.qualities for u in units if u.codec == "webp"} == {tuple(get_codec("webp").default_qualities())}


def test_pending_shards_are_those_without_a_results_file(five_images, tmp_path):
    shards = plan_shards([get_dataset(f"folder:{five_images}")], {"jpeg": [50]}, images_per_shard=2)
    run = str(tmp_path / "run")
    folder.write_shard(run, "shard-00001", [], [])
    assert [s.name for s in pending_shards(shards, folder.completed_shards(run))] == ["shard-00000", "shard-00002"]


# -- the ladder: one failure at each stage --------------------------------------------------------


class Flaky(Codec):
    """A real (lossless PNG-in-bytes) codec that fails on purpose at chosen qualities."""

    name = "flaky"
    DEFAULT_QUALITIES = (1, 2, 3, 4, 5)

    @property
    def version(self) -> str:
        return "flaky 1"

    def encode(self, image, quality):
        if quality == 2:
            raise RuntimeError("encoder crashed at q2")
        import io

        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        return bytes([int(quality)]) + buffer.getvalue()

    def decode(self, data):
        import io

        if data[0] == 3:
            raise ValueError("corrupt stream at q3")
        image = np.asarray(Image.open(io.BytesIO(data[1:])).convert("RGB"))
        return image[:-1] if data[0] == 4 else image  # q4: one row short


class FailingMetrics(MetricSet):
    def image_metrics(self, image, decoded):
        raise FloatingPointError("metric blew up")


def test_each_quality_fails_alone_at_its_own_stage(photos):
    image = photos["coffee"][:48, :64]
    results = list(evaluate_ladder(Flaky(), image, [1, 2, 3, 4, 5]))
    ok = [r for r in results if isinstance(r, Measurement)]
    failed = {r.quality: (r.stage, r.error_type) for r in results if isinstance(r, Failure)}
    assert failed == {2.0: ("encode", "RuntimeError"), 3.0: ("decode", "ValueError"), 4.0: ("decode", "ValueError")}
    assert [m.quality for m in ok] == [1.0, 5.0]
    assert all(m.values["psnr_rgb"] == float("inf") and m.roundtrip_ok for m in ok)
    assert all(m.bpp == m.num_bytes * 8 / (48 * 64) for m in ok)
    broken = list(evaluate_ladder(Flaky(), image, [1], metrics=FailingMetrics()))
    assert [(f.stage, f.error_type) for f in broken] == [("metrics", "FloatingPointError")]


def test_a_shard_records_load_and_codec_failures_per_item(five_images, tmp_path):
    register("flaky", Flaky)
    (five_images / "9-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    shards = plan_shards([get_dataset(f"folder:{five_images}")], {"flaky": [1, 2], "jpeg": [50]},
                         images_per_shard=10)
    outcome = ShardEvaluator("r1").evaluate(shards[0])
    errors = pd.DataFrame(outcome.errors)
    assert set(errors["stage"]) <= set(STAGES)
    broken = errors[errors["image_id"].str.contains("broken")]
    assert sorted(broken["stage"]) == ["load"] * 3 and "broken" in broken["message"].iloc[0]
    assert sorted(errors.loc[errors["stage"] == "encode", "quality"]) == [2.0] * 5
    assert len(outcome.rows) == 5 * 2 and outcome.images_loaded == 5
    assert outcome.counters()["errors_load"] == 3 and outcome.counters()["items_ok"] == 10
    outcome.write(str(tmp_path / "run"))
    assert folder.count_rows(str(tmp_path / "run"), "results") == 10
    assert folder.count_rows(str(tmp_path / "run"), "errors") == 8


# -- batching -------------------------------------------------------------------------------------


class _Unit:
    def __init__(self, codec, qualities=(1.0,)):
        self.codec, self.qualities = codec, qualities


class _Batched:
    batched = True


class _Single:
    batched = False


def test_batches_group_batched_codecs_by_codec_ladder_and_shape():
    a, b = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 16, 3), np.uint8)
    ready = ([(_Unit("net"), _Batched(), a)] * 5 + [(_Unit("net"), _Batched(), b)]
             + [(_Unit("net", (2.0,)), _Batched(), a)] + [(_Unit("jpeg"), _Single(), a)] * 2)
    groups = batches(ready, batch_size=2)
    assert sorted(len(g) for g in groups) == [1, 1, 1, 1, 1, 2, 2]
    for group in groups:
        assert len({(u.codec, u.qualities, im.shape) for u, _, im in group}) == 1
    assert all(len(g) == 1 for g in batches(ready, batch_size=1))


# -- the run folder -------------------------------------------------------------------------------


def test_rewriting_a_shard_replaces_its_files_and_removes_stale_errors(tmp_path):
    run = str(tmp_path / "run")
    row = {f.name: None for f in RESULTS_SCHEMA}
    row |= {"dataset": "d", "image_id": "i", "codec": "jpeg", "codec_version": "v", "quality": 1.0,
            "height": 1, "width": 1, "num_bytes": 1, "bpp": 8.0, "encode_s": 0.0, "decode_s": 0.0,
            "device": "cpu", "roundtrip_ok": True, "run_id": "r"}
    error = {"dataset": "d", "image_id": "j", "codec": "jpeg", "quality": None, "stage": "load",
             "error_type": "OSError", "message": "bad", "run_id": "r"}
    assert list(error) == ERRORS_SCHEMA.names
    folder.write_shard(run, "shard-00000", [row], [error])
    assert folder.count_rows(run, "errors") == 1
    folder.write_shard(run, "shard-00000", [row, row], [])
    assert folder.count_rows(run, "results") == 2 and folder.count_rows(run, "errors") == 0
    (tmp_path / "run" / "results" / ".shard-00001.parquet.tmp-123").write_bytes(b"half")
    assert folder.completed_shards(run) == {"shard-00000"}


# -- a whole run in this process --------------------------------------------------------------------


def test_run_benchmark_in_process_writes_a_complete_run_and_resumes_without_duplicates(five_images, tmp_path):
    config = RunConfig(datasets=[f"folder:{five_images}"], codecs=["jpeg", "webp"], qualities={"jpeg": [20, 60],
                       "webp": [50]}, images_per_shard=2, output_root=str(tmp_path / "out"), run_name="core")
    report = Path(run_benchmark(config))
    run = tmp_path / "out" / "core"
    assert report == run / "report.html" and report.is_file()
    for name in ("summary.csv", "bd_rate.csv", "run.json", "plan.json", "_EVALUATED"):
        assert (run / name).is_file(), name
    first = pd.read_parquet(run / "results")
    assert len(first) == 5 * 3 and first["bpp"].gt(0).all()
    (run / "results" / "shard-00001.parquet").unlink()  # as if killed before this shard was written
    prepared = prepare_run(config)
    assert [s.name for s in prepared.pending] == ["shard-00001"]
    run_benchmark(config)
    again = pd.read_parquet(run / "results")
    keys = ["image_id", "codec", "quality"]
    assert len(again) == 15 and not again.duplicated(keys).any()
    pd.testing.assert_frame_equal(first.sort_values(keys)[keys].reset_index(drop=True),
                                  again.sort_values(keys)[keys].reset_index(drop=True))
    import json

    info = json.loads((run / "run.json").read_text())
    assert info["plan"]["shards_resumed"] == 2 and info["config_digest"] == config.digest()


def test_a_run_folder_holding_another_configuration_is_refused_naming_the_fields(five_images, tmp_path):
    common = dict(datasets=[f"folder:{five_images}"], codecs=["jpeg"], output_root=str(tmp_path), run_name="x")
    run_benchmark(RunConfig(qualities={"jpeg": [30]}, limit=1, **common))
    with pytest.raises(ConfigError, match=r"^--run-name: .* another configuration: limit \(1 there, 2 now\); "
                                          r"qualities \(\{'jpeg': \[30.0\]\} there, \{'jpeg': \[31.0\]\} now\)"):
        prepare_run(RunConfig(qualities={"jpeg": [31]}, limit=2, **common))
    assert folder.read_json(str(tmp_path / "x" / "plan.json"))["configuration"]["qualities"] == {"jpeg": [30.0]}
