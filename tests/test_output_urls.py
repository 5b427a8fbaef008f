"""Output roots given as fsspec URLs: a file:// URL and an in-memory filesystem."""
from __future__ import annotations

import json

import fsspec
import pyarrow.parquet as pq

from tests.test_pipeline import run_benchmark

PARAMS = dict(codecs=["jpeg"], qualities={"jpeg": [40, 80]})


def test_file_url_output_root(tmp_path, small_folder):
    result = run_benchmark(datasets=[f"folder:{small_folder}"], output_root=f"file://{tmp_path}/out",
                           run_name="url", num_workers=2, **PARAMS)
    assert result.status.name == "SUCCESS", result.summary_text
    run = tmp_path / "out" / "url"
    assert pq.read_table(run / "results").num_rows == 6
    assert (run / "report.html").is_file() and (run / "summary.csv").is_file()


def test_in_memory_filesystem_output_root(small_folder):
    # memory:// lives inside one process, so the Beam job runs in-process (one worker):
    # the honest setting for this filesystem.
    fs = fsspec.filesystem("memory")
    result = run_benchmark(datasets=[f"folder:{small_folder}"], output_root="memory://rdbench-test",
                           run_name="mem", num_workers=1, **PARAMS)
    assert result.status.name == "SUCCESS", result.summary_text
    files = fs.find("/rdbench-test/mem")
    shards = [f for f in files if "/results/shard-" in f]
    assert len(shards) == 3 and not any("/." in f for f in files)  # no temporary files left
    assert sum(pq.ParquetFile(fs.open(f, "rb")).metadata.num_rows for f in shards) == 6
    info = json.loads(fs.cat("/rdbench-test/mem/run.json"))
    assert info["rows"] == {"results": 6, "errors": 0}
    assert fs.exists("/rdbench-test/mem/report.html") and fs.exists("/rdbench-test/mem/summary.csv")
    assert any(f.endswith(".png") for f in fs.find("/rdbench-test/mem/plots"))
