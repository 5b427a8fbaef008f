"""The same benchmark on Beam's Dask runner against a real dask.distributed cluster."""
from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.test_pipeline import read_dir, run_benchmark
from rdbench.run.schema import RESULTS_SCHEMA

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
