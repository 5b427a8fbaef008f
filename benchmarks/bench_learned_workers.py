"""A learned codec across worker processes: RunBenchmark with 1 and with 2 workers, side by side.

    python benchmarks/bench_learned_workers.py [--arch bmshj2018-hyperprior] [--qualities 3]
        [--images 24] [--repeat 1]

The network is CompressAI's architecture with random weights saved as a checkpoint (timings do
not depend on weight values; there are no downloads here). Each configuration runs the same
Kodak images end to end through ``luigi --module pipelines RunBenchmark``; the runner gives each
of N workers cores/N torch threads. Printed: end-to-end wall time, the Beam job's time, items
per second in the job, the in-worker phase sums, and the speed-up from 1 to 2 workers, with the
load average before and after each run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import require_kodak, run_benchmark_cli  # noqa: E402

from rdbench.codecs import get_codec  # noqa: E402


def run(folder: Path, out: Path, spec: str, arch: str, qualities: list[int], workers: int, name: str) -> dict:
    load = os.getloadavg()[0]
    wall, _ = run_benchmark_cli(
        "--datasets", json.dumps([f"folder:{folder}"]), "--codecs", json.dumps([spec]),
        "--qualities", json.dumps({arch: qualities}), "--metrics", '["psnr_rgb"]',
        "--output-root", str(out), "--run-name", name, "--num-workers", str(workers), "--device", "cpu")
    info = json.loads((out / name / "run.json").read_text())
    items = info["plan"]["n_items"]
    inside = {k.removeprefix("time_").removesuffix("_ms"): v / 1000
              for k, v in info["counters"].items() if k.startswith("time_")}
    return {"workers": workers, "wall": wall, "job": info["beam_job_s"], "items": items,
            "threads": info["timing"].get("torch_threads_per_worker"), "inside": inside,
            "load": (load, os.getloadavg()[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="bmshj2018-hyperprior")
    parser.add_argument("--qualities", default="3")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=1, help="alternate 1 and 2 workers this many times")
    args = parser.parse_args()
    qualities = [int(q) for q in args.qualities.split(",")]
    images = sorted(require_kodak().glob("kodim*.png"))[: args.images]
    with tempfile.TemporaryDirectory(prefix="rdbench-workers-") as tmp:
        tmp = Path(tmp)
        folder = tmp / "images"
        folder.mkdir()
        for p in images:
            (folder / p.name).symlink_to(p)
        template = tmp / "ckpt-q{quality}.pth.tar"
        for q in qualities:
            net = get_codec(f"{args.arch}:weights=random")._load(q).net  # noqa: SLF001
            torch.save(net.state_dict(), str(template).format(quality=q))
        spec = f"{args.arch}:checkpoint={template}"
        results = {1: [], 2: []}
        for r in range(args.repeat):
            for workers in (1, 2):
                results[workers].append(run(folder, tmp / "out", spec, args.arch, qualities, workers, f"w{workers}-{r}"))
    print(f"{args.arch} q{args.qualities}, {len(images)} Kodak images, CPU, {os.cpu_count()} cores, metrics psnr_rgb")
    for workers in (1, 2):
        for res in results[workers]:
            inside = ", ".join(f"{k} {v:.1f}" for k, v in sorted(res["inside"].items(), key=lambda kv: -kv[1])
                               if v >= 0.05)
            print(f"  {workers} worker(s) × {res['threads']} torch thread(s): {res['wall']:6.1f} s end to end, "
                  f"Beam job {res['job']:6.1f} s, {res['items'] / res['job']:5.2f} items/s; in the workers: {inside} "
                  f"(load {res['load'][0]:.2f} → {res['load'][1]:.2f})")
    best = {w: min(r["job"] for r in results[w]) for w in (1, 2)}
    best_wall = {w: min(r["wall"] for r in results[w]) for w in (1, 2)}
    print(f"speed-up 1 → 2 workers: Beam job {best[1] / best[2]:.2f}x, end to end {best_wall[1] / best_wall[2]:.2f}x "
          "(best of each)")


if __name__ == "__main__":
    main()
