"""FID/KID of ImageNet-size sets: the ComputeSetMetrics Beam job on synthetic patch features.

Run from the repository root:

    python benchmarks/bench_set_metrics_scale.py [--images 20000] [--sets 2] [--shards 40] [--num-workers 2]

Writes ``--shards`` features files (``features/<shard>.npz``, the format the evaluation job
writes) holding ``--images`` images × ``--sets`` (codec, quality) sets, one 2048-d patch per image
(an ImageNet-val image, ~500×375, has one 256×256 patch), then runs the real set-metrics Beam job
(FnApiRunner, ``--num-workers`` processes) over them and reports its wall time and the peak
resident memory of the process tree (sampled every 50 ms). The features are synthetic
(non-negative, correlated, pool3-like); the job's FID is checked against a single-pass
:class:`~rdbench.metrics.setlevel.SetStats` over the same features (relative difference printed),
and its KID against the one-pass KID of the same bounded sample.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.beam.job import RunnerConfig  # noqa: E402
from pipelines.beam.set_metrics import run_set_metrics_job  # noqa: E402
from rdbench.run import folder as runfolder  # noqa: E402
from rdbench.metrics.setlevel import FEATURE_DIM, SetStats  # noqa: E402
from rdbench.metrics.shardfeatures import ShardFeatures  # noqa: E402
from rdbench.reports.set_metrics import read_set_metrics  # noqa: E402


def synthetic(n: int, rng: np.random.Generator, mixing: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    real = np.abs(rng.standard_normal((n, mixing.shape[0]), dtype=np.float32) @ mixing
                  + 0.1 * rng.standard_normal((n, FEATURE_DIM), dtype=np.float32))
    fake = np.abs(0.9 * real + noise * rng.standard_normal((n, FEATURE_DIM), dtype=np.float32) + 0.02)
    return real.astype(np.float32), fake.astype(np.float32)


def peak_rss_while(fn) -> tuple[float, int, int, int]:
    """(seconds, peak RSS of the process tree, of this process (the runner), of one worker)."""
    peak = peak_self = peak_worker = 0
    stop = threading.Event()

    def sample():
        nonlocal peak, peak_self, peak_worker
        me = psutil.Process()
        while not stop.is_set():
            try:
                own = me.memory_info().rss
                workers = [p.memory_info().rss for p in me.children(recursive=True)]
                peak = max(peak, own + sum(workers))
                peak_self = max(peak_self, own)
                peak_worker = max([peak_worker, *workers])
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    return elapsed, peak, peak_self, peak_worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--sets", type=int, default=2)
    parser.add_argument("--shards", type=int, default=40)
    parser.add_argument("--num-workers", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    mixing = (rng.standard_normal((64, FEATURE_DIM)) / 8).astype(np.float32)
    direct = [SetStats() for _ in range(args.sets)]
    with tempfile.TemporaryDirectory(prefix="rdbench-setscale-") as tmp:
        run_dir = str(Path(tmp) / "run")
        start = time.perf_counter()
        per_shard = -(-args.images // args.shards)
        for s in range(args.shards):
            shard = ShardFeatures()
            for i in range(s * per_shard, min(args.images, (s + 1) * per_shard)):
                real, _ = synthetic(1, rng, mixing, 0.0)
                shard.add_original("imagenet-val", f"img{i:06d}", real)
                for k in range(args.sets):
                    fake = np.abs(0.9 * real + (0.05 + 0.1 * k) * rng.standard_normal(real.shape, dtype=np.float32)
                                  + 0.02).astype(np.float32)
                    shard.add_reconstruction("imagenet-val", f"img{i:06d}", "codec", 10 * (k + 1), fake)
                    direct[k].add(f"imagenet-val/img{i:06d}", real, fake)
            runfolder.write_bytes_atomic(runfolder.join(run_dir, "features", f"shard-{s:05d}.npz"), shard.to_bytes())
        size = sum(p.stat().st_size for p in (Path(run_dir) / "features").iterdir())
        print(f"wrote {args.shards} feature files, {size / 2**20:.0f} MiB, in {time.perf_counter() - start:.1f} s")
        cfg = RunnerConfig(num_workers=args.num_workers)
        before = psutil.Process().memory_info().rss
        elapsed, peak, peak_self, peak_worker = peak_rss_while(lambda: run_set_metrics_job(run_dir, cfg))
        table = read_set_metrics(Path(run_dir) / "set_metrics.csv")
    print(f"set-metrics job: {args.sets} sets x {args.images} images (1 patch each), {args.num_workers} workers: "
          f"{elapsed:.1f} s wall, peak RSS of the process tree {peak / 2**20:.0f} MiB (this process, which runs "
          f"the runner: {before / 2**20:.0f} MiB before, {peak_self / 2**20:.0f} MiB peak; a worker process: "
          f"{peak_worker / 2**20:.0f} MiB peak)")
    for k, row in enumerate(table.itertuples()):
        t = time.perf_counter()
        fid = direct[k].fid()
        kid = direct[k].kid()[0]
        one_pass = time.perf_counter() - t
        print(f"  q{row.quality:g}: n={row.n_patches} fid {row.fid:.6f} (one pass {fid:.6f}, rel diff "
              f"{abs(row.fid - fid) / fid:.1e}), kid {row.kid:.6f} (one pass {kid:.6f}) on {row.kid_patches} "
              f"patches; one-pass FID+KID {one_pass:.1f} s")


if __name__ == "__main__":
    main()
