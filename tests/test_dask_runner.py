"""The same benchmark on Beam's Dask runner against a real dask.distributed cluster."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.test_pipeline import read_dir, run_benchmark
from rdbench.run.schema import ERRORS_SCHEMA, RESULTS_SCHEMA

distributed = pytest.importorskip("distributed")

TIMINGS = ["encode_s", "decode_s"]
KEY = ["dataset", "image_id", "codec", "quality"]


def test_dask_runner_matches_fnapi_row_for_row(tmp_path, small_folder):
    params = dict(datasets=[f"folder:{small_folder}"], codecs=["jpeg", "webp"],
                  qualities={"jpeg": [30, 70], "webp": [40]}, output_root=str(tmp_path / "out"),
                  images_per_shard=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        dask_run = run_benchmark(run_name="dask", runner="DaskRunner",
                                 dask_address=cluster.scheduler_address, **params)
        assert dask_run.status.name == "SUCCESS", dask_run.summary_text
    local_run = run_benchmark(run_name="local", num_workers=2, **params)
    assert local_run.status.name == "SUCCESS", local_run.summary_text

    out = tmp_path / "out"
    dask_rows = read_dir(out / "dask" / "results", RESULTS_SCHEMA)
    local_rows = read_dir(out / "local" / "results", RESULTS_SCHEMA)
    assert len(dask_rows) == 3 * 3
    drop = TIMINGS + ["run_id"]
    a = dask_rows.drop(columns=drop).sort_values(KEY).reset_index(drop=True)
    b = local_rows.drop(columns=drop).sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)

    # The shards were written by more than one Dask worker process.
    writers = {pq.read_schema(f).metadata[b"rdbench.worker"] for f in (out / "dask" / "results").glob("*.parquet")}
    assert len(writers) >= 2, writers


def test_set_metrics_job_on_dask_equals_one_pass(tmp_path):
    """The FID/KID combine (ComputeSetMetrics' Beam job) on a 2-process Dask cluster gives the figures
    of one SetStats fed every image directly."""
    import numpy as np

    from pipelines.beam.job import RunnerConfig
    from pipelines.beam.set_metrics import run_set_metrics_job
    from rdbench.run import folder as runfolder
    from rdbench.metrics.setlevel import SetStats
    from rdbench.metrics.shardfeatures import ShardFeatures
    from rdbench.reports.set_metrics import read_set_metrics

    rng = np.random.default_rng(0)
    run = str(tmp_path / "run")
    direct: dict[float, SetStats] = {}
    for s in range(4):
        shard = ShardFeatures(dim=16)
        for i in range(5):
            real = rng.random((3, 16), dtype=np.float32)
            shard.add_original("d", f"img{s}-{i}", real)
            for q in (1.0, 2.0):
                fake = (real + 0.1 * q * rng.random((3, 16), dtype=np.float32)).astype(np.float32)
                shard.add_reconstruction("d", f"img{s}-{i}", "codec", q, fake)
                direct.setdefault(q, SetStats()).add(f"d/img{s}-{i}", real, fake)
        runfolder.write_bytes_atomic(f"{run}/features/shard-{s:05d}.npz", shard.to_bytes())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        run_set_metrics_job(run, RunnerConfig(runner="DaskRunner", dask_address=cluster.scheduler_address))
    table = read_set_metrics(tmp_path / "run" / "set_metrics.csv").set_index("quality")
    for q, stats in direct.items():
        assert table.n_images[q] == 20 and table.n_patches[q] == 60
        assert table.fid[q] == pytest.approx(stats.fid(), rel=1e-9)
        assert table.kid[q] == pytest.approx(stats.kid()[0], rel=1e-9)


# -- a worker killed mid-run ----------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
#: The launcher: registers the test codecs (as the workers' preload does), runs RunBenchmark on Dask.
LAUNCHER = """
import json, sys
import luigi
from tests import slow_codecs
slow_codecs.register_all()
from pipelines import RunBenchmark
result = luigi.build([RunBenchmark(**json.loads(sys.argv[1]))], local_scheduler=True, detailed_summary=True)
print("rdbench-test-status", result.status.name)
sys.exit(0 if result.status.name == "SUCCESS" else 3)
"""


def _launch(params: dict, log: Path) -> subprocess.Popen:
    """Start the launcher; its output goes to ``log`` (a pipe nobody reads could fill and block it)."""
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-c", LAUNCHER, json.dumps(params)], cwd=REPO, text=True,
                                stdout=out, stderr=subprocess.STDOUT)


def _finish(job: subprocess.Popen, log: Path, timeout: float) -> str:
    """Wait for the launcher (killed after ``timeout`` seconds); the tail of its output."""
    try:
        job.wait(timeout=timeout)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    return log.read_text()[-3000:]


def _items(run: Path) -> pd.DataFrame:
    frames = [read_dir(run / "results", RESULTS_SCHEMA)[KEY]]
    if (run / "errors").exists():
        frames.append(read_dir(run / "errors", ERRORS_SCHEMA)[KEY])
    return pd.concat(frames, ignore_index=True)


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_run_loses_nothing(tmp_path, photos, monkeypatch):
    """SIGKILL one of two Dask worker processes after the first shard is written: Dask reruns its
    tasks on the other worker (and the restarted one); written shards are skipped, the shard it was
    evaluating is written once by another; every (image, codec, quality) ends up exactly once. Should
    the runner give up instead, a second run of the same configuration must complete the run.

    Beam 2.77's Dask runner on dask.distributed 2026.8: the run completes (Dask reschedules the lost
    tasks; nothing is given up after a single kill)."""
    from tests import slow_codecs

    images = tmp_path / "images"
    images.mkdir()
    for i in range(10):
        name = sorted(photos)[i % len(photos)]
        Image.fromarray(photos[name][8 * i: 8 * i + 72, :88]).save(images / f"{i:02d}-{name}.png")
    # Each shard: one image, two qualities, 0.4 s of sleep per encode: ~1 s per shard per worker.
    spec = f"{slow_codecs.SlowLoad.name}:load_s=0,code_s=0.4"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, preload=["tests.slow_codecs"]) as cluster, \
            distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        assert len(pids) == 2
        params = dict(datasets=[f"folder:{images}"], codecs=[spec], qualities={slow_codecs.SlowLoad.name: [1, 2]},
                      metrics=["psnr_rgb"], output_root=str(tmp_path / "out"), run_name="killed",
                      images_per_shard=1, runner="DaskRunner", dask_address=cluster.scheduler_address,
                      device="cpu")
        run, log = tmp_path / "out" / "killed", tmp_path / "launcher.log"
        job = _launch(params, log)
        try:
            deadline = time.monotonic() + 120
            while not list((run / "results").glob("shard-*.parquet")):
                assert job.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "no shard written within 120 s"
                time.sleep(0.05)
            busy = [address for address, keys in client.processing().items() if keys and address in pids]
            victim = pids[busy[0] if busy else sorted(pids)[0]]  # one evaluating a shard right now
            os.kill(victim, signal.SIGKILL)
            written_at_kill = len(list((run / "results").glob("shard-*.parquet")))
        except BaseException:
            job.kill()
            job.wait()
            raise
        output = _finish(job, log, timeout=150)
        assert written_at_kill < 10, "the run ended before the kill: it proved nothing"
        outcome = "completed" if job.returncode == 0 else "failed"
        if outcome == "failed":  # the runner gave up: the same configuration again completes it
            again = _launch(params, tmp_path / "again.log")
            output = _finish(again, tmp_path / "again.log", timeout=150)
            assert again.returncode == 0, output
        assert victim not in client.run(os.getpid).values()  # it did die (the nanny started a new one)
    print(f"Dask runner with a killed worker: the run {outcome}")
    items = _items(run)
    assert not items.duplicated().any(), items[items.duplicated(keep=False)]
    assert len(items) == 10 * 2 and set(items.quality) == {1.0, 2.0}
    assert (run / "_EVALUATED").is_file() and json.loads((run / "run.json").read_text())["rows"]["results"] == 20
