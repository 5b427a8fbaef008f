"""What LPIPS and FID/KID add to a whole benchmark run on Kodak (RunBenchmark, end to end).

Run from the repository root:

    python benchmarks/bench_perceptual_pipeline.py [--limit 8] [--qualities 30 70] [--num-workers 2]

Runs ``luigi --module pipelines RunBenchmark`` three times on the same Kodak images with JPEG at
the given qualities, each into a fresh run folder: with the default metrics, with ``lpips`` added,
and with ``fid`` and ``kid`` added. Printed per configuration: the whole command's wall time, the
Beam evaluation job's wall time (``run.json`` ``beam_job_s``), the CPU seconds the workers spent in
metrics (the ``time_metrics_ms`` counter: PSNR/MS-SSIM plus LPIPS or the FID patch features, of the
originals once per image and of every reconstruction), and the differences to the default run per
(image, quality) item. The FID/KID run also includes the ComputeSetMetrics Beam job (its second
worker start).

The metric networks get random weights (the real architectures; speed does not depend on the
values), written to a temporary folder and handed over through RDBENCH_LPIPS_BACKBONE,
RDBENCH_LPIPS_LINEAR and RDBENCH_INCEPTION_WEIGHTS, so no download is needed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import KODAK, require_kodak, run_benchmark_cli  # noqa: E402
from bench_perceptual import random_weights  # noqa: E402

CONFIGS = {
    "default": ["psnr_rgb", "psnr_y", "ms_ssim_rgb"],
    "+lpips": ["psnr_rgb", "psnr_y", "ms_ssim_rgb", "lpips"],
    "+fid,kid": ["psnr_rgb", "psnr_y", "ms_ssim_rgb", "fid", "kid"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--qualities", type=int, nargs="+", default=[30, 70])
    parser.add_argument("--num-workers", type=int, default=2)
    args = parser.parse_args()
    require_kodak()
    with tempfile.TemporaryDirectory(prefix="rdbench-bench-") as tmp:
        files = random_weights(Path(tmp))
        os.environ.update(RDBENCH_LPIPS_BACKBONE=str(files["backbone"]), RDBENCH_LPIPS_LINEAR=str(files["linear"]),
                          RDBENCH_INCEPTION_WEIGHTS=str(files["inception"]))
        figures = {}
        for name, metrics in CONFIGS.items():
            run_name = f"perceptual-{name.strip('+').replace(',', '-')}"
            wall, _ = run_benchmark_cli(
                "--datasets", json.dumps([f"folder:{KODAK}"]), "--codecs", '["jpeg"]',
                "--qualities", json.dumps({"jpeg": args.qualities}), "--limit", str(args.limit),
                "--metrics", json.dumps(metrics), "--num-workers", str(args.num_workers),
                "--output-root", str(Path(tmp) / "out"), "--run-name", run_name)
            info = json.loads((Path(tmp) / "out" / run_name / "run.json").read_text())
            items = info["rows"]["results"]
            figures[name] = (wall, info["beam_job_s"], info["counters"].get("time_metrics_ms", 0) / 1000, items)
            if name == "+fid,kid":
                sets = (Path(tmp) / "out" / run_name / "set_metrics.csv").read_text()
    base_wall, base_job, base_metrics, _ = figures["default"]
    print(f"Kodak, {args.limit} images x JPEG q{args.qualities} = {figures['default'][3]} items, "
          f"{args.num_workers} workers, random metric weights")
    print(f"{'metrics':<10} {'wall s':>8} {'job s':>8} {'metrics cpu-s':>14} {'+wall/item':>11} {'+cpu/item':>10}")
    for name, (wall, job, metrics_cpu, items) in figures.items():
        print(f"{name:<10} {wall:8.1f} {job:8.1f} {metrics_cpu:14.2f} {(wall - base_wall) / items:11.3f} "
              f"{(metrics_cpu - base_metrics) / items:10.3f}")
    print("set_metrics.csv of the FID/KID run:\n" + sets)


if __name__ == "__main__":
    main()
