"""Peak memory of a run over 24 vs 240 images (Kodak, repeated ten times): it must not grow.

    python benchmarks/bench_memory.py [--workers 2]

The 240-image dataset is a folder of symbolic links to the 24 Kodak files. Peak memory is
the largest resident-set total of the whole process tree (Luigi, Beam workers), sampled
every 50 ms. Target: ratio ≤ 1.2.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import require_kodak, run_benchmark_cli  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--codecs", default='["jpeg", "webp"]')
    args = parser.parse_args()
    kodak = require_kodak()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for copies in (1, 10):
            folder = Path(tmp) / f"kodak-x{copies}"
            for c in range(copies):
                sub = folder / f"copy{c:02d}"
                sub.mkdir(parents=True)
                for png in sorted(kodak.glob("kodim*.png")):
                    (sub / png.name).symlink_to(png)
            seconds, peak = run_benchmark_cli(
                "--datasets", json.dumps([f"folder:{folder}"]), "--codecs", args.codecs,
                "--qualities", '{"jpeg": [50], "webp": [50]}', "--output-root", str(Path(tmp) / "out"),
                "--run-name", f"x{copies}", "--num-workers", str(args.workers))
            results[24 * copies] = peak
            print(f"{24 * copies:4d} images: {seconds:6.1f} s, peak RSS of the process tree {peak / 2**20:7.1f} MiB")
    ratio = results[240] / results[24]
    print(f"peak memory ratio 240/24 images: {ratio:.3f} (target ≤ 1.2)")
    sys.exit(0 if ratio <= 1.2 else 1)


if __name__ == "__main__":
    main()
