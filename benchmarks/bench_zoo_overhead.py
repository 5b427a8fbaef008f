"""Learned-codec overhead: RunBenchmark vs CompressAI's eval_model on the same checkpoint.

    python benchmarks/bench_zoo_overhead.py [--arch bmshj2018-hyperprior] [--limit 6]

Per image, rdbench's encode_s + decode_s (from the results rows, one worker) against
eval_model's encoding_time + decoding_time (from its per-image JSON), on the same Kodak images
and an untrained network saved as a checkpoint (timings do not depend on weight values, only
bitstream sizes do). Target: rdbench's codec path adds ≤ 5 %. Also the end-to-end speed-up of
RunBenchmark from 1 to 2 worker processes.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import require_kodak, run_benchmark_cli  # noqa: E402

from rdbench.codecs import get_codec  # noqa: E402


def _first(value):
    """eval_model stores one value, or a list of one per checkpoint."""
    return value[0] if isinstance(value, list) else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="bmshj2018-hyperprior")
    parser.add_argument("--quality", type=int, default=3)
    parser.add_argument("--limit", type=int, default=6)
    args = parser.parse_args()
    images = sorted(require_kodak().glob("kodim*.png"))[: args.limit]
    with tempfile.TemporaryDirectory(prefix="rdbench-zoo-") as tmp:
        tmp = Path(tmp)
        folder = tmp / "images"
        folder.mkdir()
        for p in images:
            (folder / p.name).symlink_to(p)
        net = get_codec(f"{args.arch}:weights=random")._load(args.quality).net  # noqa: SLF001
        checkpoint = tmp / "ckpt.pth.tar"
        torch.save(net.state_dict(), checkpoint)

        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "compressai.utils.eval_model", "checkpoint", str(folder),
                        "-a", args.arch, "-p", str(checkpoint), "--per-image", "-d", str(tmp / "peer")],
                       check=True, capture_output=True)
        peer_wall = time.perf_counter() - start
        peer = [json.loads(p.read_text())["results"] for p in (tmp / "peer").rglob("*.json")
                if "source" in json.loads(p.read_text())]
        peer_codec = sum(_first(r["encoding_time"]) + _first(r["decoding_time"]) for r in peer) / len(peer)

        spec = f"{args.arch}:checkpoint={checkpoint}"
        walls = {}
        for workers in (1, 2):
            walls[workers], _ = run_benchmark_cli(
                "--datasets", json.dumps([f"folder:{folder}"]), "--codecs", json.dumps([spec]),
                "--qualities", json.dumps({args.arch: [args.quality]}), "--output-root", str(tmp / "out"),
                "--run-name", f"w{workers}", "--num-workers", str(workers), "--device", "cpu")
            if workers == 1:
                rows = pd.concat([pq.read_table(f).to_pandas()
                                  for f in sorted((tmp / "out" / "w1" / "results").glob("*.parquet"))])
    ours_codec = (rows.encode_s + rows.decode_s).mean()
    print(f"{args.arch} q{args.quality}, {len(images)} Kodak images, CPU")
    print(f"eval_model   encode+decode per image: {peer_codec:.3f} s   (whole command {peer_wall:.1f} s)")
    print(f"RunBenchmark encode+decode per image: {ours_codec:.3f} s   (1 worker, whole run {walls[1]:.1f} s)")
    print(f"rdbench codec-path overhead: {100 * (ours_codec / peer_codec - 1):+.1f} % (target ≤ 5 %)")
    print(f"RunBenchmark end to end: 1 worker {walls[1]:.1f} s, 2 workers {walls[2]:.1f} s, "
          f"speed-up {walls[1] / walls[2]:.2f}x")


if __name__ == "__main__":
    main()
