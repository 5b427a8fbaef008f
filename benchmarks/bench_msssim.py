"""MS-SSIM speed and exactness: rdbench.metrics.ms_ssim vs pytorch_msssim, side by side.

Run from the repository root:

    python benchmarks/bench_msssim.py [--limit 24] [--repeat 3] [--threads 1,2] [--qualities 20,30,40,50]

Pairs: every Kodak image (768×512, from ../shared/kodak) and a JPEG copy made with Pillow, the
quality cycling through ``--qualities``.

1. Exactness: every pair through rdbench's ``ms_ssim`` (float32), rdbench's float64 path (what
   ``ms_ssim_plane`` uses, here on R, G, B) and ``pytorch_msssim.ms_ssim`` in float32 (its
   default); printed: the largest |Δ| of each from ``pytorch_msssim.ms_ssim`` in float64, the
   reference definition.
2. Speed, per thread count of ``--threads``: ``torch.set_num_threads(N)`` and rdbench's
   ``threads=N``, so both sides use N threads. The implementations run interleaved on each pair,
   the order rotating, ``--repeat`` times, so that machine load hits them alike; a pair's time is
   the fastest repeat (uint8 → tensor conversion included for pytorch_msssim, as rdbench's time
   includes its conversion). Printed: the median over pairs of wall-clock ms, the ratio
   pytorch_msssim f32 / rdbench of those medians, and the 1-minute load average beside each row.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rdbench.metrics import msssim  # noqa: E402

KODAK = REPO.parent / "shared" / "kodak"
Pair = tuple[np.ndarray, np.ndarray]


def jpeg_copy(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def pytorch_msssim_fn(dtype: torch.dtype) -> Callable[[np.ndarray, np.ndarray, int], float]:
    from pytorch_msssim import ms_ssim as reference

    def run(a: np.ndarray, b: np.ndarray, threads: int) -> float:  # threads: set process-wide
        x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(dtype)
        y = torch.from_numpy(np.ascontiguousarray(b.transpose(2, 0, 1)))[None].to(dtype)
        return float(reference(x, y, data_range=255, size_average=True))

    return run


def rdbench_f32(a: np.ndarray, b: np.ndarray, threads: int) -> float:
    return msssim.ms_ssim(a, b, threads=threads)


def rdbench_f64(a: np.ndarray, b: np.ndarray, threads: int) -> float:
    # The float64 path of ms_ssim_plane on all three planes in one call (private entry point).
    return msssim._ms_ssim_planes(a.transpose(2, 0, 1), b.transpose(2, 0, 1), threads, np.float64)


def load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=24, help="number of Kodak images (default 24)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per pair and implementation; the fastest counts")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--qualities", default="20,30,40,50", help="JPEG qualities, cycled over the images")
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    qualities = [int(q) for q in args.qualities.split(",")]

    paths = sorted(KODAK.glob("kodim*.png"))[: args.limit]
    if not paths:
        sys.exit(f"no Kodak images at {KODAK}")
    warnings.simplefilter("ignore")  # pytorch_msssim's non-writable-array warning
    pairs: list[Pair] = []
    for index, path in enumerate(paths):
        image = np.asarray(Image.open(path).convert("RGB"))
        pairs.append((image, jpeg_copy(image, qualities[index % len(qualities)])))
    print(f"{len(pairs)} Kodak pairs (JPEG q {args.qualities}, cycled), {os.cpu_count()} CPUs, "
          f"load average (1/5/15 min) {load()} at start")

    # 1. exactness against the float64 reference (single-threaded: it is only the reference)
    torch.set_num_threads(1)
    reference_fn = pytorch_msssim_fn(torch.float64)
    reference = np.array([reference_fn(a, b, 1) for a, b in pairs])
    candidates = {"rdbench ms_ssim (f32)": rdbench_f32, "rdbench f64 path": rdbench_f64,
                  "pytorch_msssim f32": pytorch_msssim_fn(torch.float32)}
    print(f"\n{'implementation':<24} {'max |Δ| vs pytorch_msssim f64':>31}   ({len(pairs)} pairs)")
    for name, fn in candidates.items():
        diff = np.abs(np.array([fn(a, b, 1) for a, b in pairs]) - reference)
        print(f"{name:<24} {diff.max():>31.2e}")

    # 2. speed at equal thread counts
    print(f"\nms per pair (median over pairs of the fastest of {args.repeat} interleaved runs), "
          f"ratio = pytorch_msssim f32 / rdbench")
    print(f"{'threads':>7} {'rdbench f32':>11} {'rdbench f64':>11} {'pt_msssim f32':>13} "
          f"{'ratio f32':>9} {'ratio f64':>9}   load avg 1/5/15 (start → end)")
    names = list(candidates)
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for fn in candidates.values():  # warm-up: thread pools, caches
            fn(*pairs[0], threads)
        start_load = load()
        best = {name: [] for name in names}
        for a, b in pairs:
            fastest = dict.fromkeys(names, float("inf"))
            for rep in range(args.repeat):
                for name in names[rep % len(names):] + names[: rep % len(names)]:  # rotate who goes first
                    t0 = time.perf_counter()
                    candidates[name](a, b, threads)
                    fastest[name] = min(fastest[name], time.perf_counter() - t0)
            for name in names:
                best[name].append(fastest[name])
        ms = {name: statistics.median(best[name]) * 1e3 for name in names}
        pt = ms["pytorch_msssim f32"]
        print(f"{threads:>7} {ms['rdbench ms_ssim (f32)']:>11.1f} {ms['rdbench f64 path']:>11.1f} {pt:>13.1f} "
              f"{pt / ms['rdbench ms_ssim (f32)']:>8.1f}x {pt / ms['rdbench f64 path']:>8.1f}x   "
              f"{start_load} → {load()}", flush=True)


if __name__ == "__main__":
    main()
