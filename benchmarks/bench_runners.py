"""Kodak sweep (jpeg + webp, 5 qualities) on FnApiRunner with 1 and 2 workers and on Dask.

    python benchmarks/bench_runners.py

Reports items per second of each run (items = image × codec × quality) measured over the Beam
job alone (``beam_job_s`` in run.json) and end to end, and the 1 → 2 worker speed-up.
The Dask run starts a ``dask.distributed`` LocalCluster with 2 worker processes on 127.0.0.1.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import require_kodak, run_benchmark_cli  # noqa: E402

QUALITIES = [5, 25, 50, 75, 95]


def sweep(tmp: str, name: str, *extra: str) -> tuple[float, float, int]:
    kodak = require_kodak()
    seconds, _ = run_benchmark_cli(
        "--datasets", json.dumps([f"folder:{kodak}"]), "--codecs", '["jpeg", "webp"]',
        "--qualities", json.dumps({"jpeg": QUALITIES, "webp": QUALITIES}),
        "--output-root", tmp, "--run-name", name, *extra)
    info = json.loads((Path(tmp) / name / "run.json").read_text())
    return seconds, info["beam_job_s"], info["plan"]["n_items"]


def main() -> None:
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            total, job, items = sweep(tmp, f"fnapi-{workers}", "--num-workers", str(workers))
            rates[workers] = items / job
            print(f"FnApiRunner, {workers} worker(s): {items / job:6.1f} items/s in the Beam job "
                  f"({job:.1f} s), {items / total:6.1f} items/s end to end ({total:.1f} s)")
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            total, job, items = sweep(tmp, "dask-2", "--runner", "DaskRunner",
                                      "--dask-address", cluster.scheduler_address)
            print(f"DaskRunner, 2 worker processes: {items / job:6.1f} items/s in the Beam job "
                  f"({job:.1f} s), {items / total:6.1f} items/s end to end ({total:.1f} s)")
    print(f"FnApiRunner speed-up 1 → 2 workers: {rates[2] / rates[1]:.2f}x (target ≥ 1.7x)")


if __name__ == "__main__":
    main()
