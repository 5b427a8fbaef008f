"""The same benchmark on Beam's Dask runner against a real dask.distributed cluster."""
from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.test_pipeline import read_dir, run_benchmark
from rdbench.schema import RESULTS_SCHEMA

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
